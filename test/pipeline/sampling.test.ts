/**
 * --sampler: the exporters get the traces the sampler keeps, whole, and
 * every other sink (RED metrics, viewer) still gets every span; what is left
 * out is counted. Spans the addon encoded and spans built in JavaScript are
 * sampled alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { SamplerConfig } from '../../src/config/config';
import type { SpanSink } from '../../src/export/ExportChannel';
import { loadNativeModule } from '../../src/native/binding';
import { MonotonicClock } from '../../src/native/clock';
import { SpanPipeline } from '../../src/pipeline/SpanPipeline';
import { TRACE_FLAG_FROM_TRACEPARENT, TraceSampler } from '../../src/pipeline/TraceSampler';
import type { PreencodedSpan } from '../../src/spans/PreencodedSpan';
import { ResourceRegistry } from '../../src/spans/resources';
import { compileRoutes } from '../../src/spans/routes';
import { encodeRecord } from '../support/records';

const native = loadNativeModule();
const sampler = (name: SamplerConfig['name'], ratio = 1) => new TraceSampler({ name, ratio });

test('traceidratio keeps the traces whose ratio bits are below the ratio of 2^32, whatever their flags', () => {
  const half = sampler('traceidratio', 0.5);
  assert.equal(half.keeps(0, 1), true);
  assert.equal(half.keeps(0x7fffffff, 1), true);
  assert.equal(half.keeps(0x80000000, 1), false);
  assert.equal(half.keeps(0x7fffffff, TRACE_FLAG_FROM_TRACEPARENT), true, 'a caller\'s flags do not count without parentbased_');
  assert.equal(sampler('traceidratio', 0).keeps(0, 1), false);
  assert.equal(sampler('traceidratio', 1).keeps(0xffffffff, 1), true);
  assert.equal(sampler('traceidratio', 1).keepsEverything, true);
  assert.equal(sampler('always_on').keepsEverything, true);
  assert.equal(sampler('always_off').keeps(0, 1), false);
  assert.equal(sampler('parentbased_always_on').keepsEverything, false);
});

test('the parent-based samplers follow the sampled flag of a trace that came with a traceparent, and their root sampler otherwise', () => {
  const fromCaller = (sampled: boolean) => TRACE_FLAG_FROM_TRACEPARENT | (sampled ? 1 : 0);
  for (const [name, rootKeeps] of [['parentbased_always_on', true], ['parentbased_always_off', false]] as const) {
    const s = sampler(name);
    assert.equal(s.keeps(0x12345678, fromCaller(true)), true, name);
    assert.equal(s.keeps(0x12345678, fromCaller(false)), false, name);
    assert.equal(s.keeps(0x12345678, 1), rootKeeps, `${name}, a trace sonde started`);
  }
  const ratio = sampler('parentbased_traceidratio', 0.25);
  assert.equal(ratio.keeps(0xffffffff, fromCaller(true)), true);
  assert.equal(ratio.keeps(0, fromCaller(false)), false);
  assert.equal(ratio.keeps(0x3fffffff, 1), true);
  assert.equal(ratio.keeps(0x40000000, 1), false);
});

/** Trace ids in the order the sink saw them, by the path they came. */
class RecordingSink implements SpanSink {
  readonly built: string[] = [];
  readonly encoded: string[] = [];
  push(span: ReadableSpan): void {
    this.built.push(span.spanContext().traceId);
  }
  pushAll(spans: readonly ReadableSpan[]): void {
    for (const span of spans) this.push(span);
  }
  pushPreencoded(span: PreencodedSpan): void {
    this.encoded.push(span.traceId());
  }
  all(): string[] {
    return [...this.built, ...this.encoded].sort();
  }
}

// Hex digits 16-23 decide (traceIdRatioBits); the last 8 are set against
// them, so that a sampler reading the tail instead would fail.
const KEPT_ROOT = '0af7651916cd43dd00000001ffffffff';
const DROPPED_ROOT = '0af7651916cd43ddc000000000000001';
const CALLER_SAYS_NO = '0af7651916cd43dd00000002ffffffff';
const CALLER_SAYS_YES = '0af7651916cd43ddf000000000000001';

function records(): Buffer {
  const head = (t: string) => Buffer.from(t, 'latin1');
  const hop = (traceId: string, spanId: string, traceFlags: number, role = 1) =>
    encodeRecord({ pid: 7, role, traceId, spanId, traceFlags, request: head('GET /a HTTP/1.1\r\nHost: shop\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') });
  return Buffer.concat([
    hop(KEPT_ROOT, '0000000000000001', 1),
    hop(KEPT_ROOT, '0000000000000002', 1, 2), // its outgoing call: the same trace, the same answer
    hop(DROPPED_ROOT, '0000000000000003', 1),
    hop(DROPPED_ROOT, '0000000000000004', 1, 2),
    hop(CALLER_SAYS_NO, '0000000000000005', TRACE_FLAG_FROM_TRACEPARENT),
    hop(CALLER_SAYS_NO, '0000000000000006', TRACE_FLAG_FROM_TRACEPARENT, 2),
    hop(CALLER_SAYS_YES, '0000000000000007', TRACE_FLAG_FROM_TRACEPARENT | 1),
  ]);
}

function pipelineWith(s: TraceSampler) {
  const exporter = new RecordingSink();
  const everySpan = new RecordingSink();
  const pipeline = new SpanPipeline({
    clock: new MonotonicClock(() => [1_764_633_600_000_000_000n, 1_000_000n], { nowMs: () => 0, refreshEveryMs: 1e12 }),
    resources: new ResourceRegistry({ describe: () => undefined }),
    routes: compileRoutes([]),
    sampledChannels: [exporter],
    sampler: s,
    channels: [everySpan],
    log: pino({ level: 'silent' }),
  });
  return { exporter, everySpan, pipeline };
}

for (const encodedByAddon of [false, true]) {
  test(`parentbased_traceidratio: whole traces to the exporters, every span to the other sinks (${encodedByAddon ? 'spans the addon encoded' : 'spans built in JavaScript'})`, () => {
    const { exporter, everySpan, pipeline } = pipelineWith(sampler('parentbased_traceidratio', 0.5));
    const batch = records();
    pipeline.onBatch(batch, encodedByAddon ? native.encodeSpans(batch) : undefined);
    assert.equal(pipeline.counters.encodedByAddon, encodedByAddon ? 7 : 0);
    assert.deepEqual(exporter.all(), [KEPT_ROOT, KEPT_ROOT, CALLER_SAYS_YES].sort());
    assert.equal(everySpan.all().length, 7);
    assert.equal(pipeline.counters.sampledOut, 4);
    assert.equal(pipeline.counters.serverSpans + pipeline.counters.clientSpans, 7);
  });
}

test('always_on (the default) sends every span to every sink and counts nothing out', () => {
  const { exporter, everySpan, pipeline } = pipelineWith(sampler('always_on'));
  const batch = records();
  pipeline.onBatch(batch, native.encodeSpans(batch));
  assert.equal(exporter.all().length, 7);
  assert.equal(everySpan.all().length, 7);
  assert.equal(pipeline.counters.sampledOut, 0);
});
