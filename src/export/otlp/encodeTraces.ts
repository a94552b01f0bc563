/**
 * OTLP trace protobuf, written straight from spans: each span is encoded
 * once, when it is queued, into a few hundred bytes; a request is then only
 * those bytes grouped under their resource and scope, each of which is
 * encoded once per object and reused. Field numbers and the fields written
 * follow opentelemetry/proto/trace/v1/trace.proto and what the OTel JS
 * serializer (`ProtobufTraceSerializer`) writes, so that a backend decodes
 * the same spans from either (test/export/otlpEncoder.test.ts).
 */
import type { Attributes, AttributeValue, HrTime, Link, SpanContext } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { PreencodedSpan } from '../../spans/PreencodedSpan';
import { ProtoWriter, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, varintSize } from './ProtoWriter';

const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_CONTEXT_IS_REMOTE = 0x200;
const MIN_INT64 = -(2 ** 63);
const EMPTY = Buffer.alloc(0);
/** The home of a span record once released: a second release of it does nothing. */
const RELEASED: SlabAccount = { bytes: EMPTY, live: 0 };
/** Released span records kept for reuse: about two batches' worth at the default batch size. */
const MAX_SPARE_RECORDS = 16384;
/** ScopeSpans.spans: the field each span is, in a request. */
const SCOPE_SPANS_SPANS = 2;
const MAX_INT64 = 2 ** 63;

/** One span's Span message, ready to be placed under its resource and scope. */
export interface EncodedSpan {
  resource: Resource;
  scope: InstrumentationScope;
  /** The Span message's bytes, without tag or length: `slab` from `start`, `length` bytes. */
  slab: Buffer;
  start: number;
  length: number;
  /**
   * Where the same span starts as a ScopeSpans.spans field: its tag and
   * length sit in the slab from here to `start`. The spans a slab holds are
   * such fields back to back, so a request copies a run of them at once.
   */
  fieldStart: number;
  /** The slab's account of the spans still in it, for {@link OtlpSpanEncoder.release}. */
  home: SlabAccount;
}

interface SlabAccount {
  bytes: Buffer;
  /** Spans encoded in it and not yet released. */
  live: number;
}

/**
 * Encodes spans one at a time into slabs of memory it owns, so that a queued
 * span costs its bytes and one small object, not an object graph.
 *
 * Slabs are reused once every span in them is released (exported or given
 * up on). Left to the garbage collector, a slab lives long enough to reach
 * V8's old generation and waits there for a full collection; at saturation
 * dead ArrayBuffers reached 20-40 MB between full collections. With reuse,
 * a 20 s saturated run allocates 2.5 MB of slabs instead of about 70.
 */
export class OtlpSpanEncoder {
  readonly #writer = new ProtoWriter(16);
  readonly #slabBytes: number;
  readonly #maxFreeSlabs: number;
  readonly #free: SlabAccount[] = [];
  #slab: SlabAccount;
  #slabUsed = 0;
  #slabsAllocated = 1;
  /**
   * The last buffer copy() read spans from, and a plain Uint8Array over it:
   * a Buffer's subarray builds a Buffer (node's FastBuffer, a class of its
   * own), 0.055 against 0.042 µs a 400-byte copy with a plain view's. The
   * spans of a batch all lie in one buffer. It stays referenced until a
   * span from another comes: one batch's encoded spans at most, and
   * usually a buffer lent to the addon, which lives on anyway.
   */
  #source: Buffer = EMPTY;
  #sourceView: Uint8Array = new Uint8Array(0);
  /**
   * Records of released spans, reused for the next ones. A queued span's
   * record lives until its batch is exported, which at saturation outlives
   * a scavenge or two: allocated per span, the records were copied at
   * each scavenge, then promoted (scavenge pauses about 40 % shorter
   * reused, docs/design-notes.md).
   */
  readonly #spare: EncodedSpan[] = [];

  constructor(options: { slabBytes?: number; maxFreeSlabs?: number } = {}) {
    this.#slabBytes = options.slabBytes ?? 256 * 1024;
    this.#maxFreeSlabs = options.maxFreeSlabs ?? 16;
    this.#slab = { bytes: Buffer.allocUnsafeSlow(this.#slabBytes), live: 0 };
  }

  /** Slabs of the usual size allocated so far, reused ones not counted again (buffers grown for one large span are not counted). */
  get slabsAllocated(): number {
    return this.#slabsAllocated;
  }

  encode(span: ReadableSpan): EncodedSpan {
    // Spans are written in place, in the slab. One that does not fit grows
    // the writer's buffer, a copy of the slab that holds that span alone
    // (the spans before it keep pointing into the old one) and takes no
    // more: kept as the slab, it would double again at each span that
    // overflows it.
    if (this.#slab.bytes.length - this.#slabUsed < this.#slabBytes / 8) {
      this.#leave(this.#slab);
      this.#slab = this.#free.pop() ?? this.#newSlab();
      this.#slabUsed = 0;
    }
    const w = this.#writer;
    w.buf = this.#slab.bytes;
    w.pos = this.#slabUsed;
    const fieldStart = w.pos;
    w.tag(SCOPE_SPANS_SPANS, WIRE_LEN);
    const lengthAt = w.beginLength();
    writeSpan(w, span);
    const length = w.pos - lengthAt - 1;
    w.endLength(lengthAt);
    this.#slabUsed = w.pos;
    if (w.buf !== this.#slab.bytes) {
      this.#leave(this.#slab);
      this.#slab = { bytes: w.buf, live: 0 };
      this.#slabUsed = w.buf.length;
    }
    this.#slab.live++;
    return this.#record(span.resource, span.instrumentationScope, w.buf, w.pos - length, length, fieldStart);
  }

  /** A span the addon encoded, copied into the slab: the same as encode() gives for the span it stands for. */
  copy(span: PreencodedSpan): EncodedSpan {
    const length = span.length;
    const fieldBytes = 1 + varintSize(length) + length;
    if (this.#slab.bytes.length - this.#slabUsed < Math.max(fieldBytes, this.#slabBytes / 8)) {
      this.#leave(this.#slab);
      this.#slab = fieldBytes <= this.#slabBytes / 8 ? (this.#free.pop() ?? this.#newSlab()) : { bytes: Buffer.allocUnsafeSlow(fieldBytes), live: 0 };
      this.#slabUsed = 0;
    }
    const slab = this.#slab.bytes;
    const fieldStart = this.#slabUsed;
    let start = fieldStart;
    slab[start++] = (SCOPE_SPANS_SPANS << 3) | WIRE_LEN;
    let value = length;
    while (value >= 128) {
      slab[start++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    slab[start++] = value;
    // Buffer#copy's argument checks cost more than copying a few hundred bytes.
    if (span.bytes !== this.#source) {
      this.#source = span.bytes;
      this.#sourceView = new Uint8Array(span.bytes.buffer, span.bytes.byteOffset, span.bytes.length);
    }
    slab.set(this.#sourceView.subarray(span.start, span.start + length), start);
    this.#slabUsed = start + length;
    this.#slab.live++;
    return this.#record(span.resource, span.instrumentationScope, this.#slab.bytes, start, length, fieldStart);
  }

  /**
   * The span's bytes are no longer needed: its slab may be reused once none
   * of its spans are, and its record is reused for a later span (the caller
   * must keep nothing of it).
   */
  release(span: EncodedSpan): void {
    const home = span.home;
    if (home === RELEASED) return;
    home.live--;
    if (home.live === 0 && home !== this.#slab) this.#keep(home);
    span.home = RELEASED;
    span.slab = EMPTY;
    if (this.#spare.length < MAX_SPARE_RECORDS) this.#spare.push(span);
  }

  /** A record for a span just written into the current slab. */
  #record(resource: Resource, scope: InstrumentationScope, slab: Buffer, start: number, length: number, fieldStart: number): EncodedSpan {
    const home = this.#slab;
    const record = this.#spare.pop();
    if (record === undefined) return { resource, scope, slab, start, length, fieldStart, home };
    record.resource = resource;
    record.scope = scope;
    record.slab = slab;
    record.start = start;
    record.length = length;
    record.fieldStart = fieldStart;
    record.home = home;
    return record;
  }

  #newSlab(): SlabAccount {
    this.#slabsAllocated++;
    return { bytes: Buffer.allocUnsafeSlow(this.#slabBytes), live: 0 };
  }

  /** The slab stops being written to; it is free at once when none of its spans are queued. */
  #leave(slab: SlabAccount): void {
    if (slab.live === 0) this.#keep(slab);
  }

  // A slab grown for one large span is not the usual size, and is left to the collector.
  #keep(slab: SlabAccount): void {
    if (slab.bytes.length === this.#slabBytes && this.#free.length < this.#maxFreeSlabs) this.#free.push(slab);
  }
}

/**
 * ExportTraceServiceRequest bytes for a batch: spans grouped by resource,
 * then by scope, by identity, in order of first appearance.
 *
 * Every length is known before a byte is written, so the request is written
 * once, into a buffer of its exact size: the exporter's own, which it
 * reuses (./RequestBuffers.ts). grpc-js copies it once more, into its
 * framed message; a copy of our own on top of that was one more.
 */
export class OtlpRequestEncoder {
  readonly #writer = new ProtoWriter(16);
  readonly #resources = new WeakMap<Resource, Uint8Array>();
  readonly #scopes = new WeakMap<InstrumentationScope, Uint8Array>();
  readonly #schemaUrls = new Map<string, Uint8Array>();

  /** `allocate` gives the buffer the request is written into, of exactly the size asked for. */
  encode(spans: readonly EncodedSpan[], allocate: (size: number) => Buffer = Buffer.allocUnsafeSlow): Uint8Array {
    const groups = new Map<Resource, Map<InstrumentationScope, EncodedSpan[]>>();
    for (const s of spans) {
      let byScope = groups.get(s.resource);
      if (!byScope) groups.set(s.resource, (byScope = new Map()));
      const list = byScope.get(s.scope);
      if (list) list.push(s);
      else byScope.set(s.scope, [s]);
    }
    // Sizes first: of each ScopeSpans, each ResourceSpans, and the request.
    const scopeLengths: number[] = [];
    const resourceLengths: number[] = [];
    let total = 0;
    for (const [resource, byScope] of groups) {
      let resourceLength = this.#resourceField(resource).length;
      for (const [scope, list] of byScope) {
        let scopeLength = this.#scopeField(scope).length;
        for (const s of list) scopeLength += 1 + varintSize(s.length) + s.length;
        if (scope.schemaUrl) scopeLength += this.#schemaUrlField(scope.schemaUrl).length;
        scopeLengths.push(scopeLength);
        resourceLength += 1 + varintSize(scopeLength) + scopeLength;
      }
      if (resource.schemaUrl) resourceLength += this.#schemaUrlField(resource.schemaUrl).length;
      resourceLengths.push(resourceLength);
      total += 1 + varintSize(resourceLength) + resourceLength;
    }
    const w = this.#writer;
    w.buf = allocate(total);
    if (w.buf.length !== total) throw new Error(`OTLP request: a buffer of ${w.buf.length} bytes given for ${total}`);
    w.pos = 0;
    let scopeIndex = 0;
    let resourceIndex = 0;
    for (const [resource, byScope] of groups) {
      w.tag(1, WIRE_LEN);
      w.varint(resourceLengths[resourceIndex++]);
      w.raw(this.#resourceField(resource));
      for (const [scope, list] of byScope) {
        w.tag(2, WIRE_LEN);
        w.varint(scopeLengths[scopeIndex++]);
        w.raw(this.#scopeField(scope));
        // Spans queued one after the other lie one after the other in a
        // slab, as fields already: one copy per run of them, not per span.
        let runSlab: Buffer = EMPTY;
        let runStart = 0;
        let runEnd = 0;
        for (const s of list) {
          if (s.slab === runSlab && s.fieldStart === runEnd) {
            runEnd = s.start + s.length;
            continue;
          }
          if (runEnd > runStart) w.raw(runSlab.subarray(runStart, runEnd));
          runSlab = s.slab;
          runStart = s.fieldStart;
          runEnd = s.start + s.length;
        }
        if (runEnd > runStart) w.raw(runSlab.subarray(runStart, runEnd));
        if (scope.schemaUrl) w.raw(this.#schemaUrlField(scope.schemaUrl));
      }
      if (resource.schemaUrl) w.raw(this.#schemaUrlField(resource.schemaUrl));
    }
    // Every write reserves only what it writes (raw fields, and spans of more
    // than 10 bytes after each tag), so the buffer never grows.
    if (w.pos !== total || w.buf.length !== total) throw new Error(`OTLP request: ${w.pos} bytes written in ${w.buf.length}, ${total} computed`);
    const request = w.buf;
    w.buf = EMPTY;
    return request;
  }

  /** The schema_url field (3 of both ResourceSpans and ScopeSpans), tag and length included. */
  #schemaUrlField(url: string): Uint8Array {
    let field = this.#schemaUrls.get(url);
    if (field) return field;
    const w = new ProtoWriter(url.length * 3 + 16);
    w.tag(3, WIRE_LEN);
    w.string(url);
    field = w.take();
    if (this.#schemaUrls.size >= 64) this.#schemaUrls.clear();
    this.#schemaUrls.set(url, field);
    return field;
  }

  /** ResourceSpans.resource (field 1), tag and length included. */
  #resourceField(resource: Resource): Uint8Array {
    let field = this.#resources.get(resource);
    if (field) return field;
    const w = new ProtoWriter(1024);
    w.tag(1, WIRE_LEN);
    const at = w.beginLength();
    writeAttributes(w, resource.attributes, 1);
    w.tag(2, WIRE_VARINT);
    w.varint(0);
    w.endLength(at);
    field = w.take();
    this.#resources.set(resource, field);
    return field;
  }

  /** ScopeSpans.scope (field 1), tag and length included. */
  #scopeField(scope: InstrumentationScope): Uint8Array {
    let field = this.#scopes.get(scope);
    if (field) return field;
    const w = new ProtoWriter(256);
    w.tag(1, WIRE_LEN);
    const at = w.beginLength();
    w.tag(1, WIRE_LEN);
    w.string(scope.name);
    if (scope.version) {
      w.tag(2, WIRE_LEN);
      w.string(scope.version);
    }
    w.endLength(at);
    field = w.take();
    this.#scopes.set(scope, field);
    return field;
  }
}

function spanFlags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE | (isRemote ? SPAN_FLAGS_CONTEXT_IS_REMOTE : 0);
}

function writeHrTime(w: ProtoWriter, field: number, time: HrTime): void {
  w.tag(field, WIRE_FIXED64);
  w.hrTime(time[0], time[1]);
}

function writeIds(w: ProtoWriter, context: SpanContext): void {
  w.tag(1, WIRE_LEN);
  w.hexBytes(context.traceId, 16);
  w.tag(2, WIRE_LEN);
  w.hexBytes(context.spanId, 8);
  const traceState = context.traceState?.serialize();
  if (traceState) {
    w.tag(3, WIRE_LEN);
    w.string(traceState);
  }
}

/** A Span message (trace.proto), without its own tag and length. */
function writeSpan(w: ProtoWriter, span: ReadableSpan): void {
  const context = span.spanContext();
  writeIds(w, context);
  const parent = span.parentSpanContext;
  if (parent?.spanId) {
    w.tag(4, WIRE_LEN);
    w.hexBytes(parent.spanId, 8);
  }
  w.tag(5, WIRE_LEN);
  w.string(span.name);
  // OTLP's SpanKind counts UNSPECIFIED as 0; the API's starts at INTERNAL.
  if (span.kind != null) {
    w.tag(6, WIRE_VARINT);
    w.varint(span.kind + 1);
  }
  writeHrTime(w, 7, span.startTime);
  writeHrTime(w, 8, span.endTime);
  writeAttributes(w, span.attributes, 9);
  w.tag(10, WIRE_VARINT);
  w.varint(span.droppedAttributesCount);
  for (const event of span.events) writeEvent(w, event);
  w.tag(12, WIRE_VARINT);
  w.varint(span.droppedEventsCount);
  for (const link of span.links) writeLink(w, link);
  w.tag(14, WIRE_VARINT);
  w.varint(span.droppedLinksCount);
  w.tag(15, WIRE_LEN);
  const status = w.beginLength();
  if (span.status.message) {
    w.tag(2, WIRE_LEN);
    w.string(span.status.message);
  }
  w.tag(3, WIRE_VARINT);
  w.varint(span.status.code);
  w.endLength(status);
  w.tag(16, WIRE_FIXED32);
  w.fixed32(spanFlags(context.traceFlags, parent?.isRemote));
}

function writeEvent(w: ProtoWriter, event: TimedEvent): void {
  w.tag(11, WIRE_LEN);
  const at = w.beginLength();
  writeHrTime(w, 1, event.time);
  w.tag(2, WIRE_LEN);
  w.string(event.name);
  if (event.attributes) writeAttributes(w, event.attributes, 3);
  w.tag(4, WIRE_VARINT);
  w.varint(event.droppedAttributesCount ?? 0);
  w.endLength(at);
}

function writeLink(w: ProtoWriter, link: Link): void {
  w.tag(13, WIRE_LEN);
  const at = w.beginLength();
  writeIds(w, link.context);
  if (link.attributes) writeAttributes(w, link.attributes, 4);
  w.tag(5, WIRE_VARINT);
  w.varint(link.droppedAttributesCount ?? 0);
  w.tag(6, WIRE_FIXED32);
  w.fixed32(spanFlags(link.context.traceFlags, link.context.isRemote));
  w.endLength(at);
}

// Attribute keys repeat on every span: their KeyValue.key field is encoded once.
const keyFields = new Map<string, Uint8Array>();
const KEY_FIELDS_MAX = 4096;

function keyField(key: string): Uint8Array {
  let field = keyFields.get(key);
  if (field) return field;
  const w = new ProtoWriter(key.length * 3 + 8);
  w.tag(1, WIRE_LEN);
  w.string(key);
  field = w.take();
  if (keyFields.size >= KEY_FIELDS_MAX) keyFields.clear();
  keyFields.set(key, field);
  return field;
}

function writeAttributes(w: ProtoWriter, attributes: Attributes, field: number): void {
  const tag = field * 8 + WIRE_LEN; // below 128 for every attributes field
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    const value = attributes[key];
    const keyBytes = keyField(key);
    if (!(typeof value === 'string' && writeShortStringAttribute(w, tag, keyBytes, value))) {
      w.tag(field, WIRE_LEN);
      const kv = w.beginLength();
      w.raw(keyBytes);
      w.tag(2, WIRE_LEN);
      const at = w.beginLength();
      writeAnyValue(w, value);
      w.endLength(at);
      w.endLength(kv);
    }
  }
}

/**
 * Most attributes are short ASCII strings: their KeyValue's three lengths
 * are known before writing, each one byte. False (nothing written) for any
 * other string.
 */
function writeShortStringAttribute(w: ProtoWriter, tag: number, keyBytes: Uint8Array, value: string): boolean {
  const length = value.length;
  const anyValueLength = 2 + length;
  const keyValueLength = keyBytes.length + 2 + anyValueLength;
  if (keyValueLength >= 128) return false;
  w.ensure(keyValueLength + 2);
  const buf = w.buf;
  const start = w.pos;
  let pos = start + 2 + keyBytes.length + 4;
  for (let i = 0; i < length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x80) return false;
    buf[pos++] = c;
  }
  pos = start;
  buf[pos++] = tag;
  buf[pos++] = keyValueLength;
  for (let i = 0; i < keyBytes.length; i++) buf[pos++] = keyBytes[i];
  buf[pos++] = 2 * 8 + WIRE_LEN;
  buf[pos++] = anyValueLength;
  buf[pos++] = 1 * 8 + WIRE_LEN;
  buf[pos++] = length;
  w.pos = pos + length;
  return true;
}

/** An AnyValue's content, chosen the way the OTel JS serializer chooses it. */
function writeAnyValue(w: ProtoWriter, value: AttributeValue | Uint8Array | Record<string, unknown> | null | undefined | unknown): void {
  if (typeof value === 'string') {
    w.tag(1, WIRE_LEN);
    w.string(value);
  } else if (typeof value === 'boolean') {
    w.tag(2, WIRE_VARINT);
    w.varint(value ? 1 : 0);
  } else if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= MIN_INT64 && value < MAX_INT64) {
      w.tag(3, WIRE_VARINT);
      w.int64(value);
    } else {
      w.tag(4, WIRE_FIXED64);
      w.double(value);
    }
  } else if (value instanceof Uint8Array) {
    w.tag(7, WIRE_LEN);
    w.bytes(value);
  } else if (Array.isArray(value)) {
    w.tag(5, WIRE_LEN);
    const array = w.beginLength();
    for (const item of value) {
      w.tag(1, WIRE_LEN);
      const at = w.beginLength();
      writeAnyValue(w, item);
      w.endLength(at);
    }
    w.endLength(array);
  } else if (typeof value === 'object' && value !== null) {
    w.tag(6, WIRE_LEN);
    const list = w.beginLength();
    const object = value as Record<string, unknown>;
    for (const key in object) {
      if (!Object.prototype.hasOwnProperty.call(object, key)) continue;
      w.tag(1, WIRE_LEN);
      const kv = w.beginLength();
      w.raw(keyField(key));
      w.tag(2, WIRE_LEN);
      const at = w.beginLength();
      writeAnyValue(w, object[key]);
      w.endLength(at);
      w.endLength(kv);
    }
    w.endLength(list);
  }
}
