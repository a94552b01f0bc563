import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeExchanges,
  ExchangeFlags,
  ExchangeProtocol,
  formatAddress,
  LinkSource,
  MalformedBatchError,
  RECORD_HEADER_BYTES,
  RECORD_OFFSETS,
  requestHeadOf,
  responseHeadOf,
  type Exchange,
} from '../../src/native/exchangeDecoder';

import { encodeRecord as encode, v4mapped, v6 } from '../support/records';

function decodeAll(batch: Buffer): Exchange[] {
  const out: Exchange[] = [];
  const n = decodeExchanges(batch, (x) => out.push(x));
  assert.equal(n, out.length);
  return out;
}

/** The exchange without its payload buffer, with the two heads as text (the payload is checked separately). */
function plain(x: Exchange): Omit<Exchange, 'payload'> & { requestHead: string; responseHead: string } {
  const { payload: _payload, ...rest } = x;
  return { ...rest, requestHead: requestHeadOf(x).toString('latin1'), responseHead: responseHeadOf(x).toString('latin1') };
}

// ---------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------

test('RECORD_OFFSETS describe a packed header with no overlaps and no gaps', () => {
  const sizes: Record<keyof typeof RECORD_OFFSETS, number> = {
    record_bytes: 4,
    role: 1,
    flags: 1,
    link_source: 1,
    trace_flags: 1,
    pid: 4,
    tid: 4,
    fd: 4,
    generation: 4,
    family: 2,
    local_port: 2,
    remote_port: 2,
    protocol: 1,
    source: 1,
    local_addr: 16,
    remote_addr: 16,
    request_start_ns: 8,
    request_end_ns: 8,
    response_start_ns: 8,
    response_end_ns: 8,
    request_bytes: 8,
    response_bytes: 8,
    trace_id: 16,
    span_id: 8,
    parent_span_id: 8,
    comm: 16,
    request_payload_bytes: 4,
    response_payload_bytes: 4,
    stream_id: 4,
    end_error_code: 4,
  };
  const fields = (Object.keys(sizes) as Array<keyof typeof RECORD_OFFSETS>).sort((a, b) => RECORD_OFFSETS[a] - RECORD_OFFSETS[b]);
  let end = 0;
  for (const f of fields) {
    assert.ok(RECORD_OFFSETS[f] >= end, `${f} overlaps the field before it`);
    assert.equal(RECORD_OFFSETS[f], end, `${f} should follow the field before it`);
    end = RECORD_OFFSETS[f] + sizes[f];
  }
  assert.equal(end, RECORD_HEADER_BYTES);
  assert.equal(RECORD_HEADER_BYTES % 8, 0, 'records stay 8-byte multiples');
});

test('ExchangeFlags bits match ExchangeRecord.h', () => {
  assert.deepEqual(ExchangeFlags, { NoResponse: 1, ClosedBeforeResponse: 2, EndEstimated: 4, EventsLost: 8, PreexistingConnection: 16, ResponseIncomplete: 32, HeadersIncomplete: 64, StreamReset: 128 });
  assert.deepEqual([LinkSource.None, LinkSource.TraceparentHeader, LinkSource.PeerClient, LinkSource.EnclosingServer], [0, 1, 2, 3]);
});

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

test('decodes every field of a single server record', () => {
  const batch = encode({
    role: 1,
    flags: ExchangeFlags.EndEstimated | ExchangeFlags.PreexistingConnection,
    linkSource: LinkSource.TraceparentHeader,
    traceFlags: 1,
    pid: 4_000_000_000,
    tid: 4242,
    fd: 17,
    generation: 0xfffffffe,
    family: 2,
    localPort: 8080,
    remotePort: 65535,
    localAddr: v4mapped(10, 0, 0, 5),
    remoteAddr: v4mapped(192, 168, 255, 1),
    // Below 2^53, with both 32-bit halves in use and the low half's top bit set.
    requestStartNs: 0x1f_ffff_ffff_fff0n,
    requestEndNs: 8_345_678_901_234_567n,
    responseStartNs: 8_345_678_901_300_000n,
    responseEndNs: 8_345_678_999_999_999n,
    requestBytes: 9_007_199_254_740_991n,
    responseBytes: 1n << 40n,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    parentSpanId: 'b7ad6b7169203331',
    comm: 'gunicorn',
    protocol: ExchangeProtocol.Http2,
    source: 2,
    streamId: 0xfffffffd,
    endErrorCode: 0x8,
    request: Buffer.from('GET /a HTTP/1.1\r\nHost: x\r\n\r\n'),
    response: Buffer.from('HTTP/1.1 200 OK\r\n\r\n'),
  });
  const [x] = decodeAll(batch);
  assert.equal(x.payload, batch);
  assert.deepEqual(plain(x), {
    role: 'server',
    protocol: ExchangeProtocol.Http2,
    tls: true,
    streamId: 0xfffffffd,
    endErrorCode: 0x8,
    flags: ExchangeFlags.EndEstimated | ExchangeFlags.PreexistingConnection,
    linkSource: LinkSource.TraceparentHeader,
    traceFlags: 1,
    pid: 4_000_000_000,
    tid: 4242,
    fd: 17,
    generation: 0xfffffffe,
    family: 2,
    localAddress: '10.0.0.5',
    localPort: 8080,
    remoteAddress: '192.168.255.1',
    remotePort: 65535,
    requestStartNs: 0x1f_ffff_ffff_fff0,
    requestEndNs: 8_345_678_901_234_567,
    responseStartNs: 8_345_678_901_300_000,
    responseEndNs: 8_345_678_999_999_999,
    requestBytes: 9_007_199_254_740_991,
    responseBytes: 2 ** 40,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    parentSpanId: 'b7ad6b7169203331',
    comm: 'gunicorn',
    requestHeadStart: RECORD_HEADER_BYTES,
    requestHeadEnd: RECORD_HEADER_BYTES + 28,
    responseHeadStart: RECORD_HEADER_BYTES + 28,
    responseHeadEnd: RECORD_HEADER_BYTES + 28 + 19,
    requestHead: 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n',
    responseHead: 'HTTP/1.1 200 OK\r\n\r\n',
  });
  assert.equal(x.responseHeadEnd, batch.length);
});

test('u64 times and byte counts decode as hi * 2^32 + lo: exact below 2^53, nearest double above', () => {
  const exact = [0n, 1n, 0xffff_ffffn, 0x1_0000_0000n, 0x1_8000_0001n, 0x8000_0000n, 0x1f_ffff_8000_0000n, 8_640_000_000_000_000n, 9_007_199_254_740_991n];
  for (const v of exact) {
    const [x] = decodeAll(encode({ requestStartNs: v, requestEndNs: v, responseStartNs: v, responseEndNs: v, requestBytes: v, responseBytes: v }));
    const n = Number(v);
    assert.deepEqual(
      [x.requestStartNs, x.requestEndNs, x.responseStartNs, x.responseEndNs, x.requestBytes, x.responseBytes],
      [n, n, n, n, n, n],
      String(v),
    );
    assert.equal(BigInt(x.requestStartNs), v, String(v));
  }
  // Each field is read from its own offset.
  const [y] = decodeAll(encode({ requestStartNs: 0x1_0000_0001n, requestEndNs: 0x2_0000_0002n, responseStartNs: 0x3_0000_0003n, responseEndNs: 0x4_0000_0004n, requestBytes: 0x5_0000_0005n, responseBytes: 0x6_0000_0006n }));
  assert.deepEqual(
    [y.requestStartNs, y.requestEndNs, y.responseStartNs, y.responseEndNs, y.requestBytes, y.responseBytes],
    [0x1_0000_0001, 0x2_0000_0002, 0x3_0000_0003, 0x4_0000_0004, 0x5_0000_0005, 0x6_0000_0006],
  );
  // Beyond 2^53 (past 104 days of uptime) the value is the nearest double: within a few ns.
  for (const v of [9_007_199_254_740_993n, 12_345_678_901_234_567n, 0xffff_ffff_ffff_fff0n]) {
    const [x] = decodeAll(encode({ requestStartNs: v }));
    assert.equal(x.requestStartNs, Number(v), String(v));
  }
});

test('client role, negative fd, IPv6 family, zero parent -> ""', () => {
  const [x] = decodeAll(
    encode({
      role: 2,
      fd: -1,
      family: 10,
      localAddr: v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
      remoteAddr: v6([0xfe80, 0, 0, 0, 0, 0, 0, 1]),
      parentSpanId: '0000000000000000',
      linkSource: LinkSource.EnclosingServer,
      traceFlags: 0,
    }),
  );
  assert.equal(x.role, 'client');
  assert.equal(x.fd, -1);
  assert.equal(x.family, 10);
  assert.equal(x.localAddress, '2001:db8::1');
  assert.equal(x.remoteAddress, 'fe80::1');
  assert.equal(x.parentSpanId, '');
  assert.equal(x.linkSource, LinkSource.EnclosingServer);
  assert.equal(x.traceFlags, 0);
});

test('a parent id that is only partly zero is kept', () => {
  assert.equal(decodeAll(encode({ parentSpanId: '0000000000000001' }))[0].parentSpanId, '0000000000000001');
  assert.equal(decodeAll(encode({ parentSpanId: '0100000000000000' }))[0].parentSpanId, '0100000000000000');
});

test('comm: NUL-terminated, bytes after the NUL ignored, a full 16 bytes without NUL kept whole', () => {
  assert.equal(decodeAll(encode({ comm: 'curl' }))[0].comm, 'curl');
  assert.equal(decodeAll(encode({ comm: Buffer.from('sh\0garbage-here', 'latin1') }))[0].comm, 'sh');
  assert.equal(decodeAll(encode({ comm: 'python3.12-worke' }))[0].comm, 'python3.12-worke');
  assert.equal(decodeAll(encode({ comm: Buffer.alloc(16) }))[0].comm, '');
  // The comm never runs into the payload that follows the header.
  const [x] = decodeAll(encode({ comm: Buffer.alloc(16, 0x41), request: Buffer.from('GET / HTTP/1.1\r\n\r\n') }));
  assert.equal(x.comm, 'A'.repeat(16));
});

test('no response: response times 0, empty response payload', () => {
  const [x] = decodeAll(encode({ flags: ExchangeFlags.NoResponse, responseStartNs: 0n, responseEndNs: 0n, responseBytes: 0n, response: Buffer.alloc(0) }));
  assert.equal(x.responseStartNs, 0);
  assert.equal(x.responseEndNs, 0);
  assert.equal(x.responseBytes, 0);
  assert.equal(responseHeadOf(x).length, 0);
  assert.equal(x.responseHeadStart, x.responseHeadEnd);
  assert.equal(x.responseHeadStart, x.requestHeadEnd);
  assert.equal(x.flags, ExchangeFlags.NoResponse);
});

test('empty request and response payloads', () => {
  const batch = encode({ request: Buffer.alloc(0), response: Buffer.alloc(0) });
  assert.equal(batch.length, RECORD_HEADER_BYTES);
  const [x] = decodeAll(batch);
  assert.equal(requestHeadOf(x).length, 0);
  assert.equal(responseHeadOf(x).length, 0);
  assert.deepEqual(
    [x.requestHeadStart, x.requestHeadEnd, x.responseHeadStart, x.responseHeadEnd],
    [RECORD_HEADER_BYTES, RECORD_HEADER_BYTES, RECORD_HEADER_BYTES, RECORD_HEADER_BYTES],
  );
});

test('decodes several records back to back, in order, and returns the count', () => {
  const records = [
    encode({ pid: 1, role: 1, request: Buffer.from('GET /1 HTTP/1.1\r\n\r\n'), response: Buffer.from('HTTP/1.1 200 OK\r\n\r\n') }),
    encode({ pid: 2, role: 2, request: Buffer.from('POST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc'), response: Buffer.alloc(0) }),
    encode({ pid: 3, role: 1, request: Buffer.alloc(0), response: Buffer.from('HTTP/1.0 500 x\r\n\r\n') }),
  ];
  const seen: Exchange[] = [];
  const batch = Buffer.concat(records);
  const n = decodeExchanges(batch, (x) => seen.push(x));
  assert.equal(n, 3);
  // Every exchange of a batch shares the batch buffer; offsets are from its start.
  for (const x of seen) assert.equal(x.payload, batch);
  const r0 = records[0].length;
  const r1 = records[1].length;
  const h = RECORD_HEADER_BYTES;
  assert.deepEqual(
    seen.map((x) => [x.requestHeadStart, x.requestHeadEnd, x.responseHeadStart, x.responseHeadEnd]),
    [
      [h, h + 19, h + 19, h + 19 + 19],
      [r0 + h, r0 + h + 42, r0 + h + 42, r0 + h + 42],
      [r0 + r1 + h, r0 + r1 + h, r0 + r1 + h, r0 + r1 + h + 18],
    ],
  );
  assert.deepEqual(
    seen.map((x) => [x.pid, x.role, requestHeadOf(x).toString(), responseHeadOf(x).toString()]),
    [
      [1, 'server', 'GET /1 HTTP/1.1\r\n\r\n', 'HTTP/1.1 200 OK\r\n\r\n'],
      [2, 'client', 'POST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc', ''],
      [3, 'server', '', 'HTTP/1.0 500 x\r\n\r\n'],
    ],
  );
});

test('an empty batch decodes to nothing', () => {
  let called = 0;
  assert.equal(
    decodeExchanges(Buffer.alloc(0), () => called++),
    0,
  );
  assert.equal(called, 0);
});

test('payloads are views into the batch, not copies', () => {
  const first = encode({ request: Buffer.from('GET /x HTTP/1.1\r\n\r\n') });
  const second = encode({ request: Buffer.from('GET /yy HTTP/1.1\r\n\r\n'), response: Buffer.from('HTTP/1.1 200 OK\r\n\r\n') });
  const batch = Buffer.concat([first, second]);
  const [w, x] = decodeAll(batch);
  const reqAt = first.length + RECORD_HEADER_BYTES;
  assert.equal(w.payload, batch);
  assert.equal(x.payload, batch);
  assert.equal(x.requestHeadStart, reqAt);
  assert.equal(x.requestHeadEnd, reqAt + 20);
  assert.equal(x.responseHeadStart, reqAt + 20);
  assert.equal(x.responseHeadEnd, batch.length);
  const requestHead = requestHeadOf(x);
  const responseHead = responseHeadOf(x);
  assert.equal(requestHead.buffer, batch.buffer);
  assert.equal(requestHead.byteOffset, batch.byteOffset + reqAt);
  assert.equal(responseHead.buffer, batch.buffer);
  assert.equal(responseHead.byteOffset, batch.byteOffset + reqAt + requestHead.length);
  batch[reqAt + 5] = 'Y'.charCodeAt(0);
  assert.equal(requestHeadOf(x).toString(), 'GET /Yy HTTP/1.1\r\n\r\n');
  assert.equal(requestHead.toString(), 'GET /Yy HTTP/1.1\r\n\r\n');
  assert.equal(responseHead.toString(), 'HTTP/1.1 200 OK\r\n\r\n');
});

test('a batch that is itself a view into a larger buffer decodes correctly', () => {
  const record = encode({ pid: 77 });
  const big = Buffer.alloc(record.length + 64, 0xee);
  record.copy(big, 32);
  const view = big.subarray(32, 32 + record.length);
  const [x] = decodeAll(view);
  assert.equal(x.pid, 77);
  // Offsets are relative to the batch view, not to the underlying memory.
  assert.equal(x.payload, view);
  assert.equal(x.requestHeadStart, RECORD_HEADER_BYTES);
  assert.equal(requestHeadOf(x).toString(), 'GET / HTTP/1.1\r\n\r\n');
  assert.equal(responseHeadOf(x).toString(), 'HTTP/1.1 204 No Content\r\n\r\n');
  assert.equal(requestHeadOf(x).byteOffset, big.byteOffset + 32 + RECORD_HEADER_BYTES);
});

// ---------------------------------------------------------------------------
// Corrupt batches
// ---------------------------------------------------------------------------

function throwsMalformed(batch: Buffer, pattern: RegExp): Exchange[] {
  const seen: Exchange[] = [];
  assert.throws(
    () => decodeExchanges(batch, (x) => seen.push(x)),
    (error: unknown) => error instanceof MalformedBatchError && error instanceof Error && pattern.test(error.message),
  );
  return seen;
}

test('a truncated record header throws MalformedBatchError', () => {
  throwsMalformed(encode().subarray(0, 100), /^truncated record header at 0$/);
  throwsMalformed(Buffer.alloc(1), /truncated record header at 0/);
  throwsMalformed(encode().subarray(0, RECORD_HEADER_BYTES - 1), /truncated record header at 0/);
});

test('records before the corrupt one are still delivered', () => {
  const good = encode({ pid: 9 });
  const seen = throwsMalformed(Buffer.concat([good, Buffer.alloc(10)]), new RegExp(`truncated record header at ${good.length}$`));
  assert.deepEqual(
    seen.map((x) => x.pid),
    [9],
  );
});

test('a record length that disagrees with the payload sizes throws', () => {
  const r = encode();
  throwsMalformed(encode({ recordBytes: r.length + 1 }), new RegExp(`bad record length ${r.length + 1} at 0`));
  throwsMalformed(encode({ recordBytes: r.length - 1 }), /bad record length/);
  throwsMalformed(encode({ recordBytes: 0 }), /bad record length 0 at 0/);
  throwsMalformed(encode({ requestPayloadBytes: 0 }), /bad record length/);
});

test('a record longer than the batch throws', () => {
  const r = encode();
  throwsMalformed(r.subarray(0, r.length - 1), new RegExp(`bad record length ${r.length} at 0`));
  // Header and payload sizes agree, but point far past the end.
  throwsMalformed(encode({ request: Buffer.alloc(0), response: Buffer.alloc(0), recordBytes: RECORD_HEADER_BYTES + 1_000_000, requestPayloadBytes: 1_000_000 }), /bad record length/);
  // Huge sizes do not wrap around.
  throwsMalformed(encode({ request: Buffer.alloc(0), response: Buffer.alloc(0), recordBytes: 0xffffffff, requestPayloadBytes: 0xffffffff, responsePayloadBytes: 0xffffffff }), /bad record length/);
});

test('a bad role throws', () => {
  throwsMalformed(encode({ role: 0 }), /^bad role at 0$/);
  throwsMalformed(encode({ role: 3 }), /bad role at 0/);
  const good = encode();
  throwsMalformed(Buffer.concat([good, encode({ role: 0xff })]), new RegExp(`bad role at ${good.length}`));
});

test('an unknown protocol throws', () => {
  throwsMalformed(encode({ protocol: 0 }), /^bad protocol at 0$/);
  throwsMalformed(encode({ protocol: 3 }), /^bad protocol at 0$/);
  const good = encode();
  throwsMalformed(Buffer.concat([good, encode({ protocol: 0xff })]), new RegExp(`bad protocol at ${good.length}`));
});

test('MalformedBatchError is an Error', () => {
  const e = new MalformedBatchError('x');
  assert.ok(e instanceof Error);
  assert.equal(e.message, 'x');
});

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

function fmt(addr: Buffer): string {
  const padded = Buffer.concat([Buffer.from([0xaa, 0xbb, 0xcc]), addr, Buffer.from([0xdd])]);
  return formatAddress(padded, 3);
}

test('formatAddress: IPv4-mapped addresses print as dotted quads', () => {
  assert.equal(fmt(v4mapped(127, 0, 0, 1)), '127.0.0.1');
  assert.equal(fmt(v4mapped(0, 0, 0, 0)), '0.0.0.0');
  assert.equal(fmt(v4mapped(255, 255, 255, 255)), '255.255.255.255');
  assert.equal(fmt(v4mapped(192, 0, 2, 33)), '192.0.2.33');
});

test('formatAddress: RFC 5952 compression', () => {
  assert.equal(fmt(v6([0, 0, 0, 0, 0, 0, 0, 1])), '::1');
  assert.equal(fmt(v6([0, 0, 0, 0, 0, 0, 0, 0])), '::');
  assert.equal(fmt(v6([0xfe80, 0, 0, 0, 0, 0, 0, 1])), 'fe80::1');
  assert.equal(fmt(v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0])), '2001:db8::');
  assert.equal(fmt(v6([0x2001, 0xdb8, 0x85a3, 0x8d3, 0x1319, 0x8a2e, 0x370, 0x7348])), '2001:db8:85a3:8d3:1319:8a2e:370:7348');
  assert.equal(fmt(v6([0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff])), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  // Leading zeros of a group are dropped, letters are lower case.
  assert.equal(fmt(v6([0x2001, 0x0db8, 0x000a, 0x00bc, 0x0def, 0xabcd, 0x0001, 0x0010])), '2001:db8:a:bc:def:abcd:1:10');
  // A single zero group is not compressed.
  assert.equal(fmt(v6([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1])), '2001:db8:0:1:1:1:1:1');
  // The longest run wins; of equal runs, the first.
  assert.equal(fmt(v6([0x2001, 0, 0, 1, 0, 0, 0, 1])), '2001:0:0:1::1');
  assert.equal(fmt(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])), '2001:db8::1:0:0:1');
  assert.equal(fmt(v6([0, 0, 1, 0, 0, 0, 0, 0])), '0:0:1::');
  assert.equal(fmt(v6([1, 0, 0, 0, 0, 0, 0, 0])), '1::');
  assert.equal(fmt(v6([0, 0, 0, 0, 0, 0, 0, 0xffff])), '::ffff');
});

test('formatAddress: almost-mapped addresses are IPv6, not IPv4', () => {
  // ::ffff:0:c000:201 style: the ffff is not at bytes 10-11.
  assert.equal(fmt(v6([0, 0, 0, 0, 0xffff, 0, 0xc000, 0x201])), '::ffff:0:c000:201');
  // IPv4-compatible (deprecated) ::192.0.2.1 stays hex.
  assert.equal(fmt(v6([0, 0, 0, 0, 0, 0, 0xc000, 0x201])), '::c000:201');
  // A non-zero byte in the prefix.
  assert.equal(fmt(v6([0x100, 0, 0, 0, 0, 0xffff, 0xc000, 0x201])), '100::ffff:c000:201');
  // NAT64 64:ff9b::/96 is IPv6.
  assert.equal(fmt(v6([0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x201])), '64:ff9b::c000:201');
});

test('formatAddress output round-trips through the URL parser as a valid IPv6 literal', () => {
  const samples = [
    v6([0, 0, 0, 0, 0, 0, 0, 1]),
    v6([0xfe80, 0, 0, 0, 0x1ff, 0xfe23, 0x4567, 0x890a]),
    v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]),
    v6([0x2001, 0xdb8, 1, 2, 3, 4, 5, 6]),
  ];
  for (const s of samples) {
    const text = fmt(s);
    assert.equal(new URL(`http://[${text}]/`).hostname, `[${text}]`, text);
  }
});
