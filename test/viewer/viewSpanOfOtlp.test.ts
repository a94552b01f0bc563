import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, type Attributes, type AttributeValue, type HrTime } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { OtlpSpanEncoder } from '../../src/export/otlp/encodeTraces';
import { TraceStore, viewSpanOf } from '../../src/viewer/TraceStore';
import { viewSpanOfOtlp } from '../../src/viewer/viewSpanOfOtlp';
import type { PreencodedSpan } from '../../src/spans/PreencodedSpan';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';

function span(o: { kind: SpanKind; spanId?: string; parent?: string; start: HrTime; end: HrTime; attributes?: Attributes; status?: { code: SpanStatusCode; message?: string }; traceState?: string; service?: string | number }): ReadableSpan {
  const duration: HrTime = [o.end[0] - o.start[0], o.end[1] - o.start[1]];
  if (duration[1] < 0) {
    duration[0] -= 1;
    duration[1] += 1e9;
  }
  const context = { traceId: TRACE_ID, spanId: o.spanId ?? 'b7ad6b7169203331', traceFlags: 1, traceState: o.traceState ? new TraceState(o.traceState) : undefined };
  return {
    spanContext: () => context,
    parentSpanContext: o.parent ? { traceId: TRACE_ID, spanId: o.parent, traceFlags: 1, isRemote: true } : undefined,
    name: 'GET /users/:id',
    kind: o.kind,
    startTime: o.start,
    endTime: o.end,
    duration,
    status: o.status ?? { code: SpanStatusCode.UNSET },
    attributes: o.attributes ?? {},
    links: [{ context: { traceId: 'f'.repeat(32), spanId: 'e'.repeat(16), traceFlags: 1 }, attributes: { why: 'a link the viewer skips' } }],
    events: [{ name: 'an event the viewer skips', time: o.start, attributes: { n: 1 } }],
    resource: { attributes: o.service === undefined ? { 'service.name': 'shop', 'host.name': 'h' } : { 'service.name': o.service } },
    instrumentationScope: { name: 'sonde', version: '1' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    ended: true,
  } as unknown as ReadableSpan;
}

const SPANS: ReadableSpan[] = [
  span({ kind: SpanKind.SERVER, start: [1_764_633_600, 123_456_789], end: [1_764_633_600, 987_654_321], attributes: { 'http.request.method': 'GET', 'url.path': '/users/7', 'http.response.status_code': 200, 'server.port': 8080 } }),
  // A duration across a second, whose microseconds round differently from start and end apart.
  span({ kind: SpanKind.CLIENT, parent: '00f067aa0ba902b7', start: [1_764_633_600, 999_999_999], end: [1_764_633_601, 1_000], status: { code: SpanStatusCode.ERROR, message: 'HTTP 503' }, attributes: { 'http.response.status_code': 503, 'error.type': '503' } }),
  span({
    kind: SpanKind.INTERNAL,
    traceState: 'vendor=opaque',
    start: [1_764_633_600, 0],
    end: [1_764_633_600, 0],
    service: 42,
    attributes: {
      long: 'x'.repeat(300),
      unicode: 'grüße, 世界',
      empty: '',
      negative: -12345678901,
      big: 2 ** 52 + 1,
      double: 0.25,
      yes: true,
      no: false,
      strings: ['a', 'b'],
      numbers: [1, 2.5, -3],
      flags: [true, false],
      holes: ['a', null, 'c'],
    },
  }),
  span({ kind: SpanKind.PRODUCER, start: [1, 1], end: [2, 2], status: { code: SpanStatusCode.OK } }),
  span({ kind: SpanKind.CONSUMER, start: [1, 1], end: [2, 2] }),
];

test('a Span message reads back as the ViewSpan of the span it was encoded from, field for field and in the same order', () => {
  const encoder = new OtlpSpanEncoder();
  for (const s of SPANS) {
    const e = encoder.encode(s);
    const view = viewSpanOfOtlp(e.slab, e.start, e.length, s.resource.attributes as Record<string, AttributeValue>);
    assert.deepEqual(view, viewSpanOf(s));
    assert.equal(JSON.stringify(view), JSON.stringify(viewSpanOf(s)));
  }
});

test('a truncated Span message throws instead of reading past its end', () => {
  const e = new OtlpSpanEncoder().encode(SPANS[2]);
  for (const cut of [1, 5, e.length - 3]) assert.throws(() => viewSpanOfOtlp(e.slab, e.start, cut, {}));
});

function preencoded(s: ReadableSpan, bytes: Buffer, start: number, length: number): PreencodedSpan {
  return {
    resource: s.resource,
    instrumentationScope: s.instrumentationScope,
    bytes,
    start,
    length,
    kind: s.kind,
    duration: s.duration,
    attributes: {},
    traceId: () => s.spanContext().traceId,
    traceIdTail: () => Buffer.from(s.spanContext().traceId, 'hex').readUInt32BE(12),
  };
}

test('the viewer holds a copy of an encoded span: the addon reusing its buffer does not change what is shown later', () => {
  const store = new TraceStore({ maxSpans: 100 });
  const e = new OtlpSpanEncoder().encode(SPANS[0]);
  const reused = Buffer.from(e.slab.subarray(e.start, e.start + e.length));
  store.pushPreencoded(preencoded(SPANS[0], reused, 0, reused.length));
  reused.fill(0);
  assert.deepEqual(store.trace(TRACE_ID), [viewSpanOf(SPANS[0])]);
  assert.equal(store.traces()[0].rootName, 'GET /users/:id');
  assert.equal(store.counters.spans, 1);
});

test('an encoded span that cannot be read is counted and left out; a trace of only such spans is not listed', () => {
  const store = new TraceStore({ maxSpans: 100 });
  const garbage = Buffer.from([0x0a, 0x7f, 0x01]);
  store.pushPreencoded(preencoded(SPANS[0], garbage, 0, garbage.length));
  assert.equal(store.counters.spans, 1, 'held until the viewer asks');
  assert.deepEqual(store.traces(), []);
  assert.equal(store.trace(TRACE_ID), undefined);
  assert.equal(store.counters.spansUnreadable, 1);
  assert.equal(store.counters.spans, 0);
  assert.equal(store.counters.traces, 0);
});
