/**
 * Reads the spans the addon's reader thread encoded for a batch
 * (native/src/encode/EncodedSpans.h): entries back to back, each a
 * fixed header and an OTLP Span message, in the order of their records.
 * These offsets need to line up with the native struct;
 * test/native/layout.test.ts checks them.
 */
import { u64At, viewOf } from './dataView';

export const ENCODED_SPAN_OFFSETS = {
  entry_bytes: 0,
  record_offset: 4,
  span_bytes: 8,
  start_time_at: 12,
  end_time_at: 16,
  status_code: 20,
  method: 22,
  http_minor: 23,
  end_ns: 24,
  server_address_at: 32,
  server_address_bytes: 36,
  server_port: 38,
  name_at: 40,
  name_bytes: 44,
  shape: 46,
} as const;
export const ENCODED_SPAN_HEADER_BYTES = 48;

/** What an entry's span is, and so which of its fields mean something (EncodedSpanShape). */
export enum EncodedSpanShape {
  /** HTTP/1: statusCode, method, httpMinor; serverAddress and serverPort for a client. */
  Http = 1,
  /** statusCode is the grpc-status; the name is "service/method"; serverAddress and serverPort for a client. */
  Grpc = 2,
  /** A plain HTTP/2 stream: statusCode and method; serverAddress and serverPort for a client. */
  Http2 = 3,
}

/** Methods by EncodedSpanEntry.method (kEncodedSpanMethods). */
export const ENCODED_SPAN_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'] as const;

/** The entries of one buffer, one at a time: each header is read once, into these fields. */
export class EncodedSpanCursor {
  /** Offset of the current entry, or -1 once past the last. */
  at = -1;
  /** The record this entry encodes, by its offset in the records batch; -1 past the last entry. */
  recordOffset = -1;
  /** Where the Span message starts, and its length. */
  spanStart = 0;
  spanBytes = 0;
  /** Where its start and end times (fixed64) are, in the buffer. */
  startTimeAt = 0;
  endTimeAt = 0;
  shape: EncodedSpanShape = EncodedSpanShape.Http;
  /** HTTP: the response's status code; gRPC: the grpc-status. */
  statusCode = 0;
  /** HTTP: index into ENCODED_SPAN_METHODS. */
  methodIndex = 0;
  method = '';
  httpMinor = 0;
  /** CLOCK_MONOTONIC ns, as a double (exact below 2^53). */
  endNs = 0;
  /** Where the server.address attribute's value is in the buffer, and its length; and server.port. */
  serverAddressAt = 0;
  serverAddressBytes = 0;
  serverPort = 0;
  /** Where the span's name is in the buffer, and its length. */
  nameAt = 0;
  nameBytes = 0;
  #buf: Buffer = Buffer.alloc(0);
  #view = viewOf(this.#buf);

  reset(buf: Buffer | undefined): void {
    this.#buf = buf ?? Buffer.alloc(0);
    this.#view = viewOf(this.#buf);
    this.#load(0);
  }

  /** The buffer as a DataView, for reading and writing its fields in place. */
  get view(): DataView {
    return this.#view;
  }

  get buffer(): Buffer {
    return this.#buf;
  }

  next(): void {
    this.#load(this.at + ENCODED_SPAN_HEADER_BYTES + this.spanBytes);
  }

  #load(at: number): void {
    const buf = this.#buf;
    if (at + ENCODED_SPAN_HEADER_BYTES > buf.length) {
      this.at = -1;
      this.recordOffset = -1;
      return;
    }
    const o = ENCODED_SPAN_OFFSETS;
    const v = this.#view;
    const entryBytes = v.getUint32(at + o.entry_bytes, true);
    const spanBytes = v.getUint32(at + o.span_bytes, true);
    const startTime = v.getUint32(at + o.start_time_at, true);
    const endTime = v.getUint32(at + o.end_time_at, true);
    // The addon writes these; a broken one would misplace every span after it.
    if (entryBytes !== ENCODED_SPAN_HEADER_BYTES + spanBytes || at + entryBytes > buf.length || startTime + 8 > spanBytes || endTime + 8 > spanBytes) {
      throw new Error(`malformed encoded span entry at ${at}`);
    }
    this.at = at;
    this.recordOffset = v.getUint32(at + o.record_offset, true);
    this.spanStart = at + ENCODED_SPAN_HEADER_BYTES;
    this.spanBytes = spanBytes;
    this.startTimeAt = this.spanStart + startTime;
    this.endTimeAt = this.spanStart + endTime;
    this.statusCode = v.getUint16(at + o.status_code, true);
    this.methodIndex = buf[at + o.method];
    this.method = ENCODED_SPAN_METHODS[this.methodIndex] ?? '_OTHER';
    this.httpMinor = buf[at + o.http_minor];
    this.endNs = u64At(v, at + o.end_ns);
    this.serverAddressAt = this.spanStart + v.getUint32(at + o.server_address_at, true);
    this.serverAddressBytes = v.getUint16(at + o.server_address_bytes, true);
    this.serverPort = v.getUint16(at + o.server_port, true);
    this.nameAt = this.spanStart + v.getUint32(at + o.name_at, true);
    this.nameBytes = v.getUint16(at + o.name_bytes, true);
    this.shape = buf[at + o.shape];
    const spanEnd = this.spanStart + spanBytes;
    if (this.serverAddressAt + this.serverAddressBytes > spanEnd || this.nameAt + this.nameBytes > spanEnd || (this.shape !== EncodedSpanShape.Http && this.shape !== EncodedSpanShape.Grpc && this.shape !== EncodedSpanShape.Http2)) {
      throw new Error(`malformed encoded span entry at ${at}`);
    }
  }
}
