/**
 * The HTTP/2 stitcher (native/src/core/Http2Stitcher.cc) behind the real
 * ConnTracker, driven through the addon's ReplayTracker with kernel records
 * written byte for byte: a message start, then sonde_h2_frames_events as the
 * kernel's frame walk (bpf/lib/http2_frames.bpf.h) leaves them, DATA frames
 * as their 9-byte header alone.
 *
 * The fuzz test at the end runs SONDE_H2_STITCHER_FUZZ_EVENTS events
 * (default 20000) from SONDE_H2_STITCHER_FUZZ_SEED (default 1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeModule, type NativeCounters, type ReplayTracker } from '../../src/native/binding';
import { decodeExchanges, ExchangeFlags, ExchangeProtocol, LinkSource, requestHeadOf, responseHeadOf, type Exchange } from '../../src/native/exchangeDecoder';
import { mulberry32 } from '../support/random';
import {
  Cls,
  ConnScript,
  Dir,
  EVENT_LAYOUT,
  H2Flags,
  NO_FRAME_START,
  Role,
  h2Frames,
  mirrored,
  type H2FramesOptions,
  type HeaderFields,
  type Tuple,
} from './fakeEvents';

const native = loadNativeModule();
const MS = 1_000_000n;

// ---------------------------------------------------------------------------
// Frames as the kernel sends them, and HPACK blocks written by hand: literal
// fields without indexing unless a test wants the dynamic table.
// ---------------------------------------------------------------------------

const DATA = 0x0, HEADERS = 0x1, PRIORITY = 0x2, RST_STREAM = 0x3, SETTINGS = 0x4, PING = 0x6, GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8, CONTINUATION = 0x9;
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const COPY_BOUND = EVENT_LAYOUT.h2CopyBound;

/** A frame: its header, then as much of its payload as the event carries. */
function frame(type: number, flags: number, streamId: number, payload: Buffer | number[] = [], length?: number): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(9);
  h.writeUIntBE(length ?? body.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([h, body]);
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
/** A DATA frame of `length` payload bytes, as the kernel sends it: the header alone. */
const data = (streamId: number, length: number, flags = 0): Buffer => frame(DATA, flags, streamId, [], length);
const rst = (streamId: number, code: number): Buffer => frame(RST_STREAM, 0, streamId, u32(code));
const goaway = (lastStreamId: number, code: number): Buffer => frame(GOAWAY, 0, 0, Buffer.concat([u32(lastStreamId), u32(code)]));
const settings = (pairs: Array<[number, number]> = []): Buffer =>
  frame(SETTINGS, 0, 0, Buffer.concat(pairs.map(([id, v]) => Buffer.concat([Buffer.from([id >> 8, id & 0xff]), u32(v)]))));
const settingsAck = (): Buffer => frame(SETTINGS, ACK, 0);

/** RFC 7541 §5.1 integer with an N-bit prefix, the first byte's high bits given. */
function hpackInt(n: number, prefixBits: number, high: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (n < max) return [high | n];
  const out = [high | max];
  n -= max;
  while (n >= 128) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const hpackString = (s: string): Buffer => {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([Buffer.from(hpackInt(b.length, 7, 0)), b]);
};
type Field = [string, string];
/** §6.2.2 literal without indexing, new name. */
const literal = ([name, value]: Field): Buffer => Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
/** §6.2.1 literal with incremental indexing, new name: enters the dynamic table. */
const literalIndexed = ([name, value]: Field): Buffer => Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
/** §6.1 indexed field: 1..61 static, 62.. dynamic. */
const indexed = (i: number): Buffer => Buffer.from(hpackInt(i, 7, 0x80));
const block = (fields: Field[]): Buffer => Buffer.concat(fields.map(literal));
const headers = (streamId: number, fields: Field[] | Buffer, flags = 0): Buffer =>
  frame(HEADERS, flags | END_HEADERS, streamId, Buffer.isBuffer(fields) ? fields : block(fields));

const GET = (path: string, extra: Field[] = []): Field[] => [[':method', 'GET'], [':scheme', 'http'], [':path', path], [':authority', 'localhost'], ...extra];
const POST = (path: string, extra: Field[] = []): Field[] => [[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', 'localhost'], ...extra];
const STATUS = (code: number, extra: Field[] = []): Field[] => [[':status', String(code)], ...extra];
/** HTTP2_PAYLOAD (ExchangeRecord.h): one "name: value\r\n" line per field. */
const lines = (fields: Field[]): string => fields.map(([n, v]) => `${n}: ${v}\r\n`).join('');

/** Offsets of the frame headers in a run of kernel-view frames. */
function frameStarts(bytes: Buffer): number[] {
  const out: number[] = [];
  let at = 0;
  while (at + 9 <= bytes.length) {
    out.push(at);
    const length = bytes.readUIntBE(at, 3);
    at += 9 + (bytes[at + 3] === DATA ? 0 : Math.min(length, COPY_BOUND));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Connections.
// ---------------------------------------------------------------------------

const serverTuple: Tuple = { localAddr: '127.0.0.1', localPort: 8443, remoteAddr: '127.0.0.1', remotePort: 51000 };

function tracker(options: Record<string, number> = {}): ReplayTracker {
  return new native.ReplayTracker({ idSeed: 7, responseQuietMs: 100, responseTimeoutMs: 1000, ...options });
}

/**
 * One end of an HTTP/2 connection as the kernel reports it: a message start,
 * then frames events numbered per direction; each direction's first event carries
 * SYNC_START (and MID_LIFE on a connection joined mid-life).
 */
class H2Conn {
  readonly s: ConnScript;
  #started = [false, false];
  constructor(
    readonly t: ReplayTracker,
    h: Omit<HeaderFields, 'ts' | 'seq'>,
    tuple: Tuple,
    readonly midLife = false,
  ) {
    this.s = new ConnScript(h, tuple);
  }

  /** The message start: the client preface in `direction`, or frames seen mid-life. */
  start(ts: bigint, direction: number, cls: number = Cls.H2Preface): this {
    this.t.feed(this.s.message(ts, direction, cls, (cls === Cls.H2Preface ? PREFACE : frame(SETTINGS, 0, 0)).toString('latin1')));
    return this;
  }

  /**
   * One frames event; a frame (header) starts at offset 0 unless told
   * otherwise. The kernel always says 0 with SYNC_START.
   */
  send(ts: bigint, direction: number, bytes: Buffer, o: H2FramesOptions = {}): this {
    const d = direction - 1;
    let flags = o.flags ?? 0;
    if (!this.#started[d]) {
      flags |= H2Flags.SyncStart | (this.midLife ? H2Flags.MidLife : 0);
      this.#started[d] = true;
    }
    this.t.feed(this.s.frames(ts, direction, bytes, { firstFrameOffset: bytes.length ? 0 : NO_FRAME_START, ...o, flags }));
    return this;
  }

  /** Frames that do not fit one event, cut at frame boundaries into events of at most SONDE_H2_EVENT_BYTES. */
  sendMany(ts: bigint, direction: number, frames: Buffer[]): this {
    let cur: Buffer[] = [];
    let n = 0;
    for (const f of frames) {
      if (n + f.length > EVENT_LAYOUT.h2EventBytes) {
        this.send(ts, direction, Buffer.concat(cur));
        cur = [];
        n = 0;
      }
      cur.push(f);
      n += f.length;
    }
    if (cur.length) this.send(ts, direction, Buffer.concat(cur));
    return this;
  }

  /** A frames event of `direction` the kernel sent that never arrived (ring buffer full): a gap in that direction's numbers. */
  lose(direction: number): this {
    this.s.framesSeq[direction] = (this.s.framesSeq[direction] ?? 0) + 1;
    return this;
  }

  close(ts: bigint): this {
    this.t.feed(this.s.close(ts));
    return this;
  }
}

interface Seen extends Exchange {
  req: string;
  res: string;
}

function take(t: ReplayTracker): Seen[] {
  const out: Seen[] = [];
  decodeExchanges(t.take(), (x) => out.push({ ...x, req: requestHeadOf(x).toString('latin1'), res: responseHeadOf(x).toString('latin1') }));
  return out;
}

function only(xs: Seen[]): Seen {
  assert.equal(xs.length, 1, `one exchange, got ${xs.length}`);
  return xs[0];
}

const has = (x: Seen, flag: number): boolean => (x.flags & flag) !== 0;

// A server's view of one GET /x answered with 200 and 123 bytes, and the
// times its events carry.
const T_REQ = 1000n * MS, T_RES = 1002n * MS, T_END = 1005n * MS;
const SIMPLE_INGRESS = Buffer.concat([settings([[0x3, 100]]), headers(1, GET('/x'), END_STREAM), settingsAck()]);
const SIMPLE_EGRESS_HEAD = Buffer.concat([settings(), settingsAck(), headers(1, STATUS(200, [['content-type', 'text/plain']])), data(1, 100)]);
const SIMPLE_EGRESS_END = data(1, 23, END_STREAM);

function checkSimple(x: Seen): void {
  assert.equal(x.protocol, ExchangeProtocol.Http2);
  assert.equal(x.role, 'server');
  assert.equal(x.streamId, 1);
  assert.equal(x.flags, 0);
  assert.equal(x.endErrorCode, 0);
  assert.equal(x.req, lines(GET('/x')));
  assert.ok(x.req.includes(':method: GET\r\n') && x.req.includes(':path: /x\r\n'));
  assert.equal(x.res, lines(STATUS(200, [['content-type', 'text/plain']])));
  assert.equal(x.requestBytes, 0);
  assert.equal(x.responseBytes, 123);
  assert.equal(BigInt(x.requestStartNs), T_REQ);
  assert.equal(BigInt(x.requestEndNs), T_REQ);
  assert.equal(BigInt(x.responseStartNs), T_RES);
  assert.equal(BigInt(x.responseEndNs), T_END);
  assert.equal(x.linkSource, LinkSource.None);
  assert.equal(x.pid, 100);
  assert.equal(x.localPort, 8443);
}

// ---------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------

test('a server stream is the parent of the calls made after a read of its request alone; after a read of two, they are roots, counted', () => {
  const t = tracker();
  // The client of this connection is not traced here: the server streams are linked as their requests are read.
  const server = new H2Conn(t, { pid: 300, tid: 300, fd: 9, generation: 1, role: Role.Server }, serverTuple).start(1000n * MS, Dir.Ingress);
  server.send(1000n * MS, Dir.Egress, settings());
  const downstream = (fd: number, port: number) =>
    new ConnScript({ pid: 300, tid: 300, fd, generation: fd, role: Role.Client }, { localAddr: '127.0.0.1', localPort: port, remoteAddr: '127.0.0.1', remotePort: 9000 });
  const GET1 = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
  const OK1 = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
  // One read, one stream's request: its handler's call.
  server.send(1001n * MS, Dir.Ingress, headers(1, GET('/alone'), END_HEADERS | END_STREAM));
  const a = downstream(20, 40020);
  t.feed(a.writtenAfterReading(server.s, 1002n * MS, Cls.Request, GET1('/from-alone')));
  // One read, two streams' requests: which handler made each call is not known.
  server.send(1003n * MS, Dir.Ingress, Buffer.concat([headers(3, GET('/pair-1'), END_HEADERS | END_STREAM), headers(5, GET('/pair-2'), END_HEADERS | END_STREAM)]));
  const b = downstream(21, 40021);
  t.feed(b.writtenAfterReading(server.s, 1004n * MS, Cls.Request, GET1('/from-pair')));
  for (const c of [a, b]) t.feed(c.message(1005n * MS, Dir.Ingress, Cls.Response, OK1));
  for (const id of [1, 3, 5]) server.send(1006n * MS, Dir.Egress, headers(id, STATUS(200), END_HEADERS | END_STREAM));
  for (const c of [a, b]) t.feed(c.close(1007n * MS));
  server.close(1007n * MS);
  const xs = take(t);
  const stream1 = xs.find((x) => x.role === 'server' && x.streamId === 1)!;
  const fromAlone = xs.find((x) => x.role === 'client' && x.req.includes('/from-alone'))!;
  const fromPair = xs.find((x) => x.role === 'client' && x.req.includes('/from-pair'))!;
  assert.equal(fromAlone.linkSource, LinkSource.CausingRead);
  assert.deepEqual([fromAlone.traceId, fromAlone.parentSpanId], [stream1.traceId, stream1.spanId]);
  assert.equal(fromPair.linkSource, LinkSource.None);
  assert.equal(fromPair.parentSpanId, '');
  assert.equal(t.counters().linksAmbiguous, 1);
});

test('server, from the preface: one stream is one exchange with decoded fields, DATA lengths and event times', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(T_REQ, Dir.Ingress).send(T_REQ, Dir.Ingress, SIMPLE_INGRESS);
  c.send(T_RES, Dir.Egress, SIMPLE_EGRESS_HEAD);
  assert.equal(take(t).length, 0, 'not over before END_STREAM');
  c.send(T_END, Dir.Egress, SIMPLE_EGRESS_END);
  checkSimple(only(take(t)));
  c.close(T_END + MS);
  assert.equal(take(t).length, 0);
  const k = t.counters();
  assert.equal(k.exchangesEmitted, 1);
  assert.equal(k.messagesLost, 0);
  assert.equal(k.h2FrameErrors, 0);
  assert.equal(k.h2HpackErrors, 0);
  assert.equal(k.connectionsTracked, 0);
});

test('server: a preface event of its own, then frames that a server wrote before reading it', () => {
  // The kernel sees a server's SETTINGS first (accept seen): a message start of
  // class FRAMES on egress, role known, no MID_LIFE; the preface comes after.
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(T_REQ - MS, Dir.Egress, Cls.H2Frames).send(T_REQ - MS, Dir.Egress, settings([[0x3, 250]]));
  c.send(T_REQ, Dir.Ingress, SIMPLE_INGRESS);
  c.send(T_RES, Dir.Egress, SIMPLE_EGRESS_HEAD.subarray(settings().length));
  c.send(T_END, Dir.Egress, SIMPLE_EGRESS_END);
  const x = only(take(t));
  checkSimple(x);
  assert.equal(x.flags & ExchangeFlags.PreexistingConnection, 0);
});

test('frames split across events at every byte boundary give the same exchange', () => {
  const ingress = SIMPLE_INGRESS;
  const egress = Buffer.concat([SIMPLE_EGRESS_HEAD, SIMPLE_EGRESS_END]);
  /** Both directions, each cut in two at its own point; every event of a direction at one time. */
  const run = (inAt: number, egAt: number): Omit<Seen, 'payload'> => {
    const t = tracker();
    const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
    c.start(T_REQ, Dir.Ingress);
    const send = (ts: bigint, dir: number, bytes: Buffer, at: number): void => {
      const starts = frameStarts(bytes);
      for (const [from, to] of [[0, at], [at, bytes.length]]) {
        const first = starts.find((s) => s >= from && s < to);
        c.send(ts, dir, bytes.subarray(from, to), { firstFrameOffset: first === undefined ? NO_FRAME_START : first - from });
      }
    };
    send(T_REQ, Dir.Ingress, ingress, inAt);
    send(T_RES, Dir.Egress, egress, egAt);
    const { payload, ...x } = only(take(t));
    void payload;
    return x;
  };
  const whole = run(ingress.length, egress.length);
  assert.equal(whole.req, lines(GET('/x')));
  assert.equal(whole.res, lines(STATUS(200, [['content-type', 'text/plain']])));
  assert.equal(whole.responseBytes, 123);
  for (let at = 0; at <= ingress.length; at++) assert.deepEqual(run(at, egress.length), whole, `ingress cut at ${at}`);
  for (let at = 0; at <= egress.length; at++) assert.deepEqual(run(ingress.length, at), whole, `egress cut at ${at}`);
});

test('a frame header split 4+5 and a header block split mid-field, over three events', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(T_REQ, Dir.Ingress);
  // (The kernel itself sends a frame header whole, in the event where it
  // completes; the reader must not depend on it.)
  const h = headers(1, GET('/x'), END_STREAM);
  c.send(T_REQ, Dir.Ingress, h.subarray(0, 4));
  c.send(T_REQ, Dir.Ingress, h.subarray(4, 9 + 7), { firstFrameOffset: NO_FRAME_START });
  c.send(T_REQ, Dir.Ingress, h.subarray(9 + 7), { firstFrameOffset: NO_FRAME_START });
  c.send(T_RES, Dir.Egress, SIMPLE_EGRESS_HEAD).send(T_END, Dir.Egress, SIMPLE_EGRESS_END);
  checkSimple(only(take(t)));
});

test('interleaved streams 1, 3 and 5 finishing out of order are three exchanges, each with its own fields and bytes', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress);
  c.send(1000n * MS, Dir.Ingress, Buffer.concat([settings(), headers(1, POST('/s1')), headers(3, POST('/s3')), data(1, 10), headers(5, POST('/s5')), data(3, 30, END_STREAM)]));
  c.send(1001n * MS, Dir.Ingress, Buffer.concat([data(5, 50), data(1, 11, END_STREAM), data(5, 5, END_STREAM)]));
  c.send(1002n * MS, Dir.Egress, Buffer.concat([headers(3, STATUS(203)), headers(1, STATUS(201)), data(3, 300, END_STREAM)]));
  c.send(1003n * MS, Dir.Egress, Buffer.concat([headers(5, STATUS(205), END_STREAM)]));
  c.send(1004n * MS, Dir.Egress, Buffer.concat([data(1, 100), data(1, 1, END_STREAM)]));
  const xs = take(t);
  assert.deepEqual(
    xs.map((x) => [x.streamId, x.req.match(/:path: (\S+)/)?.[1], x.res.match(/:status: (\d+)/)?.[1], x.requestBytes, x.responseBytes, x.flags]),
    [
      [3, '/s3', '203', 30, 300, 0],
      [5, '/s5', '205', 55, 0, 0],
      [1, '/s1', '201', 21, 101, 0],
    ],
  );
  const s1 = xs[2];
  assert.equal(BigInt(s1.requestEndNs), 1001n * MS);
  assert.equal(BigInt(s1.responseStartNs), 1002n * MS);
  assert.equal(BigInt(s1.responseEndNs), 1004n * MS);
  assert.equal(new Set(xs.map((x) => x.spanId)).size, 3);
});

test('gRPC: response headers, an empty line, then the trailers', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  const req = POST('/pkg.Service/Method', [['content-type', 'application/grpc'], ['te', 'trailers']]);
  c.start(1000n * MS, Dir.Ingress).send(1000n * MS, Dir.Ingress, Buffer.concat([settings(), headers(1, req), data(1, 17, END_STREAM)]));
  c.send(1001n * MS, Dir.Egress, Buffer.concat([settings(), headers(1, STATUS(200, [['content-type', 'application/grpc']])), data(1, 12)]));
  c.send(1002n * MS, Dir.Egress, headers(1, [['grpc-status', '0'], ['grpc-message', 'ok']], END_STREAM));
  const x = only(take(t));
  assert.equal(x.req, lines(req));
  assert.equal(x.res, ':status: 200\r\ncontent-type: application/grpc\r\n\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n');
  assert.equal(x.requestBytes, 17);
  assert.equal(x.responseBytes, 12);
  assert.equal(BigInt(x.responseEndNs), 1002n * MS);
  assert.equal(x.flags, 0);
});

test('gRPC trailers-only: one HEADERS with END_STREAM is the whole response', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress).send(1000n * MS, Dir.Ingress, Buffer.concat([headers(1, POST('/pkg.S/M')), data(1, 5, END_STREAM)]));
  c.send(1001n * MS, Dir.Egress, headers(1, STATUS(200, [['content-type', 'application/grpc'], ['grpc-status', '12']]), END_STREAM));
  const x = only(take(t));
  assert.equal(x.res, lines(STATUS(200, [['content-type', 'application/grpc'], ['grpc-status', '12']])));
});

test('an interim 100 response does not start the response; the final one does', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress).send(1000n * MS, Dir.Ingress, headers(1, POST('/up', [['expect', '100-continue']])));
  c.send(1001n * MS, Dir.Egress, headers(1, STATUS(100)));
  c.send(1002n * MS, Dir.Ingress, data(1, 1000, END_STREAM));
  c.send(1003n * MS, Dir.Egress, headers(1, STATUS(204), END_STREAM));
  const x = only(take(t));
  assert.equal(x.res, lines(STATUS(204)));
  assert.equal(BigInt(x.responseStartNs), 1003n * MS);
  assert.equal(x.requestBytes, 1000);
});

test('RST_STREAM ends its stream with StreamReset and its error code, from either end', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress).send(1000n * MS, Dir.Ingress, Buffer.concat([headers(1, GET('/a'), END_STREAM), headers(3, GET('/b'), END_STREAM)]));
  c.send(1001n * MS, Dir.Egress, rst(1, 0x8)); // the server cancels stream 1 before answering
  c.send(1002n * MS, Dir.Egress, Buffer.concat([headers(3, STATUS(200)), data(3, 10)]));
  c.send(1003n * MS, Dir.Ingress, rst(3, 0x2)); // the client gives up on stream 3
  c.send(1004n * MS, Dir.Ingress, rst(9, 0x1)); // a stream never seen: ignored
  const xs = take(t);
  assert.deepEqual(xs.map((x) => [x.streamId, has(x, ExchangeFlags.StreamReset), x.endErrorCode]), [[1, true, 8], [3, true, 2]]);
  assert.equal(xs[0].responseStartNs, 0);
  assert.equal(BigInt(xs[0].requestEndNs), 1001n * MS, 'a reset before any answer is where the exchange (and its span) ends');
  assert.equal(xs[1].res, lines(STATUS(200)));
  assert.equal(BigInt(xs[1].responseEndNs), 1003n * MS, 'a reset ends the response it interrupts');
  assert.equal(xs[1].responseBytes, 10);
});

test("the server's GOAWAY ends the streams above its last stream id; the client's does not", () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress);
  c.send(1000n * MS, Dir.Ingress, Buffer.concat([1, 3, 5].map((id) => headers(id, GET(`/${id}`), END_STREAM))));
  c.send(1001n * MS, Dir.Ingress, goaway(0, 0)); // sent by the client: says nothing of the server's answers
  assert.equal(take(t).length, 0);
  c.send(1002n * MS, Dir.Egress, goaway(1, 0xb));
  let xs = take(t);
  assert.deepEqual(xs.map((x) => [x.streamId, has(x, ExchangeFlags.StreamReset), x.endErrorCode]), [[3, true, 0xb], [5, true, 0xb]]);
  c.send(1003n * MS, Dir.Egress, Buffer.concat([headers(1, STATUS(200)), data(1, 4, END_STREAM)]));
  xs = take(t);
  assert.deepEqual(xs.map((x) => [x.streamId, x.flags, x.endErrorCode]), [[1, 0, 0]]);
});

test('client side, from its preface on egress: role client', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 200, fd: 20, generation: 1, role: Role.Client }, mirrored(serverTuple));
  c.start(1000n * MS, Dir.Egress).send(1000n * MS, Dir.Egress, Buffer.concat([settings(), headers(1, GET('/x'), END_STREAM)]));
  c.send(1001n * MS, Dir.Ingress, Buffer.concat([settings(), settingsAck(), headers(1, STATUS(200)), data(1, 9, END_STREAM)]));
  const x = only(take(t));
  assert.equal(x.role, 'client');
  assert.equal(x.streamId, 1);
  assert.equal(x.req, lines(GET('/x')));
  assert.equal(x.res, lines(STATUS(200)));
  assert.equal(x.responseBytes, 9);
});

test('client side, role from the preface alone: the kernel saw neither accept nor connect', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 200, fd: 20, generation: 1, role: Role.Unknown }, mirrored(serverTuple));
  c.start(1000n * MS, Dir.Egress).send(1000n * MS, Dir.Egress, headers(1, GET('/x'), END_STREAM));
  c.send(1001n * MS, Dir.Ingress, Buffer.concat([headers(1, STATUS(200)), data(1, 9, END_STREAM)]));
  assert.equal(only(take(t)).role, 'client');
});

test('same host: the server stream continues the client stream of the mirrored connection with the same id', () => {
  const t = tracker();
  const client = new H2Conn(t, { pid: 200, fd: 20, generation: 1, role: Role.Client }, mirrored(serverTuple));
  const server = new H2Conn(t, { pid: 100, fd: 7, generation: 2, role: Role.Server }, serverTuple);
  client.start(1000n * MS, Dir.Egress).send(1000n * MS, Dir.Egress, Buffer.concat([headers(1, GET('/one'), END_STREAM), headers(3, GET('/three'), END_STREAM)]));
  // The server reads stream 3's request first: pairing is by stream id, not order.
  server.start(1001n * MS, Dir.Ingress).send(1001n * MS, Dir.Ingress, Buffer.concat([headers(3, GET('/three'), END_STREAM), headers(1, GET('/one'), END_STREAM)]));
  server.send(1002n * MS, Dir.Egress, Buffer.concat([headers(1, STATUS(200), END_STREAM), headers(3, STATUS(200), END_STREAM)]));
  client.send(1003n * MS, Dir.Ingress, Buffer.concat([headers(1, STATUS(200), END_STREAM), headers(3, STATUS(200), END_STREAM)]));
  const xs = take(t);
  assert.equal(xs.length, 4);
  for (const id of [1, 3]) {
    const c = xs.find((x) => x.role === 'client' && x.streamId === id)!;
    const s = xs.find((x) => x.role === 'server' && x.streamId === id)!;
    assert.ok(c && s, `stream ${id}`);
    assert.equal(c.linkSource, LinkSource.None);
    assert.equal(s.linkSource, LinkSource.PeerClient, `stream ${id}`);
    assert.equal(s.traceId, c.traceId, `stream ${id}`);
    assert.equal(s.parentSpanId, c.spanId, `stream ${id}`);
  }
  const clients = xs.filter((x) => x.role === 'client');
  assert.notEqual(clients[0].traceId, clients[1].traceId, 'each stream is a trace of its own');
});

test('same host: a server that answers after the peer-context lifetime (10 s) still continues the client stream', () => {
  const t = tracker({ responseTimeoutMs: 60_000 });
  const client = new H2Conn(t, { pid: 200, fd: 20, generation: 1, role: Role.Client }, mirrored(serverTuple));
  const server = new H2Conn(t, { pid: 100, fd: 7, generation: 2, role: Role.Server }, serverTuple);
  client.start(1000n * MS, Dir.Egress).send(1000n * MS, Dir.Egress, headers(1, POST('/slow')));
  server.start(1001n * MS, Dir.Ingress).send(1001n * MS, Dir.Ingress, headers(1, POST('/slow')));
  // Ticks prune what is older than the lifetime, every second.
  for (let s = 2n; s <= 25n; s++) t.tick(s * 1000n * MS);
  server.send(25_000n * MS, Dir.Egress, headers(1, STATUS(200), END_STREAM));
  client.send(25_001n * MS, Dir.Ingress, headers(1, STATUS(200), END_STREAM));
  const xs = take(t);
  const c = xs.find((x) => x.role === 'client')!;
  const s = xs.find((x) => x.role === 'server')!;
  assert.equal(s.linkSource, LinkSource.PeerClient);
  assert.equal(s.parentSpanId, c.spanId);
});

test('a traceparent header gives the server stream its trace id and parent', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  const tp: Field = ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'];
  c.start(1000n * MS, Dir.Ingress).send(1000n * MS, Dir.Ingress, Buffer.concat([headers(1, GET('/t', [tp]), END_STREAM), headers(3, GET('/u'), END_STREAM)]));
  c.send(1001n * MS, Dir.Egress, Buffer.concat([headers(1, STATUS(200), END_STREAM), headers(3, STATUS(200), END_STREAM)]));
  const [a, b] = take(t);
  assert.equal(a.linkSource, LinkSource.TraceparentHeader);
  assert.equal(a.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(a.parentSpanId, 'b7ad6b7169203331');
  assert.equal(b.linkSource, LinkSource.None, 'the header belongs to its stream only');
  assert.notEqual(b.traceId, a.traceId);
});

test('mid-life: role from the direction of :method, an unknown dynamic index is a "?" line, PreexistingConnection', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Unknown }, serverTuple, true);
  // First the end of a response whose request was before us: not an exchange.
  c.start(999n * MS, Dir.Egress, Cls.H2Frames).send(999n * MS, Dir.Egress, Buffer.concat([headers(7, Buffer.concat([indexed(8)]), END_STREAM)]));
  // :method GET (static 2), :path literal, then dynamic entry 62, inserted before we came.
  const req = Buffer.concat([indexed(2), literal([':path', '/m']), indexed(62), literal(['x-after', 'yes'])]);
  c.send(1000n * MS, Dir.Ingress, headers(9, req, END_STREAM));
  c.send(1001n * MS, Dir.Egress, Buffer.concat([headers(9, Buffer.concat([indexed(8), indexed(63)])), data(9, 3, END_STREAM)]));
  const x = only(take(t));
  assert.equal(x.role, 'server');
  assert.equal(x.streamId, 9);
  assert.ok(has(x, ExchangeFlags.PreexistingConnection));
  assert.ok(has(x, ExchangeFlags.HeadersIncomplete));
  assert.equal(x.req, ':method: GET\r\n:path: /m\r\n?\r\nx-after: yes\r\n');
  assert.equal(x.res, ':status: 200\r\n?\r\n');
  const k = t.counters();
  assert.equal(k.h2HeadersUnknown, 1);
  assert.equal(k.h2HpackErrors, 0);
  // The response seen first, to a request from before us, told the role
  // (a :status written: the server) and is counted.
  assert.equal(k.responsesWithoutRequest, 1);
});

test('mid-life, client: a request on egress makes the role client; a later stray response is counted', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 200, fd: 20, generation: 1, role: Role.Unknown }, mirrored(serverTuple), true);
  c.start(1000n * MS, Dir.Egress, Cls.H2Frames).send(1000n * MS, Dir.Egress, headers(11, GET('/c'), END_STREAM));
  c.send(1001n * MS, Dir.Ingress, Buffer.concat([headers(9, STATUS(200), END_STREAM), headers(11, STATUS(404), END_STREAM)]));
  const x = only(take(t));
  assert.equal(x.role, 'client');
  assert.equal(x.res, lines(STATUS(404)));
  assert.ok(has(x, ExchangeFlags.PreexistingConnection));
  assert.equal(x.flags & ExchangeFlags.HeadersIncomplete, 0);
  // The answer on stream 9 waits for a request (it may be late, below) for
  // the response timeout, then is counted.
  assert.equal(t.counters().responsesWithoutRequest, 0);
  t.tick(1500n * MS);
  t.tick(3000n * MS);
  assert.equal(take(t).length, 0);
  assert.equal(t.counters().responsesWithoutRequest, 1);
});

test('client: an answer read before its request event (reads and writes on two threads) waits for it', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 200, fd: 20, generation: 1, role: Role.Client }, mirrored(serverTuple));
  c.start(1000n * MS, Dir.Egress);
  // The request's write exit is reported after the reader thread's read.
  c.send(1002n * MS, Dir.Ingress, headers(1, STATUS(200), END_STREAM));
  assert.equal(take(t).length, 0);
  c.send(1003n * MS, Dir.Egress, headers(1, GET('/early'), END_STREAM));
  const x = only(take(t));
  assert.equal(x.role, 'client');
  assert.equal(x.req, lines(GET('/early')));
  assert.equal(x.res, lines(STATUS(200)));
  assert.ok(x.requestStartNs <= x.responseStartNs, 'the request starts no later than its answer');
  assert.equal(t.counters().responsesWithoutRequest, 0);
});

test('loss: a msg_seq gap abandons the streams in flight; the next event resyncs at its first_frame_offset', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress).send(1000n * MS, Dir.Ingress, Buffer.concat([headers(1, GET('/1'), END_STREAM), headers(3, POST('/3'))]));
  c.lose(Dir.Ingress);
  // The lost event held the start of a DATA frame's neighbour: this one opens
  // with 5 bytes of a payload, then frames.
  const tail = Buffer.from([0x00, 0x01, 0x02, 0x03, 0x04]);
  c.send(1002n * MS, Dir.Ingress, Buffer.concat([tail, headers(5, GET('/5'), END_STREAM)]), { firstFrameOffset: tail.length });
  c.send(1003n * MS, Dir.Egress, Buffer.concat([headers(1, STATUS(200), END_STREAM), headers(5, STATUS(205), END_STREAM)]), { firstFrameOffset: 0 });
  const x = only(take(t));
  assert.equal(x.streamId, 5);
  assert.equal(x.req, lines(GET('/5')));
  assert.equal(x.res, lines(STATUS(205)));
  const k = t.counters();
  assert.equal(k.messagesLost, 1);
  assert.equal(k.exchangesAbandoned, 2);
  assert.equal(k.responsesWithoutRequest, 1, "stream 1's answer came after it was abandoned");
});

test('loss: after a gap, an event in which no frame starts is skipped', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress).send(1000n * MS, Dir.Ingress, settings());
  c.lose(Dir.Ingress);
  // Garbage that would break a reader, had it read it.
  c.send(1001n * MS, Dir.Ingress, Buffer.alloc(40, 0xff), { firstFrameOffset: NO_FRAME_START });
  c.send(1002n * MS, Dir.Ingress, headers(3, GET('/3'), END_STREAM), { firstFrameOffset: 0 });
  c.send(1003n * MS, Dir.Egress, headers(3, STATUS(200), END_STREAM), { firstFrameOffset: 0 });
  assert.equal(only(take(t)).streamId, 3);
  assert.equal(t.counters().h2FrameErrors, 0);
});

test('LOST: the frames before it count, then the direction waits for SYNC_START or a first_frame_offset', () => {
  for (const resync of ['syncStart', 'firstFrameOffset'] as const) {
    const t = tracker();
    const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
    c.start(1000n * MS, Dir.Ingress);
    c.send(1000n * MS, Dir.Ingress, headers(1, GET('/1'), END_STREAM), { flags: H2Flags.Lost });
    c.send(1001n * MS, Dir.Ingress, Buffer.alloc(30, 0xee), { firstFrameOffset: NO_FRAME_START });
    if (resync === 'syncStart') c.send(1002n * MS, Dir.Ingress, headers(3, GET('/3'), END_STREAM), { flags: H2Flags.SyncStart | H2Flags.MidLife, firstFrameOffset: 0 });
    else c.send(1002n * MS, Dir.Ingress, Buffer.concat([Buffer.alloc(3), headers(3, GET('/3'), END_STREAM)]), { firstFrameOffset: 3 });
    c.send(1003n * MS, Dir.Egress, Buffer.concat([headers(1, STATUS(201), END_STREAM), headers(3, STATUS(203), END_STREAM)]));
    const xs = take(t);
    assert.deepEqual(xs.map((x) => [x.streamId, x.res]), [[1, lines(STATUS(201))], [3, lines(STATUS(203))]], resync);
    assert.equal(xs[1].req, lines(GET('/3')), resync);
    assert.equal(xs[1].flags, 0, `${resync}: a resync does not make the connection preexisting`);
    assert.equal(t.counters().h2FrameErrors, 1, resync);
    assert.equal(t.counters().messagesLost, 0, resync);
  }
});

test('a broken frame (PING of 7 bytes) counts a frame error; the reader resyncs at the next first_frame_offset', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress);
  c.send(1000n * MS, Dir.Ingress, Buffer.concat([headers(1, GET('/1'), END_STREAM), frame(PING, 0, 0, Buffer.alloc(7)), headers(3, GET('/3'), END_STREAM)]));
  c.send(1001n * MS, Dir.Ingress, Buffer.concat([Buffer.from('junk'), headers(5, GET('/5'), END_STREAM)]), { firstFrameOffset: 4 });
  c.send(1002n * MS, Dir.Egress, Buffer.concat([1, 3, 5].map((id) => headers(id, STATUS(200), END_STREAM))));
  const xs = take(t);
  assert.deepEqual(xs.map((x) => x.streamId), [1, 5], 'stream 3 came after the break');
  const k = t.counters();
  assert.equal(k.h2FrameErrors, 1);
  assert.equal(k.responsesWithoutRequest, 1);
});

test('a header block over the copy bound: truncated, HeadersIncomplete, counted; the next block decodes', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress);
  // 20000 bytes of block, of which the kernel copies the first 16384; an event
  // holds 16384 bytes, so the frame spills into the next one.
  const big = Buffer.concat([block(GET('/big')), literalIndexed(['x-big', 'v'.repeat(20_000)])]);
  const cut = frame(HEADERS, END_HEADERS | END_STREAM, 1, big.subarray(0, COPY_BOUND), big.length);
  const after = headers(3, GET('/after', [['x-n', '3']]), END_STREAM);
  const stream = Buffer.concat([cut, after]);
  const first = stream.subarray(0, EVENT_LAYOUT.h2EventBytes);
  c.send(1000n * MS, Dir.Ingress, first);
  c.send(1001n * MS, Dir.Ingress, stream.subarray(first.length), { firstFrameOffset: cut.length - first.length });
  c.send(1002n * MS, Dir.Egress, Buffer.concat([headers(1, STATUS(431), END_STREAM), headers(3, STATUS(200), END_STREAM)]));
  const xs = take(t);
  assert.equal(xs.length, 2);
  assert.equal(xs[0].streamId, 1);
  assert.ok(has(xs[0], ExchangeFlags.HeadersIncomplete));
  assert.equal(xs[0].req, '');
  assert.equal(xs[0].res, lines(STATUS(431)));
  assert.equal(xs[1].req, lines(GET('/after', [['x-n', '3']])));
  assert.equal(xs[1].flags & ExchangeFlags.HeadersIncomplete, 0);
  assert.equal(t.counters().h2HeaderBlocksTruncated, 1);
  assert.equal(t.counters().h2FrameErrors, 0);
});

test('a field past the header text bound (8 KiB) is left out and says so: HeadersIncomplete; the fields after it that fit are kept', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress);
  // Within the kernel's copy bound, so the block decodes whole.
  const request = GET('/x', [['cookie', 'c'.repeat(9000)], ['content-type', 'application/grpc']]);
  c.send(1000n * MS, Dir.Ingress, headers(1, request, END_STREAM));
  c.send(1001n * MS, Dir.Egress, headers(1, STATUS(200), END_STREAM));
  const x = only(take(t));
  assert.ok(has(x, ExchangeFlags.HeadersIncomplete));
  assert.equal(x.req, lines(GET('/x', [['content-type', 'application/grpc']])));
  assert.equal(x.res, lines(STATUS(200)));
});

test('a header block that breaks HPACK: counted, HeadersIncomplete, and the decoder starts again', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress);
  c.send(1000n * MS, Dir.Ingress, Buffer.concat([headers(1, Buffer.from([0x80]), END_STREAM), headers(3, GET('/3'), END_STREAM)]));
  c.send(1001n * MS, Dir.Egress, Buffer.concat([headers(1, STATUS(400), END_STREAM), headers(3, STATUS(200), END_STREAM)]));
  const xs = take(t);
  assert.deepEqual(xs.map((x) => [x.streamId, has(x, ExchangeFlags.HeadersIncomplete), x.req]), [[1, true, ''], [3, false, lines(GET('/3'))]]);
  assert.equal(t.counters().h2HpackErrors, 1);
});

test("a SETTINGS_HEADER_TABLE_SIZE the server wrote before the client's preface applies to the client's blocks", () => {
  // The server raises the table it decodes with to 8192; the client's encoder
  // takes it up with a size update (RFC 7541 §4.2, §6.3) at the start of its
  // next block, as python-h2's does.
  const update8192 = Buffer.from(hpackInt(8192, 5, 0x20));
  const req = (id: number, path: string): Buffer => headers(id, Buffer.concat([update8192, block(GET(path))]), END_STREAM);
  for (const order of ['settings first', 'preface first'] as const) {
    const t = tracker();
    const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
    if (order === 'settings first') {
      c.start(999n * MS, Dir.Egress, Cls.H2Frames).send(999n * MS, Dir.Egress, settings([[0x1, 8192]]));
      c.send(1000n * MS, Dir.Ingress, Buffer.concat([settings(), settingsAck()]));
    } else {
      c.start(999n * MS, Dir.Ingress).send(999n * MS, Dir.Ingress, settings());
      c.send(999n * MS, Dir.Egress, settings([[0x1, 8192]]));
      c.send(1000n * MS, Dir.Ingress, settingsAck());
    }
    c.send(1000n * MS, Dir.Ingress, req(1, '/a'));
    c.send(1001n * MS, Dir.Egress, headers(1, STATUS(200), END_STREAM));
    const x = only(take(t));
    assert.equal(x.req, lines(GET('/a')), order);
    assert.equal(x.flags, 0, order);
    assert.equal(t.counters().h2HpackErrors, 0, order);
    // ... and still after a loss makes that direction start again.
    c.lose(Dir.Ingress);
    c.send(1002n * MS, Dir.Ingress, req(3, '/b'), { firstFrameOffset: 0 });
    c.send(1003n * MS, Dir.Egress, headers(3, STATUS(200), END_STREAM), { firstFrameOffset: 0 });
    assert.equal(only(take(t)).req, lines(GET('/b')), `${order}, after a loss`);
    assert.equal(t.counters().h2HpackErrors, 0, `${order}, after a loss`);
  }
});

test('a smaller SETTINGS_HEADER_TABLE_SIZE seen before the decoder existed does not fail a block written before the peer took it up', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(999n * MS, Dir.Egress, Cls.H2Frames).send(999n * MS, Dir.Egress, settings([[0x1, 0]]));
  // The client wrote this before it read the server's SETTINGS: no size update.
  c.send(1000n * MS, Dir.Ingress, Buffer.concat([settings(), headers(1, GET('/a'), END_STREAM)]));
  c.send(1001n * MS, Dir.Ingress, Buffer.concat([settingsAck(), headers(3, Buffer.concat([Buffer.from([0x20]), block(GET('/b'))]), END_STREAM)]));
  c.send(1002n * MS, Dir.Egress, Buffer.concat([headers(1, STATUS(200), END_STREAM), headers(3, STATUS(200), END_STREAM)]));
  assert.deepEqual(take(t).map((x) => [x.req, x.flags]), [[lines(GET('/a')), 0], [lines(GET('/b')), 0]]);
  assert.equal(t.counters().h2HpackErrors, 0);
});

test('close with streams open: ClosedBeforeResponse without a response, ResponseIncomplete with one', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress).send(1000n * MS, Dir.Ingress, Buffer.concat([headers(1, GET('/1'), END_STREAM), headers(3, GET('/3'), END_STREAM)]));
  c.send(1001n * MS, Dir.Egress, Buffer.concat([headers(3, STATUS(200)), data(3, 64)]));
  c.close(1002n * MS);
  const xs = take(t);
  assert.deepEqual(
    xs.map((x) => [x.streamId, x.flags]),
    [[1, ExchangeFlags.ClosedBeforeResponse], [3, ExchangeFlags.ResponseIncomplete]],
  );
  assert.equal(xs[1].responseBytes, 64);
  const k = t.counters();
  assert.equal(k.responsesIncomplete, 1);
  assert.equal(k.messagesLost, 0, 'the close reports the msg_seq the frames events reached');
  assert.equal(k.connectionsTracked, 0);
});

test('streams quiet past the response timeout are closed out; one whose response started (a long-lived gRPC stream) gets ten times as long', () => {
  const t = tracker({ responseTimeoutMs: 1000 });
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress).send(1000n * MS, Dir.Ingress, Buffer.concat([headers(1, GET('/1'), END_STREAM), headers(3, GET('/3'), END_STREAM)]));
  c.send(1001n * MS, Dir.Egress, headers(3, STATUS(200)));
  t.tick(1500n * MS);
  assert.equal(take(t).length, 0);
  t.tick(3000n * MS);
  assert.deepEqual(take(t).map((x) => [x.streamId, x.flags]), [[1, ExchangeFlags.NoResponse]]);
  assert.equal(t.counters().requestsTimedOut, 1);
  t.tick(9000n * MS);
  assert.equal(take(t).length, 0, 'a stream with a response is not cut at the response timeout');
  t.tick(12000n * MS);
  assert.deepEqual(take(t).map((x) => [x.streamId, x.flags]), [[3, ExchangeFlags.ResponseIncomplete]]);
});

test('at most max_streams_per_connection (1024) streams are followed at once; the others are counted', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  const ids = Array.from({ length: 1030 }, (_, i) => 2 * i + 1);
  c.start(1000n * MS, Dir.Ingress).sendMany(1000n * MS, Dir.Ingress, ids.map((id) => headers(id, GET(`/${id}`), END_STREAM)));
  assert.equal(t.counters().h2StreamsDropped, 6);
  // Answers free room: the next stream is followed again.
  c.sendMany(1001n * MS, Dir.Egress, ids.slice(0, 10).map((id) => headers(id, STATUS(200), END_STREAM)));
  assert.equal(take(t).length, 10);
  c.send(1002n * MS, Dir.Ingress, headers(5001, GET('/late'), END_STREAM));
  assert.equal(t.counters().h2StreamsDropped, 6);
  c.close(1003n * MS);
  const xs = take(t);
  assert.equal(xs.length, 1015);
  assert.ok(xs.every((x) => x.flags === ExchangeFlags.ClosedBeforeResponse));
  assert.ok(xs.some((x) => x.streamId === 5001));
  assert.ok(!xs.some((x) => x.streamId === ids[1029]), 'a dropped stream is not written');
});

test('malformed frames events are counted and not read', () => {
  const t = tracker();
  const c = new H2Conn(t, { pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  c.start(1000n * MS, Dir.Ingress);
  const ev = h2Frames({ pid: 100, fd: 7, generation: 1, seq: 2, ts: 1000n * MS }, Dir.Ingress, headers(1, GET('/'), END_STREAM), { flags: H2Flags.SyncStart, firstFrameOffset: 0 });
  t.feed(ev.subarray(0, EVENT_LAYOUT.h2FramesHeaderBytes - 1));
  const long = Buffer.from(ev);
  long.writeUInt32LE(ev.length, EVENT_LAYOUT.h2PayloadBytesOffset); // more than the record holds
  t.feed(long);
  const huge = h2Frames({ pid: 100, fd: 7, generation: 1, seq: 2, ts: 1000n * MS }, Dir.Ingress, Buffer.alloc(EVENT_LAYOUT.h2EventBytes + 1));
  t.feed(huge);
  assert.equal(t.counters().eventsMalformed, 3);
  // An event of a connection never started is ignored.
  t.feed(h2Frames({ pid: 100, fd: 8, generation: 1, seq: 1, ts: 1000n * MS }, Dir.Ingress, headers(1, GET('/'), END_STREAM), { flags: H2Flags.SyncStart, firstFrameOffset: 0 }));
  assert.equal(take(t).length, 0);
});

test('an h2c upgrade: the HTTP/1 exchange is written, then the connection is followed as HTTP/2', () => {
  const t = tracker();
  const s = new ConnScript({ pid: 100, fd: 7, generation: 1, role: Role.Server }, serverTuple);
  t.feed(s.message(1000n * MS, Dir.Ingress, Cls.Request, 'GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n'));
  t.feed(s.message(1001n * MS, Dir.Egress, Cls.Response, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n'));
  t.feed(s.message(1002n * MS, Dir.Ingress, Cls.H2Preface, PREFACE.toString('latin1')));
  t.feed(s.frames(1002n * MS, Dir.Ingress, Buffer.concat([settings(), headers(3, GET('/after'), END_STREAM)]), { flags: H2Flags.SyncStart, firstFrameOffset: 0 }));
  t.feed(s.frames(1003n * MS, Dir.Egress, Buffer.concat([settings(), headers(3, STATUS(200), END_STREAM)]), { flags: H2Flags.SyncStart, firstFrameOffset: 0 }));
  const xs = take(t);
  assert.deepEqual(xs.map((x) => [x.protocol, x.streamId]), [[ExchangeProtocol.Http1, 0], [ExchangeProtocol.Http2, 3]]);
  assert.equal(xs[1].req, lines(GET('/after')));
});

// ---------------------------------------------------------------------------
// Fuzz: random conversations, mutated, cut into events at random, through
// the tracker.
// ---------------------------------------------------------------------------

test('fuzz: random and mutated frames events never crash, every record decodes, counters agree', () => {
  const total = Number(process.env.SONDE_H2_STITCHER_FUZZ_EVENTS ?? 20_000);
  const seed = Number(process.env.SONDE_H2_STITCHER_FUZZ_SEED ?? 1);
  const rand = mulberry32(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const chance = (p: number): boolean => rand() < p;
  const t = tracker({ responseTimeoutMs: 50 });

  const names = [':path', 'content-type', 'grpc-status', 'x-a', 'traceparent', 'user-agent', 'te'];
  const values = ['/', '/pkg.S/M', 'application/grpc', '0', 'a\r\nb', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'x'.repeat(200)];
  const fieldsBlock = (request: boolean): Buffer => {
    const parts: Buffer[] = [request ? indexed(pick([2, 3])) : indexed(pick([8, 9, 13]))];
    for (let i = int(5); i > 0; i--) {
      const f: Field = [pick(names), pick(values)];
      const r = int(10);
      if (chance(0.01)) parts.push(literal(['x-huge', 'h'.repeat(17_000)]));
      parts.push(r < 5 ? literal(f) : r < 8 ? literalIndexed(f) : indexed(1 + int(70)));
    }
    return Buffer.concat(parts);
  };
  /** A header block as HEADERS, maybe with CONTINUATIONs, maybe padded. */
  const headerFrames = (id: number, blk: Buffer, endStream: boolean): Buffer[] => {
    const flags = endStream ? END_STREAM : 0;
    if (chance(0.2) && blk.length > 2) {
      const at = 1 + int(blk.length - 1);
      return [frame(HEADERS, flags, id, blk.subarray(0, at)), frame(CONTINUATION, END_HEADERS, id, blk.subarray(at))];
    }
    if (chance(0.1)) {
      const pad = int(20);
      return [frame(HEADERS, flags | END_HEADERS | PADDED, id, Buffer.concat([Buffer.from([pad]), blk, Buffer.alloc(pad)]))];
    }
    return [frame(HEADERS, flags | END_HEADERS, id, blk)];
  };
  /** What the kernel copies of a frame: at most SONDE_H2_COPY_BOUND payload bytes. */
  const copied = (f: Buffer): Buffer => f.subarray(0, 9 + Math.min(COPY_BOUND, f.length - 9));
  /** One connection's frames per direction, from the server's side, in order. */
  const conversation = (): { ingress: Buffer[]; egress: Buffer[] } => {
    const ingress: Buffer[] = [settings([[0x1, pick([0, 256, 4096, 65536])]])];
    const egress: Buffer[] = [settings([[0x5, 16384]]), settingsAck()];
    const n = 1 + int(6);
    for (let k = 0; k < n; k++) {
      const id = 2 * int(50) + 1;
      const body = chance(0.5);
      ingress.push(...headerFrames(id, fieldsBlock(true), !body).map(copied));
      if (body) ingress.push(data(id, int(70_000), END_STREAM));
      const r = int(10);
      if (r === 0) egress.push(rst(id, int(14)));
      else if (r === 1) ingress.push(rst(id, 8));
      else {
        egress.push(...headerFrames(id, fieldsBlock(false), false).map(copied), data(id, int(100_000)));
        if (chance(0.5)) egress.push(...headerFrames(id, block([['grpc-status', String(int(17))]]), true));
        else egress.push(data(id, int(10), END_STREAM));
      }
      if (chance(0.1)) (chance(0.5) ? ingress : egress).push(pick([frame(PING, 0, 0, Buffer.alloc(8)), frame(WINDOW_UPDATE, 0, 0, u32(1000)), frame(PRIORITY, 0, id, Buffer.alloc(5)), frame(0xfa, 0, 1, Buffer.from('ext'))]));
    }
    if (chance(0.2)) egress.push(goaway(int(100), int(3)));
    return { ingress, egress };
  };
  const mutate = (b: Buffer): Buffer => {
    const out = Buffer.from(b);
    for (let e = 1 + int(3); e > 0 && out.length; e--) {
      const at = int(out.length);
      if (chance(0.5)) out[at] ^= 1 << int(8);
      else out[at] = int(256);
    }
    return out;
  };

  let fed = 0;
  let conns = 0;
  let now = 1000n * MS;
  const open: Array<{ c: H2Conn; pending: Array<[number, Buffer, number]>; }> = [];
  const startConn = (): void => {
    conns++;
    const role = pick([Role.Server, Role.Client, Role.Unknown]);
    const midLife = role === Role.Unknown || chance(0.1);
    const c = new H2Conn(t, { pid: 1000 + int(4), tid: 2000 + int(4), fd: 10 + int(40), generation: conns, role }, { ...serverTuple, remotePort: 40000 + conns }, midLife);
    const { ingress, egress } = conversation();
    // A client sees the same frames the other way round.
    const [reqDir, resDir] = role === Role.Client ? [Dir.Egress, Dir.Ingress] : [Dir.Ingress, Dir.Egress];
    const pending: Array<[number, Buffer, number]> = [];
    const cut = (dir: number, frames: Buffer[]): void => {
      const bytes = Buffer.concat(frames);
      const starts = frameStarts(bytes);
      let at = 0;
      while (at < bytes.length) {
        const to = Math.min(at + EVENT_LAYOUT.h2EventBytes, chance(0.5) ? Math.min(bytes.length, at + 1 + int(120)) : (starts.find((s) => s > at) ?? bytes.length));
        const first = starts.find((s) => s >= at && s < to);
        pending.push([dir, bytes.subarray(at, to), first === undefined ? NO_FRAME_START : first - at]);
        at = to;
      }
    };
    cut(reqDir, ingress);
    cut(resDir, egress);
    // Roughly in order, the two directions shuffled a little.
    for (let i = pending.length - 1; i > 0; i--) if (chance(0.3)) [pending[i], pending[i - 1]] = [pending[i - 1], pending[i]];
    c.start(now, midLife ? pick([Dir.Ingress, Dir.Egress]) : reqDir, midLife ? Cls.H2Frames : Cls.H2Preface);
    fed++;
    open.push({ c, pending });
  };

  const start = process.hrtime.bigint();
  while (fed < total) {
    if (open.length < 4 || chance(0.01)) startConn();
    const i = int(open.length);
    const { c, pending } = open[i];
    now += BigInt(int(3)) * MS;
    const next = pending.shift();
    if (!next) {
      open.splice(i, 1);
      if (chance(0.8)) {
        c.close(now);
        fed++;
      }
      continue;
    }
    let [dir, bytes, first] = next;
    let flags = 0;
    const r = int(100);
    if (r < 8) bytes = mutate(bytes);
    else if (r < 11) flags = int(8);
    else if (r < 14) first = pick([int(bytes.length + 20), NO_FRAME_START, 0]);
    else if (r < 17) bytes = bytes.subarray(0, int(bytes.length + 1));
    else if (r < 19) c.lose(dir);
    else if (r < 20) bytes = Buffer.from(Array.from({ length: int(200) }, () => int(256)));
    else if (r < 21) dir = pick([0, 3, Dir.Ingress, Dir.Egress]);
    c.send(now, dir, bytes, { firstFrameOffset: first, flags });
    fed++;
    if (chance(0.01)) t.tick(now);
    if (chance(0.002)) {
      // Garbage with the frames event's kind byte.
      const junk = Buffer.from(Array.from({ length: int(120) }, () => int(256)));
      if (junk.length) junk[0] = 6;
      t.feed(junk);
      fed++;
    }
  }
  t.tick(now + 10_000n * MS);
  t.finish(now + 10_001n * MS);

  let records = 0;
  const batch = t.take();
  const decoded = decodeExchanges(batch, (x) => {
    records++;
    assert.equal(x.protocol, ExchangeProtocol.Http2);
    assert.ok(x.streamId > 0 && x.streamId < 2 ** 31);
    assert.ok(x.role === 'server' || x.role === 'client');
    for (const [name, p] of [['request', requestHeadOf(x)], ['response', responseHeadOf(x)]] as const) {
      const text = p.toString('latin1');
      assert.ok(text === '' || text.endsWith('\r\n'), `${name} payload ends its last line`);
      assert.ok(!/\r(?!\n)|(?<!\r)\n|\0/.test(text), `${name} payload: lines break only at CRLF`);
      assert.ok(Buffer.byteLength(text, 'latin1') <= 8192 + 2, `${name} payload within max_header_text_bytes`);
    }
    if (x.responseStartNs === 0) assert.equal(x.responseBytes, 0);
  });
  assert.equal(decoded, records);
  const k: NativeCounters = t.counters();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `h2 stitcher fuzz: seed ${seed}, ${fed} events, ${conns} connections, ${records} exchanges, ${seconds.toFixed(1)} s; ` +
      `lost ${k.messagesLost}, abandoned ${k.exchangesAbandoned}, frame errors ${k.h2FrameErrors}, hpack errors ${k.h2HpackErrors}, ` +
      `truncated ${k.h2HeaderBlocksTruncated}, unknown ${k.h2HeadersUnknown}, malformed ${k.eventsMalformed}`,
  );
  assert.equal(k.eventsRead, fed);
  assert.equal(k.exchangesEmitted, records);
  assert.equal(k.connectionsTracked, 0);
  assert.ok(k.h2HeadersUnknown <= records);
  assert.ok(k.connectionsOpened <= conns);
  assert.ok(k.messagesLost > 0 && k.h2FrameErrors > 0 && k.h2HpackErrors > 0 && records > 1000, 'the fuzz reaches the loss, error and success paths');
});

