/**
 * A ViewSpan read back from an OTLP Span message (trace.proto): how the
 * viewer turns the spans the addon encoded into what it shows, only when it
 * is asked. It gives what `viewSpanOf` gives for the span those bytes were
 * encoded from (test/viewer/viewSpanOfOtlp.test.ts); fields the viewer does
 * not show (events, links, flags) are skipped.
 */
import type { AttributeValue } from '@opentelemetry/api';
import { WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from '../export/otlp/ProtoWriter';
import type { ViewKind, ViewSpan } from './TraceStore';

// OTLP's SpanKind counts UNSPECIFIED as 0.
const OTLP_KINDS: readonly ViewKind[] = ['INTERNAL', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS_CODE_ERROR = 2;

/** Reads protobuf fields of one message, `bytes[start, end)`. */
class FieldReader {
  pos: number;
  field = 0;
  wire = 0;

  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** Reads the next tag; false at the message's end. */
  next(): boolean {
    if (this.pos >= this.end) return false;
    const tag = this.varint();
    this.field = tag >>> 3;
    this.wire = tag & 7;
    return true;
  }

  /** A varint as a number: exact up to 2^53, which covers every count and enum here. */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.bytes[this.pos++];
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
      if (scale > 2 ** 63) throw new Error('varint too long');
    }
  }

  /** A varint as int64: two's complement, for negative int_value attributes. */
  int64(): number {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.bytes[this.pos++];
      value |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
    return Number(BigInt.asIntN(64, value));
  }

  fixed64(): bigint {
    const b = this.bytes;
    const at = this.take(8);
    const lo = (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
    const hi = (b[at + 4] | (b[at + 5] << 8) | (b[at + 6] << 16) | (b[at + 7] << 24)) >>> 0;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  double(): number {
    const at = this.take(8);
    return new DataView(this.bytes.buffer, this.bytes.byteOffset + at, 8).getFloat64(0, true);
  }

  /** A length-delimited field's bounds: `[start, end)`. */
  length(): [number, number] {
    const n = this.varint();
    const start = this.take(n);
    return [start, start + n];
  }

  /** A length-delimited field holding a message: a reader of it alone. */
  message(): FieldReader {
    const [start, end] = this.length();
    return new FieldReader(this.bytes, start, end);
  }

  string(): string {
    const [start, end] = this.length();
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, end - start).toString('utf8');
  }

  hex(): string {
    const [start, end] = this.length();
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, end - start).toString('hex');
  }

  skip(): void {
    if (this.wire === WIRE_VARINT) this.varint();
    else if (this.wire === WIRE_FIXED64) this.take(8);
    else if (this.wire === WIRE_LEN) this.length();
    else if (this.wire === WIRE_FIXED32) this.take(4);
    else throw new Error(`unsupported wire type ${this.wire}`);
  }

  /** Advances past `n` bytes; where they start. */
  take(n: number): number {
    const at = this.pos;
    if (at + n > this.end) throw new Error('truncated field');
    this.pos = at + n;
    return at;
  }
}

/** An AnyValue: what `writeAnyValue` (src/export/otlp/encodeTraces.ts) writes for an attribute value. */
function anyValue(v: FieldReader): AttributeValue | undefined {
  let value: AttributeValue | undefined;
  while (v.next()) {
    if (v.field === 1 && v.wire === WIRE_LEN) value = v.string();
    else if (v.field === 2 && v.wire === WIRE_VARINT) value = v.varint() !== 0;
    else if (v.field === 3 && v.wire === WIRE_VARINT) value = v.int64();
    else if (v.field === 4 && v.wire === WIRE_FIXED64) value = v.double();
    else if (v.field === 5 && v.wire === WIRE_LEN) value = arrayValue(v.message());
    else v.skip();
  }
  return value;
}

/** ArrayValue: the API's arrays hold strings, numbers or booleans (or null, written as an empty AnyValue). */
function arrayValue(a: FieldReader): AttributeValue {
  const values: unknown[] = [];
  while (a.next()) {
    if (a.field === 1 && a.wire === WIRE_LEN) values.push(anyValue(a.message()) ?? null);
    else a.skip();
  }
  return values as AttributeValue;
}

function keyValue(kv: FieldReader, into: Record<string, AttributeValue>): void {
  let key: string | undefined;
  let value: AttributeValue | undefined;
  while (kv.next()) {
    if (kv.field === 1 && kv.wire === WIRE_LEN) key = kv.string();
    else if (kv.field === 2 && kv.wire === WIRE_LEN) value = anyValue(kv.message());
    else kv.skip();
  }
  if (key !== undefined && value !== undefined) into[key] = value;
}

/** `bytes[start, start + length)` is a Span message without tag or length. */
export function viewSpanOfOtlp(bytes: Uint8Array, start: number, length: number, resource: Record<string, AttributeValue>): ViewSpan {
  const r = new FieldReader(bytes, start, start + length);
  let traceId = '';
  let spanId = '';
  let parentSpanId = '';
  let name = '';
  let kind = 0;
  let startNs = 0n;
  let endNs = 0n;
  const attributes: Record<string, AttributeValue> = {};
  let error = false;
  let statusMessage = '';
  while (r.next()) {
    switch (r.field) {
      case 1:
        traceId = r.hex();
        break;
      case 2:
        spanId = r.hex();
        break;
      case 4:
        parentSpanId = r.hex();
        break;
      case 5:
        name = r.string();
        break;
      case 6:
        kind = r.varint();
        break;
      case 7:
        startNs = r.fixed64();
        break;
      case 8:
        endNs = r.fixed64();
        break;
      case 9:
        keyValue(r.message(), attributes);
        break;
      case 15: {
        const status = r.message();
        while (status.next()) {
          if (status.field === 2 && status.wire === WIRE_LEN) statusMessage = status.string();
          else if (status.field === 3 && status.wire === WIRE_VARINT) error = status.varint() === STATUS_CODE_ERROR;
          else status.skip();
        }
        break;
      }
      default:
        r.skip();
    }
  }
  const service = resource['service.name'];
  // The same fields, in the same order, as viewSpanOf.
  const view: ViewSpan = {
    traceId,
    spanId,
    name,
    kind: OTLP_KINDS[kind] ?? 'INTERNAL',
    service: typeof service === 'string' ? service : 'unknown',
    startUs: Number(startNs / 1000n),
    durationUs: Number((endNs > startNs ? endNs - startNs : 0n) / 1000n),
    error,
    attributes,
    resource,
  };
  if (parentSpanId) view.parentSpanId = parentSpanId;
  if (statusMessage) view.statusMessage = statusMessage;
  return view;
}
