/**
 * HTTPS through OpenSSL's SSL_read/SSL_write (bpf/lib/tls.bpf.h): nginx
 * with ssl, Python's ssl module and curl, all on the system's libssl, with
 * a certificate made by the test. Every span must come from plaintext:
 * exact counts, https URLs, and sonde's counters agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpGrpcReceiver, type ReceivedSpan } from '../support/receivers';
import { REPO_ROOT, SYNC_LIMIT, hasCommand, settledCounters, sondeProgramsLoaded, startProcess, startService, startSonde, waitUntil, type Owner } from './support';

const NO_NGINX = hasCommand('nginx') ? false : 'nginx is not installed (apt-get install nginx-light)';

interface Certificate {
  dir: string;
  cert: string;
  key: string;
}

/** A self-signed certificate for 127.0.0.1 and localhost, in a directory removed after the test. */
function makeCertificate(t: { after(fn: () => void): void }): Certificate {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { stdio: 'ignore', ...SYNC_LIMIT },
  );
  return { dir, cert, key };
}

/** nginx answering HTTPS (HTTP/1.1 and h2 by ALPN) on `port`: 404 for /missing, else 200. */
async function startNginxTls(t: Owner, tls: Certificate, port: number): Promise<number> {
  const conf = path.join(tls.dir, 'nginx.conf');
  const d = tls.dir;
  fs.writeFileSync(
    conf,
    `daemon off; worker_processes 1; pid ${d}/nginx.pid; error_log ${d}/error.log;
events { worker_connections 64; }
http { access_log off; keepalive_timeout 60;
  client_body_temp_path ${d}; proxy_temp_path ${d}; fastcgi_temp_path ${d}; uwsgi_temp_path ${d}; scgi_temp_path ${d};
  server { listen 127.0.0.1:${port} ssl http2; ssl_certificate ${tls.cert}; ssl_certificate_key ${tls.key};
    location = /missing { return 404; }
    location / { return 200 "secret over tls\\n"; } } }
`,
  );
  const nginx = startProcess(t, 'nginx', ['-c', conf, '-p', d]);
  const pidFile = path.join(d, 'nginx.pid');
  await waitUntil(() => fs.existsSync(pidFile) || nginx.child.exitCode !== null, 10_000);
  assert.ok(fs.existsSync(pidFile), `nginx did not start\n${nginx.stderr()}`);
  return Number(fs.readFileSync(pidFile, 'utf8').trim());
}

/** curl -k: the status of each URL, fetched on one connection. */
function curl(urls: string[], extra: string[] = []): string[] {
  const out = execFileSync('curl', ['-sk', ...extra, ...urls.flatMap((u) => ['-o', '/dev/null', '-w', '%{http_code}\\n', u])], { encoding: 'utf8', ...SYNC_LIMIT });
  return out.trim().split('\n');
}

function byPath(spans: ReceivedSpan[], kind: 'SERVER' | 'CLIENT'): Map<string, ReceivedSpan> {
  const out = new Map<string, ReceivedSpan>();
  for (const s of spans.filter((x) => x.kind === kind)) {
    const p = kind === 'SERVER' ? String(s.attributes['url.path']) : new URL(String(s.attributes['url.full'])).pathname;
    assert.ok(!out.has(p), `one ${kind} span per path: ${p} twice`);
    out.set(p, s);
  }
  return out;
}

/** No uprobe of sonde's is left: its programs are unloaded (the kernel frees them a moment after), and no legacy uprobe event remains. */
async function assertNothingLeftBehind(): Promise<void> {
  await waitUntil(() => sondeProgramsLoaded().length === 0, 5000);
  assert.deepEqual(sondeProgramsLoaded(), []);
  const events = '/sys/kernel/tracing/uprobe_events';
  if (fs.existsSync(events)) assert.doesNotMatch(fs.readFileSync(events, 'utf8'), /ssl|SSL/, 'no uprobe event left for OpenSSL');
}

test('nginx with ssl and curl: HTTPS spans on both sides, linked, over HTTP/1.1 and h2, none from ciphertext', { skip: NO_NGINX }, async (t) => {
  const tls = makeCertificate(t);
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const port = 21000 + (process.pid % 20000);
  await startNginxTls(t, tls, port);
  const sonde = await startSonde(t, ['--open-port', String(port), '--exe', 'curl'], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  await sonde.waitForOutput(/tracing TLS through OpenSSL/, 10_000);
  const base = `https://127.0.0.1:${port}`;
  // curl picks h2 by ALPN unless told otherwise.
  assert.deepEqual(curl([`${base}/one`], ['--http1.1']), ['200']);
  assert.deepEqual(curl([`${base}/missing?token=abc`], ['--http1.1']), ['404']);
  // Keep-alive: two requests on one TLS connection, then two streams of one h2 connection.
  assert.deepEqual(curl([`${base}/k1`, `${base}/k2`], ['--http1.1']), ['200', '200']);
  assert.deepEqual(curl([`${base}/h2/one`, `${base}/h2/two`], ['--http2']), ['200', '200']);
  const expected = ['/one', '/missing', '/k1', '/k2', '/h2/one', '/h2/two'];
  const spans = await otlp.waitFor((s) => s.length >= 2 * expected.length, 20_000);
  const counters = await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  await assertNothingLeftBehind();

  assert.equal(spans.length, 2 * expected.length, `exactly one server and one client span per request: ${spans.map((s) => `${s.kind} ${s.name}`).join(', ')}`);
  assert.equal(counters.requests, 2 * expected.length);
  assert.equal(counters.spansDropped, 0);
  assert.match(sonde.stderr(), /unparsed=0 /, 'no exchange sonde could not read');
  const servers = byPath(spans, 'SERVER');
  const clients = byPath(spans, 'CLIENT');
  assert.deepEqual([...servers.keys()].sort(), [...expected].sort());
  assert.deepEqual([...clients.keys()].sort(), [...expected].sort());
  for (const p of expected) {
    const server = servers.get(p)!;
    const client = clients.get(p)!;
    assert.equal(server.resource['service.name'], 'nginx');
    assert.equal(client.resource['service.name'], 'curl');
    assert.equal(server.attributes['url.scheme'], 'https', p);
    assert.ok(String(client.attributes['url.full']).startsWith(`${base}${p}`), String(client.attributes['url.full']));
    assert.equal(server.attributes['http.response.status_code'], p === '/missing' ? 404 : 200);
    assert.equal(client.attributes['http.response.status_code'], p === '/missing' ? 404 : 200);
    assert.equal(server.attributes['network.protocol.version'], p.startsWith('/h2/') ? '2' : '1.1', p);
    // HTTP/1 messages start, and h2 frames are walked, at SSL_write's
    // entry, before curl's bytes can reach nginx: always linked.
    assert.equal(server.parentSpanId, client.spanId, `${p}: the server span continues curl's client span`);
    assert.equal(server.traceId, client.traceId);
    assert.ok(server.startTimeUnixNano >= client.startTimeUnixNano && server.endTimeUnixNano <= client.endTimeUnixNano, `${p}: the server span lies within its client span`);
  }
  assert.equal(servers.get('/missing')!.attributes['url.query'], 'token=REDACTED');
});

test('a TLS session opened before sonde started: its next requests are spans, traceparent honoured', { skip: NO_NGINX }, async (t) => {
  const tls = makeCertificate(t);
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const port = 22000 + (process.pid % 20000);
  await startNginxTls(t, tls, port);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  t.after(() => agent.destroy());
  const get = (p: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
      const req = https.get(`https://127.0.0.1:${port}${p}`, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
      });
      req.setTimeout(20_000, () => req.destroy(new Error(`GET ${p}: no response`)));
      req.on('error', reject);
    });
  assert.equal((await get('/before')).status, 200);
  const sonde = await startSonde(t, ['--open-port', String(port)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  await sonde.waitForOutput(/tracing TLS through OpenSSL/, 10_000);
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const first = await get('/after/1', { traceparent });
  const second = await get('/after/2');
  assert.deepEqual([first, second], [
    { status: 200, reused: true },
    { status: 200, reused: true },
  ], 'both went over the session opened before sonde');
  const spans = await otlp.waitFor((s) => s.length >= 2, 20_000);
  await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  await assertNothingLeftBehind();
  assert.deepEqual(spans.map((s) => s.attributes['url.path']).sort(), ['/after/1', '/after/2']);
  const traced = spans.find((s) => s.attributes['url.path'] === '/after/1')!;
  assert.equal(traced.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(traced.parentSpanId, '00f067aa0ba902b7');
  for (const s of spans) assert.equal(s.attributes['url.scheme'], 'https');
});

test('Python http.server wrapped in ssl, called by curl: HTTPS server and client spans, linked', async (t) => {
  const tls = makeCertificate(t);
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: py, port } = await startService(t, 'python3', ['-u', path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'tls_server.py')], { CERT: tls.cert, KEY: tls.key });
  const sonde = await startSonde(t, ['--pid', String(py.child.pid), '--exe', 'curl'], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  await sonde.waitForOutput(/tracing TLS through OpenSSL/, 10_000);
  const base = `https://127.0.0.1:${port}`;
  assert.deepEqual(curl([`${base}/py/a?user=u1`, `${base}/py/b`]), ['200', '200']);
  assert.deepEqual(curl([`${base}/missing`]), ['404']);
  const spans = await otlp.waitFor((s) => s.length >= 6, 20_000);
  const counters = await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  await assertNothingLeftBehind();
  assert.equal(spans.length, 6, spans.map((s) => `${s.kind} ${s.name}`).join(', '));
  assert.equal(counters.spansDropped, 0);
  const servers = byPath(spans, 'SERVER');
  const clients = byPath(spans, 'CLIENT');
  for (const p of ['/py/a', '/py/b', '/missing']) {
    const server = servers.get(p)!;
    const client = clients.get(p)!;
    assert.ok(server && client, `${p}: a server and a client span`);
    assert.equal(server.attributes['url.scheme'], 'https');
    assert.equal(server.resource['process.executable.name'].toString().startsWith('python'), true);
    assert.equal(server.attributes['http.response.status_code'], p === '/missing' ? 404 : 200);
    assert.ok(String(client.attributes['url.full']).startsWith(`${base}${p}`), String(client.attributes['url.full']));
    assert.equal(server.parentSpanId, client.spanId, `${p}: linked to curl's span`);
  }
  assert.equal(servers.get('/py/a')!.attributes['url.query'], 'user=u1');
});

test('a Python HTTPS server selected by --pid alone: uprobes on its libssl for it only, its handler threads traced', async (t) => {
  const tls = makeCertificate(t);
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: py, port } = await startService(t, 'python3', ['-u', path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'tls_server.py')], { CERT: tls.cert, KEY: tls.key });
  const sonde = await startSonde(t, ['--pid', String(py.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  await sonde.waitForOutput(/tracing TLS through OpenSSL .*for=this process/, 10_000);
  // curl is not selected: its own SSL calls are none of sonde's business,
  // and with per-process uprobes they take no trap either.
  assert.deepEqual(curl([`https://127.0.0.1:${port}/p/1`, `https://127.0.0.1:${port}/p/2`], ['--http1.1']), ['200', '200']);
  assert.deepEqual(curl([`https://127.0.0.1:${port}/p/3`], ['--http1.1']), ['200']);
  const spans = await otlp.waitFor((s) => s.length >= 3, 20_000);
  const counters = await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  await assertNothingLeftBehind();
  assert.deepEqual(spans.map((s) => `${s.kind} ${String(s.attributes['url.path'])} ${String(s.attributes['url.scheme'])}`).sort(), ['SERVER /p/1 https', 'SERVER /p/2 https', 'SERVER /p/3 https']);
  assert.equal(counters.requests, 3, 'no client span: curl was not traced');
  assert.equal(counters.eventsLost, 0);
});

test('a traced Python process that imports ssl only after sonde attached: its libssl gets uprobes then, and its HTTPS requests are spans', async (t) => {
  const tls = makeCertificate(t);
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  // The interpreter starts without libssl and maps it on SIGUSR1, when the
  // server's script imports ssl.
  const server = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'tls_server.py');
  const late = [
    'import runpy, signal, sys',
    'signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])',
    'print("waiting", flush=True)',
    'signal.sigwait([signal.SIGUSR1])',
    `sys.argv = [${JSON.stringify(server)}]`,
    `runpy.run_path(${JSON.stringify(server)}, run_name="__main__")`,
  ].join('\n');
  const py = startProcess(t, 'python3', ['-u', '-c', late], { env: { ...process.env, CERT: tls.cert, KEY: tls.key } });
  await py.waitForOutput(/^waiting$/m, 10_000, 'stdout');
  assert.doesNotMatch(fs.readFileSync(`/proc/${py.pid}/maps`, 'utf8'), /libssl/, 'python3 maps no libssl before it imports ssl');
  const sonde = await startSonde(t, ['--pid', String(py.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  await sonde.waitForOutput(/tracing process .*pid=/, 10_000);
  assert.doesNotMatch(sonde.stderr() + sonde.stdout(), /tracing TLS through OpenSSL/);
  py.child.kill('SIGUSR1');
  const port = Number((await py.waitForOutput(/^(\d+)$/m, 10_000, 'stdout'))[1]);
  // Looked at again every discovery interval (1 s), ten times.
  await sonde.waitForOutput(/tracing TLS through OpenSSL .*for=this process/, 15_000);
  assert.deepEqual(curl([`https://127.0.0.1:${port}/late/1`, `https://127.0.0.1:${port}/late/2`], ['--http1.1']), ['200', '200']);
  const spans = await otlp.waitFor((s) => s.length >= 2, 20_000);
  const counters = await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  await assertNothingLeftBehind();
  assert.deepEqual(spans.map((s) => `${s.kind} ${String(s.attributes['url.path'])} ${String(s.attributes['url.scheme'])}`).sort(), ['SERVER /late/1 https', 'SERVER /late/2 https']);
  assert.equal(counters.eventsLost, 0);
});

test('Node https server and keep-alive client on the OpenSSL inside node: spans on both sides, linked', async (t) => {
  const tls = makeCertificate(t);
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'https-server.js')], { CERT: tls.cert, KEY: tls.key });
  const paths = ['/n/1', '/n/2', '/missing', '/n/4'];
  const client = startProcess(t, process.execPath, [path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'https-client.js'), ...paths], { env: { ...process.env, PORT: String(port) } });
  await client.waitForOutput(/^ready$/m, 10_000, 'stdout');
  const sonde = await startSonde(t, ['--pid', `${server.child.pid},${client.child.pid}`], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  await sonde.waitForOutput(/tracing TLS through OpenSSL .*file=.*pid=\d+ for=this process[\s\S]*tracing TLS through OpenSSL .*file=/, 10_000);
  client.child.kill('SIGUSR1');
  await client.waitForOutput(/^done$/m, 20_000, 'stdout');
  assert.match(client.stdout(), /\/n\/1 200\n\/n\/2 200\n\/missing 404\n\/n\/4 200/);
  const servers = await otlp.waitFor((s) => s.filter((x) => x.kind === 'SERVER').length >= paths.length, 20_000);
  const counters = await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  await assertNothingLeftBehind();
  const spans = otlp.spans;
  const serverSpans = byPath(spans, 'SERVER');
  const clientSpans = byPath(spans, 'CLIENT');
  assert.deepEqual([...serverSpans.keys()].sort(), [...paths].sort(), `every request is a server span: ${servers.length}`);
  for (const s of serverSpans.values()) assert.equal(s.attributes['url.scheme'], 'https');
  assert.equal(serverSpans.get('/missing')!.attributes['http.response.status_code'], 404);
  // The connection's first request is written during the handshake, before
  // any read: its socket is known from the ClientHello's write, and a write
  // OpenSSL asks to retry (WANT_READ) is one request, not two.
  assert.deepEqual([...clientSpans.keys()].sort(), [...paths].sort());
  assert.equal(counters.eventsLost, 0);
  for (const [p, c] of clientSpans) {
    assert.ok(String(c.attributes['url.full']).startsWith(`https://127.0.0.1:${port}${p}`), String(c.attributes['url.full']));
    assert.equal(serverSpans.get(p)!.parentSpanId, c.spanId, `${p}: the server span continues the client span`);
  }
});

test('one event loop serving HTTPS and plain HTTP: a plain connection opened after TLS calls on the same thread is read as plaintext', async (t) => {
  const tls = makeCertificate(t);
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'https-and-http-server.js')], { CERT: tls.cert, KEY: tls.key });
  const plainPort = Number((await server.waitForOutput(/^plain (\d+)$/m, 10_000, 'stdout'))[1]);
  const sonde = await startSonde(t, ['--pid', String(server.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  await sonde.waitForOutput(/tracing TLS through OpenSSL .*file=.*pid=\d+ for=this process/, 10_000);
  // Each plain request on a new connection, right after the thread's SSL
  // calls for the request before: the thread's TLS entry is over by then.
  const paths: string[] = [];
  for (let i = 1; i <= 3; i++) {
    assert.deepEqual(curl([`https://127.0.0.1:${port}/secure/${i}`]), ['200']);
    assert.deepEqual(curl([`http://127.0.0.1:${plainPort}/plain/${i}`]), ['200']);
    paths.push(`/secure/${i}`, `/plain/${i}`);
  }
  await otlp.waitFor((s) => s.filter((x) => x.kind === 'SERVER').length >= paths.length, 20_000);
  const counters = await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  const serverSpans = byPath(otlp.spans, 'SERVER');
  assert.deepEqual([...serverSpans.keys()].sort(), [...paths].sort(), 'every request is a server span');
  for (const [p, s] of serverSpans) assert.equal(s.attributes['url.scheme'], p.startsWith('/secure') ? 'https' : 'http', p);
  assert.equal(counters.eventsLost, 0);
});

test('a Node HTTPS service calling an HTTPS service: each SSL* on its own socket, the calls children of the request that made them', async (t) => {
  const tls = makeCertificate(t);
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const fixtures = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures');
  const { proc: downstream, port: downstreamPort } = await startService(t, process.execPath, [path.join(fixtures, 'https-server.js')], { CERT: tls.cert, KEY: tls.key });
  const { proc: front, port: frontPort } = await startService(t, process.execPath, [path.join(fixtures, 'fanout-service.js')], {
    TLS: '1', CERT: tls.cert, KEY: tls.key, CA: tls.cert, DOWNSTREAM_PORT: String(downstreamPort),
  });
  const sonde = await startSonde(t, ['--pid', `${front.child.pid},${downstream.child.pid}`], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  await sonde.waitForOutput(/tracing TLS through OpenSSL[^\n]*pid=\d+[\s\S]*tracing TLS through OpenSSL/, 10_000);
  // Each request is read on the front's one thread just before its calls'
  // handshakes start: a ClientHello taken for the last socket read would
  // tie the call's SSL* to the incoming connection.
  const ids = ['a', 'b', 'c'];
  assert.deepEqual(curl(ids.map((id) => `https://127.0.0.1:${frontPort}/r/${id}`)), ['200', '200', '200']);
  const perRequest = ['/one', '/two', '/fan-a', '/fan-b'];
  const total = ids.length * (1 + 2 * perRequest.length);
  await otlp.waitFor((s) => s.length >= total, 20_000);
  const counters = await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  const spans = otlp.spans;
  const all = spans.map((s) => `${s.kind} ${String(s.attributes['url.full'] ?? s.attributes['url.path'])}?${String(s.attributes['url.query'] ?? '')} ${s.spanId.slice(0, 8)}<-${(s.parentSpanId ?? '').slice(0, 8)} peer=${String(s.attributes['network.peer.port'])}`).join('\n  ');
  assert.equal(spans.length, total, `one span per request on each traced side:\n  ${all}`);
  assert.equal(counters.eventsLost, 0);
  const servedBy = (pid: number) => spans.filter((s) => s.kind === 'SERVER' && s.resource['process.pid'] === pid);
  const frontSpans = servedBy(front.child.pid!);
  for (const id of ids) {
    const request = frontSpans.find((s) => s.attributes['url.path'] === `/r/${id}`);
    assert.ok(request, `the front's span of /r/${id}:\n  ${all}`);
    assert.equal(request.attributes['url.scheme'], 'https');
    const calls = spans.filter((s) => s.kind === 'CLIENT' && String(s.attributes['url.full']).endsWith(`?from=${id}`));
    assert.deepEqual(calls.map((c) => new URL(String(c.attributes['url.full'])).pathname).sort(), [...perRequest].sort(), `the calls of /r/${id}:\n  ${all}`);
    for (const call of calls) {
      assert.ok(String(call.attributes['url.full']).startsWith(`https://127.0.0.1:${downstreamPort}/`), String(call.attributes['url.full']));
      assert.equal(call.attributes['network.peer.port'], downstreamPort, `a call's plaintext on its own socket:\n  ${all}`);
      assert.equal(call.parentSpanId, request.spanId, `a call of /r/${id} is its child:\n  ${all}`);
      const answered = servedBy(downstream.child.pid!).filter((s) => s.parentSpanId === call.spanId);
      assert.equal(answered.length, 1, `the downstream span of ${String(call.attributes['url.full'])} hangs from it:\n  ${all}`);
    }
  }
});
