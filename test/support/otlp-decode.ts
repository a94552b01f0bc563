// Decoder for OTLP ExportTraceServiceRequest protobuf messages.
//
// @opentelemetry/otlp-transformer 0.2xx no longer ships a protobufjs root
// (it serializes with a hand-written writer and only has a private reader for
// responses), and protobufjs is merely a transitive dependency of
// @grpc/proto-loader. Decoding the handful of OTLP trace messages by hand keeps
// the receiver independent of both, and lets 64-bit fields stay exact bigints.
//
// Field numbers follow opentelemetry/proto/{collector/trace,trace,common,resource}/v1.

import type { AttributeValue, ReceivedSpan, SpanKindName, StatusCodeName } from './receivers';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const textDecoder = new TextDecoder('utf-8', { fatal: true });

class Reader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  atEnd(): boolean {
    return this.pos >= this.buf.length;
  }

  tag(): { field: number; wire: number } {
    const raw = Number(this.varint());
    return { field: raw >>> 3, wire: raw & 7 };
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
      if (shift > 63n) throw new Error('varint longer than 10 bytes');
    }
  }

  fixed64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  double(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  bytes(): Uint8Array {
    const len = Number(this.varint());
    this.need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string(): string {
    return textDecoder.decode(this.bytes());
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.need(8);
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.bytes();
        return;
      case WIRE_FIXED32:
        this.need(4);
        this.pos += 4;
        return;
      default:
        throw new Error(`unsupported wire type ${wire} at offset ${this.pos}`);
    }
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new Error(`truncated message: need ${n} bytes at offset ${this.pos}, have ${this.buf.length - this.pos}`);
    }
  }
}

/** Calls `onField` for every field; fields it does not consume are skipped. */
function eachField(buf: Uint8Array, onField: (field: number, wire: number, r: Reader) => boolean): void {
  const r = new Reader(buf);
  while (!r.atEnd()) {
    const { field, wire } = r.tag();
    if (!onField(field, wire, r)) r.skip(wire);
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

const SPAN_KINDS: readonly SpanKindName[] = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS_CODES: readonly StatusCodeName[] = ['UNSET', 'OK', 'ERROR'];

type AnyValue =
  | { kind: 'scalar'; value: string | number | boolean }
  | { kind: 'array'; values: AnyValue[] }
  | { kind: 'kvlist'; entries: [string, AnyValue][] }
  | { kind: 'empty' };

function decodeAnyValue(buf: Uint8Array): AnyValue {
  let out: AnyValue = { kind: 'empty' };
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) out = { kind: 'scalar', value: r.string() };
    else if (field === 2 && wire === WIRE_VARINT) out = { kind: 'scalar', value: r.varint() !== 0n };
    // int64 is two's complement on the wire; Number() is exact up to 2^53, which covers real attribute values.
    else if (field === 3 && wire === WIRE_VARINT) out = { kind: 'scalar', value: Number(BigInt.asIntN(64, r.varint())) };
    else if (field === 4 && wire === WIRE_FIXED64) out = { kind: 'scalar', value: r.double() };
    else if (field === 5 && wire === WIRE_LEN) out = { kind: 'array', values: decodeRepeatedAnyValue(r.bytes()) };
    else if (field === 6 && wire === WIRE_LEN) out = { kind: 'kvlist', entries: decodeRepeatedKeyValue(r.bytes()) };
    else if (field === 7 && wire === WIRE_LEN) out = { kind: 'scalar', value: hex(r.bytes()) };
    else return false;
    return true;
  });
  return out;
}

function decodeRepeatedAnyValue(buf: Uint8Array): AnyValue[] {
  const values: AnyValue[] = [];
  eachField(buf, (field, wire, r) => {
    if (field !== 1 || wire !== WIRE_LEN) return false;
    values.push(decodeAnyValue(r.bytes()));
    return true;
  });
  return values;
}

function decodeKeyValue(buf: Uint8Array): [string, AnyValue] {
  let key = '';
  let value: AnyValue = { kind: 'empty' };
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) key = r.string();
    else if (field === 2 && wire === WIRE_LEN) value = decodeAnyValue(r.bytes());
    else return false;
    return true;
  });
  return [key, value];
}

function decodeRepeatedKeyValue(buf: Uint8Array): [string, AnyValue][] {
  const entries: [string, AnyValue][] = [];
  eachField(buf, (field, wire, r) => {
    if (field !== 1 || wire !== WIRE_LEN) return false;
    entries.push(decodeKeyValue(r.bytes()));
    return true;
  });
  return entries;
}

function toPlain(v: AnyValue): unknown {
  switch (v.kind) {
    case 'scalar':
      return v.value;
    case 'array':
      return v.values.map(toPlain);
    case 'kvlist':
      return Object.fromEntries(v.entries.map(([k, x]) => [k, toPlain(x)]));
    case 'empty':
      return null;
  }
}

// ReceivedSpan attributes are deliberately flat so tests can deepEqual them:
// homogeneous string arrays stay arrays, anything more exotic becomes a string.
function flatten(v: AnyValue): AttributeValue {
  switch (v.kind) {
    case 'scalar':
      return v.value;
    case 'array':
      return v.values.map((x) => {
        const plain = toPlain(x);
        return typeof plain === 'string' ? plain : JSON.stringify(plain);
      });
    case 'kvlist':
      return JSON.stringify(toPlain(v));
    case 'empty':
      return '';
  }
}

type Attributes = Record<string, AttributeValue>;

function addAttribute(into: Attributes, buf: Uint8Array): void {
  const [key, value] = decodeKeyValue(buf);
  into[key] = flatten(value);
}

function decodeResource(buf: Uint8Array): Attributes {
  const attributes: Attributes = {};
  eachField(buf, (field, wire, r) => {
    if (field !== 1 || wire !== WIRE_LEN) return false;
    addAttribute(attributes, r.bytes());
    return true;
  });
  return attributes;
}

function decodeStatus(buf: Uint8Array): StatusCodeName {
  let code: StatusCodeName = 'UNSET';
  eachField(buf, (field, wire, r) => {
    if (field !== 3 || wire !== WIRE_VARINT) return false;
    const n = Number(r.varint());
    code = STATUS_CODES[n] ?? 'UNSET';
    return true;
  });
  return code;
}

function decodeSpan(buf: Uint8Array, resource: Attributes): ReceivedSpan {
  const span: ReceivedSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: undefined,
    name: '',
    kind: 'UNSPECIFIED',
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    attributes: {},
    statusCode: 'UNSET',
    resource: { ...resource },
  };
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) span.traceId = hex(r.bytes());
    else if (field === 2 && wire === WIRE_LEN) span.spanId = hex(r.bytes());
    else if (field === 4 && wire === WIRE_LEN) {
      // proto3 has no null: a root span carries an empty parent_span_id.
      const parent = r.bytes();
      span.parentSpanId = parent.length > 0 ? hex(parent) : undefined;
    } else if (field === 5 && wire === WIRE_LEN) span.name = r.string();
    else if (field === 6 && wire === WIRE_VARINT) span.kind = SPAN_KINDS[Number(r.varint())] ?? 'UNSPECIFIED';
    else if (field === 7 && wire === WIRE_FIXED64) span.startTimeUnixNano = r.fixed64();
    else if (field === 8 && wire === WIRE_FIXED64) span.endTimeUnixNano = r.fixed64();
    else if (field === 9 && wire === WIRE_LEN) addAttribute(span.attributes, r.bytes());
    else if (field === 15 && wire === WIRE_LEN) span.statusCode = decodeStatus(r.bytes());
    else return false;
    return true;
  });
  return span;
}

function decodeScopeSpans(buf: Uint8Array, resource: Attributes, out: ReceivedSpan[]): void {
  eachField(buf, (field, wire, r) => {
    if (field !== 2 || wire !== WIRE_LEN) return false;
    out.push(decodeSpan(r.bytes(), resource));
    return true;
  });
}

function decodeResourceSpans(buf: Uint8Array, out: ReceivedSpan[]): void {
  // The resource may legally come after the scope spans, so collect both first.
  let resource: Attributes = {};
  const scopeSpans: Uint8Array[] = [];
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) resource = decodeResource(r.bytes());
    else if (field === 2 && wire === WIRE_LEN) scopeSpans.push(r.bytes());
    else return false;
    return true;
  });
  for (const s of scopeSpans) decodeScopeSpans(s, resource, out);
}

/** Decodes a serialized opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest. */
export function decodeExportTraceServiceRequest(buf: Uint8Array): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  eachField(buf, (field, wire, r) => {
    if (field !== 1 || wire !== WIRE_LEN) return false;
    decodeResourceSpans(r.bytes(), spans);
    return true;
  });
  return spans;
}
