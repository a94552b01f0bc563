import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type HistogramMetricData, type MetricProducer } from '@opentelemetry/sdk-metrics';
import { HTTP_DURATION_BUCKETS_S, RED_HISTOGRAMS, RedMetrics, RPC_DURATION_BUCKETS_MS } from '../../src/metrics/RedMetrics';
import { WireSpan } from '../../src/spans/WireSpan';

function span(kind: SpanKind, service: string, attributes: Attributes, durationMs: number): WireSpan {
  const duration: [number, number] = [Math.floor(durationMs / 1000), Math.round((durationMs % 1000) * 1e6)];
  return new WireSpan('x', kind, { traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceFlags: 1 }, '', [1, 0], [1, 0], duration, { code: SpanStatusCode.UNSET }, attributes, resourceFromAttributes({ 'service.name': service }), { name: 't' });
}

/** What the SDK's readers get: the metrics of `producer` (and of `feedMeter`'s instruments), by name. */
async function read(producer: MetricProducer | undefined, feedMeter?: (meter: ReturnType<MeterProvider['getMeter']>) => void): Promise<Map<string, HistogramMetricData>> {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000, metricProducers: producer ? [producer] : [] });
  const provider = new MeterProvider({ readers: [reader] });
  feedMeter?.(provider.getMeter('reference'));
  await reader.forceFlush();
  const metrics = new Map<string, HistogramMetricData>();
  for (const rm of exporter.getMetrics()) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) metrics.set(m.descriptor.name, m as HistogramMetricData);
  await provider.shutdown();
  return metrics;
}

async function collect(feed: (m: RedMetrics) => void, maxSeries = 100): Promise<{ metrics: Map<string, HistogramMetricData>; red: RedMetrics }> {
  const red = new RedMetrics({ maxSeries });
  feed(red);
  return { metrics: await read(red), red };
}

const GET_200 = { 'http.request.method': 'GET', 'url.scheme': 'http', 'url.path': '/users/1', 'url.query': 'a=1', 'http.response.status_code': 200, 'http.route': '/users/:id', 'network.protocol.version': '1.1', 'client.address': '10.0.0.1', 'network.peer.port': 51000 };

test('HTTP server spans: a seconds histogram per service, route, method and status; never a raw path, a query or a peer port', async () => {
  const { metrics } = await collect((m) => {
    m.pushAll([span(SpanKind.SERVER, 'api', GET_200, 20), span(SpanKind.SERVER, 'api', { ...GET_200, 'url.path': '/users/2', 'network.peer.port': 51001 }, 40)]);
    m.push(span(SpanKind.SERVER, 'api', { ...GET_200, 'http.response.status_code': 500, 'error.type': '500' }, 1000));
    m.push(span(SpanKind.SERVER, 'web', GET_200, 1));
  });
  const h = metrics.get('http.server.request.duration')!;
  assert.equal(h.descriptor.unit, 's');
  const points = h.dataPoints.map((p) => ({ attributes: p.attributes, count: p.value.count, sum: p.value.sum }));
  const key = (a: Attributes) => `${String(a['service.name'])} ${String(a['http.response.status_code'])}`;
  assert.deepEqual(points.map((p) => key(p.attributes)).sort(), ['api 200', 'api 500', 'web 200']);
  const ok = points.find((p) => key(p.attributes) === 'api 200')!;
  assert.equal(ok.count, 2, 'two paths of one route are one series');
  assert.ok(Math.abs((ok.sum ?? 0) - 0.06) < 1e-9, String(ok.sum));
  assert.deepEqual(ok.attributes, { 'service.name': 'api', 'http.request.method': 'GET', 'url.scheme': 'http', 'http.response.status_code': 200, 'http.route': '/users/:id', 'network.protocol.version': '1.1' });
  assert.equal(points.find((p) => key(p.attributes) === 'api 500')!.attributes['error.type'], '500');
  assert.deepEqual(h.dataPoints[0].value.buckets.boundaries, HTTP_DURATION_BUCKETS_S);
});

test('HTTP client spans keep the peer they called; gRPC spans go to the rpc histograms in milliseconds', async () => {
  const { metrics } = await collect((m) => {
    m.push(span(SpanKind.CLIENT, 'api', { 'http.request.method': 'POST', 'server.address': 'db.local', 'server.port': 8080, 'url.full': 'http://db.local:8080/q?x=1', 'http.response.status_code': 201 }, 5));
    const rpc = { 'rpc.system': 'grpc', 'rpc.service': 'demo.Echo', 'rpc.method': 'Unary', 'rpc.grpc.status_code': 0, 'http.request.method': 'POST', 'server.address': 'localhost', 'server.port': 50051 };
    m.push(span(SpanKind.SERVER, 'echo', rpc, 12));
    m.push(span(SpanKind.CLIENT, 'caller', rpc, 15));
    m.push(span(SpanKind.INTERNAL, 'api', GET_200, 1));
  });
  const client = metrics.get('http.client.request.duration')!;
  assert.deepEqual(client.dataPoints.map((p) => p.attributes), [{ 'service.name': 'api', 'http.request.method': 'POST', 'server.address': 'db.local', 'server.port': 8080, 'http.response.status_code': 201 }]);
  const rpcServer = metrics.get('rpc.server.duration')!;
  assert.equal(rpcServer.descriptor.unit, 'ms');
  assert.equal(rpcServer.dataPoints[0].value.sum, 12);
  assert.deepEqual(rpcServer.dataPoints[0].attributes, { 'service.name': 'echo', 'rpc.system': 'grpc', 'rpc.service': 'demo.Echo', 'rpc.method': 'Unary', 'rpc.grpc.status_code': 0 });
  assert.deepEqual(rpcServer.dataPoints[0].value.buckets.boundaries, RPC_DURATION_BUCKETS_MS);
  assert.equal(metrics.get('rpc.client.duration')!.dataPoints[0].attributes['server.port'], 50051);
  assert.equal(metrics.get('http.server.request.duration'), undefined, 'gRPC is not counted twice, an internal span not at all');
});

test('past maxSeries attribute sets, requests go to the overflow series and are counted', async () => {
  const { metrics, red } = await collect((m) => {
    for (let i = 0; i < 5; i++) m.push(span(SpanKind.SERVER, 'api', { ...GET_200, 'http.route': `/r${i}` }, 1));
    m.push(span(SpanKind.SERVER, 'api', { ...GET_200, 'http.route': '/r0' }, 1));
  }, 3);
  const h = metrics.get('http.server.request.duration')!;
  const overflow = h.dataPoints.find((p) => p.attributes['otel.metric.overflow'] === true);
  assert.equal(overflow?.value.count, 2, 'routes 3 and 4');
  assert.equal(h.dataPoints.length, 4);
  assert.equal(h.dataPoints.find((p) => p.attributes['http.route'] === '/r0')!.value.count, 2, 'a known series still counts');
  assert.deepEqual(red.counters, { seriesOverflow: 2, series: 3 });
});

test('golden: the same spans recorded through SDK histograms give the same points, bucket for bucket', async () => {
  const spans: WireSpan[] = [];
  const statuses = [200, 200, 404, 500, 200];
  for (let i = 0; i < 200; i++) {
    // Durations across every bucket, on the boundaries too (inclusive upper bounds).
    const ms = i % 7 === 0 ? HTTP_DURATION_BUCKETS_S[i % HTTP_DURATION_BUCKETS_S.length] * 1000 : (i * 37) % 12_000;
    spans.push(span(SpanKind.SERVER, i % 3 ? 'api' : 'web', { ...GET_200, 'http.response.status_code': statuses[i % 5], ...(statuses[i % 5] >= 500 ? { 'error.type': '500' } : {}) }, ms));
    spans.push(span(SpanKind.CLIENT, 'api', { 'http.request.method': 'GET', 'server.address': `db${i % 3}`, 'server.port': 5432, 'url.full': `http://db/${i}` }, ms / 2));
    spans.push(span(SpanKind.SERVER, 'echo', { 'rpc.system': 'grpc', 'rpc.service': 'demo.Echo', 'rpc.method': i % 2 ? 'Unary' : 'Bidi', 'rpc.grpc.status_code': i % 4 }, (i * 13) % 11_000));
  }
  const red = new RedMetrics({ maxSeries: 10_000 });
  red.pushAll(spans);
  const ours = await read(red);
  // The reference: SDK instruments, given the attribute sets the spec names.
  const reference = await read(undefined, (meter) => {
    const spec = (s: WireSpan) => (s.attributes['rpc.system'] ? (s.kind === SpanKind.SERVER ? RED_HISTOGRAMS.rpcServer : RED_HISTOGRAMS.rpcClient) : s.kind === SpanKind.SERVER ? RED_HISTOGRAMS.httpServer : RED_HISTOGRAMS.httpClient);
    const instruments = new Map<string, ReturnType<typeof meter.createHistogram>>();
    for (const s of spans) {
      const h = spec(s);
      if (!instruments.has(h.name)) instruments.set(h.name, meter.createHistogram(h.name, { unit: h.unit, description: h.description, advice: { explicitBucketBoundaries: [...h.boundaries] } }));
      const attributes: Attributes = { 'service.name': s.resource.attributes['service.name'] };
      for (const k of h.keys) if (s.attributes[k] !== undefined) attributes[k] = s.attributes[k];
      const seconds = s.duration[0] + s.duration[1] / 1e9;
      instruments.get(h.name)!.record(h.unit === 'ms' ? seconds * 1000 : seconds, attributes);
    }
  });
  assert.deepEqual([...ours.keys()].sort(), [...reference.keys()].sort());
  const points = (m: HistogramMetricData) =>
    m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })).sort((a, b) => JSON.stringify(a.attributes).localeCompare(JSON.stringify(b.attributes)));
  for (const [name, r] of reference) {
    const o = ours.get(name)!;
    assert.deepEqual({ ...o.descriptor }, { ...r.descriptor }, name);
    assert.equal(o.aggregationTemporality, r.aggregationTemporality);
    assert.equal(o.dataPointType, r.dataPointType);
    assert.deepEqual(points(o), points(r), name);
  }
});

test('spans the addon encoded, whose attribute objects are shared, count as the same spans pushed whole, overflow included', async () => {
  const record = (viaShared: boolean) =>
    collect((m) => {
      const shared = [0, 1, 2, 3, 4].map((i) => Object.freeze({ 'http.request.method': 'GET', 'url.scheme': 'http', 'network.protocol.version': '1.1', 'http.response.status_code': 200 + i }));
      for (let round = 0; round < 3; round++) {
        for (const attributes of shared) {
          const s = span(SpanKind.SERVER, 'api', attributes, 1 + round);
          if (viaShared) m.pushPreencoded({ ...s, kind: s.kind, duration: s.duration, attributes, resource: s.resource, instrumentationScope: s.instrumentationScope, bytes: Buffer.alloc(0), start: 0, length: 0, traceId: () => '', traceIdTail: () => 0 });
          else m.push(s);
        }
      }
    }, 3);
  const shared = await record(true);
  const whole = await record(false);
  assert.deepEqual(shared.red.counters, { seriesOverflow: 6, series: 3 });
  assert.deepEqual(shared.red.counters, whole.red.counters);
  const points = (r: typeof shared) => r.metrics.get('http.server.request.duration')!.dataPoints.map((p) => JSON.stringify([p.attributes, p.value])).sort();
  assert.deepEqual(points(shared), points(whole));
});

test('runs of spans that share an attributes object are counted in their own service\'s series when the service changes', async () => {
  const record = (viaShared: boolean) =>
    collect((m) => {
      const ok = Object.freeze({ 'http.request.method': 'GET', 'url.scheme': 'http', 'network.protocol.version': '1.1', 'http.response.status_code': 200 });
      const failed = Object.freeze({ ...ok, 'http.response.status_code': 500, 'error.type': '500' });
      // Runs of one set and one service, then the other service, then the other set.
      const order: [Attributes, string, number][] = [[ok, 'api', 3], [ok, 'web', 2], [ok, 'api', 1], [failed, 'api', 2], [ok, 'api', 1], [failed, 'web', 1]];
      let ms = 1;
      for (const [attributes, service, times] of order) {
        for (let i = 0; i < times; i++) {
          const s = span(SpanKind.SERVER, service, attributes, ms++);
          if (viaShared) m.pushPreencoded({ ...s, kind: s.kind, duration: s.duration, attributes, resource: s.resource, instrumentationScope: s.instrumentationScope, bytes: Buffer.alloc(0), start: 0, length: 0, traceId: () => '', traceIdTail: () => 0 });
          else m.push(s);
        }
      }
    });
  const shared = await record(true);
  const whole = await record(false);
  assert.deepEqual(shared.red.counters, { seriesOverflow: 0, series: 4 });
  const points = (r: typeof shared) => r.metrics.get('http.server.request.duration')!.dataPoints.map((p) => JSON.stringify([p.attributes, p.value])).sort();
  assert.deepEqual(points(shared), points(whole));
});
