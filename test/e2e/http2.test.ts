/**
 * HTTP/2 in clear text (h2c, prior knowledge) end to end: Node's `http2`
 * module as server and client, and nghttpd serving files to curl
 * --http2-prior-knowledge. Each request is one span per traced side with
 * the same HTTP semantic conventions as HTTP/1 (network.protocol.version
 * '2'), sensitive query values redacted, the client span the parent of the
 * server span, and an incoming traceparent honoured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpGrpcReceiver, type ReceivedSpan } from '../support/receivers';
import { REPO_ROOT, SYNC_LIMIT, clientSummary, hasCommand, listeningPortOf, startProcess, startService, startSonde, waitUntil } from './support';

const FIXTURES = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures');
const H2_SERVER = path.join(FIXTURES, 'http2-server.js');
const H2_CLIENT = path.join(FIXTURES, 'http2-client.js');

interface H2Summary {
  responses: Array<{ method: string; path: string; status: number; bytes: number }>;
}

function brief(spans: ReceivedSpan[]): string {
  return spans
    .map((s) => `${s.kind} ${s.name} ${String(s.attributes['url.path'] ?? s.attributes['url.full'])} ${String(s.attributes['http.response.status_code'])} ${s.traceId.slice(0, 8)}/${s.spanId.slice(0, 8)}<-${(s.parentSpanId ?? '').slice(0, 8)} ${String(s.resource['service.name'])}`)
    .join('\n  ');
}

/** curl over h2c; "STATUS HTTP_VERSION", e.g. "200 2". */
function curlH2(url: string): string {
  return execFileSync('curl', ['-s', '-o', '/dev/null', '--http2-prior-knowledge', '-w', '%{http_code} %{http_version}', url], { encoding: 'utf8', ...SYNC_LIMIT });
}

function curlSpeaksHttp2(): boolean {
  if (!hasCommand('curl')) return false;
  try {
    return /^Features:.*\bHTTP2\b/m.test(execFileSync('curl', ['-V'], { encoding: 'utf8', ...SYNC_LIMIT }));
  } catch {
    return false;
  }
}

test('node http2 client and server over h2c: one span per request on each side, query redacted, the client span the parent', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [H2_SERVER]);
  const client = startProcess(t, process.execPath, [H2_CLIENT, `http://127.0.0.1:${port}`, '--start-on-signal', 'GET /hello?token=secret&x=1', 'GET /missing', 'POST /upload 20000']);
  await client.waitForOutput(/^waiting to start$/m, 15_000, 'stdout');
  const sonde = await startSonde(t, ['--pid', String(server.child.pid), '--pid', String(client.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  client.child.kill('SIGUSR2');
  const summary = await clientSummary<H2Summary>(client);
  assert.deepEqual(summary.responses.map((r) => r.status), [200, 404, 200], 'the fixtures work');

  await otlp.waitFor((s) => s.length >= 6, 15_000);
  assert.equal(await sonde.stop(), 0);
  const spans = [...otlp.spans];
  const all = `\n  ${brief(spans)}`;
  const servers = spans.filter((s) => s.kind === 'SERVER');
  const clients = spans.filter((s) => s.kind === 'CLIENT');
  assert.equal(servers.length, 3, `one server span per request:${all}`);
  assert.equal(clients.length, 3, `one client span per request:${all}`);
  const expected = [
    { method: 'GET', path: '/hello', query: 'token=REDACTED&x=1', status: 200 },
    { method: 'GET', path: '/missing', query: undefined, status: 404 },
    { method: 'POST', path: '/upload', query: undefined, status: 200 },
  ];
  for (const e of expected) {
    const s = servers.find((x) => x.attributes['url.path'] === e.path);
    assert.ok(s, `a server span for ${e.path}:${all}`);
    assert.equal(s.name, e.method);
    assert.equal(s.attributes['http.request.method'], e.method);
    assert.equal(s.attributes['url.query'], e.query);
    assert.equal(s.attributes['url.scheme'], 'http');
    assert.equal(s.attributes['http.response.status_code'], e.status);
    assert.equal(s.attributes['network.protocol.version'], '2');
    assert.equal(s.attributes['server.port'], port);
    assert.equal(s.statusCode, 'UNSET', 'neither 200 nor 404 is a server error');
    assert.equal(s.resource['service.name'], 'http2-server');

    const c = clients.find((x) => x.spanId === s.parentSpanId);
    assert.ok(c, `the server span for ${e.path} is the child of a client span:${all}`);
    assert.equal(c.traceId, s.traceId);
    assert.equal(c.parentSpanId, undefined);
    assert.equal(c.name, e.method);
    assert.equal(c.attributes['http.request.method'], e.method);
    assert.equal(c.attributes['url.full'], `http://127.0.0.1:${port}${e.path}${e.query ? `?${e.query}` : ''}`);
    assert.equal(c.attributes['http.response.status_code'], e.status);
    assert.equal(c.attributes['network.protocol.version'], '2');
    assert.equal(c.statusCode, e.status >= 400 ? 'ERROR' : 'UNSET', 'a 404 is an error for the client');
    assert.equal(c.resource['service.name'], 'http2-client');
    assert.ok(s.startTimeUnixNano >= c.startTimeUnixNano && s.endTimeUnixNano <= c.endTimeUnixNano, `the server span of ${e.path} lies inside its client span`);
  }
  for (const s of spans) for (const v of Object.values(s.attributes)) assert.ok(!String(v).includes('secret'), `the token's value is never exported: ${brief([s])}`);
});

test('a traceparent sent by an HTTP/2 client sets the server span trace and parent', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [H2_SERVER]);
  // Only the server is traced: a client span would otherwise be the parent.
  const sonde = await startSonde(t, ['--pid', String(server.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const client = startProcess(t, process.execPath, [H2_CLIENT, `http://127.0.0.1:${port}`, '--traceparent', traceparent, 'GET /traced?x=1']);
  assert.deepEqual((await clientSummary<H2Summary>(client)).responses.map((r) => r.status), [200], 'the fixtures work');

  await otlp.waitFor((s) => s.length >= 1, 15_000);
  assert.equal(await sonde.stop(), 0);
  const spans = [...otlp.spans];
  assert.equal(spans.length, 1, `one span, the server's:\n  ${brief(spans)}`);
  const [s] = spans;
  assert.equal(s.kind, 'SERVER');
  assert.equal(s.attributes['url.path'], '/traced');
  assert.equal(s.attributes['network.protocol.version'], '2');
  assert.equal(s.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(s.parentSpanId, '00f067aa0ba902b7');
});

test(
  'nghttpd serving files to curl --http2-prior-knowledge: a server span and a curl client span per request, linked',
  {
    skip: !hasCommand('nghttpd')
      ? 'nghttpd is not installed (apt-get install nghttp2-server; scripts/setup.sh installs it)'
      : !curlSpeaksHttp2()
        ? 'this curl has no HTTP2 feature (curl -V)'
        : false,
  },
  async (t) => {
    const otlp = await startOtlpGrpcReceiver();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-nghttpd-'));
    fs.writeFileSync(path.join(dir, 'index.html'), 'hello from nghttpd\n');
    t.after(async () => {
      await otlp.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    // Port 0: nghttpd does not print the port it got, /proc tells.
    const nghttpd = startProcess(t, 'nghttpd', ['--no-tls', '-a', '127.0.0.1', '-d', dir, '0']);
    let port: number | undefined;
    await waitUntil(() => (port = listeningPortOf(nghttpd.pid)) !== undefined || nghttpd.child.exitCode !== null, 10_000);
    assert.ok(port, `nghttpd is not listening\n${nghttpd.stderr()}`);

    const sonde = await startSonde(t, ['--pid', String(nghttpd.pid), '--exe', 'curl'], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
    assert.equal(curlH2(`http://127.0.0.1:${port}/index.html`), '200 2', 'curl speaks HTTP/2 to nghttpd');
    assert.equal(curlH2(`http://127.0.0.1:${port}/index.html?again=1`), '200 2');
    assert.equal(curlH2(`http://127.0.0.1:${port}/nope.html`), '404 2');

    await otlp.waitFor((s) => s.length >= 6, 15_000);
    assert.equal(await sonde.stop(), 0);
    const spans = [...otlp.spans];
    const all = `\n  ${brief(spans)}`;
    const servers = spans.filter((s) => s.kind === 'SERVER');
    const clients = spans.filter((s) => s.kind === 'CLIENT');
    assert.equal(servers.length, 3, `one nghttpd span per request:${all}`);
    assert.equal(clients.length, 3, `one curl span per request:${all}`);
    for (const s of servers) {
      assert.equal(s.resource['service.name'], 'nghttpd');
      assert.equal(s.attributes['http.request.method'], 'GET');
      assert.equal(s.attributes['url.scheme'], 'http');
      assert.equal(s.attributes['network.protocol.version'], '2');
      const c = clients.find((x) => x.spanId === s.parentSpanId);
      assert.ok(c, `the nghttpd span for ${String(s.attributes['url.path'])} is the child of a curl span:${all}`);
      assert.equal(c.traceId, s.traceId);
      assert.equal(c.resource['service.name'], 'curl');
      assert.equal(c.attributes['network.protocol.version'], '2');
      assert.equal(c.attributes['http.response.status_code'], s.attributes['http.response.status_code']);
      const query = s.attributes['url.query'];
      assert.equal(c.attributes['url.full'], `http://127.0.0.1:${port}${String(s.attributes['url.path'])}${query === undefined ? '' : `?${String(query)}`}`);
    }
    const paths = servers.map((s) => `${String(s.attributes['url.path'])}?${String(s.attributes['url.query'] ?? '')} ${String(s.attributes['http.response.status_code'])}`).sort();
    assert.deepEqual(paths, ['/index.html? 200', '/index.html?again=1 200', '/nope.html? 404']);
    assert.equal(clients.find((c) => c.attributes['http.response.status_code'] === 404)?.statusCode, 'ERROR', 'a 404 is an error for curl');
  },
);
