/**
 * Exchange records as the native RecordWriter writes them: the inverse of
 * decodeExchanges, written from native/src/core/ExchangeRecord.h (packed,
 * little-endian). For decoder tests and for bench/tools/jsSpanCost.ts.
 */
import * as assert from 'node:assert/strict';
import { ExchangeProtocol, RECORD_HEADER_BYTES, RECORD_OFFSETS } from '../../src/native/exchangeDecoder';

export interface RecordSpec {
  role?: number;
  protocol?: number;
  /** enum sonde_source: 1 socket (default), 2 TLS. */
  source?: number;
  streamId?: number;
  endErrorCode?: number;
  flags?: number;
  linkSource?: number;
  traceFlags?: number;
  pid?: number;
  tid?: number;
  fd?: number;
  generation?: number;
  family?: number;
  localPort?: number;
  remotePort?: number;
  /** 16 raw bytes. */
  localAddr?: Buffer;
  remoteAddr?: Buffer;
  requestStartNs?: bigint;
  requestEndNs?: bigint;
  responseStartNs?: bigint;
  responseEndNs?: bigint;
  requestBytes?: bigint;
  responseBytes?: bigint;
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  /** Raw 16-byte task comm field; a string is NUL-padded. */
  comm?: string | Buffer;
  request?: Buffer;
  response?: Buffer;
  /** Overrides for corrupt records. */
  recordBytes?: number;
  requestPayloadBytes?: number;
  responsePayloadBytes?: number;
}

export function v4mapped(a: number, b: number, c: number, d: number): Buffer {
  return Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]);
}

export function v6(groups: number[]): Buffer {
  assert.equal(groups.length, 8);
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

export function encodeRecord(spec: RecordSpec = {}): Buffer {
  const request = spec.request ?? Buffer.from('GET / HTTP/1.1\r\n\r\n');
  const response = spec.response ?? Buffer.from('HTTP/1.1 204 No Content\r\n\r\n');
  const o = RECORD_OFFSETS;
  const b = Buffer.alloc(RECORD_HEADER_BYTES + request.length + response.length);
  b.writeUInt32LE(spec.recordBytes ?? b.length, o.record_bytes);
  b.writeUInt8(spec.role ?? 1, o.role);
  b.writeUInt8(spec.protocol ?? ExchangeProtocol.Http1, o.protocol);
  b.writeUInt8(spec.source ?? 1, o.source);
  b.writeUInt32LE(spec.streamId ?? 0, o.stream_id);
  b.writeUInt32LE(spec.endErrorCode ?? 0, o.end_error_code);
  b.writeUInt8(spec.flags ?? 0, o.flags);
  b.writeUInt8(spec.linkSource ?? 0, o.link_source);
  b.writeUInt8(spec.traceFlags ?? 1, o.trace_flags);
  b.writeUInt32LE(spec.pid ?? 100, o.pid);
  b.writeUInt32LE(spec.tid ?? 101, o.tid);
  b.writeInt32LE(spec.fd ?? 5, o.fd);
  b.writeUInt32LE(spec.generation ?? 1, o.generation);
  b.writeUInt16LE(spec.family ?? 2, o.family);
  b.writeUInt16LE(spec.localPort ?? 8080, o.local_port);
  b.writeUInt16LE(spec.remotePort ?? 40000, o.remote_port);
  (spec.localAddr ?? v4mapped(127, 0, 0, 1)).copy(b, o.local_addr);
  (spec.remoteAddr ?? v4mapped(127, 0, 0, 1)).copy(b, o.remote_addr);
  b.writeBigUInt64LE(spec.requestStartNs ?? 1_000n, o.request_start_ns);
  b.writeBigUInt64LE(spec.requestEndNs ?? 2_000n, o.request_end_ns);
  b.writeBigUInt64LE(spec.responseStartNs ?? 3_000n, o.response_start_ns);
  b.writeBigUInt64LE(spec.responseEndNs ?? 4_000n, o.response_end_ns);
  b.writeBigUInt64LE(spec.requestBytes ?? BigInt(request.length), o.request_bytes);
  b.writeBigUInt64LE(spec.responseBytes ?? BigInt(response.length), o.response_bytes);
  Buffer.from(spec.traceId ?? '0af7651916cd43dd8448eb211c80319c', 'hex').copy(b, o.trace_id);
  Buffer.from(spec.spanId ?? 'b7ad6b7169203331', 'hex').copy(b, o.span_id);
  Buffer.from(spec.parentSpanId ?? '0000000000000000', 'hex').copy(b, o.parent_span_id);
  const comm = typeof spec.comm === 'string' || spec.comm === undefined ? Buffer.from(spec.comm ?? 'node', 'latin1') : spec.comm;
  assert.ok(comm.length <= 16);
  comm.copy(b, o.comm);
  b.writeUInt32LE(spec.requestPayloadBytes ?? request.length, o.request_payload_bytes);
  b.writeUInt32LE(spec.responsePayloadBytes ?? response.length, o.response_payload_bytes);
  request.copy(b, RECORD_HEADER_BYTES);
  response.copy(b, RECORD_HEADER_BYTES + request.length);
  return b;
}

