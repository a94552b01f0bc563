import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  headerValue,
  parseRequestHead,
  parseResponseHead,
  HeaderField,
  ParseResult,
  RequestHead,
  ResponseHead,
} from '../../../src/protocols/http1/parse';

function bytes(wire: string): Uint8Array {
  return new Uint8Array(Buffer.from(wire, 'latin1'));
}

function req(wire: string | Uint8Array): ParseResult<RequestHead> {
  return parseRequestHead(typeof wire === 'string' ? bytes(wire) : wire);
}

function res(wire: string | Uint8Array): ParseResult<ResponseHead> {
  return parseResponseHead(typeof wire === 'string' ? bytes(wire) : wire);
}

function okReq(wire: string | Uint8Array): RequestHead {
  const r = req(wire);
  assert.ok(r.ok, `expected a request, got ${r.ok ? '' : r.reason}`);
  return r.value;
}

function okRes(wire: string | Uint8Array): ResponseHead {
  const r = res(wire);
  assert.ok(r.ok, `expected a response, got ${r.ok ? '' : r.reason}`);
  return r.value;
}

function h(name: string, value: string): HeaderField {
  return { name, value };
}

const nodeBody = '{"item":"book","qty":2}';

interface RequestFixture {
  name: string;
  kind: 'request';
  wire: string;
  expect: Omit<RequestHead, 'headBytes'>;
}
interface ResponseFixture {
  name: string;
  kind: 'response';
  wire: string;
  expect: Omit<ResponseHead, 'headBytes'>;
}
type Fixture = RequestFixture | ResponseFixture;

const fixtures: Fixture[] = [
  {
    name: 'curl GET',
    kind: 'request',
    wire: 'GET /api/users?id=42&sort=asc HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n',
    expect: {
      method: 'GET',
      target: '/api/users?id=42&sort=asc',
      path: '/api/users',
      query: 'id=42&sort=asc',
      version: '1.1',
      headers: [h('host', 'localhost:8080'), h('user-agent', 'curl/8.5.0'), h('accept', '*/*')],
      headersComplete: true,
    },
  },
  {
    name: 'node http.request POST with body',
    kind: 'request',
    wire:
      'POST /orders HTTP/1.1\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${nodeBody.length}\r\nHost: localhost:3000\r\nConnection: keep-alive\r\n\r\n${nodeBody}`,
    expect: {
      method: 'POST',
      target: '/orders',
      path: '/orders',
      query: undefined,
      version: '1.1',
      headers: [
        h('content-type', 'application/json'),
        h('content-length', String(nodeBody.length)),
        h('host', 'localhost:3000'),
        h('connection', 'keep-alive'),
      ],
      headersComplete: true,
    },
  },
  {
    name: 'python http.server response',
    kind: 'response',
    wire:
      'HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.12.3\r\nDate: Tue, 25 Nov 2025 11:49:00 GMT\r\n' +
      'Content-type: text/html; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello',
    expect: {
      version: '1.0',
      statusCode: 200,
      reason: 'OK',
      headers: [
        h('server', 'SimpleHTTP/0.6 Python/3.12.3'),
        h('date', 'Tue, 25 Nov 2025 11:49:00 GMT'),
        h('content-type', 'text/html; charset=utf-8'),
        h('content-length', '5'),
      ],
      headersComplete: true,
    },
  },
  {
    name: 'nginx 404',
    kind: 'response',
    wire:
      'HTTP/1.1 404 Not Found\r\nServer: nginx/1.24.0 (Ubuntu)\r\nDate: Tue, 25 Nov 2025 11:49:00 GMT\r\n' +
      'Content-Type: text/html\r\nContent-Length: 162\r\nConnection: keep-alive\r\n\r\n<html>\r\n<head><title>404 Not Found</title></head>\r\n',
    expect: {
      version: '1.1',
      statusCode: 404,
      reason: 'Not Found',
      headers: [
        h('server', 'nginx/1.24.0 (Ubuntu)'),
        h('date', 'Tue, 25 Nov 2025 11:49:00 GMT'),
        h('content-type', 'text/html'),
        h('content-length', '162'),
        h('connection', 'keep-alive'),
      ],
      headersComplete: true,
    },
  },
  {
    name: 'chunked response',
    kind: 'response',
    wire: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nMozilla\r\n0\r\n\r\n',
    expect: {
      version: '1.1',
      statusCode: 200,
      reason: 'OK',
      headers: [h('content-type', 'text/plain'), h('transfer-encoding', 'chunked')],
      headersComplete: true,
    },
  },
  {
    name: 'absolute-form proxy request',
    kind: 'request',
    wire: 'GET http://example.com:8080/path/to?q=1&r=2 HTTP/1.1\r\nHost: example.com:8080\r\nProxy-Connection: keep-alive\r\n\r\n',
    expect: {
      method: 'GET',
      target: 'http://example.com:8080/path/to?q=1&r=2',
      path: '/path/to',
      query: 'q=1&r=2',
      version: '1.1',
      headers: [h('host', 'example.com:8080'), h('proxy-connection', 'keep-alive')],
      headersComplete: true,
    },
  },
  {
    name: 'CONNECT',
    kind: 'request',
    wire: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: curl/8.5.0\r\n\r\n',
    expect: {
      method: 'CONNECT',
      target: 'example.com:443',
      path: 'example.com:443',
      query: undefined,
      version: '1.1',
      headers: [h('host', 'example.com:443'), h('user-agent', 'curl/8.5.0')],
      headersComplete: true,
    },
  },
  {
    name: 'OPTIONS *',
    kind: 'request',
    wire: 'OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n',
    expect: {
      method: 'OPTIONS',
      target: '*',
      path: '*',
      query: undefined,
      version: '1.1',
      headers: [h('host', 'example.com')],
      headersComplete: true,
    },
  },
  {
    name: 'request with traceparent',
    kind: 'request',
    wire:
      'GET /checkout HTTP/1.1\r\nHost: shop\r\n' +
      'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: congo=t61rcWkgMzE\r\n\r\n',
    expect: {
      method: 'GET',
      target: '/checkout',
      path: '/checkout',
      query: undefined,
      version: '1.1',
      headers: [
        h('host', 'shop'),
        h('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'),
        h('tracestate', 'congo=t61rcWkgMzE'),
      ],
      headersComplete: true,
    },
  },
  {
    name: 'LF-only request',
    kind: 'request',
    wire: 'DELETE /items/7? HTTP/1.0\nHost: x\nX-Spaced: \t padded value \t\n\nbody',
    expect: {
      method: 'DELETE',
      target: '/items/7?',
      path: '/items/7',
      query: '',
      version: '1.0',
      headers: [h('host', 'x'), h('x-spaced', 'padded value')],
      headersComplete: true,
    },
  },
  {
    name: 'LF-only response',
    kind: 'response',
    wire: 'HTTP/1.1 204\nX-A: 1\n\n',
    expect: { version: '1.1', statusCode: 204, reason: '', headers: [h('x-a', '1')], headersComplete: true },
  },
];

function headEnd(wire: string): number {
  const crlf = wire.indexOf('\r\n\r\n');
  const lf = wire.indexOf('\n\n');
  if (crlf === -1) return lf + 2;
  if (lf === -1) return crlf + 4;
  return Math.min(crlf + 4, lf + 2);
}

for (const fx of fixtures) {
  test(`fixture: ${fx.name}`, () => {
    const v = fx.kind === 'request' ? okReq(fx.wire) : okRes(fx.wire);
    assert.deepEqual(v, { ...fx.expect, headBytes: headEnd(fx.wire) });
  });
}

/** The same bytes inside a larger buffer, so byteOffset is not 0. */
function embedded(wire: string, k: number): Uint8Array {
  const pad = 7;
  const backing = new Uint8Array(pad + wire.length + pad).fill(0x41);
  backing.set(Buffer.from(wire, 'latin1'), pad);
  return backing.subarray(pad, pad + k);
}

function checkPrefix<T extends RequestHead | ResponseHead>(
  full: T,
  part: T,
  k: number,
  startFields: readonly (keyof T)[],
): void {
  for (const f of startFields) assert.equal(part[f], full[f], `field ${String(f)} at k=${k}`);
  assert.deepEqual(part.headers, full.headers.slice(0, part.headers.length), `headers at k=${k}`);
  assert.ok(part.headBytes <= k && part.headBytes <= full.headBytes, `headBytes at k=${k}`);
  assert.equal(part.headersComplete, k >= full.headBytes, `headersComplete at k=${k}`);
  if (part.headersComplete) assert.deepEqual(part, full);
}

for (const fx of fixtures) {
  test(`every split point: ${fx.name}`, () => {
    const firstLf = fx.wire.indexOf('\n');
    for (let k = 0; k <= fx.wire.length; k++) {
      for (const input of [bytes(fx.wire).subarray(0, k), embedded(fx.wire, k), Buffer.from(fx.wire, 'latin1').subarray(0, k)]) {
        const r = fx.kind === 'request' ? parseRequestHead(input) : parseResponseHead(input);
        if (k === 0) {
          assert.deepEqual(r, { ok: false, reason: 'empty' });
        } else if (k <= firstLf) {
          assert.deepEqual(r, { ok: false, reason: 'truncated-start-line' }, `k=${k}`);
        } else if (fx.kind === 'request') {
          assert.ok(r.ok, `k=${k}`);
          checkPrefix(okReq(fx.wire), r.value as RequestHead, k, ['method', 'target', 'path', 'query', 'version']);
        } else {
          assert.ok(r.ok, `k=${k}`);
          checkPrefix(okRes(fx.wire), r.value as ResponseHead, k, ['version', 'statusCode', 'reason']);
        }
      }
    }
  });
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function checkHeaders(headers: HeaderField[]): void {
  assert.ok(Array.isArray(headers) && headers.length <= 100);
  for (const { name, value } of headers) {
    assert.match(name, TCHAR);
    assert.equal(typeof value, 'string');
    assert.ok(!value.includes('\n'));
    assert.ok(!/^[ \t]|[ \t]$/.test(value), `untrimmed value ${JSON.stringify(value)}`);
  }
}

const REASONS = new Set(['empty', 'not-http', 'truncated-start-line', 'malformed-start-line']);

function checkShape(r: ParseResult<RequestHead | ResponseHead>, input: Uint8Array, kind: 'request' | 'response'): void {
  if (!r.ok) {
    assert.ok(REASONS.has(r.reason), `reason ${r.reason}`);
    return;
  }
  const v = r.value;
  assert.ok(v.version === '1.1' || v.version === '1.0');
  checkHeaders(v.headers);
  assert.ok(Number.isInteger(v.headBytes) && v.headBytes > 0 && v.headBytes <= input.length);
  assert.equal(typeof v.headersComplete, 'boolean');
  assert.equal(input[v.headBytes - 1], 0x0a);
  if (v.headersComplete) {
    const tail = Buffer.from(input.subarray(Math.max(0, v.headBytes - 3), v.headBytes)).toString('latin1');
    assert.ok(tail.endsWith('\n\n') || tail.endsWith('\n\r\n'), `head ends with ${JSON.stringify(tail)}`);
  }
  if (kind === 'request') {
    const q = v as RequestHead;
    assert.match(q.method, METHOD);
    assert.ok(q.target.length > 0 && !/[\x00-\x20\x7f]/.test(q.target));
    assert.equal(typeof q.path, 'string');
    assert.ok(q.query === undefined || typeof q.query === 'string');
  } else {
    const s = v as ResponseHead;
    assert.ok(Number.isInteger(s.statusCode) && s.statusCode >= 100 && s.statusCode <= 999);
    assert.equal(typeof s.reason, 'string');
  }
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = Buffer.from('\r\n\r\n :\t\x00\xffGET HTTP/1.1 200?&/*', 'latin1');

function mutate(src: Uint8Array, rand: () => number): Uint8Array {
  let b = Array.from(src);
  const n = 1 + Math.floor(rand() * 4);
  const pick = (): number => Math.floor(rand() * (b.length + 1));
  for (let m = 0; m < n; m++) {
    switch (Math.floor(rand() * 6)) {
      case 0:
        if (b.length > 0) b[Math.min(pick(), b.length - 1)] = Math.floor(rand() * 256);
        break;
      case 1:
        b.splice(pick(), 0, INTERESTING[Math.floor(rand() * INTERESTING.length)]);
        break;
      case 2: {
        const at = pick();
        b.splice(at, Math.floor(rand() * 8));
        break;
      }
      case 3: {
        const at = pick();
        const len = Math.floor(rand() * 16);
        b.splice(pick(), 0, ...b.slice(at, at + len));
        break;
      }
      case 4:
        b = b.slice(0, pick());
        break;
      default:
        b.splice(pick(), 0, ...INTERESTING.subarray(0, 4));
    }
  }
  return Uint8Array.from(b);
}

test('seeded stress: random buffers and mutated fixtures never throw and stay well-formed', () => {
  const rand = mulberry32(0x50de);
  const wires = fixtures.map((f) => bytes(f.wire));
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 5000; i++) {
    let input: Uint8Array;
    const mode = i % 3;
    if (mode === 0) {
      input = new Uint8Array(Math.floor(rand() * 300));
      for (let j = 0; j < input.length; j++) input[j] = Math.floor(rand() * 256);
    } else if (mode === 1) {
      input = new Uint8Array(Math.floor(rand() * 200));
      for (let j = 0; j < input.length; j++) input[j] = INTERESTING[Math.floor(rand() * INTERESTING.length)];
    } else {
      input = mutate(wires[Math.floor(rand() * wires.length)], rand);
    }
    const rq = parseRequestHead(input);
    const rs = parseResponseHead(input);
    checkShape(rq, input, 'request');
    checkShape(rs, input, 'response');
    for (const r of [rq, rs]) {
      const key = r.ok ? 'ok' : r.reason;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }

    // A longer capture of the same message must never contradict a shorter one.
    const k = Math.floor(rand() * (input.length + 1));
    const pairs: [ParseResult<RequestHead | ResponseHead>, ParseResult<RequestHead | ResponseHead>][] = [
      [parseRequestHead(input.subarray(0, k)), rq],
      [parseResponseHead(input.subarray(0, k)), rs],
    ];
    for (const [part, full] of pairs) {
      if (!part.ok && part.reason === 'not-http') assert.deepEqual(full, part, `not-http prefix k=${k}`);
      if (part.ok) {
        assert.ok(full.ok);
        assert.deepEqual(part.value.headers, full.value.headers.slice(0, part.value.headers.length));
      }
    }
  }
  // The generator must actually reach the interesting branches.
  for (const key of ['ok', 'not-http', 'truncated-start-line', 'malformed-start-line']) {
    assert.ok((outcomes.get(key) ?? 0) > 0, `no ${key} outcome in stress run: ${JSON.stringify([...outcomes])}`);
  }
});

test('garbage: TLS ClientHello is not HTTP', () => {
  const hello = Uint8Array.from([
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x9a, 0x0d, 0x0a, 0x20, 0x0d, 0x0a, 0x0d, 0x0a,
  ]);
  for (const input of [hello, hello.subarray(0, 3)]) {
    assert.deepEqual(parseRequestHead(input), { ok: false, reason: 'not-http' });
    assert.deepEqual(parseResponseHead(input), { ok: false, reason: 'not-http' });
  }
});

test('garbage: HTTP/2 connection preface is not HTTP/1', () => {
  const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
  assert.deepEqual(req(preface), { ok: false, reason: 'not-http' });
  assert.deepEqual(res(preface), { ok: false, reason: 'not-http' });
  assert.deepEqual(res('HTTP/2 200\r\n\r\n'), { ok: false, reason: 'not-http' });
  assert.deepEqual(res('HTTP/2'), { ok: false, reason: 'not-http' });
});

test('garbage: binary zeros and other protocols are not HTTP', () => {
  for (const input of [new Uint8Array(1), new Uint8Array(64), bytes('\x00GET / HTTP/1.1\r\n\r\n')]) {
    assert.deepEqual(parseRequestHead(input), { ok: false, reason: 'not-http' });
    assert.deepEqual(parseResponseHead(input), { ok: false, reason: 'not-http' });
  }
  for (const wire of ['SSH-2.0-OpenSSH_9.6\r\n', '*1\r\n$4\r\nPING\r\n', 'EHLO mail.example.com\r\n', 'GET /\r\n', ' GET / HTTP/1.1\r\n']) {
    assert.deepEqual(req(wire), { ok: false, reason: 'not-http' }, JSON.stringify(wire));
  }
  assert.deepEqual(res('220 mail.example.com ESMTP\r\n'), { ok: false, reason: 'not-http' });
  assert.deepEqual(res('HTT\r\n'), { ok: false, reason: 'not-http' });
  assert.deepEqual(req('HTTP/1.1 200 OK\r\n\r\n'), { ok: false, reason: 'not-http' });
  assert.deepEqual(res('GET / HTTP/1.1\r\n\r\n'), { ok: false, reason: 'not-http' });
  assert.deepEqual(req('A'.repeat(40) + ' / HTTP/1.1\r\n'), { ok: false, reason: 'not-http' });
  assert.deepEqual(req('A'.repeat(40)), { ok: false, reason: 'not-http' });
});

test('malformed start lines', () => {
  for (const wire of [
    'HTTP/1.1 abc OK\r\n\r\n',
    'HTTP/1.1 2x0 OK\r\n',
    'HTTP/1.1 099 Low\r\n',
    'HTTP/1.1 20\r\n',
    'HTTP/1.1 200OK\r\n',
    'HTTP/1.1  200 OK\r\n',
    'HTTP/1.2 200 OK\r\n',
    'HTTP/x.1 200 OK\r\n',
    'HTTP/\r\n',
  ]) {
    assert.deepEqual(res(wire), { ok: false, reason: 'malformed-start-line' }, JSON.stringify(wire));
  }
  for (const wire of [
    'GET /a b HTTP/1.1\r\n',
    'GET / HTTP/1.2\r\n',
    'GET / http/1.1\r\n',
    'GET / HTTP/1.1 \r\n',
    'GET  HTTP/1.1\r\n',
    'GET /\x01 HTTP/1.1\r\n',
    'GET / HTTP/1.10\r\n',
  ]) {
    assert.deepEqual(req(wire), { ok: false, reason: 'malformed-start-line' }, JSON.stringify(wire));
  }
});

test('empty and truncated input', () => {
  assert.deepEqual(req(new Uint8Array(0)), { ok: false, reason: 'empty' });
  assert.deepEqual(res(new Uint8Array(0)), { ok: false, reason: 'empty' });
  assert.deepEqual(req('\r\n\r\n'), { ok: false, reason: 'empty' });
  assert.deepEqual(req('\r'), { ok: false, reason: 'empty' });
  assert.deepEqual(req('GET /very/long/path/cut'), { ok: false, reason: 'truncated-start-line' });
  assert.deepEqual(res('HTT'), { ok: false, reason: 'truncated-start-line' });
  assert.deepEqual(res('HTTP/1.1 200 OK\r'), { ok: false, reason: 'truncated-start-line' });
});

test('empty lines before the start line are skipped', () => {
  const v = okReq('\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(v.path, '/');
  assert.equal(v.headBytes, 3 + 16 + 9 + 2);
  assert.equal(okRes('\r\nHTTP/1.1 200 OK\r\n\r\n').statusCode, 200);
});

test('unusable header lines are skipped, parsing continues', () => {
  const v = okReq(
    'GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\nBad Name: x\r\nBad : y\r\n: empty name\r\n' +
      ' folded continuation\r\n\tfolded: too\r\nX-Ok: yes\r\nX-Empty:\r\nX-Colon: a:b:c\r\n\r\n',
  );
  assert.deepEqual(v.headers, [h('host', 'a'), h('x-ok', 'yes'), h('x-empty', ''), h('x-colon', 'a:b:c')]);
  assert.equal(v.headersComplete, true);
});

test('at most 100 headers are kept, but the end of the head is still found', () => {
  let wire = 'GET / HTTP/1.1\r\n';
  for (let i = 0; i < 150; i++) wire += `X-H${i}: ${i}\r\n`;
  wire += '\r\nbody';
  const v = okReq(wire);
  assert.equal(v.headers.length, 100);
  assert.deepEqual(v.headers[99], h('x-h99', '99'));
  assert.equal(v.headersComplete, true);
  assert.equal(v.headBytes, wire.length - 4);
});

test('incomplete head reports bytes of complete lines only', () => {
  const v = okReq('GET / HTTP/1.1\r\nHost: a\r\nUser-Ag');
  assert.deepEqual(v.headers, [h('host', 'a')]);
  assert.equal(v.headersComplete, false);
  assert.equal(v.headBytes, 25);
  const w = okReq('GET / HTTP/1.1\r\nHost: a\r\n\r');
  assert.equal(w.headersComplete, false);
  assert.equal(w.headBytes, 25);
});

test('latin1 decoding never throws on invalid UTF-8', () => {
  const input = Buffer.concat([
    Buffer.from('GET /caf', 'latin1'),
    Buffer.from([0xe9, 0xff]),
    Buffer.from(' HTTP/1.1\r\nX-Name: ', 'latin1'),
    Buffer.from([0xc3, 0x28, 0xa0]),
    Buffer.from('\r\n\r\n', 'latin1'),
  ]);
  const v = okReq(input);
  assert.equal(v.path, '/caf\u00e9\u00ff');
  assert.equal(headerValue(v.headers, 'x-name'), '\u00c3(\u00a0');
});

test('request-target forms', () => {
  const cases: [string, string, string | undefined][] = [
    ['/', '/', undefined],
    ['/p?', '/p', ''],
    ['/p?a=1?b=2', '/p', 'a=1?b=2'],
    ['http://h', '/', undefined],
    ['http://h?x=1', '/', 'x=1'],
    ['https://user@h:8443/a/b?c', '/a/b', 'c'],
    ['http://h#frag', '/', undefined],
    ['index.html?x', 'index.html', 'x'],
  ];
  for (const [target, path, query] of cases) {
    const v = okReq(`GET ${target} HTTP/1.1\r\n\r\n`);
    assert.equal(v.target, target);
    assert.equal(v.path, path, target);
    assert.equal(v.query, query, target);
  }
  const custom = okReq('PURGE /cache/x HTTP/1.1\r\n\r\n');
  assert.equal(custom.method, 'PURGE');
});

test('headerValue returns the first match', () => {
  const v = okReq('GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n');
  assert.equal(headerValue(v.headers, 'x-a'), '1');
  assert.equal(headerValue(v.headers, 'x-b'), undefined);
  assert.equal(headerValue([], 'x-a'), undefined);
});
