import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { TraceStore, viewSpanOf, type ViewSpan } from '../../src/viewer/TraceStore';
import type { PreencodedSpan } from '../../src/spans/PreencodedSpan';
import { OtlpSpanEncoder } from '../../src/export/otlp/encodeTraces';

let seq = 0;
function span(traceId: string, o: Partial<ViewSpan> & { kind: ViewSpan['kind']; service: string }): ViewSpan {
  seq++;
  return { traceId, spanId: o.spanId ?? seq.toString(16).padStart(16, '0'), name: o.name ?? 'GET', startUs: o.startUs ?? 1_000_000 * seq, durationUs: o.durationUs ?? 1000, error: o.error ?? false, attributes: o.attributes ?? {}, resource: { 'service.name': o.service }, ...o };
}

/** A trace: front (server) -> its client span -> back (server), and a call from back to an untraced database. */
function chain(store: TraceStore, traceId: string, o: { clientMs: number; error?: boolean; startUs: number }): void {
  const root = span(traceId, { kind: 'SERVER', service: 'front', name: 'GET /r/:id', startUs: o.startUs, durationUs: o.clientMs * 1000 + 500 });
  const call = span(traceId, { kind: 'CLIENT', service: 'front', name: 'GET', parentSpanId: root.spanId, startUs: o.startUs + 100, durationUs: o.clientMs * 1000, error: o.error ?? false, attributes: { 'server.address': 'back', 'server.port': 80 } });
  const served = span(traceId, { kind: 'SERVER', service: 'back', name: 'GET /one', parentSpanId: call.spanId, startUs: o.startUs + 200, durationUs: o.clientMs * 1000 - 200, error: o.error ?? false });
  const db = span(traceId, { kind: 'CLIENT', service: 'back', name: 'POST', parentSpanId: served.spanId, startUs: o.startUs + 300, durationUs: 100, attributes: { 'server.address': 'db.local', 'server.port': 5432 } });
  // Spans arrive as they end: the innermost first.
  for (const s of [db, served, call, root]) store.add(s);
}

test('traces are listed newest first with their root, services and status, and filtered', () => {
  const store = new TraceStore({ maxSpans: 1000 });
  chain(store, 'a'.repeat(32), { clientMs: 5, startUs: 1e6 });
  chain(store, 'b'.repeat(32), { clientMs: 50, error: true, startUs: 2e6 });
  store.add(span('c'.repeat(32), { kind: 'SERVER', service: 'other', name: 'GET /health', startUs: 3e6, durationUs: 10 }));
  const all = store.traces();
  assert.deepEqual(all.map((t) => t.traceId[0]), ['c', 'b', 'a']);
  const b = all[1];
  assert.equal(b.rootName, 'GET /r/:id');
  assert.equal(b.rootService, 'front');
  assert.deepEqual(b.services, ['back', 'front']);
  assert.equal(b.spanCount, 4);
  assert.equal(b.error, true);
  assert.equal(b.durationUs, 50_500);
  assert.deepEqual(store.traces({ status: 'error' }).map((t) => t.traceId[0]), ['b']);
  assert.deepEqual(store.traces({ status: 'ok' }).map((t) => t.traceId[0]), ['c', 'a']);
  assert.deepEqual(store.traces({ service: 'back' }).map((t) => t.traceId[0]), ['b', 'a']);
  assert.deepEqual(store.traces({ name: 'health' }).map((t) => t.traceId[0]), ['c']);
  assert.deepEqual(store.traces({ minDurationMs: 10 }).map((t) => t.traceId[0]), ['b']);
  assert.deepEqual(store.traces({ traceId: 'AAA' }).map((t) => t.traceId[0]), ['a']);
  assert.deepEqual(store.traces({ limit: 1 }).map((t) => t.traceId[0]), ['c']);
  assert.deepEqual(store.services(), ['back', 'front', 'other']);
  assert.deepEqual(store.trace('a'.repeat(32))!.map((s) => s.service), ['front', 'front', 'back', 'back'], 'by start time');
  assert.equal(store.trace('d'.repeat(32)), undefined);
});

test('the service map: an edge per caller and callee from linked pairs, to the address when the callee is not traced', () => {
  const store = new TraceStore({ maxSpans: 1000 });
  for (let i = 0; i < 10; i++) chain(store, i.toString(16).padStart(32, '0'), { clientMs: i + 1, error: i === 9, startUs: 1e6 + i * 1e5 });
  // Ten calls started over 0.9 s, the map asked for 4 s after the first.
  const map = store.serviceMap(5e6);
  assert.deepEqual(map.services, ['back', 'front']);
  const edge = map.edges.find((e) => e.from === 'front' && e.to === 'back')!;
  assert.equal(edge.untracedPeer, false);
  assert.equal(edge.calls, 10);
  assert.equal(edge.errors, 1);
  assert.equal(edge.errorRate, 0.1);
  assert.equal(edge.p50Ms, 5);
  assert.equal(edge.p99Ms, 10);
  assert.equal(map.windowS, 4);
  assert.equal(edge.ratePerS, 2.5);
  assert.equal(store.serviceMap(1.5e6).windowS, 1, 'never less than a second');
  const db = map.edges.find((e) => e.to === 'db.local:5432')!;
  assert.equal(db.from, 'back');
  assert.equal(db.untracedPeer, true);
  assert.equal(map.edges.length, 2);
});

test('bounded by spans: the oldest traces go whole, and are counted; a runaway trace is capped', () => {
  const store = new TraceStore({ maxSpans: 10, maxSpansPerTrace: 5 });
  chain(store, '1'.repeat(32), { clientMs: 1, startUs: 1e6 });
  chain(store, '2'.repeat(32), { clientMs: 1, startUs: 2e6 });
  assert.deepEqual(store.counters, { traces: 2, spans: 8, tracesEvicted: 0, spansEvicted: 0, spansRefused: 0, spansUnreadable: 0, spansNotSampled: 0, sampleFraction: 1 });
  chain(store, '3'.repeat(32), { clientMs: 1, startUs: 3e6 });
  assert.deepEqual(store.counters, { traces: 2, spans: 8, tracesEvicted: 1, spansEvicted: 4, spansRefused: 0, spansUnreadable: 0, spansNotSampled: 0, sampleFraction: 1 });
  assert.equal(store.trace('1'.repeat(32)), undefined);
  for (let i = 0; i < 3; i++) store.add(span('3'.repeat(32), { kind: 'CLIENT', service: 'back' }));
  assert.equal(store.counters.spansRefused, 2, 'the fifth span fits, the next two do not');
  assert.equal(store.trace('3'.repeat(32))!.length, 5);
});

/** The span the pipeline hands the store, reduced to what the store reads. */
function readable(traceId: string, spanId: string, o: { kind: SpanKind; service: string; parentSpanId?: string; startMs: number; error?: boolean; attributes?: Record<string, string | number> }): ReadableSpan {
  return {
    spanContext: () => ({ traceId, spanId, traceFlags: 1 }),
    parentSpanContext: o.parentSpanId ? { traceId, spanId: o.parentSpanId, traceFlags: 1 } : undefined,
    name: 'GET',
    kind: o.kind,
    startTime: [Math.floor(o.startMs / 1000), (o.startMs % 1000) * 1e6],
    endTime: [Math.floor(o.startMs / 1000), (o.startMs % 1000) * 1e6 + 1e6],
    duration: [0, 1e6],
    status: { code: o.error ? SpanStatusCode.ERROR : SpanStatusCode.UNSET },
    attributes: o.attributes ?? {},
    resource: { attributes: { 'service.name': o.service } },
    instrumentationScope: { name: 'sonde' },
    events: [],
    links: [],
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  } as unknown as ReadableSpan;
}

test('above maxSpansPerSecond: whole traces are sampled by trace id, the rest counted, and the map scales rates back up', () => {
  let nowMs = 0;
  const store = new TraceStore({ maxSpans: 1_000_000, maxSpansPerSecond: 100, now: () => nowMs });
  let n = 0;
  // 1000 calls a second for 5 s, each a client span and its server span;
  // trace ids spread evenly over the sampled digits, every 10th call an error.
  for (let second = 0; second < 5; second++) {
    for (let i = 0; i < 1000; i++) {
      n++;
      nowMs = second * 1000 + i;
      const traceId = `${n.toString(16).padStart(24, '0')}${((n * 2654435761) >>> 0).toString(16).padStart(8, '0')}`;
      const client = (n * 2).toString(16).padStart(16, '0');
      const error = n % 10 === 0;
      store.push(readable(traceId, (n * 2 + 1).toString(16).padStart(16, '0'), { kind: SpanKind.SERVER, service: 'back', parentSpanId: client, startMs: nowMs, error }));
      store.push(readable(traceId, client, { kind: SpanKind.CLIENT, service: 'front', startMs: nowMs, error, attributes: { 'server.address': 'back', 'server.port': 80 } }));
    }
    if (second === 0) {
      assert.equal(store.counters.traces, 100, 'the first second, before the rate is known, stops new traces at twice the rate');
      assert.equal(store.counters.sampleFraction, 1);
    }
  }
  nowMs = 5000;
  const c = store.counters;
  assert.equal(c.sampleFraction, 0.05, '100 spans a second of 2000 offered');
  const perSecondAfter = (c.traces - 100) / 4;
  assert.ok(perSecondAfter >= 45 && perSecondAfter <= 55, `about 5 % of 1000 new traces a second are held, got ${perSecondAfter}`);
  assert.equal(c.spans, c.traces * 2, 'a trace is held whole or not at all');
  assert.equal(c.spansNotSampled, 10_000 - c.spans);
  for (const t of store.traces({ limit: 1000 })) assert.equal(t.spanCount, 2);
  const edge = store.serviceMap(nowMs * 1000).edges.find((e) => e.from === 'front')!;
  assert.equal(edge.calls, c.traces, 'calls are the ones held');
  // 100 held in the first second stand for themselves, the later ones for 20 each: (100 + 4 × 50 × 20) / 5 s.
  assert.ok(edge.ratePerS >= 780 && edge.ratePerS <= 860, `rate estimated from the sample: ${edge.ratePerS}/s for 1000/s offered`);
  assert.ok(Math.abs(edge.errorRate - 0.1) < 0.03, `error rate estimated from the sample: ${edge.errorRate}`);
});

const encoder = new OtlpSpanEncoder();

/** A span as the addon hands it over: its OTLP bytes, in a buffer it goes on using, and its trace id read from the record. */
function encoded(span: ReadableSpan): PreencodedSpan {
  const traceId = span.spanContext().traceId;
  const e = encoder.encode(span);
  return {
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    bytes: e.slab,
    start: e.start,
    length: e.length,
    kind: span.kind,
    duration: span.duration,
    attributes: span.attributes,
    traceId: () => traceId,
    traceIdTail: () => Buffer.from(traceId, 'hex').readUInt32BE(12),
  };
}

test('spans the addon encoded are sampled as the same spans built whole', () => {
  const offer = (viaEncoded: boolean) => {
    let nowMs = 0;
    const store = new TraceStore({ maxSpans: 1_000_000, maxSpansPerSecond: 100, now: () => nowMs });
    for (let n = 1; n <= 3000; n++) {
      nowMs = n;
      const traceId = `${n.toString(16).padStart(24, '0')}${((n * 2654435761) >>> 0).toString(16).padStart(8, '0')}`;
      for (const [spanId, kind] of [[`${n}`.padStart(16, '0'), SpanKind.SERVER], [`${n}`.padStart(16, 'f'), SpanKind.CLIENT]] as const) {
        const s = readable(traceId, spanId, { kind, service: 'svc', startMs: nowMs, error: false });
        if (viaEncoded) store.pushPreencoded(encoded(s));
        else store.push(s);
      }
    }
    return store;
  };
  const whole = offer(false);
  const viaEncoded = offer(true);
  assert.deepEqual(viaEncoded.counters, whole.counters);
  const held = whole.traces({ limit: 1000 });
  assert.deepEqual(viaEncoded.traces({ limit: 1000 }), held);
  for (const t of held) assert.deepEqual(viaEncoded.trace(t.traceId), whole.trace(t.traceId));
  assert.deepEqual(viaEncoded.serviceMap(5_000_000), whole.serviceMap(5_000_000));
  assert.ok(viaEncoded.counters.sampleFraction < 1, 'the rate was above maxSpansPerSecond');
  assert.equal(viaEncoded.counters.spans, viaEncoded.counters.traces * 2, 'a trace is held whole or not at all');
});

test('a trace whose id ends like a held one\'s is judged on its own, and the held one keeps its spans', () => {
  const store = new TraceStore({ maxSpans: 1000, maxSpansPerSecond: 1, now: () => 0 });
  const held = `${'1'.repeat(24)}0badcafe`;
  const twin = `${'2'.repeat(24)}0badcafe`;
  const push = (traceId: string, spanId: string) => store.pushPreencoded(encoded(readable(traceId, spanId, { kind: SpanKind.SERVER, service: 'svc', startMs: 0, error: false })));
  // Within the first second new traces stop at twice the rate: 2 spans.
  push(held, 'a'.repeat(16));
  push(held, 'b'.repeat(16));
  push(twin, 'c'.repeat(16));
  push(held, 'd'.repeat(16));
  assert.equal(store.trace(held)?.length, 3);
  assert.equal(store.trace(twin), undefined);
  assert.equal(store.counters.spansNotSampled, 1);
});

test('evicting one of two held traces that share their last digits leaves the other held whole', () => {
  // Within the first second, new traces stop at twice the rate (2 spans);
  // a span of a held trace is taken whatever that count.
  const store = new TraceStore({ maxSpans: 5, maxSpansPerSecond: 1, now: () => 0 });
  const first = `${'1'.repeat(24)}0badcafe`;
  const second = `${'2'.repeat(24)}0badcafe`;
  const span = (traceId: string, spanId: string) => readable(traceId, spanId, { kind: SpanKind.SERVER, service: 'svc', startMs: 0, error: false });
  for (const [traceId, spanId] of [[first, 'a'], [first, 'b'], [second, 'c'], ['3'.repeat(32), 'd']]) store.add(viewSpanOf(span(traceId, spanId.repeat(16))));
  store.pushPreencoded(encoded(span('4'.repeat(32), 'e'.repeat(16))));
  store.pushPreencoded(encoded(span('5'.repeat(32), 'f'.repeat(16)))); // makes room: evicts `first`
  assert.equal(store.trace(first), undefined);
  store.pushPreencoded(encoded(span(second, '9'.repeat(16))));
  assert.equal(store.trace(second)?.length, 2, 'the trace left with the shared tail is still held');
  assert.equal(store.counters.spansNotSampled, 0);
});

test('a span whose own trace is evicted to make room starts that trace afresh, and the count stays true', () => {
  const store = new TraceStore({ maxSpans: 2, now: () => 0 });
  const a = 'a'.repeat(32);
  const b = 'b'.repeat(32);
  const push = (traceId: string, spanId: string) => store.push(readable(traceId, spanId, { kind: SpanKind.SERVER, service: 'svc', startMs: 0, error: false }));
  push(a, '1'.repeat(16));
  push(b, '2'.repeat(16));
  // The store is full and `a` is its oldest trace: making room evicts it.
  push(a, '3'.repeat(16));
  assert.deepEqual(store.trace(a)?.map((s) => s.spanId), ['3'.repeat(16)]);
  const held = store.traces({ limit: 1000 }).reduce((n, t) => n + t.spanCount, 0);
  assert.equal(store.counters.spans, held, 'every span counted is held');
  for (let i = 0; i < 10; i++) push(i % 2 ? a : b, `${i}`.padStart(16, 'e'));
  assert.equal(store.counters.spans, store.traces({ limit: 1000 }).reduce((n, t) => n + t.spanCount, 0));
});


test('a held trace keeps taking spans after the sampled fraction falls below its id, across seconds and evictions', () => {
  let nowMs = 0;
  const store = new TraceStore({ maxSpans: 100, maxSpansPerSecond: 10, now: () => nowMs });
  // Held in the first second, at fraction 1, though its tail is near the top of the range.
  const high = `${'1'.repeat(24)}fffffff0`;
  const push = (traceId: string, spanId: string) => store.pushPreencoded(encoded(readable(traceId, spanId, { kind: SpanKind.SERVER, service: 'svc', startMs: nowMs, error: false })));
  push(high, '1'.repeat(16));
  let n = 0;
  const offer = (count: number) => {
    for (let i = 0; i < count; i++) {
      n++;
      push(`${n.toString(16).padStart(24, '0')}${((n * 2654435761) >>> 0).toString(16).padStart(8, '0')}`, n.toString(16).padStart(16, '0'));
    }
  };
  for (let second = 0; second < 4; second++) {
    nowMs = second * 1000;
    offer(1000);
    push(high, `${second + 2}`.repeat(16));
    if (second >= 1) assert.ok(store.counters.sampleFraction <= 0.011, `the fraction fell: ${store.counters.sampleFraction}`);
  }
  assert.equal(store.trace(high)?.length, 5, 'every span of the held trace, in each second after the fraction fell');
  // Evicted, it is judged afresh: its tail is now far above the fraction.
  for (let second = 4; second < 60 && store.trace(high) !== undefined; second++) {
    nowMs = second * 1000;
    offer(1000);
  }
  assert.equal(store.trace(high), undefined, 'evicted by the traces held since');
  nowMs += 1000;
  offer(1000);
  const notSampled = store.counters.spansNotSampled;
  push(high, '9'.repeat(16));
  assert.equal(store.trace(high), undefined);
  assert.equal(store.counters.spansNotSampled, notSampled + 1);
});
