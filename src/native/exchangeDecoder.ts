/**
 * Decodes the batches of ExchangeRecords written by
 * native/src/core/RecordWriter.cc. These offsets need to line up with
 * native/src/core/ExchangeRecord.h; test/native/layout.test.ts checks them
 * against the offsets the native build reports.
 */
import { viewOf } from './dataView';

export const RECORD_OFFSETS = {
  record_bytes: 0,
  role: 4,
  flags: 5,
  link_source: 6,
  trace_flags: 7,
  pid: 8,
  tid: 12,
  fd: 16,
  generation: 20,
  family: 24,
  local_port: 26,
  remote_port: 28,
  protocol: 30,
  source: 31,
  local_addr: 32,
  remote_addr: 48,
  request_start_ns: 64,
  request_end_ns: 72,
  response_start_ns: 80,
  response_end_ns: 88,
  request_bytes: 96,
  response_bytes: 104,
  trace_id: 112,
  span_id: 128,
  parent_span_id: 136,
  comm: 144,
  request_payload_bytes: 160,
  response_payload_bytes: 164,
  stream_id: 168,
  end_error_code: 172,
} as const;
export const RECORD_HEADER_BYTES = 176;

/** Bits of {@link Exchange.flags}. */
export const ExchangeFlags = {
  /** No response within the response timeout. */
  NoResponse: 1 << 0,
  /** The connection closed, or the process exited, before a response. */
  ClosedBeforeResponse: 1 << 1,
  /** The response's end was not observed; its last known chunk is used. */
  EndEstimated: 1 << 2,
  EventsLost: 1 << 3,
  /** The connection was open before sonde first saw it. */
  PreexistingConnection: 1 << 4,
  /**
   * The response was closed out before its framing said it was over: still
   * open and quiet for the response timeout, or its connection closed in
   * the middle of a Content-Length body.
   */
  ResponseIncomplete: 1 << 5,
  /**
   * HTTP/2: some header fields are unknown (their HPACK entry predates
   * sonde), or a header block was over its bound or broke HPACK.
   */
  HeadersIncomplete: 1 << 6,
  /** HTTP/2: RST_STREAM or GOAWAY ended the stream; see {@link Exchange.endErrorCode}. */
  StreamReset: 1 << 7,
} as const;

/** How the exchange's trace context was decided. */
export enum LinkSource {
  /** A new root. */
  None = 0,
  /** An incoming W3C traceparent header. */
  TraceparentHeader = 1,
  /** The traced client span at the other end of the connection, on this host. */
  PeerClient = 2,
  /** The server request open on the same thread. */
  EnclosingServer = 3,
  /** The request of the connection the writing thread had last read (an event loop's callback). */
  CausingRead = 4,
  /** The request the thread was serving when it connected: the first call on a new connection. */
  ConnectTime = 5,
}

/**
 * Which native stitcher produced the exchange, and so how its captured
 * heads are to be read. Needs to line up with `enum class Protocol` in
 * native/src/core/ExchangeRecord.h (checked by test/native/layout.test.ts).
 */
export enum ExchangeProtocol {
  Http1 = 1,
  /**
   * HTTP/2 and gRPC: payloads are decoded header fields as text lines
   * ("HTTP2_PAYLOAD" in native/src/core/ExchangeRecord.h).
   */
  Http2 = 2,
}

export type ExchangeRole = 'server' | 'client';

/** Wire values of {@link ExchangeRole} (`enum class ExchangeRole` in ExchangeRecord.h). */
export const EXCHANGE_ROLE_CODES = { server: 1, client: 2 } as const;

/**
 * One request/response exchange seen on a TCP connection. Times are
 * CLOCK_MONOTONIC nanoseconds as doubles: exact for the first 104 days of
 * uptime (2^53 ns), within a few ns after that.
 */
export interface Exchange {
  role: ExchangeRole;
  protocol: ExchangeProtocol;
  /** Its bytes were a TLS library's plaintext (OpenSSL uprobes), not a socket's. */
  tls: boolean;
  /** The HTTP/2 stream the exchange travelled on; 0 for HTTP/1. */
  streamId: number;
  /** HTTP/2 error code of the RST_STREAM or GOAWAY that ended the stream; 0 otherwise. */
  endErrorCode: number;
  flags: number;
  linkSource: LinkSource;
  traceFlags: number;
  pid: number;
  tid: number;
  fd: number;
  generation: number;
  /** 2 (AF_INET) or 10 (AF_INET6): the socket's own family. */
  family: number;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  requestStartNs: number;
  requestEndNs: number;
  /** 0 when no response was seen. */
  responseStartNs: number;
  responseEndNs: number;
  requestBytes: number;
  responseBytes: number;
  traceId: string;
  spanId: string;
  /** Empty for a root. */
  parentSpanId: string;
  /** The process's command name (task comm, at most 15 characters). */
  comm: string;
  /**
   * The captured prefixes of request and response live in `payload`
   * (the whole batch, not a copy) at [requestHeadStart, requestHeadEnd)
   * and [responseHeadStart, responseHeadEnd).
   */
  payload: Buffer;
  requestHeadStart: number;
  requestHeadEnd: number;
  responseHeadStart: number;
  responseHeadEnd: number;
}

const ROLES: Record<number, ExchangeRole> = {
  [EXCHANGE_ROLE_CODES.server]: 'server',
  [EXCHANGE_ROLE_CODES.client]: 'client',
};
const PROTOCOLS = new Set<number>([ExchangeProtocol.Http1, ExchangeProtocol.Http2]);
const TWO_POW_32 = 4294967296;
/** SONDE_SOURCE_TLS of enum sonde_source (bpf/shared/events.h). */
const SOURCE_TLS = 2;

export class MalformedBatchError extends Error {}

export function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 4) * TWO_POW_32 + buf.readUInt32LE(at);
}

/**
 * Calls `onExchange` for each record; a truncated or corrupt record ends the
 * batch with an error. A record for which `claim(offset)` is true is taken
 * by the caller as it is, and not decoded.
 */
export function decodeExchanges(batch: Buffer, onExchange: (x: Exchange) => void, claim?: (recordOffset: number) => boolean): number {
  let offset = 0;
  let count = 0;
  const view = viewOf(batch);
  while (offset < batch.length) {
    const recordBytes = checkRecordAt(view, offset);
    if (claim === undefined || !claim(offset)) onExchange(exchangeAt(batch, offset));
    offset += recordBytes;
    count++;
  }
  return count;
}

/** The length of the record at `offset`, checked against its payloads and the batch. */
function checkRecordAt(batch: DataView, offset: number): number {
  if (batch.byteLength - offset < RECORD_HEADER_BYTES) throw new MalformedBatchError(`truncated record header at ${offset}`);
  const recordBytes = batch.getUint32(offset, true);
  const requestPayloadBytes = batch.getUint32(offset + RECORD_OFFSETS.request_payload_bytes, true);
  const responsePayloadBytes = batch.getUint32(offset + RECORD_OFFSETS.response_payload_bytes, true);
  if (recordBytes !== RECORD_HEADER_BYTES + requestPayloadBytes + responsePayloadBytes || offset + recordBytes > batch.byteLength) {
    throw new MalformedBatchError(`bad record length ${recordBytes} at ${offset}`);
  }
  return recordBytes;
}

/** The record at `offset`, whose length is already checked. */
export function exchangeAt(batch: Buffer, offset: number): Exchange {
  const requestPayloadBytes = batch.readUInt32LE(offset + RECORD_OFFSETS.request_payload_bytes);
  const responsePayloadBytes = batch.readUInt32LE(offset + RECORD_OFFSETS.response_payload_bytes);
  const role = ROLES[batch[offset + RECORD_OFFSETS.role]];
  if (!role) throw new MalformedBatchError(`bad role at ${offset}`);
  const protocol = batch[offset + RECORD_OFFSETS.protocol];
  if (!PROTOCOLS.has(protocol)) throw new MalformedBatchError(`bad protocol at ${offset}`);
  const payloadAt = offset + RECORD_HEADER_BYTES;
  const parentAt = offset + RECORD_OFFSETS.parent_span_id;
  const isRoot = batch.readUInt32LE(parentAt) === 0 && batch.readUInt32LE(parentAt + 4) === 0;
  return {
    role,
    protocol: protocol as ExchangeProtocol,
    tls: batch[offset + RECORD_OFFSETS.source] === SOURCE_TLS,
    streamId: batch.readUInt32LE(offset + RECORD_OFFSETS.stream_id),
    endErrorCode: batch.readUInt32LE(offset + RECORD_OFFSETS.end_error_code),
    flags: batch[offset + RECORD_OFFSETS.flags],
    linkSource: batch[offset + RECORD_OFFSETS.link_source] as LinkSource,
    traceFlags: batch[offset + RECORD_OFFSETS.trace_flags],
    pid: batch.readUInt32LE(offset + RECORD_OFFSETS.pid),
    tid: batch.readUInt32LE(offset + RECORD_OFFSETS.tid),
    fd: batch.readInt32LE(offset + RECORD_OFFSETS.fd),
    generation: batch.readUInt32LE(offset + RECORD_OFFSETS.generation),
    family: batch.readUInt16LE(offset + RECORD_OFFSETS.family),
    localPort: batch.readUInt16LE(offset + RECORD_OFFSETS.local_port),
    remotePort: batch.readUInt16LE(offset + RECORD_OFFSETS.remote_port),
    localAddress: formatAddress(batch, offset + RECORD_OFFSETS.local_addr),
    remoteAddress: formatAddress(batch, offset + RECORD_OFFSETS.remote_addr),
    requestStartNs: readU64(batch, offset + RECORD_OFFSETS.request_start_ns),
    requestEndNs: readU64(batch, offset + RECORD_OFFSETS.request_end_ns),
    responseStartNs: readU64(batch, offset + RECORD_OFFSETS.response_start_ns),
    responseEndNs: readU64(batch, offset + RECORD_OFFSETS.response_end_ns),
    requestBytes: readU64(batch, offset + RECORD_OFFSETS.request_bytes),
    responseBytes: readU64(batch, offset + RECORD_OFFSETS.response_bytes),
    traceId: batch.toString('hex', offset + RECORD_OFFSETS.trace_id, offset + RECORD_OFFSETS.trace_id + 16),
    spanId: batch.toString('hex', offset + RECORD_OFFSETS.span_id, offset + RECORD_OFFSETS.span_id + 8),
    parentSpanId: isRoot ? '' : batch.toString('hex', parentAt, parentAt + 8),
    comm: readCString(batch, offset + RECORD_OFFSETS.comm, 16),
    payload: batch,
    requestHeadStart: payloadAt,
    requestHeadEnd: payloadAt + requestPayloadBytes,
    responseHeadStart: payloadAt + requestPayloadBytes,
    responseHeadEnd: payloadAt + requestPayloadBytes + responsePayloadBytes,
  };
}

// Most spans of a host share a handful of peer addresses: format each once.
const v4Names = new Map<number, string>();
const V4_NAME_CACHE_MAX = 4096;

/** IPv4 arrives v4-mapped (::ffff:a.b.c.d) and is shown as plain IPv4. */
export function formatAddress(buf: Buffer, at: number): string {
  let v4Mapped = buf[at + 10] === 0xff && buf[at + 11] === 0xff;
  for (let i = 0; i < 10 && v4Mapped; i++) if (buf[at + i] !== 0) v4Mapped = false;
  if (v4Mapped) {
    const key = buf.readUInt32BE(at + 12);
    let name = v4Names.get(key);
    if (name === undefined) {
      if (v4Names.size >= V4_NAME_CACHE_MAX) v4Names.clear();
      name = `${buf[at + 12]}.${buf[at + 13]}.${buf[at + 14]}.${buf[at + 15]}`;
      v4Names.set(key, name);
    }
    return name;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(at + i).toString(16));
  // RFC 5952: compress the longest run (of two or more) of zero groups.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

export function readCString(buf: Buffer, at: number, max: number): string {
  let end = at;
  while (end < at + max && buf[end] !== 0) end++;
  return buf.toString('latin1', at, end);
}

/** The captured request prefix, as a view (tests and diagnostics; the pipeline parses in place). */
export function requestHeadOf(x: Exchange): Buffer {
  return x.payload.subarray(x.requestHeadStart, x.requestHeadEnd);
}

export function responseHeadOf(x: Exchange): Buffer {
  return x.payload.subarray(x.responseHeadStart, x.responseHeadEnd);
}
