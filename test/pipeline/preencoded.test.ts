/**
 * The pipeline with spans the addon encoded: the same batch, with and
 * without the addon's entries, must give every sink the same thing: the
 * OTLP channel the same Span messages, the RED metrics the same series and
 * the viewer the same spans. Without a sink that takes them, the entries
 * are ignored and every span is built in JavaScript, once. With no sink at
 * all, they are only counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ExportResultCode } from '@opentelemetry/core';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { ExportChannel, type BatchExporter, type SpanSink } from '../../src/export/ExportChannel';
import { otlpQueuedForm } from '../../src/export/createExporters';
import type { EncodedSpan } from '../../src/export/otlp/encodeTraces';
import { RedMetrics } from '../../src/metrics/RedMetrics';
import { loadNativeModule } from '../../src/native/binding';
import { MonotonicClock } from '../../src/native/clock';
import { SpanPipeline } from '../../src/pipeline/SpanPipeline';
import { ResourceRegistry } from '../../src/spans/resources';
import { compileRoutes } from '../../src/spans/routes';
import { TraceStore } from '../../src/viewer/TraceStore';
import { encodeRecord, v6 } from '../support/records';

const native = loadNativeModule();
const QUEUE = { maxQueueSize: 1000, maxQueueBytes: 1 << 20, maxExportBatchSize: 1000, maxExportBatchBytes: 1 << 20, scheduledDelayMs: 1, exportTimeoutMs: 1000 };

/** Keeps each exported span's bytes, as hex. */
class CapturingExporter implements BatchExporter<EncodedSpan> {
  readonly spans: string[] = [];
  readonly services: unknown[] = [];
  export(items: EncodedSpan[], done: (r: { code: ExportResultCode }) => void): void {
    for (const s of items) {
      this.spans.push(s.slab.toString('hex', s.start, s.start + s.length));
      this.services.push(s.resource.attributes['service.name']);
    }
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

function batch(): Buffer {
  const head = (t: string) => Buffer.from(t, 'latin1');
  return Buffer.concat([
    encodeRecord({ pid: 7, request: head('GET /a HTTP/1.1\r\nHost: shop:80\r\nUser-Agent: hey/0.0.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }),
    encodeRecord({ pid: 7, role: 2, request: head('GET /b HTTP/1.1\r\nHost: db\r\n\r\n'), response: head('HTTP/1.1 404 Not Found\r\n\r\n'), spanId: '0000000000000002' }),
    encodeRecord({ pid: 8, comm: 'python3', request: head('GET /c?x=1 HTTP/1.1\r\n\r\n'), spanId: '0000000000000003', traceId: '11111111111111111111111111111111' }),
    encodeRecord({ pid: 8, comm: 'python3', source: 2, request: head('POST /d HTTP/1.0\r\n\r\n'), response: head('HTTP/1.0 502 Bad Gateway\r\n\r\n'), spanId: '0000000000000004', parentSpanId: '00000000000000aa' }),
    encodeRecord({ pid: 9, comm: 'nginx', family: 10, remoteAddr: v6([0xfd00, 0, 0, 0, 0, 0, 0, 5]), request: head('DELETE /e HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 204\r\n\r\n'), spanId: '0000000000000005', traceId: '22222222222222222222222222222222' }),
    encodeRecord({ pid: 9, comm: 'nginx', request: head('GET /f HTTP/1.1\r\n'), spanId: '0000000000000006' }),
    encodeRecord({ pid: 9, comm: 'nginx', request: head('GET /g?session=abc HTTP/1.1\r\n\r\n'), spanId: '0000000000000007' }),
    // gRPC: a call served, a call made that failed; plain HTTP/2 without a
    // content-type (JavaScript's), a stream served and one made.
    encodeRecord({ pid: 10, comm: 'node', protocol: 2, request: head(':path: /shop.Cart/Add\r\n:authority: cart:50051\r\ncontent-type: application/grpc\r\n'), response: head(':status: 200\r\n\r\ngrpc-status: 0\r\n'), spanId: '0000000000000008' }),
    encodeRecord({ pid: 10, comm: 'node', protocol: 2, role: 2, request: head(':path: /shop.Stock/Take\r\n:authority: stock:50052\r\ncontent-type: application/grpc\r\n'), response: head(':status: 200\r\n\r\ngrpc-status: 9\r\ngrpc-message: out of stock\r\n'), spanId: '0000000000000009' }),
    encodeRecord({ pid: 10, comm: 'node', protocol: 2, request: head(':method: GET\r\n:path: /h\r\n'), response: head(':status: 200\r\n'), spanId: '000000000000000a' }),
    encodeRecord({ pid: 10, comm: 'node', protocol: 2, request: head(':method: GET\r\n:scheme: http\r\n:path: /i?page=2\r\n:authority: shop:8080\r\n'), response: head(':status: 200\r\ncontent-type: text/html\r\n'), spanId: '000000000000000b' }),
    encodeRecord({ pid: 10, comm: 'node', protocol: 2, role: 2, source: 2, request: head(':method: POST\r\n:scheme: https\r\n:path: /pay\r\n:authority: bank\r\ncontent-type: application/json\r\n'), response: head(':status: 503\r\n'), spanId: '000000000000000c' }),
  ]);
}

function pipelineTo(channels: SpanSink[]): SpanPipeline {
  return new SpanPipeline({
    clock: new MonotonicClock(() => [1_764_633_600_000_000_000n, 1_000_000n], { nowMs: () => 0, refreshEveryMs: 1e12 }),
    resources: new ResourceRegistry({ describe: () => undefined }),
    routes: compileRoutes([]),
    channels,
    log: pino({ level: 'silent' }),
  });
}

function setup(extra: SpanSink[] = []) {
  const exporter = new CapturingExporter();
  const channel = new ExportChannel<EncodedSpan>('otlp', exporter, QUEUE, () => {}, otlpQueuedForm());
  const metrics = new RedMetrics({ maxSeries: 100, startTime: [1, 0] });
  const store = new TraceStore({ maxSpans: 1000, maxSpansPerSecond: 1000 });
  const pipeline = pipelineTo([channel as SpanSink, metrics, store, ...extra]);
  return { exporter, channel, metrics, store, pipeline };
}

async function run(withEntries: boolean) {
  const s = setup();
  const records = batch();
  assert.equal(s.pipeline.acceptsPreencoded, true);
  s.pipeline.onBatch(records, withEntries ? native.encodeSpans(records) : undefined);
  await s.channel.flush(1000);
  const points = (await s.metrics.collect()).resourceMetrics.scopeMetrics.flatMap((m) => m.metrics.map((x) => ({ name: x.descriptor.name, points: x.dataPoints.map((p) => JSON.stringify({ attributes: p.attributes, value: p.value })).sort() })));
  const viewed = s.store.traces().flatMap((t) => s.store.trace(t.traceId) ?? []);
  return { s, spans: [...s.exporter.spans].sort(), services: [...s.exporter.services].sort(), points, viewed: viewed.map((v) => JSON.stringify(v)).sort() };
}

test('every sink gets the same from spans the addon encoded as from spans built in JavaScript', async () => {
  const js = await run(false);
  const addon = await run(true);
  assert.equal(addon.s.pipeline.counters.encodedByAddon, 9);
  assert.equal(js.s.pipeline.counters.encodedByAddon, 0);
  const { encodedByAddon: _a, buildMs: _b, ...addonCounters } = addon.s.pipeline.counters;
  const { encodedByAddon: _c, buildMs: _d, ...jsCounters } = js.s.pipeline.counters;
  assert.deepEqual(addonCounters, jsCounters);
  assert.equal(js.spans.length, 12);
  assert.deepEqual(addon.spans, js.spans);
  assert.deepEqual(addon.services, js.services);
  assert.deepEqual(js.points.map((p) => p.name).sort(), ['http.client.request.duration', 'http.server.request.duration', 'rpc.client.duration', 'rpc.server.duration']);
  assert.deepEqual(addon.points, js.points);
  assert.equal(js.viewed.length, 12);
  assert.deepEqual(addon.viewed, js.viewed);
});

test('a sink that takes built spans only turns the addon\'s entries off: each span is built once, in JavaScript', async () => {
  const memory = new InMemorySpanExporter();
  const sdk = new ExportChannel('memory', memory, QUEUE);
  const s = setup([sdk]);
  assert.equal(s.pipeline.acceptsPreencoded, false);
  const records = batch();
  s.pipeline.onBatch(records, native.encodeSpans(records));
  await s.channel.flush(1000);
  await sdk.flush(1000);
  assert.equal(s.pipeline.counters.encodedByAddon, 0);
  assert.equal(s.exporter.spans.length, 12);
  assert.equal(memory.getFinishedSpans().length, 12);
});

test('with no sink at all, the addon\'s entries are taken and counted rather than ignored', () => {
  const pipeline = pipelineTo([]);
  assert.equal(pipeline.acceptsPreencoded, true);
  const records = batch();
  pipeline.onBatch(records, native.encodeSpans(records));
  const { exchanges, serverSpans, clientSpans, encodedByAddon } = pipeline.counters;
  // The same counts as with sinks (the first test): 12 spans, 9 of them
  // encoded by the addon.
  assert.equal(exchanges, 12);
  assert.equal(serverSpans + clientSpans, 12);
  assert.equal(encodedByAddon, 9);
});

test('an encoded span\'s trace id tail is the number its hex id ends with', () => {
  const seen: Array<[string, number]> = [];
  const sink: SpanSink = {
    push: () => {},
    pushAll: () => {},
    pushPreencoded: (span) => {
      seen.push([span.traceId(), span.traceIdTail()]);
    },
  };
  const s = setup([sink]);
  const traceIds = ['0af7651916cd43dd8448eb21ffffffff', '0af7651916cd43dd8448eb2180000000', '0af7651916cd43dd8448eb2100000001'];
  const records = Buffer.concat(traceIds.map((traceId, i) => encodeRecord({ pid: 7, traceId, spanId: `000000000000000${i + 1}` })));
  s.pipeline.onBatch(records, native.encodeSpans(records));
  assert.deepEqual(seen, [
    [traceIds[0], 0xffffffff],
    [traceIds[1], 0x80000000],
    [traceIds[2], 1],
  ]);
});

test('a malformed entry buffer is counted as a malformed batch, not thrown', () => {
  const s = setup();
  const records = batch();
  const entries = native.encodeSpans(records);
  entries.writeUInt32LE(5, 0);
  s.pipeline.onBatch(records, entries);
  assert.equal(s.pipeline.counters.malformedBatches, 1);
});

test('sonde\'s own trace-flag bit (a context from a traceparent header) is never exported: both paths write the W3C flags alone', async () => {
  const FROM_TRACEPARENT = 0x80;
  const head = (t: string) => Buffer.from(t, 'latin1');
  const records = () =>
    Buffer.concat([
      encodeRecord({ pid: 7, linkSource: 1, traceFlags: FROM_TRACEPARENT | 1, parentSpanId: '00000000000000aa', request: head('GET /s HTTP/1.1\r\n\r\n'), spanId: '0000000000000001' }),
      encodeRecord({ pid: 7, linkSource: 1, traceFlags: FROM_TRACEPARENT, parentSpanId: '00000000000000bb', request: head('GET /u HTTP/1.1\r\n\r\n'), spanId: '0000000000000002' }),
    ]);
  const exported = async (withEntries: boolean) => {
    const s = setup();
    const batch = records();
    s.pipeline.onBatch(batch, withEntries ? native.encodeSpans(batch) : undefined);
    await s.channel.flush(1000);
    assert.equal(s.pipeline.counters.encodedByAddon, withEntries ? 2 : 0);
    return [...s.exporter.spans].sort();
  };
  const js = await exported(false);
  assert.equal(js.length, 2);
  assert.deepEqual(await exported(true), js);
  // Span.flags (field 16, fixed32): the sampled bit and the has/is-remote
  // bits, nothing at 0x80.
  for (const hex of js) {
    const at = Buffer.from(hex, 'hex').indexOf(Buffer.from([0x85, 0x01]));
    assert.ok(at >= 0, 'a flags field');
    assert.equal(Buffer.from(hex, 'hex').readUInt32LE(at + 2) & FROM_TRACEPARENT, 0);
  }
});
