/**
 * Where HTTP/1 messages end, as the correlator learns it from the heads the
 * kernel captured and from the kernel's per-connection byte count and tail
 * (stood in for by ReplayTracker.setKernelMessage): Content-Length, chunked
 * bodies with and without trailers, bodies ended by close, HEAD, 204 and
 * 304, interim responses, pipelined messages in one chunk, and request
 * heads that arrive in several pieces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeModule, type ReplayTracker } from '../../src/native/binding';
import { decodeExchanges, ExchangeFlags, LinkSource, requestHeadOf, responseHeadOf } from '../../src/native/exchangeDecoder';
import { Cls, ConnScript, Dir, Role, msgContinue, type Tuple } from './fakeEvents';

const native = loadNativeModule();
const MS = 1_000_000n;
const tuple: Tuple = { localAddr: '127.0.0.1', localPort: 8080, remoteAddr: '127.0.0.1', remotePort: 50000 };
const PID = 100;
const FD = 7;

interface Seen {
  request: string;
  response: string;
  requestStartNs: bigint;
  responseStartNs: bigint;
  responseEndNs: bigint;
  requestBytes: number;
  responseBytes: number;
  flags: number;
  linkSource: number;
  traceId: string;
  parentSpanId: string;
}

function tracker(): ReplayTracker {
  return new native.ReplayTracker({ idSeed: 7, responseQuietMs: 100, responseTimeoutMs: 30_000 });
}

function take(t: ReplayTracker): Seen[] {
  const out: Seen[] = [];
  decodeExchanges(t.take(), (x) =>
    out.push({
      request: requestHeadOf(x).toString('latin1'),
      response: responseHeadOf(x).toString('latin1'),
      requestStartNs: BigInt(x.requestStartNs),
      responseStartNs: BigInt(x.responseStartNs),
      responseEndNs: BigInt(x.responseEndNs),
      requestBytes: x.requestBytes,
      responseBytes: x.responseBytes,
      flags: x.flags,
      linkSource: x.linkSource,
      traceId: x.traceId,
      parentSpanId: x.parentSpanId,
    }),
  );
  return out;
}

function server(): ConnScript {
  return new ConnScript({ pid: PID, fd: FD, generation: 1, role: Role.Server }, tuple);
}

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

test('Content-Length: a response whose body comes 400 ms after its head ends with the body, not at the pause', () => {
  const t = tracker();
  const s = server();
  const head = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n';
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/slow')));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, head));
  // The head alone has been written: the connection is quiet, the body is due.
  t.setKernelMessage(PID, FD, 1, s.seq, 1001n * MS, head.length, Buffer.from(head.slice(-16)));
  t.tick(1200n * MS);
  t.tick(1350n * MS);
  assert.equal(take(t).length, 0, 'not over: 5 body bytes are missing');
  t.setKernelMessage(PID, FD, 1, s.seq, 1401n * MS, head.length + 5, Buffer.from('hello'));
  t.tick(1420n * MS);
  assert.equal(take(t).length, 0, 'checked again only after the quiet period');
  t.tick(1520n * MS);
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.equal(xs[0].responseEndNs, 1401n * MS, 'the span ends with the body');
  assert.equal(xs[0].responseBytes, head.length + 5);
  assert.equal(xs[0].flags, 0);
});

test('chunked: the terminating chunk ends the response, with or without trailers, and a data chunk does not', () => {
  for (const [ending, label] of [
    ['5\r\nhello\r\n0\r\n\r\n', 'no trailer'],
    ['0\r\nX-T: 1\r\n\r\n', 'a trailer in the last write'],
  ] as const) {
    const t = tracker();
    const s = server();
    const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
    t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/stream')));
    t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, head));
    t.setKernelMessage(PID, FD, 1, s.seq, 1300n * MS, head.length + 12, Buffer.from('6\r\nchunk1\r\n\r\n'));
    t.tick(1450n * MS);
    assert.equal(take(t).length, 0, `${label}: a data chunk that ends in CRLF is not the end`);
    t.setKernelMessage(PID, FD, 1, s.seq, 1600n * MS, head.length + 40, Buffer.from(ending));
    t.tick(1750n * MS);
    const xs = take(t);
    assert.equal(xs.length, 1, label);
    assert.equal(xs[0].responseEndNs, 1600n * MS, label);
    assert.equal(xs[0].flags, 0, label);
  }
});

test('a body without length (HTTP/1.0 style) ends at close, however long the pauses', () => {
  const t = tracker();
  const s = server();
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, 'GET /old HTTP/1.0\r\n\r\n'));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome', 2500n * MS, 9000));
  t.setKernelMessage(PID, FD, 1, s.seq, 2500n * MS, 9000, Buffer.from('body'));
  t.tick(2700n * MS);
  t.tick(5000n * MS);
  assert.equal(take(t).length, 0, 'quiet is not the end of a close-delimited body');
  t.feed(s.close(6000n * MS));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.equal(xs[0].responseEndNs, 2500n * MS, 'ends at its last byte, carried by the close');
  assert.equal(xs[0].responseBytes, 9000);
  assert.equal(xs[0].flags & ExchangeFlags.ClosedBeforeResponse, 0);
});

test('HEAD, 204 and 304 have no body whatever their headers say', () => {
  for (const [request, response] of [
    ['HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'],
    [GET('/n'), 'HTTP/1.1 204 No Content\r\n\r\n'],
    [GET('/c', 'If-None-Match: "a"\r\n'), 'HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\nETag: "a"\r\n\r\n'],
  ]) {
    const t = tracker();
    const s = server();
    t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, request));
    t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, response));
    t.setKernelMessage(PID, FD, 1, s.seq, 1002n * MS, response.length, Buffer.from(response.slice(-16)));
    t.tick(1150n * MS);
    const xs = take(t);
    assert.equal(xs.length, 1, response);
    assert.equal(xs[0].responseEndNs, 1002n * MS);
    assert.equal(xs[0].flags, 0, response);
  }
});

test('100 Continue, then the real response in the same write, pairs the real one', () => {
  const t = tracker();
  const s = server();
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, 'POST /p HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n'));
  const both = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n';
  t.feed(s.message(1002n * MS, Dir.Egress, Cls.Response, both));
  t.feed(s.close(1003n * MS));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.match(xs[0].response, /^HTTP\/1\.1 201 Created/);
});

test('a response still open and quiet for the response timeout is closed out and flagged', () => {
  const t = new native.ReplayTracker({ idSeed: 7, responseQuietMs: 100, responseTimeoutMs: 1000 });
  const s = server();
  const head = 'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n';
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/stalled')));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, head));
  t.setKernelMessage(PID, FD, 1, s.seq, 1010n * MS, 5000, Buffer.from('x'.repeat(16)));
  t.tick(1500n * MS);
  assert.equal(take(t).length, 0);
  t.tick(2100n * MS);
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.ok(xs[0].flags & ExchangeFlags.ResponseIncomplete);
  assert.equal(xs[0].responseEndNs, 1010n * MS);
  assert.equal(t.counters().responsesIncomplete, 1);
});

test('where a head ends: CRLF or bare LF line ends, cut apart when two messages share a chunk; a head one byte short of its blank line is not whole', () => {
  for (const eol of ['\r\n', '\n']) {
    const t = tracker();
    const s = server();
    const request = (path: string): string => `GET ${path} HTTP/1.1${eol}Host: x${eol}${eol}`;
    const response = (status: string): string => `HTTP/1.1 ${status}${eol}Content-Type: text/plain${eol}Content-Length: 2${eol}${eol}`;
    t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, request('/1') + request('/2')));
    t.feed(s.message(1002n * MS, Dir.Egress, Cls.Response, `${response('200 OK')}ok${response('201 Created')}ok`));
    t.feed(s.close(1003n * MS));
    const xs = take(t);
    const label = JSON.stringify(eol);
    assert.deepEqual(xs.map((x) => x.request), [request('/1'), request('/2')], label);
    assert.deepEqual(xs.map((x) => x.response), [response('200 OK'), response('201 Created')], label);
    assert.deepEqual(xs.map((x) => x.responseBytes), [response('200 OK').length + 2, response('201 Created').length + 2], label);
  }
  const t = tracker();
  const s = server();
  const short = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r';
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/short')));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, short));
  t.feed(s.close(1002n * MS));
  const [x] = take(t);
  assert.equal(x.response, short, 'the whole capture stands for a head that did not end in it');
});

test('three pipelined requests in one chunk are three exchanges, paired in order with three responses', () => {
  const t = tracker();
  const s = server();
  const three = GET('/1') + 'POST /2 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody' + GET('/3');
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, three));
  t.feed(s.message(1002n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  t.feed(s.message(1003n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'));
  t.feed(s.message(1004n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n'));
  t.feed(s.close(1005n * MS));
  const xs = take(t);
  assert.deepEqual(
    xs.map((x) => [x.request.split(' ').slice(0, 2).join(' '), x.response.split(' ')[1]]),
    [['GET /1', '200'], ['POST /2', '201'], ['GET /3', '202']],
  );
  assert.deepEqual(xs.map((x) => x.requestStartNs), [1000n * MS, 1000n * MS, 1000n * MS]);
  assert.deepEqual(xs.map((x) => x.requestBytes), [GET('/1').length, 'POST /2 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody'.length, GET('/3').length]);
  assert.equal(new Set(xs.map((x) => x.traceId)).size, 3, 'each is its own trace');
});

test('a client reading three pipelined responses in one chunk ends each of them there', () => {
  const t = tracker();
  const c = new ConnScript({ pid: PID, fd: FD, generation: 1, role: Role.Client }, tuple);
  t.feed(c.message(1000n * MS, Dir.Egress, Cls.Request, GET('/a') + GET('/b') + GET('/c')));
  const responses = ['a', 'bb', 'ccc'].map((b) => `HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n${b}`);
  t.feed(c.message(1005n * MS, Dir.Ingress, Cls.Response, responses.join('')));
  const first = take(t);
  assert.equal(first.length, 2, 'the first two are whole inside the chunk');
  assert.deepEqual(first.map((x) => x.responseEndNs), [1005n * MS, 1005n * MS]);
  assert.deepEqual(first.map((x) => x.responseBytes), [responses[0].length, responses[1].length]);
  t.setKernelMessage(PID, FD, 1, c.seq, 1006n * MS, responses.join('').length, Buffer.from(responses.join('').slice(-16)));
  t.tick(1200n * MS);
  const last = take(t);
  assert.equal(last.length, 1);
  assert.match(last[0].request, /^GET \/c /);
  assert.equal(last[0].responseBytes, responses[2].length);
  assert.equal(last[0].responseEndNs, 1006n * MS);
});

test('framing fields are found whatever their case, among fields that share their first letter', () => {
  const t = tracker();
  const c = new ConnScript({ pid: PID, fd: FD, generation: 1, role: Role.Client }, tuple);
  t.feed(c.message(1000n * MS, Dir.Egress, Cls.Request, GET('/a') + GET('/b') + GET('/c')));
  const responses = [
    'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nCONTENT-LENGTH: 3\r\nContent-Type: text/plain\r\n\r\nabc',
    'HTTP/1.1 200 OK\r\nTE: trailers\r\ncache-control: no-store\r\ntransfer-encoding: gzip, Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    // A space before the colon makes it another field name: no length.
    'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok',
  ];
  t.feed(c.message(1005n * MS, Dir.Ingress, Cls.Response, responses.join('')));
  const whole = take(t);
  assert.deepEqual(whole.map((x) => x.responseBytes), [responses[0].length, responses[1].length]);
  t.feed(c.close(1006n * MS));
  const [last] = take(t);
  assert.equal(last.responseBytes, responses[2].length, 'read to the close');
});

test('a request head that arrives in pieces is completed from continuations, traceparent included', () => {
  const t = tracker();
  const s = server();
  const cookie = `Cookie: ${'c'.repeat(3000)}\r\n`;
  const traceparent = 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n';
  const head = `GET /big HTTP/1.1\r\nHost: x\r\n${cookie}${traceparent}\r\n`;
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, head.slice(0, 1024)));
  const seq = s.seq;
  t.feed(msgContinue({ pid: PID, fd: FD, generation: 1, seq, ts: 1000n * MS }, Dir.Ingress, head.slice(1024, 2048)));
  t.feed(msgContinue({ pid: PID, fd: FD, generation: 1, seq, ts: 1001n * MS }, Dir.Ingress, head.slice(2048)));
  t.feed(s.message(1003n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  t.feed(s.close(1004n * MS));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.equal(xs[0].request, head, 'the whole head reaches the parsers');
  assert.equal(xs[0].linkSource, LinkSource.TraceparentHeader);
  assert.equal(xs[0].traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(xs[0].parentSpanId, '00f067aa0ba902b7');
});

test('a continuation of some other message is ignored', () => {
  const t = tracker();
  const s = server();
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, GET('/a')));
  t.feed(msgContinue({ pid: PID, fd: FD, generation: 1, seq: s.seq + 5, ts: 1000n * MS }, Dir.Ingress, 'X-Stray: 1\r\n'));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  t.feed(s.close(1002n * MS));
  const xs = take(t);
  assert.equal(xs.length, 1);
  assert.equal(xs[0].request, GET('/a'));
});
