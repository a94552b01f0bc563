/**
 * RED metrics end to end: an unmodified Node service traced by sonde, its
 * requests read back as the OTel HTTP duration histograms from a real
 * Prometheus scrape of sonde's /metrics and from a real OTLP/gRPC metrics
 * receiver, with sonde's own counters beside them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import { startOtlpMetricsReceiver, type ReceivedPoint } from '../support/metricsReceiver';
import { startOtlpGrpcReceiver } from '../support/receivers';
import { PATH_WITH_THIS_NODE, REPO_ROOT, startProcess, startService, startSonde, takenPort } from './support';

const HELLO = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'hello-server.js');

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text exposition format, samples only. */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

test('http.server.request.duration from a Prometheus scrape and over OTLP, by route and status, with sonde counters', async (t) => {
  const otlp = await startOtlpMetricsReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [HELLO]);
  const sonde = await startSonde(
    t,
    ['--pid', String(server.child.pid), '--exporter', 'none', '--metrics-exporter', 'prometheus,otlp', '--prometheus-port', '0', '--otlp-metrics-endpoint', otlp.url, '--metric-export-interval-ms', '300', '--route', '/users/:id'],
    {},
  );
  const served = await sonde.waitForOutput(/serving metrics for Prometheus\s+url=(http:\/\/\S+)/, 10_000);
  const metricsUrl = served[1];
  assert.match(sonde.stderr(), /exporting metrics\s+exporters=prometheus http:\/\/localhost:\d+\/metrics, otlp grpc http:\/\/127\.0\.0\.1/);

  for (const id of [1, 2, 3]) assert.equal((await get(`http://127.0.0.1:${port}/users/${id}?token=x`)).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await get(`http://127.0.0.1:${port}/fail`)).status, 500);

  // Prometheus: histogram series per route and status, never per path.
  let samples: Sample[] = [];
  const count = (route: string | undefined, status: string) =>
    samples.find((s) => s.name === 'http_server_request_duration_count' && s.labels.http_route === route && s.labels.http_response_status_code === status)?.value ?? 0;
  for (const deadline = Date.now() + 15_000; ; ) {
    samples = parsePrometheus((await get(metricsUrl)).body);
    if (count('/users/:id', '200') >= 3 && count(undefined, '500') >= 2) break;
    if (Date.now() > deadline) {
      assert.fail(`the scrape never showed 3 + 2 requests:\n${samples.filter((s) => s.name.startsWith('http_server')).map((s) => JSON.stringify(s)).join('\n')}\n${sonde.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(count('/users/:id', '200'), 3);
  assert.equal(count(undefined, '500'), 2);
  const series = samples.filter((s) => s.name === 'http_server_request_duration_count');
  assert.equal(series.length, 2, 'one series per route and status');
  for (const s of series) {
    assert.equal(s.labels.service_name, 'hello-server');
    assert.equal(s.labels.http_request_method, 'GET');
    assert.equal(s.labels.url_path, undefined, 'no raw path');
    assert.equal(s.labels.url_query, undefined);
  }
  assert.equal(series.find((s) => s.labels.http_response_status_code === '500')!.labels.error_type, '500');
  const buckets = samples.filter((s) => s.name === 'http_server_request_duration_bucket' && s.labels.http_route === '/users/:id');
  assert.equal(buckets.length, 15, '14 semconv boundaries and +Inf');
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, 'cumulative buckets');
  assert.equal(buckets[buckets.length - 1].labels.le, '+Inf');
  assert.equal(buckets[buckets.length - 1].value, 3);
  const own = (name: string) => samples.find((s) => s.name === name)?.value;
  assert.equal(own('sonde_requests_total'), 5);
  assert.equal(own('sonde_events_lost_total'), 0);
  assert.deepEqual(
    samples.filter((s) => s.name === 'sonde_spans_dropped_total').map((s) => s.labels.sonde_drop_cause).sort(),
    ['abandoned', 'exportFailed', 'exportQueueFull', 'intakeFull', 'nativeOutputFull', 'unsentAtShutdown'],
  );
  assert.equal((await get(metricsUrl.replace('/metrics', '/other'))).status, 404);

  // OTLP: the same histogram reaches a real receiver, with sonde's resource.
  const latest = (points: ReceivedPoint[], route: string | undefined) =>
    points.filter((p) => p.metric === 'http.server.request.duration' && p.attributes['http.route'] === route).at(-1);
  await otlp.waitFor((points) => (latest(points, '/users/:id')?.value ?? 0) >= 3 && (latest(points, undefined)?.value ?? 0) >= 2, 15_000);
  const users = latest(otlp.points, '/users/:id')!;
  assert.equal(users.value, 3, 'cumulative count');
  assert.equal(users.unit, 's');
  assert.equal(users.resource['service.name'], 'sonde');
  assert.equal(users.attributes['service.name'], 'hello-server');
  assert.equal(users.attributes['http.response.status_code'], 200);
  assert.equal(users.bucketCounts!.reduce((a, b) => a + b, 0), 3);
  assert.ok(otlp.points.some((p) => p.metric === 'sonde.requests' && p.value === 5), 'sonde.requests over OTLP');

  assert.equal(await sonde.stop(), 0);
});

test('a Prometheus port already taken stops sonde at start with what to change, before anything is attached', async (t) => {
  const port = await takenPort(t, 'localhost');
  const { proc: server } = await startService(t, process.execPath, [HELLO]);
  const sonde = startProcess(t, path.join(REPO_ROOT, 'bin', 'sonde'), ['--pid', String(server.child.pid), '--metrics-exporter', 'prometheus', '--prometheus-port', String(port)], {
    env: { PATH: PATH_WITH_THIS_NODE, HOME: process.env.HOME },
  });
  const code = await sonde.exited;
  assert.equal(code, 1, sonde.stderr());
  assert.match(sonde.stderr(), new RegExp(`prometheus: localhost:${port} is taken; set OTEL_EXPORTER_PROMETHEUS_PORT`));
  assert.doesNotMatch(sonde.stderr(), /attached eBPF programs/);
});

test('an OTLP backend that takes traces but no metrics (Jaeger): spans still go, and the metrics failure is said once, with what to set', async (t) => {
  const traces = await startOtlpGrpcReceiver();
  t.after(() => traces.close());
  const { proc: server, port } = await startService(t, process.execPath, [HELLO]);
  // Metrics follow the traces' endpoint by default.
  const sonde = await startSonde(t, ['--pid', String(server.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: traces.url, OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_METRIC_EXPORT_INTERVAL: '200' });
  assert.match(sonde.stderr(), new RegExp(`exporting metrics\\s+exporters=otlp grpc ${traces.url.replace(/[.]/g, '\\.')}`));
  for (let i = 0; i < 3; i++) assert.equal((await get(`http://127.0.0.1:${port}/n/${i}`)).status, 200);
  await traces.waitFor((spans) => spans.length >= 3, 15_000);
  await sonde.waitForOutput(/metrics export failed \(set OTEL_METRICS_EXPORTER=none[^\n]*UNIMPLEMENTED/, 10_000);
  // Several intervals later, still one line for that failure.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(await sonde.stop(), 0);
  assert.equal(sonde.stderr().match(/metrics export failed/g)?.length, 1, sonde.stderr());
  assert.equal(traces.spans.length, 3);
});
