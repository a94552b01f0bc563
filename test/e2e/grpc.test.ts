/**
 * gRPC end to end: unmodified grpc-js and Python grpcio servers and clients
 * over h2c, every client's calls on one HTTP/2 connection, traced on both
 * sides. Each call is one span per traced side, named `demo.Echo/Method`,
 * with the RPC semantic conventions, its status from `grpc-status`, and the
 * client span the parent of the server span it caused (same host: the
 * connection's two ends are matched).
 *
 * Clients start before sonde and wait for SIGUSR2 (`--start-on-signal`), so
 * that sonde selects them by pid and sees their connections from the
 * connect on; the last test keeps one connection from before sonde started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpGrpcReceiver, type ReceivedSpan, type StatusCodeName } from '../support/receivers';
import { REPO_ROOT, SYNC_LIMIT, clientSummary, pythonWithGrpc, settledCounters, startProcess, startService, startSonde, type Owner, type RunningProcess } from './support';

const FIXTURES = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures');
const GRPC_SERVER = path.join(FIXTURES, 'grpc-server.js');
const GRPC_CLIENT = path.join(FIXTURES, 'grpc-client.js');
const PY_SERVER = path.join(FIXTURES, 'grpc_server.py');
const PY_CLIENT = path.join(FIXTURES, 'grpc_client.py');

const OK = 0;
const NOT_FOUND = 5;
const INTERNAL = 13;
const CANCELLED = 1;

interface ClientSummary {
  calls: Array<{ method: string; code: number; ok: boolean }>;
  codes: Record<string, number>;
}

interface ExpectedCall {
  method: 'Unary' | 'ServerStream' | 'ClientStream' | 'Bidi';
  code: number;
}

const calls = (n: number, method: ExpectedCall['method'], code = OK): ExpectedCall[] => Array.from({ length: n }, () => ({ method, code }));

function brief(spans: ReceivedSpan[]): string {
  return spans
    .map((s) => `${s.kind} "${s.name}" code=${String(s.attributes['rpc.grpc.status_code'])} ${s.statusCode} ${s.traceId.slice(0, 8)}/${s.spanId.slice(0, 8)}<-${(s.parentSpanId ?? '').slice(0, 8)} ${String(s.resource['service.name'])}`)
    .join('\n  ');
}

/**
 * RPC semconv for gRPC: a server span is an error only for the codes that
 * say the server failed (INTERNAL here); NOT_FOUND is the caller's problem.
 * A client span is an error for any code but OK.
 */
function expectedStatus(kind: 'SERVER' | 'CLIENT', code: number): StatusCodeName {
  if (kind === 'CLIENT') return code === OK ? 'UNSET' : 'ERROR';
  return code === INTERNAL ? 'ERROR' : 'UNSET';
}

/** A client fixture held at "waiting to start" until go(): started before sonde, so that sonde can select it by pid. */
async function heldClient(t: Owner, command: string, args: string[]): Promise<{ proc: RunningProcess; go(): void }> {
  const proc = startProcess(t, command, args);
  await proc.waitForOutput(/^waiting to start$/m, 15_000, 'stdout');
  return { proc, go: () => void proc.child.kill('SIGUSR2') };
}

/**
 * Exactly one server and one client span per call, each as the conventions
 * say, every server span the child of its own client span, every client
 * span the root of its own trace, and the server span inside the client's.
 */
function assertCallPairs(spans: ReceivedSpan[], expected: ExpectedCall[], services: { server: string; client: string }): void {
  const all = `\n  ${brief(spans)}`;
  const servers = spans.filter((s) => s.kind === 'SERVER');
  const clients = spans.filter((s) => s.kind === 'CLIENT');
  assert.equal(servers.length, expected.length, `one server span per call (${expected.length}):${all}`);
  assert.equal(clients.length, expected.length, `one client span per call (${expected.length}):${all}`);
  const want = expected.map((c) => `${c.method}:${c.code}`).sort();
  for (const [kind, side, service] of [['SERVER', servers, services.server], ['CLIENT', clients, services.client]] as const) {
    assert.deepEqual(side.map((s) => `${String(s.attributes['rpc.method'])}:${String(s.attributes['rpc.grpc.status_code'])}`).sort(), want, `${kind} spans: method and status code of each call:${all}`);
    for (const s of side) {
      const method = String(s.attributes['rpc.method']);
      const code = Number(s.attributes['rpc.grpc.status_code']);
      assert.equal(s.name, `demo.Echo/${method}`, 'named service/method, no leading slash');
      assert.equal(s.attributes['rpc.system'], 'grpc', `${s.name} ${JSON.stringify(s.attributes)}`);
      assert.equal(s.attributes['rpc.service'], 'demo.Echo');
      assert.equal(typeof s.attributes['rpc.grpc.status_code'], 'number', 'rpc.grpc.status_code is an int');
      assert.equal(s.attributes['network.protocol.version'], '2');
      assert.equal(s.statusCode, expectedStatus(kind, code), `${kind} ${s.name} with grpc-status ${code}`);
      assert.equal(s.resource['service.name'], service);
    }
  }
  assert.equal(new Set(clients.map((c) => c.traceId)).size, clients.length, `each call is its own trace:${all}`);
  for (const c of clients) assert.equal(c.parentSpanId, undefined, `a client call made by no served request is a root: ${c.name}`);
  assert.equal(new Set(servers.map((s) => s.parentSpanId)).size, servers.length, `each server span has its own parent:${all}`);
  for (const s of servers) {
    const parent = clients.find((c) => c.spanId === s.parentSpanId);
    assert.ok(parent, `the server span ${s.name} (code ${String(s.attributes['rpc.grpc.status_code'])}) is the child of a client span:${all}`);
    assert.equal(parent.traceId, s.traceId);
    assert.equal(parent.name, s.name, 'the same call on both sides');
    assert.equal(parent.attributes['rpc.grpc.status_code'], s.attributes['rpc.grpc.status_code']);
    assert.ok(s.startTimeUnixNano >= parent.startTimeUnixNano && s.endTimeUnixNano <= parent.endTimeUnixNano, `the server span of ${s.name} lies inside its client span`);
  }
}

test('grpc-js client and server: one span per call on each side for unary, streaming, NOT_FOUND and INTERNAL calls, the client span the parent', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [GRPC_SERVER]);
  const client = await heldClient(t, process.execPath, [
    GRPC_CLIENT,
    '--start-on-signal',
    '--target',
    `127.0.0.1:${port}`,
    ...['--unary', '3', '--missing', '1', '--boom', '1', '--server-stream', '4', '--client-stream', '3', '--bidi', '5'],
  ]);
  const sonde = await startSonde(t, ['--pid', String(server.child.pid), '--pid', String(client.proc.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  client.go();
  const summary = await clientSummary<ClientSummary>(client.proc);
  assert.deepEqual(summary.codes, { [OK]: 6, [NOT_FOUND]: 1, [INTERNAL]: 1 }, 'the fixtures work: every call got the status it asked for');
  const expected = [...calls(3, 'Unary'), ...calls(1, 'Unary', NOT_FOUND), ...calls(1, 'Unary', INTERNAL), ...calls(1, 'ServerStream'), ...calls(1, 'ClientStream'), ...calls(1, 'Bidi')];
  await otlp.waitFor((s) => s.length >= 2 * expected.length, 15_000);
  assert.equal(await sonde.stop(), 0);
  assertCallPairs([...otlp.spans], expected, { server: 'grpc-server', client: 'grpc-client' });
  const stream = otlp.spans.filter((s) => s.name === 'demo.Echo/Bidi');
  assert.equal(stream.length, 2, 'a bidirectional stream of five messages each way is one span per side, not one per message');
});

test('a call the client gives up on (cancelled after 300 ms): its RST_STREAM ends the stream on both sides, an error named CANCEL, linked', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [GRPC_SERVER]);
  const client = await heldClient(t, process.execPath, [GRPC_CLIENT, '--start-on-signal', '--target', `127.0.0.1:${port}`, '--slow', '1']);
  const sonde = await startSonde(t, ['--pid', String(server.child.pid), '--pid', String(client.proc.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  client.go();
  assert.deepEqual((await clientSummary<ClientSummary>(client.proc)).codes, { [CANCELLED]: 1 }, 'the fixtures work: the client gave up');
  await otlp.waitFor((s) => s.length >= 2, 15_000);
  assert.equal(await sonde.stop(), 0);
  const spans = [...otlp.spans];
  const all = `\n  ${brief(spans)}`;
  assert.equal(spans.length, 2, `one span per side:${all}`);
  const c = spans.find((s) => s.kind === 'CLIENT')!;
  const srv = spans.find((s) => s.kind === 'SERVER')!;
  assert.ok(c && srv, all);
  for (const s of [c, srv]) {
    assert.equal(s.name, 'demo.Echo/Unary', all);
    assert.equal(s.attributes['rpc.system'], 'grpc');
    // 0x8 CANCEL: what a gRPC client resets a stream with when it stops waiting (RFC 9113 §7).
    assert.equal(s.attributes['sonde.http2.error_code'], 'CANCEL', all);
    assert.equal(s.attributes['error.type'], 'CANCEL', all);
    assert.equal(s.statusCode, 'ERROR', all);
    assert.equal(s.attributes['rpc.grpc.status_code'], undefined, 'no grpc-status was ever sent');
  }
  assert.equal(srv.traceId, c.traceId);
  assert.equal(srv.parentSpanId, c.spanId);
  // The client's span lasts until its reset, about 300 ms, not the server's 3 s.
  const clientMs = Number(c.endTimeUnixNano - c.startTimeUnixNano) / 1e6;
  assert.ok(clientMs >= 250 && clientMs < 2500, `client span ${clientMs} ms`);
});

test('50 concurrent unary calls on one channel: 50 streams of one connection are 50 spans per side, each server span with its own client parent', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [GRPC_SERVER]);
  const client = await heldClient(t, process.execPath, [GRPC_CLIENT, '--start-on-signal', '--target', `127.0.0.1:${port}`, '--unary', '50', '--concurrency', '50']);
  const sonde = await startSonde(t, ['--pid', String(server.child.pid), '--pid', String(client.proc.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  client.go();
  const summary = await clientSummary<ClientSummary>(client.proc);
  assert.deepEqual(summary.codes, { [OK]: 50 }, 'the fixtures work: 50 calls answered');
  const peers = new Set([...server.stdout().matchAll(/^call Unary peer=(\S+) code=0$/gm)].map((m) => m[1]));
  assert.equal(peers.size, 1, `the server saw every call on one connection: ${[...peers].join(', ')}`);

  await otlp.waitFor((s) => s.length >= 100, 15_000);
  // Nothing more on its way: sonde has taken in all the kernel handed over.
  await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  assertCallPairs([...otlp.spans], calls(50, 'Unary'), { server: 'grpc-server', client: 'grpc-client' });
});

const py = pythonWithGrpc();
test(
  'Python grpcio and grpc-js, each as client and as server: spans on both sides, linked',
  { skip: py ? false : 'no python3 with the grpc module (apt-get install python3-grpcio; scripts/setup.sh installs it)' },
  async (t) => {
    const otlp = await startOtlpGrpcReceiver();
    t.after(() => otlp.close());
    const nodeServer = await startService(t, process.execPath, [GRPC_SERVER]);
    const pyServer = await startService(t, py!, ['-u', PY_SERVER]);
    const pyClient = await heldClient(t, py!, ['-u', PY_CLIENT, '--start-on-signal', `127.0.0.1:${nodeServer.port}`, '3', '1']);
    const nodeClient = await heldClient(t, process.execPath, [GRPC_CLIENT, '--start-on-signal', '--target', `127.0.0.1:${pyServer.port}`, '--unary', '3', '--missing', '1', '--boom', '1']);
    const pids = [nodeServer.proc, pyServer.proc, pyClient.proc, nodeClient.proc].flatMap((p) => ['--pid', String(p.child.pid)]);
    const sonde = await startSonde(t, pids, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
    pyClient.go();
    nodeClient.go();
    assert.deepEqual((await clientSummary<ClientSummary>(pyClient.proc)).codes, { [OK]: 3, [NOT_FOUND]: 1 }, 'the fixtures work: grpcio client → grpc-js server');
    assert.deepEqual((await clientSummary<ClientSummary>(nodeClient.proc)).codes, { [OK]: 3, [NOT_FOUND]: 1, [INTERNAL]: 1 }, 'the fixtures work: grpc-js client → grpcio server');

    await otlp.waitFor((s) => s.length >= 18, 15_000);
    assert.equal(await sonde.stop(), 0);
    const spans = [...otlp.spans];
    assert.equal(spans.length, 18, `4 calls from Python, 5 from Node, a span on each side:\n  ${brief(spans)}`);
    const of = (...services: string[]): ReceivedSpan[] => spans.filter((s) => services.includes(String(s.resource['service.name'])));
    assertCallPairs(of('grpc_client', 'grpc-server'), [...calls(3, 'Unary'), ...calls(1, 'Unary', NOT_FOUND)], { server: 'grpc-server', client: 'grpc_client' });
    assertCallPairs(of('grpc-client', 'grpc_server'), [...calls(3, 'Unary'), ...calls(1, 'Unary', NOT_FOUND), ...calls(1, 'Unary', INTERNAL)], { server: 'grpc_server', client: 'grpc-client' });
    for (const s of of('grpc_client', 'grpc_server')) assert.match(String(s.resource['process.executable.name']), /^python/);
  },
);

test('a gRPC connection opened before sonde started: the calls made on it afterwards are spans, never with a wrong name', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [GRPC_SERVER]);
  // One call before sonde: the connection, its settings and its HPACK tables all predate sonde.
  const client = startProcess(t, process.execPath, [GRPC_CLIENT, '--target', `127.0.0.1:${port}`, '--unary', '1', '--then-on-signal', '5']);
  await client.waitForOutput(/^waiting$/m, 15_000, 'stdout');
  const sonde = await startSonde(t, ['--pid', String(server.child.pid), '--pid', String(client.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  client.child.kill('SIGUSR2');
  assert.deepEqual((await clientSummary<ClientSummary>(client)).codes, { [OK]: 6 }, 'the fixtures work: one call before, five after');
  const peers = new Set([...server.stdout().matchAll(/^call Unary peer=(\S+) code=0$/gm)].map((m) => m[1]));
  assert.equal(peers.size, 1, 'the calls after sonde started used the connection opened before');

  await otlp.waitFor((s) => s.length >= 10, 15_000);
  assert.equal(await sonde.stop(), 0);
  const spans = [...otlp.spans];
  const all = `\n  ${brief(spans)}`;
  // As for HTTP/1 (http1.test.ts): the call before sonde is not invented, each call after is one span per side.
  assert.equal(spans.filter((s) => s.kind === 'SERVER').length, 5, `one server span per call after sonde started:${all}`);
  assert.equal(spans.filter((s) => s.kind === 'CLIENT').length, 5, `one client span per call after sonde started:${all}`);
  for (const s of spans) {
    assert.equal(s.attributes['rpc.system'], 'grpc', `${s.name} ${JSON.stringify(s.attributes)}`);
    assert.equal(s.attributes['network.protocol.version'], '2');
    // Header fields HPACK-indexed before sonde came may be unknown: then the
    // span says so rather than guess a name.
    // Its content-type unknown, the call is recognised by its shape, and says so.
    if (s.attributes['sonde.rpc.system_inferred'] === true) assert.equal(s.attributes['sonde.http2.headers_incomplete'], true);
    if (s.name === 'gRPC') {
      assert.equal(s.attributes['sonde.rpc.method_unknown'], true, `a span named "gRPC" says its method is unknown:${all}`);
    } else {
      assert.equal(s.name, 'demo.Echo/Unary', `a span on the old connection is named right or "gRPC", never wrong:${all}`);
      assert.equal(s.attributes['rpc.service'], 'demo.Echo');
      assert.equal(s.attributes['rpc.method'], 'Unary');
      assert.equal(s.attributes['sonde.rpc.method_unknown'], undefined);
    }
    if (s.attributes['rpc.grpc.status_code'] !== undefined) assert.equal(s.attributes['rpc.grpc.status_code'], OK);
    assert.notEqual(s.statusCode, 'ERROR', 'every call succeeded');
  }
});

test('grpc-js over TLS (its OpenSSL inside node): one span per call on each side, linked, statuses read from the plaintext', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-grpc-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore', ...SYNC_LIMIT });
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [GRPC_SERVER], { CERT: cert, KEY: key });
  const clientProc = startProcess(t, process.execPath, [GRPC_CLIENT, '--start-on-signal', '--target', `localhost:${port}`, '--unary', '3', '--missing', '1', '--boom', '1', '--bidi', '3'], { env: { ...process.env, CA: cert } });
  await clientProc.waitForOutput(/^waiting to start$/m, 15_000, 'stdout');
  const sonde = await startSonde(t, ['--pid', `${server.child.pid},${clientProc.child.pid}`], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  await sonde.waitForOutput(/tracing TLS through OpenSSL[^\n]*pid=\d+[\s\S]*tracing TLS through OpenSSL/, 10_000);
  clientProc.child.kill('SIGUSR2');
  const summary = await clientSummary<ClientSummary>(clientProc);
  assert.deepEqual(summary.codes, { [OK]: 4, [NOT_FOUND]: 1, [INTERNAL]: 1 }, 'the fixtures work over TLS');
  const expected = [...calls(3, 'Unary'), ...calls(1, 'Unary', NOT_FOUND), ...calls(1, 'Unary', INTERNAL), ...calls(1, 'Bidi')];
  await otlp.waitFor((s) => s.length >= 2 * expected.length, 15_000);
  const counters = await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  assert.equal(counters.eventsLost, 0);
  // Over Node's memory BIO the plaintext of SSL_write is seen before its
  // ciphertext is written, so the client's HEADERS always reach sonde
  // before the server reads them: every server span hangs from its call.
  const spans = [...otlp.spans];
  const all = `\n  ${brief(spans)}`;
  const want = expected.map((c) => `${c.method}:${c.code}`).sort();
  for (const kind of ['SERVER', 'CLIENT'] as const) {
    const side = spans.filter((s) => s.kind === kind);
    assert.deepEqual(side.map((s) => `${String(s.attributes['rpc.method'])}:${String(s.attributes['rpc.grpc.status_code'])}`).sort(), want, `${kind} spans: one per call, each with its status:${all}`);
    for (const s of side) {
      assert.equal(s.attributes['rpc.system'], 'grpc');
      assert.equal(s.statusCode, expectedStatus(kind, Number(s.attributes['rpc.grpc.status_code'])));
      // The peer of the connection the SSL* was tied to: a wrong socket
      // (the DNS socket read before the handshake) once gave '::' and 0.
      if (kind === 'CLIENT') assert.deepEqual([s.attributes['network.peer.address'], s.attributes['network.peer.port']], ['127.0.0.1', port], `the client's plaintext on its own socket:${all}`);
    }
  }
  for (const s of spans.filter((x) => x.kind === 'SERVER')) {
    const parent = spans.find((c) => c.kind === 'CLIENT' && c.spanId === s.parentSpanId);
    assert.ok(parent, `each server span hangs from a client span:${all}`);
    assert.equal(parent.traceId, s.traceId);
    assert.equal(parent.attributes['rpc.grpc.status_code'], s.attributes['rpc.grpc.status_code'], 'the same call on both sides');
  }
});
