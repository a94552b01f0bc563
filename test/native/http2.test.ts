// The HTTP/2 frame reader and HPACK decoder of native/src/core/http2, driven
// through the addon's test hook (http2Test). Frame tables are named by
// scenario; HPACK uses RFC 7541 Appendix C and bytes Node's own nghttp2 writes.
//
// The fuzz test runs SONDE_HTTP2_FUZZ_COUNT inputs (default 100000) from a
// fixed seed (SONDE_HTTP2_FUZZ_SEED, default 1). The longer run:
//   SONDE_HTTP2_FUZZ_COUNT=1000000 node --test dist/test/native/http2.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { once } from 'node:events';
import { loadNativeModule, type Http2TestEvent } from '../../src/native/binding';
import { mulberry32 } from '../support/random';

const h2 = loadNativeModule().http2Test;

const DATA = 0x0, HEADERS = 0x1, PRIORITY = 0x2, RST_STREAM = 0x3, SETTINGS = 0x4, PUSH_PROMISE = 0x5, PING = 0x6, GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8, CONTINUATION = 0x9;
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY_FLAG = 0x20;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, streamId: number, payload: Buffer | number[] = []): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(9);
  h.writeUIntBE(body.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, body]);
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 7541 Appendix C.3 (requests, no Huffman), C.4 (the same with
// Huffman), C.5 (responses, table of 256 bytes, evictions).
const C3 = [
  hex('828684410f7777772e6578616d706c652e636f6d'),
  hex('828684be58086e6f2d6361636865'),
  hex('828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565'),
];
const C4 = [
  hex('828684418cf1e3c2e5f23a6ba0ab90f4ff'),
  hex('828684be5886a8eb10649cbf'),
  hex('828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf'),
];
const C5 = [
  hex('4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d'),
  hex('4803333037c1c0bf'),
  hex(
    '88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31',
  ),
];
type Pair = [string, string];
const C_REQUESTS: Pair[][] = [
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
  [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
];
const C5_RESPONSES: Pair[][] = [
  [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [[':status', '307'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
    ['location', 'https://www.example.com'],
    ['content-encoding', 'gzip'],
    ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
  ],
];
const fields = (pairs: Pair[]) => pairs.map(([name, value]) => ({ name, value }));
const UNKNOWN = { name: '', value: '', nameUnknown: true, valueUnknown: true } as const;

// ---------------------------------------------------------------------------
// Frame scenarios: wire bytes and the events the reader must report.
// ---------------------------------------------------------------------------

interface Scenario {
  name: string;
  bytes: Buffer;
  clientPreface?: boolean;
  events: Http2TestEvent[];
}

const fh = (length: number, type: number, flags: number, streamId: number): Http2TestEvent => ({ kind: 'frame', length, type, flags, streamId });
const headersEvent = (streamId: number, block: Buffer, endStream = false): Http2TestEvent => ({
  kind: 'headers',
  streamId,
  endStream,
  truncated: false,
  block,
});

const block1 = C3[0];
const SCENARIOS: Scenario[] = [
  {
    name: 'headers and two continuations make one block',
    bytes: Buffer.concat([
      frame(HEADERS, END_STREAM, 1, block1.subarray(0, 5)),
      frame(CONTINUATION, 0, 1, block1.subarray(5, 12)),
      frame(CONTINUATION, END_HEADERS, 1, block1.subarray(12)),
    ]),
    events: [fh(5, HEADERS, END_STREAM, 1), fh(7, CONTINUATION, 0, 1), fh(8, CONTINUATION, END_HEADERS, 1), headersEvent(1, block1, true)],
  },
  {
    name: 'padded headers lose their Pad Length and padding',
    bytes: frame(HEADERS, PADDED | END_HEADERS, 3, Buffer.concat([Buffer.from([5]), block1, Buffer.alloc(5)])),
    events: [fh(1 + block1.length + 5, HEADERS, PADDED | END_HEADERS, 3), headersEvent(3, block1)],
  },
  {
    name: 'priority fields are removed from the block',
    bytes: frame(HEADERS, PRIORITY_FLAG | END_HEADERS | END_STREAM, 5, Buffer.concat([u32(0x80000003), Buffer.from([15]), block1])),
    events: [fh(5 + block1.length, HEADERS, PRIORITY_FLAG | END_HEADERS | END_STREAM, 5), headersEvent(5, block1, true)],
  },
  {
    name: 'padding and priority together, then a continuation',
    bytes: Buffer.concat([
      frame(HEADERS, PADDED | PRIORITY_FLAG, 7, Buffer.concat([Buffer.from([2]), u32(1), Buffer.from([0]), block1.subarray(0, 10), Buffer.alloc(2)])),
      frame(CONTINUATION, END_HEADERS, 7, block1.subarray(10)),
    ]),
    events: [fh(18, HEADERS, PADDED | PRIORITY_FLAG, 7), fh(block1.length - 10, CONTINUATION, END_HEADERS, 7), headersEvent(7, block1)],
  },
  {
    name: 'data with END_STREAM carries length only',
    bytes: Buffer.concat([
      frame(DATA, 0, 1, Buffer.from('hello')),
      frame(DATA, PADDED | END_STREAM, 1, Buffer.concat([Buffer.from([3]), Buffer.from('0123456789'), Buffer.alloc(3)])),
      frame(DATA, END_STREAM, 3),
    ]),
    events: [
      fh(5, DATA, 0, 1),
      { kind: 'data', streamId: 1, dataBytes: 5, endStream: false },
      fh(14, DATA, PADDED | END_STREAM, 1),
      { kind: 'data', streamId: 1, dataBytes: 10, endStream: true },
      fh(0, DATA, END_STREAM, 3),
      { kind: 'data', streamId: 3, dataBytes: 0, endStream: true },
    ],
  },
  {
    name: 'rst_stream names its stream and error code',
    bytes: frame(RST_STREAM, 0, 3, u32(8)),
    events: [fh(4, RST_STREAM, 0, 3), { kind: 'rstStream', streamId: 3, errorCode: 8 }],
  },
  {
    name: 'goaway names the last stream and error code, debug data skipped',
    bytes: frame(GOAWAY, 0, 0, Buffer.concat([u32(0x80000005), u32(2), Buffer.from('bye')])),
    events: [fh(11, GOAWAY, 0, 0), { kind: 'goaway', lastStreamId: 5, errorCode: 2 }],
  },
  {
    name: 'client preface then SETTINGS and its ACK',
    clientPreface: true,
    bytes: Buffer.concat([
      PREFACE,
      frame(SETTINGS, 0, 0, Buffer.concat([hex('0001'), u32(4096), hex('0003'), u32(100), hex('0004'), u32(65535)])),
      frame(SETTINGS, ACK, 0),
      frame(WINDOW_UPDATE, 0, 0, u32(1 << 20)),
    ]),
    events: [
      fh(18, SETTINGS, 0, 0),
      { kind: 'setting', id: 1, value: 4096 },
      { kind: 'setting', id: 3, value: 100 },
      { kind: 'setting', id: 4, value: 65535 },
      fh(0, SETTINGS, ACK, 0),
      fh(4, WINDOW_UPDATE, 0, 0),
    ],
  },
  {
    name: 'push_promise gives the promised stream, padding removed',
    bytes: frame(PUSH_PROMISE, PADDED | END_HEADERS, 1, Buffer.concat([Buffer.from([1]), u32(2), block1, Buffer.alloc(1)])),
    events: [
      fh(6 + block1.length, PUSH_PROMISE, PADDED | END_HEADERS, 1),
      { kind: 'pushPromise', streamId: 1, promisedStreamId: 2, endStream: false, truncated: false, block: block1 },
    ],
  },
  {
    name: 'unknown frame types, PING and PRIORITY are skipped without harm',
    bytes: Buffer.concat([frame(0xfa, 0xff, 9, Buffer.from('extension')), frame(PING, 0, 0, Buffer.alloc(8)), frame(PRIORITY, 0, 9, Buffer.alloc(5))]),
    events: [fh(9, 0xfa, 0xff, 9), fh(8, PING, 0, 0), fh(5, PRIORITY, 0, 9)],
  },
];
const ALL_BYTES = Buffer.concat(SCENARIOS.filter((s) => !s.clientPreface).map((s) => s.bytes));
const ALL_EVENTS = SCENARIOS.filter((s) => !s.clientPreface).flatMap((s) => s.events);

for (const s of SCENARIOS) {
  test(`frames: ${s.name}`, () => {
    const r = h2.decodeFrames([s.bytes], { clientPreface: s.clientPreface });
    assert.equal(r.broken, null);
    assert.deepEqual(r.events, s.events);
  });
}

test('frames: every scenario split at every byte boundary, and fed one byte at a time', () => {
  for (const s of [...SCENARIOS, { name: 'all', bytes: ALL_BYTES, events: ALL_EVENTS }]) {
    const opts = { clientPreface: (s as Scenario).clientPreface };
    for (let at = 0; at <= s.bytes.length; at++) {
      const r = h2.decodeFrames([s.bytes.subarray(0, at), s.bytes.subarray(at)], opts);
      assert.deepEqual(r.events, s.events, `${s.name} split at ${at}`);
    }
    const bytes = [...s.bytes].map((b) => Buffer.from([b]));
    assert.deepEqual(h2.decodeFrames(bytes, opts).events, s.events, `${s.name} byte by byte`);
  }
});

test('frames: header blocks over the bound are reported truncated and counted', () => {
  const bytes = Buffer.concat([frame(HEADERS, 0, 1, block1.subarray(0, 10)), frame(CONTINUATION, END_HEADERS, 1, block1.subarray(10))]);
  const r = h2.decodeFrames([bytes], { maxHeaderBlockBytes: 16, hpack: {} });
  assert.equal(r.broken, null);
  assert.deepEqual(r.events?.filter((e) => e.kind === 'headers'), [
    { kind: 'headers', streamId: 1, endStream: false, truncated: true, truncatedBytes: block1.length - 16, block: block1.subarray(0, 16) },
  ]);
  assert.equal(r.counters.headerBlocksTruncated, 1);
  assert.equal(r.counters.headerBytesTruncated, block1.length - 16);
  assert.equal(r.hpack?.blocks, 0, 'a truncated block never reaches HPACK');
});

// ---------------------------------------------------------------------------
// The kernel's view (data_payload_elided, payload_copy_bound): DATA frames
// arrive as their header alone, other payloads cut at SONDE_H2_COPY_BOUND.
// ---------------------------------------------------------------------------

const ELIDED = { dataPayloadElided: true, payloadCopyBound: 16384 } as const;
/** A frame header whose payload the input does not carry. */
const headerOnly = (length: number, type: number, flags: number, streamId: number): Buffer => {
  const h = frame(type, flags, streamId);
  h.writeUIntBE(length, 0, 3);
  return h;
};

test('frames, elided: DATA frames without payload report their length, padding included, and END_STREAM', () => {
  const bytes = Buffer.concat([
    headerOnly(5, DATA, 0, 1),
    headerOnly(14, DATA, PADDED | END_STREAM, 1),
    headerOnly(0, DATA, END_STREAM, 3),
    headerOnly(16384, DATA, 0, 5),
    frame(HEADERS, END_HEADERS | END_STREAM, 7, block1),
  ]);
  const want: Http2TestEvent[] = [
    fh(5, DATA, 0, 1),
    { kind: 'data', streamId: 1, dataBytes: 5, endStream: false },
    fh(14, DATA, PADDED | END_STREAM, 1),
    { kind: 'data', streamId: 1, dataBytes: 14, endStream: true },
    fh(0, DATA, END_STREAM, 3),
    { kind: 'data', streamId: 3, dataBytes: 0, endStream: true },
    fh(16384, DATA, 0, 5),
    { kind: 'data', streamId: 5, dataBytes: 16384, endStream: false },
    fh(block1.length, HEADERS, END_HEADERS | END_STREAM, 7),
    headersEvent(7, block1, true),
  ];
  const r = h2.decodeFrames([bytes], ELIDED);
  assert.equal(r.broken, null);
  assert.deepEqual(r.events, want);
  for (let at = 0; at <= bytes.length; at++)
    assert.deepEqual(h2.decodeFrames([bytes.subarray(0, at), bytes.subarray(at)], ELIDED).events, want, `split at ${at}`);
  // The same bytes read as the wire: the DATA headers swallow what follows.
  assert.notDeepEqual(h2.decodeFrames([bytes]).events, want);
});

test('frames, elided: a header block frame over the copy bound is reported truncated by the bytes cut', () => {
  const length = 20_000;
  const cut = length - 16384;
  const payload = Buffer.alloc(length, 0x41);
  const next = frame(HEADERS, END_HEADERS, 3, block1);
  const cases: Array<[string, Buffer, number, number]> = [
    ['plain', frame(HEADERS, END_HEADERS, 1, payload).subarray(0, 9 + 16384), cut, 16384],
    // Pad Length 10: of the 3616 bytes cut, 10 were padding.
    ['padded, cut past the padding', frame(HEADERS, END_HEADERS | PADDED, 1, Buffer.concat([Buffer.from([10]), payload.subarray(1)])).subarray(0, 9 + 16384), cut - 10, 16383],
    ['with priority', frame(HEADERS, END_HEADERS | PRIORITY_FLAG, 1, payload).subarray(0, 9 + 16384), cut, 16384 - 5],
  ];
  for (const [name, bytes, truncatedBytes, kept] of cases) {
    const r = h2.decodeFrames([bytes, next], { ...ELIDED, hpack: {} });
    assert.equal(r.broken, null, name);
    const blocks = (r.events ?? []).flatMap((e) => (e.kind === 'headers' ? [e] : []));
    assert.equal(blocks.length, 2, name);
    assert.equal(blocks[0].truncated, true, name);
    assert.equal(blocks[0].truncatedBytes, truncatedBytes, name);
    assert.equal(blocks[0].block.length, kept, name);
    assert.equal(blocks[1].truncated, false, `${name}: the next frame is read in step`);
    assert.deepEqual(blocks[1].hpack?.fields, fields(C_REQUESTS[0]), name);
    assert.equal(r.counters.headerBlocksTruncated, 1, name);
    assert.equal(r.counters.headerBytesTruncated, truncatedBytes, name);
  }
  // A HEADERS cut at the bound, then its CONTINUATION (also cut): one block, both cuts counted.
  const two = Buffer.concat([
    frame(HEADERS, 0, 1, payload).subarray(0, 9 + 16384),
    frame(CONTINUATION, END_HEADERS, 1, payload).subarray(0, 9 + 16384),
  ]);
  const r = h2.decodeFrames([two], ELIDED);
  const blocks = (r.events ?? []).filter((e) => e.kind === 'headers');
  assert.deepEqual(blocks.map((b) => b.kind === 'headers' && [b.truncated, b.truncatedBytes, b.block.length]), [[true, 2 * cut, 2 * 16384]]);
});

test('frames, elided: padded HEADERS cut inside its padding is whole', () => {
  // Pad Length 10, block1, 10 bytes of padding: 31 bytes, of which a bound
  // of 25 keeps the block and 4 bytes of padding.
  const whole = frame(HEADERS, END_HEADERS | PADDED | END_STREAM, 1, Buffer.concat([Buffer.from([10]), block1, Buffer.alloc(10)]));
  for (const bound of [1 + block1.length, 25, 30, 31, 100]) {
    const present = Math.min(31, bound);
    const bytes = Buffer.concat([whole.subarray(0, 9 + present), frame(RST_STREAM, 0, 1, u32(8))]);
    const r = h2.decodeFrames([bytes], { dataPayloadElided: true, payloadCopyBound: bound, hpack: {} });
    assert.equal(r.broken, null, `bound ${bound}`);
    const blocks = (r.events ?? []).flatMap((e) => (e.kind === 'headers' ? [e] : []));
    assert.equal(blocks.length, 1);
    assert.equal(blocks[0].truncated, false, `bound ${bound}`);
    assert.deepEqual(blocks[0].block, block1, `bound ${bound}`);
    assert.deepEqual(blocks[0].hpack?.fields, fields(C_REQUESTS[0]));
    assert.ok(r.events?.some((e) => e.kind === 'rstStream' && e.errorCode === 8), `bound ${bound}: in step after`);
  }
  // One byte into the block instead: truncated by that byte.
  const bytes = whole.subarray(0, 9 + block1.length);
  const r = h2.decodeFrames([bytes], { dataPayloadElided: true, payloadCopyBound: block1.length });
  const b = (r.events ?? []).find((e) => e.kind === 'headers');
  assert.ok(b && b.kind === 'headers');
  assert.equal(b.truncated, true);
  assert.equal(b.truncatedBytes, 1);
});

const MALFORMED: Array<{ name: string; bytes: Buffer; broken: string; maxFrameBytes?: number; clientPreface?: boolean }> = [
  { name: 'CONTINUATION without HEADERS', bytes: frame(CONTINUATION, END_HEADERS, 1, block1), broken: 'unexpectedContinuation' },
  {
    name: 'DATA inside an open header block',
    bytes: Buffer.concat([frame(HEADERS, 0, 1, block1), frame(DATA, 0, 1, [1])]),
    broken: 'missingContinuation',
  },
  {
    name: 'CONTINUATION on another stream',
    bytes: Buffer.concat([frame(HEADERS, 0, 1, block1), frame(CONTINUATION, END_HEADERS, 3, [0x82])]),
    broken: 'missingContinuation',
  },
  { name: 'frame over SETTINGS_MAX_FRAME_SIZE', bytes: frame(DATA, 0, 1, Buffer.alloc(16385)), broken: 'frameTooLarge', maxFrameBytes: 16384 },
  { name: 'padding as long as the payload', bytes: frame(DATA, PADDED, 1, [4, 0, 0, 0]), broken: 'badPadding' },
  { name: 'padding reaching into the priority fields', bytes: frame(HEADERS, PADDED | PRIORITY_FLAG | END_HEADERS, 1, [2, 0, 0, 0, 0, 0, 0]), broken: 'badPadding' },
  { name: 'RST_STREAM of three bytes', bytes: frame(RST_STREAM, 0, 1, [0, 0, 8]), broken: 'badLength' },
  { name: 'SETTINGS of seven bytes', bytes: frame(SETTINGS, 0, 0, Buffer.alloc(7)), broken: 'badLength' },
  { name: 'SETTINGS ACK with a payload', bytes: frame(SETTINGS, ACK, 0, Buffer.alloc(6)), broken: 'badLength' },
  { name: 'SETTINGS on a stream', bytes: frame(SETTINGS, 0, 1), broken: 'badStreamId' },
  { name: 'HEADERS on stream 0', bytes: frame(HEADERS, END_HEADERS, 0, block1), broken: 'badStreamId' },
  { name: 'GOAWAY shorter than 8 bytes', bytes: frame(GOAWAY, 0, 0, Buffer.alloc(4)), broken: 'badLength' },
  { name: 'a preface that is HTTP/1', bytes: Buffer.from('GET / HTTP/1.1\r\n\r\n'), broken: 'badPreface', clientPreface: true },
];

for (const m of MALFORMED) {
  test(`frames, malformed: ${m.name} breaks the reader, which then ignores the rest`, () => {
    const after = frame(HEADERS, END_HEADERS, 9, block1);
    const r = h2.decodeFrames([m.bytes, after], { maxFrameBytes: m.maxFrameBytes, clientPreface: m.clientPreface });
    assert.equal(r.broken, m.broken);
    assert.equal(r.events?.some((e) => e.kind === 'headers' && e.streamId === 9), false);
    assert.equal(r.counters.bytes, m.bytes.length + after.length);
  });
}

// ---------------------------------------------------------------------------
// Detection of connections seen mid-life.
// ---------------------------------------------------------------------------

test('detect: plausible frame headers, never one byte', () => {
  const headers = frame(HEADERS, END_HEADERS | END_STREAM, 1, block1);
  const cases: Array<[string, Buffer, 'yes' | 'no' | 'needMore', { sender?: 'client' | 'server'; maxFrameBytes?: number }?]> = [
    ['a HEADERS frame', headers, 'yes'],
    ['HEADERS then DATA', Buffer.concat([headers, frame(DATA, END_STREAM, 1, [1, 2])]), 'yes'],
    ['a header whose payload is still to come', headers.subarray(0, 12), 'yes'],
    ['eight bytes', headers.subarray(0, 8), 'needMore'],
    ['one byte', Buffer.from([0]), 'needMore'],
    ['an HTTP/1 request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'no'],
    ['an HTTP/1 response', Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), 'no'],
    ['a TLS ClientHello', hex('160301020001'+'0001fc0303'), 'no'],
    ['an unknown type', frame(0x0b, 0, 1), 'no'],
    ['a flag HEADERS does not define', frame(HEADERS, END_HEADERS | 0x02, 1, block1), 'no'],
    ['the reserved bit set', Buffer.concat([headers.subarray(0, 5), Buffer.from([0x80, 0, 0, 1]), headers.subarray(9)]), 'no'],
    ['HEADERS on stream 0', frame(HEADERS, END_HEADERS, 0, block1), 'no'],
    ['SETTINGS on stream 1', frame(SETTINGS, 0, 1), 'no'],
    ['WINDOW_UPDATE of 5 bytes', frame(WINDOW_UPDATE, 0, 0, Buffer.alloc(5)), 'no'],
    ['a frame over 16384 bytes', frame(DATA, 0, 1, Buffer.alloc(16385)), 'no'],
    ['the same when SETTINGS allowed it', frame(DATA, 0, 1, Buffer.alloc(16385)), 'yes', { maxFrameBytes: 1 << 20 }],
    ['a good frame then a bad one', Buffer.concat([headers, frame(0x0c, 0, 1)]), 'no'],
    ['a padding longer than the frame', frame(DATA, PADDED, 1, [9, 0]), 'no'],
    ['a CONTINUATION first', frame(CONTINUATION, END_HEADERS, 1, block1), 'no'],
    ['HEADERS not followed by its CONTINUATION', Buffer.concat([frame(HEADERS, 0, 1, block1), frame(DATA, 0, 1)]), 'no'],
    ['a client on an even stream', frame(HEADERS, END_HEADERS, 2, block1), 'no', { sender: 'client' }],
    ['a server pushing on an even stream', frame(PUSH_PROMISE, END_HEADERS, 2, Buffer.concat([u32(4), block1])), 'no', { sender: 'server' }],
    ['a client pushing', frame(PUSH_PROMISE, END_HEADERS, 1, Buffer.concat([u32(2), block1])), 'no', { sender: 'client' }],
    ['a server answering on an even (pushed) stream', frame(HEADERS, END_HEADERS, 2, block1), 'yes', { sender: 'server' }],
  ];
  for (const [name, bytes, want, opts] of cases) assert.equal(h2.looksLikeFrames(bytes, opts), want, name);
  assert.equal(h2.startsWithClientPreface(PREFACE), 'yes');
  assert.equal(h2.startsWithClientPreface(PREFACE.subarray(0, 3)), 'needMore');
  assert.equal(h2.startsWithClientPreface(Buffer.from('PRI * HTTP/1.1')), 'no');
});

// ---------------------------------------------------------------------------
// HPACK.
// ---------------------------------------------------------------------------

test('hpack: RFC 7541 C.3 and C.4 requests, the dynamic table carried across blocks', () => {
  for (const [name, blocks] of [['C.3', C3], ['C.4 (Huffman)', C4]] as const) {
    const r = h2.decodeHpack([...blocks]);
    assert.deepEqual(
      r.blocks.map((b) => b.status),
      ['ok', 'ok', 'ok'],
      name,
    );
    assert.deepEqual(r.blocks.map((b) => b.fields), C_REQUESTS.map(fields), name);
  }
});

// §4.2: in HTTP/2 a receiver's SETTINGS_HEADER_TABLE_SIZE under 4096 is
// acknowledged by a size update at the start of the next block, which the
// RFC's example leaves out; 3fe101 is that update to 256.
const SIZE_UPDATE_256 = hex('3fe101');

test('hpack: RFC 7541 C.5 responses in a 256-byte table, with evictions', () => {
  const r = h2.decodeHpack([Buffer.concat([SIZE_UPDATE_256, C5[0]]), C5[1], C5[2]], { maxTableBytes: 256 });
  assert.deepEqual(r.blocks.map((b) => b.fields), C5_RESPONSES.map(fields));
  assert.equal(r.counters.errors, 0);
  const unsignalled = h2.decodeHpack([C5[0]], { maxTableBytes: 256 });
  assert.equal(unsignalled.blocks[0].status, 'error', 'a smaller table must be signalled');
});

test('hpack, mid-life: C.5.2 alone in a 256-byte table, its size update long past', () => {
  const r = h2.decodeHpack([C5[1]], { maxTableBytes: 256, midLife: true });
  assert.deepEqual(r.blocks, [{ status: 'unknownDynamicEntry', fields: [{ name: ':status', value: '307' }, UNKNOWN, UNKNOWN, UNKNOWN] }]);
});

test('hpack: through the frame reader, one decoder per direction', () => {
  const bytes = Buffer.concat(C4.map((b, i) => frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, b)));
  const r = h2.decodeFrames([bytes], { hpack: {} });
  const decoded = r.events?.flatMap((e) => (e.kind === 'headers' ? [e.hpack?.fields] : []));
  assert.deepEqual(decoded, C_REQUESTS.map(fields));
});

test('hpack, mid-life: C.3.2 without C.3.1 decodes its static and literal fields, the entry from before is unknown', () => {
  for (const block of [C3[1], C4[1]]) {
    const r = h2.decodeHpack([block], { midLife: true });
    assert.deepEqual(r.blocks, [
      {
        status: 'unknownDynamicEntry',
        fields: [...fields(C_REQUESTS[1].slice(0, 3)), UNKNOWN, { name: 'cache-control', value: 'no-cache' }],
      },
    ]);
    assert.equal(r.counters.fieldsUnknown, 1);
    assert.equal(r.counters.errors, 0);
    // It inserted cache-control into a table whose older part we lack.
    assert.equal(r.desynchronised, true);
  }
});

test('hpack, mid-life: after losing sync, dynamic references stay unknown and literals still decode', () => {
  const r = h2.decodeHpack([C3[1], C3[2]], { midLife: true });
  assert.deepEqual(r.blocks[1], {
    status: 'unknownDynamicEntry',
    fields: [...fields(C_REQUESTS[2].slice(0, 3)), UNKNOWN, { name: 'custom-key', value: 'custom-value' }],
  });
});

test('hpack, mid-life: entries inserted after attach decode, and a block that only reads keeps the table in step', () => {
  const r = h2.decodeHpack([C3[0], hex('828684bebf'), hex('be')], { midLife: true });
  assert.deepEqual(r.blocks, [
    { status: 'ok', fields: fields(C_REQUESTS[0]) },
    { status: 'unknownDynamicEntry', fields: [...fields(C_REQUESTS[0]), UNKNOWN] },
    { status: 'ok', fields: [{ name: ':authority', value: 'www.example.com' }] },
  ]);
  assert.equal(r.desynchronised, false);
});

test('hpack, mid-life: a table size update to 0 empties the table, and decoding is whole again', () => {
  // §4.2: two size updates, to 0 then back to 4096, before the fields.
  const r = h2.decodeHpack([C3[1], Buffer.concat([hex('203fe11f'), C3[0]]), hex('be')], { midLife: true });
  assert.deepEqual(
    r.blocks.map((b) => b.status),
    ['unknownDynamicEntry', 'ok', 'ok'],
  );
  assert.deepEqual(r.blocks[2].fields, [{ name: ':authority', value: 'www.example.com' }]);
  assert.equal(r.desynchronised, false);
});

test('hpack: an index no table could hold is an error even mid-life; on a connection seen whole, any unknown index is', () => {
  // 190 = 61 static + 129 dynamic entries: more than 4096 bytes can hold (§4.1: 32 bytes each at least).
  const midLife = h2.decodeHpack([hex('ff3f'), C3[0]], { midLife: true });
  assert.deepEqual(
    midLife.blocks.map((b) => b.status),
    ['error', 'broken'],
  );
  assert.equal(midLife.counters.errors, 1);
  const whole = h2.decodeHpack([C3[1], C3[0]]);
  assert.deepEqual(
    whole.blocks.map((b) => b.status),
    ['error', 'broken'],
  );
});

test('hpack, mid-life: an entry evicted by our smaller idea of the table is unknown, not an error', () => {
  // Two 4000-byte entries in one block, then the first: a 4096-byte table
  // has evicted it, the peer's (raised by SETTINGS before attach) may not have.
  const big = (c: string) => Buffer.concat([hex('4001'), Buffer.from(c), hex('7f801e'), Buffer.alloc(3967, c)]);
  const block = Buffer.concat([big('a'), big('b'), hex('bf')]);
  const mid = h2.decodeHpack([block], { midLife: true });
  assert.equal(mid.blocks[0].status, 'unknownDynamicEntry');
  assert.deepEqual(mid.blocks[0].fields.map((f) => [f.name, f.value.length, !!f.nameUnknown]), [['a', 3967, false], ['b', 3967, false], ['', 0, true]]);
  assert.equal(h2.decodeHpack([block]).blocks[0].status, 'error', 'seen whole, the table size is known');
});

test('hpack: malformed blocks are errors, never exceptions', () => {
  const bad: Array<[string, Buffer]> = [
    ['index 0', hex('80')],
    ['an integer cut short', hex('ff')],
    ['a string longer than the block', hex('400a6162')],
    ['a size update after a field', hex('8220')],
    ['a size update over the settings', hex('3fe21f')],
    ['bad Huffman padding', hex('0081ff8100')],
  ];
  for (const [name, block] of bad) {
    for (const midLife of [false, true]) {
      const r = h2.decodeHpack([block], { midLife });
      assert.equal(r.blocks[0].status, 'error', `${name}, midLife ${midLife}`);
    }
  }
});

test('hpack: fields past the bounds are dropped and counted, the table still follows', () => {
  const r = h2.decodeHpack([C3[0], hex('be')], { maxFields: 2 });
  assert.deepEqual(r.blocks[0], { status: 'ok', fields: fields(C_REQUESTS[0].slice(0, 2)), fieldsDropped: 2 });
  assert.deepEqual(r.blocks[1].fields, [{ name: ':authority', value: 'www.example.com' }]);
});

// Node's own nghttp2 writes the bytes: two requests on one connection, the
// second compressed against the first's dynamic-table entries.
test('hpack: real client bytes from Node http2, whole and joined mid-life', async () => {
  const chunks: Buffer[] = [];
  const server = net.createServer((socket) => socket.on('data', (c) => chunks.push(c)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => {});
  try {
    for (const p of ['/first?a=1', '/second']) {
      const req = client.request({ ':path': p, 'x-sonde-test': 'same-value' });
      req.on('error', () => {});
    }
    const headersSeen = () =>
      (h2.decodeFrames(chunks, { clientPreface: true }).events ?? []).filter((e) => e.kind === 'headers').length;
    for (let i = 0; i < 100 && headersSeen() < 2; i++) await new Promise((r) => setTimeout(r, 20));
  } finally {
    client.destroy();
    server.close();
  }
  const whole = h2.decodeFrames(chunks, { clientPreface: true, hpack: {} });
  assert.equal(whole.broken, null);
  const blocks = (whole.events ?? []).flatMap((e) => (e.kind === 'headers' ? [e] : []));
  assert.equal(blocks.length, 2);
  for (const [i, path] of ['/first?a=1', '/second'].entries()) {
    const f = blocks[i].hpack?.fields ?? [];
    assert.equal(blocks[i].hpack?.status, 'ok');
    assert.deepEqual(f.find((x) => x.name === ':path'), { name: ':path', value: path });
    assert.deepEqual(f.find((x) => x.name === ':method'), { name: ':method', value: 'GET' });
    assert.deepEqual(f.find((x) => x.name === 'x-sonde-test'), { name: 'x-sonde-test', value: 'same-value' });
  }
  // Joined at the second request: what nghttp2 indexed during the first is unknown.
  const second = blocks[1].block;
  const mid = h2.decodeHpack([second], { midLife: true });
  assert.equal(mid.blocks[0].status, 'unknownDynamicEntry');
  assert.deepEqual(mid.blocks[0].fields.find((x) => x.name === ':method'), { name: ':method', value: 'GET' });
  assert.ok(mid.blocks[0].fields.some((x) => x.nameUnknown), 'some field refers to the first request');
  assert.ok(!mid.blocks[0].fields.some((x) => !x.nameUnknown && x.name === ':path' && x.value !== '/second'));
});

// ---------------------------------------------------------------------------
// Fuzz: random and mutated inputs through frame reader and HPACK.
// ---------------------------------------------------------------------------

test('fuzz: seeded random and mutated inputs never crash, throw or grow memory', { timeout: 600_000 }, () => {
  const count = Number(process.env.SONDE_HTTP2_FUZZ_COUNT ?? 100_000);
  const seed = Number(process.env.SONDE_HTTP2_FUZZ_SEED ?? 1);
  const rand = mulberry32(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const frameCorpus = [...SCENARIOS.map((s) => s.bytes), ALL_BYTES, ...MALFORMED.map((m) => m.bytes)];
  const hpackCorpus = [...C3, ...C4, ...C5];

  const mutate = (src: Buffer): Buffer => {
    const b = Buffer.from(src);
    const edits = 1 + int(4);
    let out = b;
    for (let e = 0; e < edits; e++) {
      if (out.length === 0) break;
      const at = int(out.length);
      switch (int(6)) {
        case 0: out[at] ^= 1 << int(8); break;
        case 1: out[at] = int(256); break;
        case 2: out = Buffer.concat([out.subarray(0, at), Buffer.from([int(256)]), out.subarray(at)]); break;
        case 3: out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + int(8))]); break;
        case 4: out = out.subarray(0, at); break;
        default: {
          const other = frameCorpus[int(frameCorpus.length)];
          out = Buffer.concat([out.subarray(0, at), other.subarray(int(other.length))]);
        }
      }
    }
    return out;
  };
  const split = (b: Buffer): Buffer[] => {
    const parts: Buffer[] = [];
    let at = 0;
    const n = int(4);
    for (let i = 0; i < n && at < b.length; i++) {
      const next = at + int(b.length - at + 1);
      parts.push(b.subarray(at, next));
      at = next;
    }
    parts.push(b.subarray(at));
    return parts;
  };

  const start = process.hrtime.bigint();
  let rssAfterWarmup = 0;
  let broken = 0, hpackErrors = 0, unknown = 0;
  for (let i = 0; i < count; i++) {
    if (i === Math.min(10_000, count >> 2)) rssAfterWarmup = process.memoryUsage().rss;
    const mode = int(10);
    if (mode < 6) {
      let input: Buffer;
      if (mode === 0) input = Buffer.from(Array.from({ length: int(256) }, () => int(256)));
      else input = mutate(frameCorpus[int(frameCorpus.length)]);
      const withPreface = int(4) === 0;
      if (withPreface) input = Buffer.concat([PREFACE, input]);
      const r = h2.decodeFrames(split(input), {
        clientPreface: withPreface,
        summary: true,
        maxHeaderBlockBytes: int(2) ? 64 * 1024 : 1 + int(64),
        maxFrameBytes: int(2) ? 16384 : 16777215,
        hpack: { midLife: int(2) === 0, maxTableBytes: int(2) ? 4096 : int(512) },
      });
      assert.equal(r.counters.bytes, input.length);
      if (r.broken) broken++;
      hpackErrors += r.hpack?.errors ?? 0;
    } else {
      const blocks = Array.from({ length: 1 + int(3) }, () => {
        const src = hpackCorpus[int(hpackCorpus.length)];
        return mode === 6 ? Buffer.from(Array.from({ length: int(64) }, () => int(256))) : int(3) ? mutate(src) : src;
      });
      const r = h2.decodeHpack(blocks, { midLife: int(2) === 0, maxTableBytes: int(2) ? 4096 : 256 });
      assert.equal(r.blocks.length, blocks.length);
      hpackErrors += r.counters.errors;
      unknown += r.counters.blocksWithUnknownEntries;
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rssGrowthMiB = rssAfterWarmup ? (process.memoryUsage().rss - rssAfterWarmup) / (1 << 20) : 0;
  // The figures a longer run is judged by.
  console.log(
    `http2 fuzz: ${count} inputs, seed ${seed}, ${seconds.toFixed(1)} s, readers broken ${broken}, ` +
      `hpack errors ${hpackErrors}, blocks with unknown entries ${unknown}, rss growth ${rssGrowthMiB.toFixed(1)} MiB`,
  );
  assert.ok(rssGrowthMiB < 128, `memory grew by ${rssGrowthMiB.toFixed(1)} MiB`);
  assert.ok(broken > 0 && hpackErrors > 0, 'the fuzz reaches the error paths');
});
