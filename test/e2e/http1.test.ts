/**
 * End to end, as a user runs it: the real sonde CLI loads the real BPF
 * programs, real unmodified services serve real clients, and the spans
 * arrive at a real OTLP gRPC endpoint and a real Zipkin endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { startOtlpGrpcReceiver, startZipkinReceiver, type ReceivedSpan } from '../support/receivers';
import { REPO_ROOT, SYNC_LIMIT, request, settledCounters, sondeProgramsLoaded, startService, startSonde, waitUntil, type ObservedRequest } from './support';

function brief(spans: ReceivedSpan[]): string {
  return spans.map((s) => `${s.traceId.slice(0, 8)}/${s.spanId.slice(0, 8)}<-${(s.parentSpanId ?? '').slice(0, 8)} ${s.kind} ${String(s.resource['service.name'])} ${String(s.attributes['url.path'] ?? s.attributes['url.full'])}`).join('; ');
}

/** Each span's kind, service and start/end in µs from the trace's first start. */
function timeline(spans: ReceivedSpan[]): string {
  const origin = spans.reduce((m, s) => (s.startTimeUnixNano < m ? s.startTimeUnixNano : m), spans[0].startTimeUnixNano);
  const us = (ns: bigint) => Number(ns - origin) / 1000;
  return spans.map((s) => `${s.kind} ${String(s.resource['service.name'])} ${us(s.startTimeUnixNano)}..${us(s.endTimeUnixNano)} µs`).join('; ');
}

const HELLO = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'hello-server.js');

test('node server: keep-alive connection opened before sonde, one span per request on OTLP and Zipkin, traceparent honoured', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  const zipkin = await startZipkinReceiver();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(async () => {
    agent.destroy();
    await otlp.close();
    await zipkin.close();
  });
  const { proc: server, port } = await startService(t, process.execPath, [HELLO]);
  const base = `http://127.0.0.1:${port}`;
  // Opened before sonde starts: must still be traced from its next request.
  await request(`${base}/warmup`, { agent });

  const sonde = await startSonde(t, ['--open-port', String(port)], {
    OTEL_TRACES_EXPORTER: 'otlp,zipkin',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_EXPORTER_ZIPKIN_ENDPOINT: zipkin.url,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  });
  assert.match(sonde.stderr(), new RegExp(`tracing process\\s+pid=${server.child.pid} exe=node service=hello-server matchedBy=--open-port ${port}`));

  const observed: ObservedRequest[] = [];
  for (let i = 0; i < 5; i++) observed.push(await request(`${base}/items/${i}?token=s3cr3t&page=${i}`, { agent }));
  const failed = await request(`${base}/fail`, { agent });
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  await request(`${base}/child`, { agent, headers: { traceparent, authorization: 'Bearer hunter2', cookie: 'sid=hunter3' } });
  await request(`${base}/upload`, { agent, method: 'POST', body: 'x'.repeat(20_000) });

  const expected = 8;
  const spans = await otlp.waitFor((s) => s.length >= expected, 20_000);
  const zspans = await zipkin.waitFor((s) => s.length >= expected, 20_000);
  const code = await sonde.stop('SIGINT');
  assert.equal(code, 0, `sonde exits 0 on SIGINT\n${sonde.stderr()}`);
  // The kernel frees a program once its last reference goes, a moment after
  // the process that held it exited.
  await waitUntil(() => sondeProgramsLoaded().length === 0, 5000);
  assert.deepEqual(sondeProgramsLoaded(), [], 'no probe left behind');

  assert.equal(spans.length, expected, `exactly one span per request: ${spans.map((s) => s.attributes['url.path']).join(' ')}`);
  assert.ok(!spans.some((s) => s.attributes['url.path'] === '/warmup'), 'the request before sonde started is not invented');
  for (const s of spans) {
    assert.equal(s.kind, 'SERVER');
    assert.equal(s.resource['service.name'], 'hello-server');
    assert.equal(s.resource['process.pid'], server.child.pid);
    assert.equal(s.resource['process.executable.name'], 'node');
    assert.equal(s.attributes['server.port'], port);
    assert.equal(s.attributes['network.protocol.version'], '1.1');
    assert.equal(s.attributes['url.scheme'], 'http');
    assert.equal(s.attributes['client.address'], '127.0.0.1');
    for (const v of Object.values(s.attributes)) assert.ok(!String(v).includes('hunter'), 'Authorization and Cookie are never exported');
  }
  const items = spans.filter((s) => String(s.attributes['url.path']).startsWith('/items/'));
  assert.equal(items.length, 5);
  for (let i = 0; i < 5; i++) {
    const s = items.find((x) => x.attributes['url.path'] === `/items/${i}`)!;
    assert.ok(s, `span for /items/${i}`);
    assert.equal(s.name, 'GET');
    assert.equal(s.attributes['http.request.method'], 'GET');
    assert.equal(s.attributes['url.query'], `token=REDACTED&page=${i}`);
    assert.equal(s.attributes['http.response.status_code'], 200);
    assert.equal(s.statusCode, 'UNSET');
    assert.equal(s.parentSpanId, undefined);
    // The server span lies inside the latency the client observed (1 ms of
    // slack for sampling the wall clock against the monotonic clock).
    const o = observed[i];
    assert.ok(s.startTimeUnixNano >= o.startNs - 1_000_000n, `server start ${s.startTimeUnixNano} after client start ${o.startNs}`);
    assert.ok(s.endTimeUnixNano <= o.endNs + 1_000_000n, `server end ${s.endTimeUnixNano} before client end ${o.endNs}`);
    assert.ok(s.endTimeUnixNano > s.startTimeUnixNano);
  }
  const fail = spans.find((s) => s.attributes['url.path'] === '/fail')!;
  assert.equal(failed.status, 500);
  assert.equal(fail.attributes['http.response.status_code'], 500);
  assert.equal(fail.statusCode, 'ERROR');
  assert.equal(fail.attributes['error.type'], '500');
  const child = spans.find((s) => s.attributes['url.path'] === '/child')!;
  assert.equal(child.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(child.parentSpanId, '00f067aa0ba902b7');
  const upload = spans.find((s) => s.attributes['url.path'] === '/upload')!;
  assert.equal(upload.attributes['http.request.method'], 'POST');
  assert.ok(Number(upload.attributes['http.request.size']) > 20_000, 'request size counts the body');

  assert.equal(zspans.length, expected, 'Zipkin receives the same spans');
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (const z of zspans) {
    const o = byId.get(z.id);
    assert.ok(o, `zipkin span ${z.id} also came over OTLP`);
    assert.equal(z.traceId, o.traceId);
    assert.equal(z.parentId, o.parentSpanId);
    assert.equal(z.kind, 'SERVER');
    assert.equal(z.localEndpoint?.serviceName, 'hello-server');
    assert.equal(z.tags['url.path'], o.attributes['url.path']);
    assert.ok(Number.isInteger(z.timestamp), `Zipkin timestamps are whole microseconds: ${z.timestamp}`);
    assert.equal(BigInt(z.timestamp), (o.startTimeUnixNano + 500n) / 1000n);
  }
});

test('node frontend calling a Python service: one trace of three linked spans', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const prices = await startService(t, 'python3', ['-u', path.join(REPO_ROOT, 'examples', 'prices.py')], { PORT: '0' });
  const frontend = await startService(t, process.execPath, [path.join(REPO_ROOT, 'examples', 'frontend.js')], {
    PORT: '0',
    PRICES_PORT: String(prices.port),
  });
  const sonde = await startSonde(t, ['--open-port', String(frontend.port), '--open-port', String(prices.port)], {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  });
  // Enough rounds that a server span ending after its client span on
  // loopback (the peer reads before the write returns) shows up.
  const rounds = 60;
  for (let i = 0; i < rounds; i++) {
    const res = await request(`http://127.0.0.1:${frontend.port}/checkout?user=u${i}&token=abc`);
    assert.equal(res.status, 200, res.body);
  }
  const spans = await otlp.waitFor((s) => s.length >= 3 * rounds, 20_000);
  assert.equal(await sonde.stop(), 0);

  const byTrace = new Map<string, ReceivedSpan[]>();
  for (const s of spans) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), s]);
  assert.equal(byTrace.size, rounds, `one trace per checkout: ${brief(spans)}`);
  for (const trace of byTrace.values()) {
    assert.equal(trace.length, 3);
    const root = trace.find((s) => s.kind === 'SERVER' && s.resource['service.name'] === 'frontend')!;
    const call = trace.find((s) => s.kind === 'CLIENT')!;
    const priceServer = trace.find((s) => s.kind === 'SERVER' && s.resource['service.name'] === 'prices')!;
    assert.ok(root && call && priceServer, brief(trace));
    assert.equal(root.parentSpanId, undefined);
    assert.equal(root.attributes['url.path'], '/checkout');
    assert.equal(call.parentSpanId, root.spanId, 'the outgoing call is a child of the request being served');
    assert.equal(call.resource['service.name'], 'frontend');
    assert.equal(call.attributes['url.full'], `http://127.0.0.1:${prices.port}/price?item=book`);
    assert.equal(call.attributes['server.port'], prices.port);
    assert.equal(priceServer.parentSpanId, call.spanId, 'the Python server span continues the client span');
    assert.equal(priceServer.attributes['network.protocol.version'], '1.1');
    assert.equal(priceServer.resource['process.executable.name'].toString().startsWith('python'), true);
    assert.ok(call.startTimeUnixNano >= root.startTimeUnixNano && call.endTimeUnixNano <= root.endTimeUnixNano, brief(trace));
    assert.ok(
      priceServer.startTimeUnixNano >= call.startTimeUnixNano && priceServer.endTimeUnixNano <= call.endTimeUnixNano,
      `the Python server span lies within its client span: ${timeline(trace)}`,
    );
  }
});

test('node server: the spans the addon encodes arrive as JavaScript builds them', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [HELLO]);
  const base = `http://127.0.0.1:${port}`;
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  // The same requests, traced once with the addon encoding what it can and
  // once with JavaScript building every span.
  const run = async (extra: string[]) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const before = otlp.spans.length;
    const sonde = await startSonde(t, ['--open-port', String(port), '--exe', 'curl', ...extra], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100', SONDE_STATS_INTERVAL_MS: '200' });
    const observed = new Map<string, ObservedRequest>();
    for (const p of ['/items/1', '/items/2', '/fail', '/search?q=socks', '/login?token=s3cr3t', '/child']) {
      observed.set(p.replace('s3cr3t', 'REDACTED'), await request(`${base}${p}`, { agent, headers: p === '/child' ? { traceparent } : {} }));
    }
    observed.set('/upload', await request(`${base}/upload`, { agent, method: 'POST', body: 'x'.repeat(5000) }));
    // A client the addon encodes too: curl, whose call gives a server span as well.
    assert.equal(execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${base}/from-curl`], { encoding: 'utf8', ...SYNC_LIMIT }), '200');
    const expected = observed.size + 2;
    const spans = (await otlp.waitFor((s) => s.length >= before + expected, 20_000)).slice(before);
    const counters = await settledCounters(sonde);
    assert.equal(await sonde.stop(), 0);
    assert.equal(spans.length, expected, brief(spans));
    const curlSpans = spans.filter((s) => String(s.attributes['url.path'] ?? s.attributes['url.full']).endsWith('/from-curl'));
    assert.deepEqual(curlSpans.map((s) => s.kind).sort(), ['CLIENT', 'SERVER']);
    assert.equal(curlSpans.find((s) => s.kind === 'CLIENT')!.attributes['url.full'], `${base}/from-curl`);
    for (const s of spans.filter((x) => !curlSpans.includes(x))) {
      const path = String(s.attributes['url.path']) + (s.attributes['url.query'] ? `?${String(s.attributes['url.query'])}` : '');
      const o = observed.get(path);
      assert.ok(o, `a span for a request made: ${path}`);
      // Epoch times: inside what the client saw, 1 ms of slack for sampling the clocks.
      assert.ok(s.startTimeUnixNano >= o.startNs - 1_000_000n && s.endTimeUnixNano <= o.endNs + 1_000_000n && s.endTimeUnixNano > s.startTimeUnixNano, `${path}: ${timeline([s])}`);
    }
    return { spans, counters, stderr: sonde.stderr() };
  };
  const addon = await run([]);
  const js = await run(['--no-native-spans']);
  assert.match(addon.stderr, /spansEncoded=.*by the addon/);
  assert.match(js.stderr, /spansEncoded=.*--no-native-spans/);
  // All but the request whose query has a token to redact.
  assert.equal(addon.counters.encodedByAddon, 8, addon.stderr);
  assert.equal(js.counters.encodedByAddon, 0);
  // Every batch reached JavaScript in a buffer it lent the addon.
  assert.equal(addon.counters.batchesUnlent, 0, addon.stderr);
  assert.equal(js.counters.batchesUnlent, 0, js.stderr);

  // What differs between two runs: ids, times, the client's port and curl's pid.
  const comparable = (s: ReceivedSpan) => {
    const { 'network.peer.port': _port, ...attributes } = s.attributes;
    if (s.kind === 'CLIENT') attributes['network.peer.port'] = _port;
    const { 'process.pid': _pid, ...resource } = s.resource;
    const traced = s.parentSpanId && s.kind === 'SERVER' && s.attributes['url.path'] === '/child';
    return JSON.stringify({ name: s.name, kind: s.kind, status: s.statusCode, linked: Boolean(s.parentSpanId), trace: traced ? s.traceId : '', resource, attributes });
  };
  assert.deepEqual(addon.spans.map(comparable).sort(), js.spans.map(comparable).sort());
  const child = addon.spans.find((s) => s.attributes['url.path'] === '/child')!;
  assert.equal(child.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(child.parentSpanId, '00f067aa0ba902b7');
});
