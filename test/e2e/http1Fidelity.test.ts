/**
 * HTTP/1 as real services and clients speak it, end to end: responses that
 * pause, pipelined requests in one write, a request line split across
 * writes, a server thread already blocked in recv() when sonde attaches,
 * and heads larger than the first capture. Each test checks the span count,
 * method and path, and that each span lasts at least what the server was
 * told to wait and at most what the client measured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { startOtlpGrpcReceiver, type ReceivedSpan } from '../support/receivers';
import { REPO_ROOT, epochNs, request, sleep, startService, startSonde } from './support';

const PACED = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'paced-server.js');
const THREADED = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'threaded-server.py');
const MS = 1_000_000n;

const durationNs = (s: ReceivedSpan): bigint => s.endTimeUnixNano - s.startTimeUnixNano;

/** A raw TCP client: writes exactly the pieces it is given, reads whole responses. */
class RawClient {
  #socket: net.Socket;
  #received = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#received = Buffer.concat([this.#received, d]);
      this.#waiters.splice(0).forEach((w) => w());
    });
    socket.on('close', () => this.#waiters.splice(0).forEach((w) => w()));
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  write(text: string): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.write(text, 'latin1', (e) => (e ? reject(e) : resolve())));
  }

  /** Resolves with the statuses of the next `count` responses (Content-Length framed). */
  async responses(count: number, timeoutMs = 10_000): Promise<number[]> {
    const statuses: number[] = [];
    const deadline = Date.now() + timeoutMs;
    while (statuses.length < count) {
      const headEnd = this.#received.indexOf('\r\n\r\n');
      if (headEnd >= 0) {
        const head = this.#received.toString('latin1', 0, headEnd);
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (this.#received.length >= headEnd + 4 + length) {
          statuses.push(Number(head.split(' ')[1]));
          this.#received = this.#received.subarray(headEnd + 4 + length);
          continue;
        }
      }
      if (Date.now() > deadline || this.#socket.destroyed) throw new Error(`got ${statuses.length} of ${count} responses`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
    return statuses;
  }

  close(): void {
    this.#socket.destroy();
  }
}

function byPath(spans: ReceivedSpan[]): Map<string, ReceivedSpan> {
  return new Map(spans.map((s) => [String(s.attributes['url.path']), s]));
}

test('a response that pauses lasts until its last byte: a flushed head, a chunked stream, server-sent events', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  const { proc: server, port } = await startService(t, process.execPath, [PACED]);
  t.after(() => otlp.close());
  const sonde = await startSonde(t, ['--pid', String(server.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  const cases = [
    { path: '/pause/400', atLeastMs: 400n },
    { path: '/chunked/150', atLeastMs: 300n },
    { path: '/sse/150', atLeastMs: 300n },
  ];
  const observed = new Map<string, { startNs: bigint; endNs: bigint; body: string }>();
  for (const c of cases) observed.set(c.path, await request(`http://127.0.0.1:${port}${c.path}`));
  const spans = await otlp.waitFor((s) => s.length >= cases.length, 20_000);
  assert.equal(await sonde.stop(), 0);
  assert.equal(spans.length, cases.length);
  const found = byPath(spans);
  for (const c of cases) {
    const span = found.get(c.path);
    assert.ok(span, `a span for ${c.path}`);
    const o = observed.get(c.path)!;
    assert.equal(span.attributes['http.request.method'], 'GET');
    assert.equal(span.attributes['http.response.status_code'], 200);
    assert.ok(durationNs(span) >= c.atLeastMs * MS, `${c.path} lasts at least ${c.atLeastMs} ms: ${durationNs(span) / MS} ms`);
    assert.ok(durationNs(span) <= o.endNs - o.startNs + MS, `${c.path} lasts at most what the client saw: ${durationNs(span) / MS} vs ${(o.endNs - o.startNs) / MS} ms`);
    assert.equal(span.attributes['sonde.response.incomplete'], undefined, `${c.path} is complete`);
  }
  assert.equal(observed.get('/pause/400')!.body, 'later');
});

test('three pipelined requests in one write are three spans, on a Node and on a Python server', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  const node = await startService(t, process.execPath, [PACED]);
  const python = await startService(t, 'python3', ['-u', THREADED]);
  t.after(() => otlp.close());
  const sonde = await startSonde(t, ['--pid', String(node.proc.child.pid), '--pid', String(python.proc.child.pid)], {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  const windows: Array<{ startNs: bigint; endNs: bigint }> = [];
  for (const { port } of [node, python]) {
    const client = await RawClient.connect(port);
    const startNs = epochNs();
    await client.write(['/p/1', '/p/2', '/p/3'].map((p) => `GET ${p}?port=${port} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
    assert.deepEqual(await client.responses(3), [200, 200, 200]);
    windows.push({ startNs, endNs: epochNs() });
    client.close();
  }
  const spans = await otlp.waitFor((s) => s.length >= 6, 20_000);
  assert.equal(await sonde.stop(), 0);
  assert.equal(spans.length, 6, spans.map((s) => `${String(s.resource['service.name'])} ${String(s.attributes['url.path'])}`).join(', '));
  for (const [i, { port }] of [node, python].entries()) {
    const mine = spans.filter((s) => s.attributes['url.query'] === `port=${port}`);
    assert.deepEqual(mine.map((s) => s.attributes['url.path']).sort(), ['/p/1', '/p/2', '/p/3']);
    for (const s of mine) {
      assert.equal(s.attributes['http.response.status_code'], 200);
      assert.ok(s.startTimeUnixNano >= windows[i].startNs - MS && s.endTimeUnixNano <= windows[i].endNs + MS, 'inside what the client saw');
    }
  }
});

test('a request line split across writes ("GE", then the rest 100 ms later) is one span, on a new and on a kept-alive connection', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  const { proc: server, port } = await startService(t, process.execPath, [PACED]);
  t.after(() => otlp.close());
  const sonde = await startSonde(t, ['--pid', String(server.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  const client = await RawClient.connect(port);
  t.after(() => client.close());
  const windows = new Map<string, { startNs: bigint; endNs: bigint }>();
  for (const p of ['/split/first', '/split/again']) {
    const startNs = epochNs();
    await client.write('GE');
    await sleep(100);
    await client.write(`T ${p} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.deepEqual(await client.responses(1), [200]);
    windows.set(p, { startNs, endNs: epochNs() });
  }
  const spans = await otlp.waitFor((s) => s.length >= 2, 20_000);
  assert.equal(await sonde.stop(), 0);
  assert.equal(spans.length, 2);
  for (const [p, w] of windows) {
    const span = byPath(spans).get(p);
    assert.ok(span, `a span for ${p}`);
    assert.equal(span.attributes['http.request.method'], 'GET');
    assert.ok(durationNs(span) >= 90n * MS, `starts at "GE", 100 ms before the rest (timers may fire a little early): ${durationNs(span) / MS} ms`);
    assert.ok(span.startTimeUnixNano >= w.startNs - MS && span.endTimeUnixNano <= w.endNs + MS, 'inside what the client saw');
  }
});

test('a server thread already blocked in recv() when sonde attaches: the next request on that connection is traced', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  const { proc: server, port } = await startService(t, 'python3', ['-u', THREADED]);
  t.after(() => otlp.close());
  const client = await RawClient.connect(port);
  t.after(() => client.close());
  await client.write('GET /before HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.deepEqual(await client.responses(1), [200]);
  // The handler thread now waits in recv() on this idle keep-alive connection.
  const sonde = await startSonde(t, ['--pid', String(server.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  const startNs = epochNs();
  await client.write('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.deepEqual(await client.responses(1), [200]);
  const endNs = epochNs();
  const spans = await otlp.waitFor((s) => s.length >= 1, 20_000);
  assert.equal(await sonde.stop(), 0);
  assert.equal(spans.length, 1);
  assert.equal(spans[0].attributes['url.path'], '/after');
  assert.equal(spans[0].kind, 'SERVER');
  assert.ok(spans[0].startTimeUnixNano >= startNs - MS && spans[0].endTimeUnixNano <= endNs + MS, 'inside what the client saw');
});

test('heads larger than the first capture: a traceparent behind a 3 KB cookie is honoured, a 5 KB query string is a span', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  const { proc: server, port } = await startService(t, process.execPath, [PACED]);
  t.after(() => otlp.close());
  const sonde = await startSonde(t, ['--pid', String(server.child.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  // Header order is the caller's: the cookie goes first on the wire.
  const client = await RawClient.connect(port);
  t.after(() => client.close());
  await client.write(`GET /cookie HTTP/1.1\r\nHost: x\r\nCookie: sid=${'c'.repeat(3000)}\r\ntraceparent: ${traceparent}\r\n\r\n`);
  assert.deepEqual(await client.responses(1), [200]);
  const query = `q=${'x'.repeat(5000)}`;
  const long = await request(`http://127.0.0.1:${port}/search?${query}`);
  assert.equal(long.status, 200);
  const spans = await otlp.waitFor((s) => s.length >= 2, 20_000);
  assert.equal(await sonde.stop(), 0);
  assert.equal(spans.length, 2);
  const found = byPath(spans);
  const cookie = found.get('/cookie');
  assert.ok(cookie, 'a span for /cookie');
  assert.equal(cookie.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(cookie.parentSpanId, '00f067aa0ba902b7');
  const search = found.get('/search');
  assert.ok(search, 'a span for the 5 KB query');
  assert.equal(search.attributes['http.request.method'], 'GET');
  assert.equal(search.attributes['http.response.status_code'], 200);
  assert.equal(search.attributes['url.query'], query, 'the whole query, followed past the first capture');
  assert.ok(durationNs(search) <= long.endNs - long.startNs + MS);
});

test('a response still unfinished after the response timeout is closed out, marked and counted', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  const { proc: server, port } = await startService(t, process.execPath, [PACED]);
  t.after(() => otlp.close());
  const sonde = await startSonde(t, ['--pid', String(server.child.pid), '--response-timeout-ms', '1000'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  const startNs = epochNs();
  const pending = request(`http://127.0.0.1:${port}/pause/3000`);
  // The head is out at once; the body 3 s later, well past the timeout.
  const spans = await otlp.waitFor((s) => s.length >= 1, 20_000);
  const seenNs = epochNs();
  assert.equal((await pending).body, 'later');
  assert.equal(await sonde.stop(), 0);
  assert.equal(spans.length, 1);
  const span = spans[0];
  assert.equal(span.attributes['url.path'], '/pause/3000');
  assert.equal(span.attributes['http.response.status_code'], 200);
  assert.equal(span.attributes['sonde.response.incomplete'], true);
  assert.ok(seenNs - startNs < 3000n * MS, 'closed out before the body came, not at it');
  assert.ok(durationNs(span) < 1000n * MS, `ends at the last byte seen, the head: ${durationNs(span) / MS} ms`);
  assert.match(sonde.stderr(), /counters\s.*incomplete=1/);
});
