/**
 * The native correlator (native/src/core/ConnTracker.cc and the parts it
 * dispatches to: ConnectionTable, Http1Stitcher, TraceLinker) driven through the
 * addon's ReplayTracker with synthetic kernel records and an explicit clock:
 * keep-alive, pipelining, missing responses, fd reuse, lost events, and the
 * three ways a span gets its parent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeModule, type ReplayTracker } from '../../src/native/binding';
import { decodeExchanges, ExchangeFlags, ExchangeProtocol, LinkSource, requestHeadOf, responseHeadOf, type Exchange } from '../../src/native/exchangeDecoder';
import { Cls, ConnScript, Dir, EVENT_LAYOUT, Role, closeEvent, mirrored, msgStart, processExit, selfConnect, type Tuple } from './fakeEvents';
import { TRACE_FLAG_FROM_TRACEPARENT } from '../../src/pipeline/TraceSampler';

const native = loadNativeModule();
const MS = 1_000_000n;

const serverTuple: Tuple = { localAddr: '127.0.0.1', localPort: 8080, remoteAddr: '127.0.0.1', remotePort: 50000 };
const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: localhost:8080\r\n${extra}\r\n`;
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

function tracker(options: Record<string, number> = {}): ReplayTracker {
  return new native.ReplayTracker({ idSeed: 42, responseQuietMs: 100, responseTimeoutMs: 1000, ...options });
}

/** An exchange with its heads as views and its times as exact bigints, for assertions. */
type Seen = Omit<Exchange, 'requestStartNs' | 'requestEndNs' | 'responseStartNs' | 'responseEndNs'> & {
  requestHead: Buffer;
  responseHead: Buffer;
  requestStartNs: bigint;
  requestEndNs: bigint;
  responseStartNs: bigint;
  responseEndNs: bigint;
};

function take(t: ReplayTracker): Seen[] {
  const out: Seen[] = [];
  decodeExchanges(t.take(), (x) =>
    out.push({
      ...x,
      requestHead: requestHeadOf(x),
      responseHead: responseHeadOf(x),
      requestStartNs: BigInt(x.requestStartNs),
      requestEndNs: BigInt(x.requestEndNs),
      responseStartNs: BigInt(x.responseStartNs),
      responseEndNs: BigInt(x.responseEndNs),
    }),
  );
  return out;
}

test('keep-alive server: each request is paired with its response, the next request closes the previous one', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/a'), 1000n * MS + 10n));
  t.feed(s.message(1002n * MS, Dir.Egress, Cls.Response, OK, 1003n * MS, 500));
  t.feed(s.message(1010n * MS, Dir.Ingress, Cls.Request, GET('/b')));
  let xs = take(t);
  assert.equal(xs.length, 1);
  const a = xs[0];
  assert.equal(a.role, 'server');
  assert.equal(a.protocol, ExchangeProtocol.Http1);
  assert.equal(a.streamId, 0);
  assert.equal(a.pid, 100);
  assert.equal(a.localPort, 8080);
  assert.equal(a.remoteAddress, '127.0.0.1');
  assert.equal(a.requestStartNs, 1000n * MS);
  assert.equal(a.requestEndNs, 1000n * MS + 10n);
  assert.equal(a.responseStartNs, 1002n * MS);
  assert.equal(a.responseEndNs, 1003n * MS);
  assert.equal(a.responseBytes, 500);
  assert.equal(a.requestHead.toString('latin1'), GET('/a'));
  assert.match(a.responseHead.toString('latin1'), /^HTTP\/1\.1 200 OK/);
  assert.equal(a.flags, 0);
  assert.equal(a.comm, 'fake');
  assert.equal(a.linkSource, LinkSource.None);
  assert.equal(a.parentSpanId, '');

  t.feed(s.message(1012n * MS, Dir.Egress, Cls.Response, OK, 1013n * MS));
  t.feed(s.close(1020n * MS));
  xs = take(t);
  assert.equal(xs.length, 1);
  assert.equal(xs[0].requestHead.toString('latin1'), GET('/b'));
  assert.equal(xs[0].responseEndNs, 1013n * MS, 'the close carries the last response chunk time');
  assert.notEqual(xs[0].traceId, a.traceId, 'unrelated requests are separate traces');
  assert.equal(t.counters().connectionsTracked, 0);
});

test('a quiet response is closed out after the idle period; without kernel state its end is marked estimated', () => {
  const t = tracker({ responseQuietMs: 100 });
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/idle')));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, OK));
  t.tick(1050n * MS);
  assert.equal(take(t).length, 0, 'not yet idle');
  t.tick(1200n * MS);
  assert.equal(take(t).length, 0, 'without the kernel\'s entry for the connection it waits longer');
  t.tick(2100n * MS);
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.ok(xs[0].flags & ExchangeFlags.EndEstimated);
  assert.equal(xs[0].responseEndNs, 1001n * MS);
});

test('pipelined requests are answered in order', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/1')));
  t.feed(s.message(1001n * MS, Dir.Ingress, Cls.Request, GET('/2')));
  t.feed(s.message(1002n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 201 Created\r\n\r\n'));
  t.feed(s.message(1003n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 202 Accepted\r\n\r\n'));
  t.feed(s.close(1004n * MS));
  const xs = take(t);
  assert.deepEqual(
    xs.map((x) => [x.requestHead.toString('latin1').split(' ')[1], x.responseHead.toString('latin1').split(' ')[1]]),
    [['/1', '201'], ['/2', '202']],
  );
});

test('an interim 100 Continue does not end the exchange', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, 'POST /upload HTTP/1.1\r\nExpect: 100-continue\r\n\r\n'));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 100 Continue\r\n\r\n'));
  t.feed(s.message(1002n * MS, Dir.Ingress, Cls.Unknown, 'body bytes', 1005n * MS, 10_000));
  t.feed(s.message(1006n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 204 No Content\r\n\r\n'));
  t.feed(s.close(1007n * MS));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.match(xs[0].responseHead.toString('latin1'), /^HTTP\/1\.1 204/);
  assert.equal(xs[0].requestEndNs, 1005n * MS, 'the body sent after 100 Continue belongs to the request');
  assert.ok(xs[0].requestBytes > 10_000);
});

test('a WebSocket upgrade ends with its 101 response and the frames after it are ignored', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/ws', 'Upgrade: websocket\r\nConnection: Upgrade\r\n')));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', 1001n * MS + 5n));
  t.feed(s.message(1002n * MS, Dir.Ingress, Cls.Unknown, '\x81\x85frame'));
  t.feed(s.message(1003n * MS, Dir.Egress, Cls.Unknown, '\x81\x05hello'));
  t.feed(s.message(1004n * MS, Dir.Ingress, Cls.Unknown, '\x81\x85frame'));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.match(xs[0].responseHead.toString('latin1'), /^HTTP\/1\.1 101/);
  assert.equal(xs[0].responseEndNs, 1001n * MS + 5n);
  t.feed(s.close(1005n * MS));
  assert.equal(take(t).length, 0);
  t.tick(100_000n * MS);
  assert.equal(t.counters().requestsTimedOut, 0);
});

test('a request that never gets a response is reported after the response timeout', () => {
  const t = tracker({ responseTimeoutMs: 1000 });
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/hang')));
  t.tick(1500n * MS);
  assert.equal(take(t).length, 0);
  t.tick(3100n * MS);
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.ok(xs[0].flags & ExchangeFlags.NoResponse);
  assert.equal(xs[0].responseStartNs, 0n);
  assert.equal(t.counters().requestsTimedOut, 1);
});

test('a connection closed mid-request is closed out with the request alone', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/x')));
  t.feed(s.close(1001n * MS));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.ok(xs[0].flags & ExchangeFlags.ClosedBeforeResponse);
});

test('fd reuse never merges two connections: a new generation closes the old one', () => {
  const t = tracker();
  const first = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  const second = new ConnScript({ pid: 100, fd: 7, generation: 2, role: Role.Server }, { ...serverTuple, remotePort: 50001 });
  t.feed(first.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/old')));
  t.feed(second.message(1001n * MS, Dir.Ingress, Cls.Request, GET('/new')));
  t.feed(second.message(1002n * MS, Dir.Egress, Cls.Response, OK));
  t.feed(second.close(1003n * MS));
  const xs = take(t);
  assert.deepEqual(xs.map((x) => [x.generation, x.remotePort, Boolean(x.flags & ExchangeFlags.ClosedBeforeResponse)]), [
    [1, 50000, true],
    [2, 50001, false],
  ]);
  assert.match(xs[1].requestHead.toString('latin1'), /\/new/);
});

test('a lost boundary abandons what was in flight and is counted', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/1')));
  s.message(1001n * MS, Dir.Egress, Cls.Response, OK); // lost in the ring buffer
  t.feed(s.message(1002n * MS, Dir.Ingress, Cls.Request, GET('/2')));
  t.feed(s.message(1003n * MS, Dir.Egress, Cls.Response, OK));
  t.feed(s.close(1004n * MS));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.match(xs[0].requestHead.toString('latin1'), /\/2/);
  assert.equal(t.counters().messagesLost, 1);
  assert.equal(t.counters().exchangesAbandoned, 1);
});

test('a connection first seen mid-life gets its role from the first request, and a stray response is counted', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 9, generation: 1, role: Role.Unknown }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Egress, Cls.Response, OK)); // answer to a request sent before we started
  t.feed(s.message(1001n * MS, Dir.Ingress, Cls.Request, GET('/later')));
  t.feed(s.message(1002n * MS, Dir.Egress, Cls.Response, OK));
  t.feed(s.close(1003n * MS));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.equal(xs[0].role, 'server');
  assert.ok(xs[0].flags & ExchangeFlags.PreexistingConnection);
  assert.equal(t.counters().responsesWithoutRequest, 1);
});

test('client and server on one host: the server span continues the client span of the mirrored connection', () => {
  const t = tracker();
  const clientTuple: Tuple = mirrored(serverTuple);
  const client = new ConnScript({ pid: 200, fd: 20, generation: 5, role: Role.Client }, clientTuple);
  const server = new ConnScript({ pid: 100, fd: 7, generation: 6, role: Role.Server }, serverTuple);
  t.feed(client.message(1000n * MS, Dir.Egress, Cls.Request, GET('/api')));
  t.feed(server.message(1000n * MS + 50n, Dir.Ingress, Cls.Request, GET('/api')));
  t.feed(server.message(1001n * MS, Dir.Egress, Cls.Response, OK));
  t.feed(client.message(1001n * MS + 50n, Dir.Ingress, Cls.Response, OK));
  t.feed(server.close(1002n * MS));
  t.feed(client.close(1002n * MS));
  const xs = take(t);
  const c = xs.find((x) => x.role === 'client')!;
  const s = xs.find((x) => x.role === 'server')!;
  assert.ok(c && s);
  assert.equal(c.linkSource, LinkSource.None);
  assert.equal(s.linkSource, LinkSource.PeerClient);
  assert.equal(s.traceId, c.traceId);
  assert.equal(s.parentSpanId, c.spanId);
  assert.ok(s.requestStartNs >= c.requestStartNs && s.responseEndNs <= c.responseEndNs, 'server inside client');
});

test('an incoming traceparent sets the server span trace id and parent, and outgoing calls on that thread join the trace', () => {
  const t = tracker();
  const tp = 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n';
  const server = new ConnScript({ pid: 100, tid: 101, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  const downstream = new ConnScript({ pid: 100, tid: 101, fd: 8, generation: 2, role: Role.Client }, {
    localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 9000,
  });
  t.feed(server.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/checkout', tp)));
  t.feed(downstream.message(1001n * MS, Dir.Egress, Cls.Request, GET('/price')));
  t.feed(downstream.message(1002n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(server.message(1003n * MS, Dir.Egress, Cls.Response, OK));
  t.feed(downstream.close(1004n * MS));
  t.feed(server.close(1004n * MS));
  const xs = take(t);
  const s = xs.find((x) => x.role === 'server')!;
  const c = xs.find((x) => x.role === 'client')!;
  assert.equal(s.linkSource, LinkSource.TraceparentHeader);
  assert.equal(s.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(s.parentSpanId, 'b7ad6b7169203331');
  assert.equal(c.linkSource, LinkSource.EnclosingServer);
  assert.equal(c.traceId, s.traceId);
  assert.equal(c.parentSpanId, s.spanId);
  // The caller's sampled flag, marked as the caller's for the parent-based
  // samplers, and handed down to the call made while serving it.
  assert.equal(s.traceFlags, TRACE_FLAG_FROM_TRACEPARENT | 1);
  assert.equal(c.traceFlags, TRACE_FLAG_FROM_TRACEPARENT | 1);
});

test('a trace sonde starts carries the sampled flag alone: the parent-based samplers then use their root sampler', () => {
  const t = tracker();
  const server = new ConnScript({ pid: 100, tid: 101, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(server.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/checkout')));
  t.feed(server.message(1003n * MS, Dir.Egress, Cls.Response, OK));
  t.feed(server.close(1004n * MS));
  const [s] = take(t);
  assert.equal(s.linkSource, LinkSource.None);
  assert.equal(s.traceFlags, 1);
});

test('an outgoing call is not guessed into a trace when two requests are open on its thread and nothing says which made it', () => {
  const t = tracker();
  const a = new ConnScript({ pid: 100, tid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  const b = new ConnScript({ pid: 100, tid: 100, fd: 8, generation: 2, role: Role.Server }, { ...serverTuple, remotePort: 50002 });
  const out = new ConnScript({ pid: 100, tid: 100, fd: 9, generation: 3, role: Role.Client }, {
    localAddr: '127.0.0.1', localPort: 40001, remoteAddr: '127.0.0.1', remotePort: 9000,
  });
  t.feed(a.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/a')));
  t.feed(b.message(1000n * MS + 1n, Dir.Ingress, Cls.Request, GET('/b')));
  t.feed(out.message(1001n * MS, Dir.Egress, Cls.Request, GET('/price')));
  t.feed(out.message(1002n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(out.close(1003n * MS));
  const c = take(t).find((x) => x.role === 'client')!;
  assert.equal(c.linkSource, LinkSource.None);
  assert.equal(c.parentSpanId, '');
  assert.equal(t.counters().linksAmbiguous, 1);
});

/** Two requests in flight on one event-loop thread (pid 100, tid 100), and the calls they make. */
function eventLoop(t: ReplayTracker) {
  const a = new ConnScript({ pid: 100, tid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  const b = new ConnScript({ pid: 100, tid: 100, fd: 8, generation: 2, role: Role.Server }, { ...serverTuple, remotePort: 50002 });
  const client = (fd: number, port: number) =>
    new ConnScript({ pid: 100, tid: 100, fd, generation: fd, role: Role.Client }, {
      localAddr: '127.0.0.1', localPort: port, remoteAddr: '127.0.0.1', remotePort: 9000,
    });
  const serverSpan = (xs: Seen[], path: string) => xs.find((x) => x.role === 'server' && x.requestHead.includes(path))!;
  const clientSpans = (xs: Seen[], path: string) => xs.filter((x) => x.role === 'client' && x.requestHead.includes(path));
  t.feed(a.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/a')));
  t.feed(b.message(1000n * MS + 1n, Dir.Ingress, Cls.Request, GET('/b')));
  return { a, b, client, serverSpan, clientSpans };
}

test('event loop: a call takes the request of the connection its thread last read, then of the response it resumes after', () => {
  const t = tracker();
  const { a, b, client, serverSpan, clientSpans } = eventLoop(t);
  const first = client(20, 40020); // kept alive, reused by both of /a's sequential calls
  const fanOut1 = client(21, 40021);
  const fanOut2 = client(22, 40022);
  // /a's handler runs after a read of a: its first call.
  t.feed(first.writtenAfterReading(a, 1001n * MS, Cls.Request, GET('/a-1')));
  // /b's Promise.all pair, after a read of b.
  t.feed(fanOut1.writtenAfterReading(b, 1002n * MS, Cls.Request, GET('/b-fan')));
  t.feed(fanOut2.writtenAfterReading(b, 1002n * MS + 1n, Cls.Request, GET('/b-fan')));
  // The answer to /a-1 resumes /a, whose second call follows on the same connection.
  t.feed(first.message(1003n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(first.writtenAfterReading(first, 1004n * MS, Cls.Request, GET('/a-2')));
  t.feed(first.message(1005n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(fanOut1.message(1005n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(fanOut2.message(1005n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(a.message(1006n * MS, Dir.Egress, Cls.Response, OK));
  t.feed(b.message(1006n * MS, Dir.Egress, Cls.Response, OK));
  for (const s of [first, fanOut1, fanOut2, a, b]) t.feed(s.close(1010n * MS));
  const xs = take(t);
  const sa = serverSpan(xs, '/a ');
  const sb = serverSpan(xs, '/b ');
  const [a1] = clientSpans(xs, '/a-1');
  const [a2] = clientSpans(xs, '/a-2');
  assert.equal(a1.linkSource, LinkSource.CausingRead);
  assert.deepEqual([a1.traceId, a1.parentSpanId], [sa.traceId, sa.spanId]);
  assert.deepEqual([a2.traceId, a2.parentSpanId], [sa.traceId, sa.spanId], 'the second call, after the first answer');
  const fan = clientSpans(xs, '/b-fan');
  assert.equal(fan.length, 2);
  for (const c of fan) assert.deepEqual([c.traceId, c.parentSpanId], [sb.traceId, sb.spanId]);
  assert.equal(t.counters().linksAmbiguous, 0);
  assert.equal(t.counters().linksByCause, 4);
});

test('event loop: the first call on a new connection takes the request its thread served at connect(), whatever it read since', () => {
  const t = tracker();
  const { a, b, client, serverSpan, clientSpans } = eventLoop(t);
  const upstream = client(20, 40020);
  // nginx: /a's handler connects upstream; the connection completes a few
  // loop turns later, after a read of b, and only then is /a's call written.
  t.feed(upstream.connect(1001n * MS, a));
  t.feed(upstream.writtenAfterReading(b, 1003n * MS, Cls.Request, GET('/a-up')));
  t.feed(upstream.message(1004n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(upstream.close(1005n * MS));
  const xs = take(t);
  const [up] = clientSpans(xs, '/a-up');
  assert.equal(up.linkSource, LinkSource.ConnectTime);
  for (const s of [a, b]) t.feed(s.message(1006n * MS, Dir.Egress, Cls.Response, OK));
  for (const s of [a, b]) t.feed(s.close(1007n * MS));
  const sa = serverSpan(take(t), '/a ');
  assert.deepEqual([up.traceId, up.parentSpanId], [sa.traceId, sa.spanId]);
});

test('event loop: a call written on the connection whose answer was just read is left a root while another request has nothing in flight', () => {
  // Node's agent at maxSockets: /b's call waits in the agent's queue, and
  // the agent writes it on x as soon as /a's answer frees x, in the very
  // callback that would have carried /a's own next call.
  const t = tracker();
  const { a, b, client, serverSpan, clientSpans } = eventLoop(t);
  const x = client(20, 40020);
  t.feed(x.writtenAfterReading(a, 1001n * MS, Cls.Request, GET('/a-1')));
  t.feed(x.message(1002n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(x.writtenAfterReading(x, 1002n * MS + 1n, Cls.Request, GET('/queued')));
  // Still in the callback of /a-1's answer, /a's next call goes out on a
  // new connection: that answer, not the call just written on x, says whose.
  const y = client(21, 40021);
  t.feed(y.writtenAfterReading(x, 1002n * MS + 2n, Cls.Request, GET('/a-2')));
  t.feed(x.message(1003n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(y.message(1003n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(a.message(1004n * MS, Dir.Egress, Cls.Response, OK));
  for (const s of [x, y, a, b]) t.feed(s.close(1004n * MS));
  const xs = take(t);
  const [queued] = clientSpans(xs, '/queued');
  assert.equal(queued.linkSource, LinkSource.None);
  assert.equal(queued.parentSpanId, '');
  assert.equal(t.counters().linksAmbiguous, 1);
  const [a2] = clientSpans(xs, '/a-2');
  const sa = serverSpan(xs, '/a ');
  assert.equal(a2.linkSource, LinkSource.CausingRead);
  assert.deepEqual([a2.traceId, a2.parentSpanId], [sa.traceId, sa.spanId]);
});

test('event loop: a call written on the connection whose answer was just read continues that request when every other request has a call in flight', () => {
  const t = tracker();
  const { a, b, client, serverSpan, clientSpans } = eventLoop(t);
  const x = client(20, 40020);
  const y = client(21, 40021);
  t.feed(x.writtenAfterReading(a, 1001n * MS, Cls.Request, GET('/a-1')));
  // /b's call is pending on a connect, which counts as in flight.
  t.feed(y.connect(1001n * MS + 1n, b));
  t.feed(x.message(1002n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(x.writtenAfterReading(x, 1002n * MS + 1n, Cls.Request, GET('/a-2')));
  t.feed(y.writtenAfterReading(x, 1002n * MS + 2n, Cls.Request, GET('/b-1')));
  t.feed(x.message(1003n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(y.message(1003n * MS, Dir.Ingress, Cls.Response, OK));
  for (const s of [a, b]) t.feed(s.message(1004n * MS, Dir.Egress, Cls.Response, OK));
  for (const s of [x, y, a, b]) t.feed(s.close(1005n * MS));
  const xs = take(t);
  const [a2] = clientSpans(xs, '/a-2');
  const [b1] = clientSpans(xs, '/b-1');
  const sa = serverSpan(xs, '/a ');
  const sb = serverSpan(xs, '/b ');
  assert.equal(a2.linkSource, LinkSource.CausingRead);
  assert.deepEqual([a2.traceId, a2.parentSpanId], [sa.traceId, sa.spanId]);
  assert.equal(b1.linkSource, LinkSource.ConnectTime);
  assert.deepEqual([b1.traceId, b1.parentSpanId], [sb.traceId, sb.spanId]);
  assert.equal(t.counters().linksAmbiguous, 0);
});

test('event loop: a connect after a read of nothing sonde follows leaves its first call a root, counted ambiguous', () => {
  const t = tracker();
  const { a, b, client, clientSpans } = eventLoop(t);
  const upstream = client(20, 40020);
  // Node resolves a host name on its thread pool and connects in the
  // callback of the wake-up read; the write's own last read (b) says nothing.
  t.feed(upstream.connect(1001n * MS, null));
  t.feed(upstream.writtenAfterReading(b, 1003n * MS, Cls.Request, GET('/who')));
  t.feed(upstream.message(1004n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(upstream.close(1005n * MS));
  const [who] = clientSpans(take(t), '/who');
  assert.equal(who.linkSource, LinkSource.None);
  assert.equal(who.parentSpanId, '');
  assert.equal(t.counters().linksAmbiguous, 1);
  for (const s of [a, b]) t.feed(s.close(1006n * MS));
});

test('thread per request: a call after a read of a database sonde does not follow takes the one request open on its thread', () => {
  const t = tracker();
  const server = new ConnScript({ pid: 100, tid: 101, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  const out = new ConnScript({ pid: 100, tid: 101, fd: 8, generation: 2, role: Role.Client }, {
    localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 9000,
  });
  t.feed(server.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/order')));
  t.feed(out.writtenAfterReading(null, 1001n * MS, Cls.Request, GET('/stock')));
  t.feed(out.message(1002n * MS, Dir.Ingress, Cls.Response, OK));
  t.feed(server.message(1003n * MS, Dir.Egress, Cls.Response, OK));
  for (const s of [out, server]) t.feed(s.close(1004n * MS));
  const xs = take(t);
  const s = xs.find((x) => x.role === 'server')!;
  const c = xs.find((x) => x.role === 'client')!;
  assert.equal(c.linkSource, LinkSource.EnclosingServer);
  assert.deepEqual([c.traceId, c.parentSpanId], [s.traceId, s.spanId]);
});

test("sonde's own connections are never traced on the receiving side", () => {
  const t = tracker();
  const exportTuple: Tuple = { localAddr: '127.0.0.1', localPort: 45000, remoteAddr: '127.0.0.1', remotePort: 9411 };
  t.feed(selfConnect({ pid: 1, fd: 30, generation: 0, ts: 999n * MS }, exportTuple));
  const receiver = new ConnScript({ pid: 300, fd: 5, generation: 1, role: Role.Server }, mirrored(exportTuple));
  t.feed(receiver.message(1000n * MS, Dir.Ingress, Cls.Request, 'POST /api/v2/spans HTTP/1.1\r\n\r\n'));
  t.feed(receiver.message(1001n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 202 Accepted\r\n\r\n'));
  t.feed(receiver.close(1002n * MS));
  assert.equal(take(t).length, 0);
  assert.equal(t.counters().selfConnectionsIgnored, 1);
});

test('a process exit closes its connections', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/bye')));
  t.feed(processExit({ pid: 100, fd: -1, generation: 0, ts: 1001n * MS }));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.ok(xs[0].flags & ExchangeFlags.ClosedBeforeResponse);
  assert.equal(t.counters().connectionsTracked, 0);
});

test('an HTTP/2 connection gives no exchange from its message starts alone: its streams come in frames events', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.H2Preface, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Unknown, '\x00\x00\x00\x04'));
  t.feed(s.close(1002n * MS));
  assert.equal(take(t).length, 0);
});

test('the connection table is bounded: the least recently active connection is evicted and counted', () => {
  const t = tracker({ maxConnections: 16 });
  for (let i = 0; i < 20; i++) {
    const s = new ConnScript({ pid: 100, fd: 100 + i, generation: i + 1, role: Role.Server }, { ...serverTuple, remotePort: 51000 + i });
    t.feed(s.message(BigInt(1000 + i) * MS, Dir.Ingress, Cls.Request, GET(`/${i}`)));
  }
  const c = t.counters();
  assert.equal(c.connectionsTracked, 16);
  assert.equal(c.connectionsEvicted, 4);
  assert.equal(c.exchangesAbandoned, 4);
});

test('garbage records are counted and never crash the correlator', () => {
  const t = tracker();
  let seed = 1234567;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(rand() * 300);
    const buf = Buffer.alloc(len);
    for (let j = 0; j < len; j++) buf[j] = Math.floor(rand() * 256);
    if (len > 0 && rand() < 0.5) buf[0] = 1 + Math.floor(rand() * 4);
    t.feed(buf);
  }
  t.tick(10_000_000n * MS);
  t.finish(10_000_001n * MS);
  const c = t.counters();
  assert.equal(c.eventsRead, 3000);
  assert.ok(c.eventsMalformed > 0);
  decodeExchanges(t.take(), () => undefined);
});

test('a truncated or oversized payload length is rejected as malformed', () => {
  const t = tracker();
  const ev = msgStart({ pid: 1, fd: 3, generation: 1, seq: 1, ts: 1n }, serverTuple, Dir.Ingress, Cls.Request, GET('/'));
  ev.writeUInt32LE(100_000, EVENT_LAYOUT.payloadBytesOffset);
  t.feed(ev);
  t.feed(closeEvent({ pid: 1, fd: 3, generation: 1, seq: 1, ts: 2n }, serverTuple, { lastNs: 2n, bytes: 1, seq: 1, direction: 1 }).subarray(0, 50));
  assert.equal(t.counters().eventsMalformed, 2);
  assert.equal(take(t).length, 0);
});
