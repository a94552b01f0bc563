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
import { mulberry32 } from '../../support/random';

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
      targetTruncated: false,
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
      targetTruncated: false,
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
      targetTruncated: false,
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
      targetTruncated: false,
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
      targetTruncated: false,
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
      targetTruncated: false,
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
      targetTruncated: false,
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
  {
    name: 'GraphQL GET with a query string and a credential in it',
    kind: 'request',
    wire:
      'GET /graphql?query=%7Buser(id%3A%2242%22)%7Bname%7D%7D&access_token=s3cr3t&x=1 HTTP/1.1\r\n' +
      'Host: api.example.com\r\nAccept: application/json\r\n\r\n',
    expect: {
      method: 'GET',
      target: '/graphql?query=%7Buser(id%3A%2242%22)%7Bname%7D%7D&access_token=s3cr3t&x=1',
      targetTruncated: false,
      path: '/graphql',
      query: 'query=%7Buser(id%3A%2242%22)%7Bname%7D%7D&access_token=s3cr3t&x=1',
      version: '1.1',
      headers: [h('host', 'api.example.com'), h('accept', 'application/json')],
      headersComplete: true,
    },
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

/**
 * A request whose capture ends after `k` bytes, inside its request line:
 * the method, what arrived of the target, and nothing else.
 */
function checkCutLine(wire: string, full: RequestHead, part: RequestHead, k: number): void {
  const targetStart = wire.indexOf(' ') + 1;
  const targetEnd = targetStart + full.target.length;
  const truncated = k <= targetEnd;
  assert.equal(part.method, full.method, `method at k=${k}`);
  assert.equal(part.target, wire.slice(targetStart, Math.min(k, targetEnd)), `target at k=${k}`);
  assert.equal(part.targetTruncated, truncated, `targetTruncated at k=${k}`);
  assert.deepEqual([part.version, part.headers, part.headersComplete, part.headBytes], ['', [], false, 0], `k=${k}`);
  if (!truncated) {
    assert.deepEqual([part.path, part.query], [full.path, full.query], `path and query at k=${k}`);
  } else if (full.target.startsWith('/')) {
    // Origin form: the path is cut, or whole with the query cut.
    if (part.query === undefined) assert.ok(full.path.startsWith(part.path), `path ${part.path} at k=${k}`);
    else assert.ok(part.path === full.path && full.query?.startsWith(part.query), `path ${part.path} query ${part.query} at k=${k}`);
  }
}

/**
 * A longer capture of the same message never contradicts a shorter one
 * (see parse.ts): not-http stays, a complete start line keeps its fields and
 * headers, and a cut request line only grows its target.
 */
function checkRefines(part: ParseResult<RequestHead | ResponseHead>, full: ParseResult<RequestHead | ResponseHead>, label: string): void {
  if (!part.ok) {
    if (part.reason === 'not-http') assert.deepEqual(full, part, `not-http ${label}`);
    return;
  }
  const p = part.value;
  if ('method' in p && p.version === '') {
    if (!full.ok) return;
    const f = full.value as RequestHead;
    assert.equal(f.method, p.method, `method ${label}`);
    if (p.targetTruncated) assert.ok(f.target.startsWith(p.target), `target ${JSON.stringify(p.target)} grew into ${JSON.stringify(f.target)} ${label}`);
    else assert.equal(f.target, p.target, `target ${label}`);
    return;
  }
  assert.ok(full.ok, `a complete start line stays a message ${label}`);
  assert.deepEqual(p.headers, full.value.headers.slice(0, p.headers.length), `headers ${label}`);
  if ('method' in p) {
    const f = full.value as RequestHead;
    assert.deepEqual([f.method, f.target, f.targetTruncated, f.path, f.query, f.version], [p.method, p.target, false, p.path, p.query, p.version], `start line ${label}`);
  } else {
    const f = full.value as ResponseHead;
    assert.deepEqual([f.version, f.statusCode, f.reason], [p.version, p.statusCode, p.reason], `status line ${label}`);
  }
}

for (const fx of fixtures) {
  test(`every split point: ${fx.name}`, () => {
    const firstLf = fx.wire.indexOf('\n');
    const methodSp = fx.wire.indexOf(' ');
    const whole = fx.kind === 'request' ? req(fx.wire) : res(fx.wire);
    let previous = fx.kind === 'request' ? req('') : res('');
    for (let k = 0; k <= fx.wire.length; k++) {
      for (const input of [bytes(fx.wire).subarray(0, k), embedded(fx.wire, k), Buffer.from(fx.wire, 'latin1').subarray(0, k)]) {
        const r = fx.kind === 'request' ? parseRequestHead(input) : parseResponseHead(input);
        if (k === 0) {
          assert.deepEqual(r, { ok: false, reason: 'empty' });
        } else if (fx.kind === 'response' ? k <= firstLf : k <= methodSp + 1) {
          // Responses: the whole status line is needed. Requests: up to the SP after the method.
          assert.deepEqual(r, { ok: false, reason: 'truncated-start-line' }, `k=${k}`);
        } else if (fx.kind === 'request' && k <= firstLf) {
          assert.ok(r.ok, `k=${k}`);
          checkCutLine(fx.wire, okReq(fx.wire), r.value as RequestHead, k);
        } else if (fx.kind === 'request') {
          assert.ok(r.ok, `k=${k}`);
          checkPrefix(okReq(fx.wire), r.value as RequestHead, k, ['method', 'target', 'targetTruncated', 'path', 'query', 'version']);
        } else {
          assert.ok(r.ok, `k=${k}`);
          checkPrefix(okRes(fx.wire), r.value as ResponseHead, k, ['version', 'statusCode', 'reason']);
        }
        checkRefines(previous, r, `from k=${k - 1} to k=${k}`);
        checkRefines(r, whole, `from k=${k} to the whole message`);
      }
      previous = fx.kind === 'request' ? req(bytes(fx.wire).subarray(0, k)) : res(bytes(fx.wire).subarray(0, k));
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
  if (kind === 'request' && v.version === '') {
    // A cut request line: nothing after it was read, and nothing in it ends a line.
    assert.deepEqual([v.headers, v.headersComplete], [[], false]);
    assert.ok(Number.isInteger(v.headBytes) && v.headBytes >= 0 && v.headBytes < input.length);
    assert.ok(!input.subarray(v.headBytes).includes(0x0a), 'a cut request line holds no LF');
    const q = v as RequestHead;
    assert.match(q.method, METHOD);
    assert.ok(q.target.length > 0 && !/[\x00-\x20\x7f]/.test(q.target));
    assert.equal(typeof q.targetTruncated, 'boolean');
    return;
  }
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
    assert.equal(q.targetTruncated, false);
    assert.equal(typeof q.path, 'string');
    assert.ok(q.query === undefined || typeof q.query === 'string');
  } else {
    const s = v as ResponseHead;
    assert.ok(Number.isInteger(s.statusCode) && s.statusCode >= 100 && s.statusCode <= 999);
    assert.equal(typeof s.reason, 'string');
  }
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
    assert.deepEqual(parseRequestHead(input, 0, undefined, { onlyHeaders: ONLY }), onlyFields(rq, ONLY), 'onlyHeaders keeps what filtering would');
    assert.deepEqual(parseResponseHead(input, 0, undefined, { headers: false }), statusLineOnly(rs), 'headers: false reads the same status line');
    checkShape(rq, input, 'request');
    checkShape(rs, input, 'response');
    for (const r of [rq, rs]) {
      const key = !r.ok ? r.reason : r.value.version === '' ? 'ok-cut-request-line' : 'ok';
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }

    const k = Math.floor(rand() * (input.length + 1));
    checkRefines(parseRequestHead(input.subarray(0, k)), rq, `request k=${k}`);
    checkRefines(parseResponseHead(input.subarray(0, k)), rs, `response k=${k}`);
  }
  // The generator must actually reach the interesting branches.
  for (const key of ['ok', 'ok-cut-request-line', 'not-http', 'truncated-start-line', 'malformed-start-line']) {
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
  assert.deepEqual(req('GET '), { ok: false, reason: 'truncated-start-line' });
  assert.deepEqual(res('HTT'), { ok: false, reason: 'truncated-start-line' });
  assert.deepEqual(res('HTTP/1.1 200 OK\r'), { ok: false, reason: 'truncated-start-line' });
});

/** What a cut request line gives besides its method and target. */
const CUT_LINE = { version: '', headers: [], headersComplete: false, headBytes: 0 } as const;

test('a request line cut inside the target is a request that says so', () => {
  const longQuery = 'q=' + 'a'.repeat(5000);
  const cases: Array<[wire: string, expected: Pick<RequestHead, 'method' | 'target' | 'path' | 'query'>]> = [
    ['GET /very/long/path/cut', { method: 'GET', target: '/very/long/path/cut', path: '/very/long/path/cut', query: undefined }],
    ['GET /', { method: 'GET', target: '/', path: '/', query: undefined }],
    ['GET /search?', { method: 'GET', target: '/search?', path: '/search', query: '' }],
    [`GET /search?${longQuery} HTTP/1.1\r\n`.slice(0, 1024), { method: 'GET', target: `/search?${longQuery}`.slice(0, 1020), path: '/search', query: longQuery.slice(0, 1012) }],
    ['POST /graphql?query=%7Buser%7D&token=ab', { method: 'POST', target: '/graphql?query=%7Buser%7D&token=ab', path: '/graphql', query: 'query=%7Buser%7D&token=ab' }],
    ['GET http://example.com:8080/path/to?q=1&r', { method: 'GET', target: 'http://example.com:8080/path/to?q=1&r', path: '/path/to', query: 'q=1&r' }],
    ['GET http://example.com:8080/pa', { method: 'GET', target: 'http://example.com:8080/pa', path: '/pa', query: undefined }],
    ['GET http://example.com:80', { method: 'GET', target: 'http://example.com:80', path: '/', query: undefined }],
    ['GET http://h?x=1', { method: 'GET', target: 'http://h?x=1', path: '/', query: 'x=1' }],
    ['CONNECT db.exam', { method: 'CONNECT', target: 'db.exam', path: 'db.exam', query: undefined }],
    ['PURGE /cache/caf\xe9', { method: 'PURGE', target: '/cache/caf\xe9', path: '/cache/caf\xe9', query: undefined }],
  ];
  for (const [wire, expected] of cases) {
    assert.deepEqual(okReq(wire), { ...expected, targetTruncated: true, ...CUT_LINE }, JSON.stringify(wire.slice(0, 60)));
  }
});

test('a head larger than the 16 KiB capture: a 20 KB query cut at 16384 bytes', () => {
  const query = 'variables=' + '%7B%22id%22%3A1%7D'.repeat(1200);
  const wire = Buffer.from(`GET /graphql?${query} HTTP/1.1\r\nHost: api\r\n\r\n`, 'latin1');
  assert.ok(wire.length > 20_000);
  const v = okReq(wire.subarray(0, 16384));
  assert.equal(v.targetTruncated, true);
  assert.equal(v.path, '/graphql');
  assert.equal(v.query, query.slice(0, 16384 - 'GET /graphql?'.length));
  assert.equal(v.version, '');
});

test('a request line cut after its target: the target is whole, the version unknown', () => {
  for (const wire of ['GET /a?b=1 ', 'GET /a?b=1 HTTP/', 'GET /a?b=1 HTTP/1.', 'GET /a?b=1 HTTP/1.1', 'GET /a?b=1 HTTP/1.0\r']) {
    assert.deepEqual(okReq(wire), { method: 'GET', target: '/a?b=1', targetTruncated: false, path: '/a', query: 'b=1', ...CUT_LINE }, JSON.stringify(wire));
  }
});

test('a cut request line is read in place: leading empty lines and offsets into a larger buffer', () => {
  assert.deepEqual(okReq('\r\n\nGET /a?b'), { method: 'GET', target: '/a?b', targetTruncated: true, path: '/a', query: 'b', ...CUT_LINE, headBytes: 3 });
  const buf = bytes('HTTP/1.1 200 OK\r\n\r\nGET /x?y=1 HTTP/1.1\r\n');
  const from = 19;
  assert.deepEqual(parseRequestHead(buf, from, from + 8), { ok: true, value: { method: 'GET', target: '/x?y', targetTruncated: true, path: '/x', query: 'y', ...CUT_LINE } });
});

test('a request line cut before its target begins, or that cannot become HTTP/1, stays truncated-start-line', () => {
  for (const wire of [
    'G',
    'GET',
    'GET ',
    'GET  ',
    'GET  /a',
    'GET /a\r',
    'GET /a\x01b',
    'GET /a\x7f',
    'GET /a b',
    'GET /a HTTP/2',
    'GET /a http/1.1',
    'GET /a HTTP/1.2',
    'GET /a HTTP/1.1 ',
    'GET /a HTTP/1.10',
    'GET /a HTTP/1.1\rx',
    'PRI * HTTP/2',
  ]) {
    assert.deepEqual(req(wire), { ok: false, reason: 'truncated-start-line' }, JSON.stringify(wire));
  }
  // Only the method decides "not-http" on a cut line, as it does on a whole one.
  for (const wire of ['A'.repeat(40), ' GET /a', '\x00GET /a', 'GE\x01 /a', '{"GET /a']) {
    assert.deepEqual(req(wire), { ok: false, reason: 'not-http' }, JSON.stringify(wire));
  }
});

test('a cut request line that the whole line proves wrong: the complete line decides', () => {
  const cases: Array<[wire: string, whole: string]> = [
    ['GET /a b HTTP/1.1\r\n\r\n', 'malformed-start-line'],
    ['GET /legacy\r\n', 'not-http'],
    ['GET /a HTTP/2.0\r\n\r\n', 'not-http'],
    ['GET /a\x01 HTTP/1.1\r\n\r\n', 'malformed-start-line'],
  ];
  for (const [wire, whole] of cases) {
    assert.equal(okReq(wire.slice(0, 6)).targetTruncated, true, wire);
    assert.deepEqual(req(wire), { ok: false, reason: whole }, JSON.stringify(wire));
  }
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

const ONLY = ['host', 'user-agent', 'x'];

function statusLineOnly(r: ReturnType<typeof parseResponseHead>): ReturnType<typeof parseResponseHead> {
  if (!r.ok) return r;
  return { ok: true, value: { ...r.value, headers: [], headersComplete: false, headBytes: 0 } };
}

/** `r` with only the fields named in `names`, as `onlyHeaders` should give it. */
function onlyFields(r: ReturnType<typeof parseRequestHead>, names: readonly string[]): ReturnType<typeof parseRequestHead> {
  if (!r.ok) return r;
  return { ok: true, value: { ...r.value, headers: r.value.headers.filter((h) => names.includes(h.name)) } };
}

test('onlyHeaders keeps the same fields as filtering all of them: case, order, repeats, bad names, and the 100-field bound', () => {
  const lines = [
    'GET /a HTTP/1.1',
    'HOST:  h1:80 ',
    'Accept: */*',
    'bad name: dropped',
    ' host: folded',
    'User-Agent: ua/1',
    'host: h2',
    'X: x-value',
    'x-long: not x',
    ...Array.from({ length: 120 }, (_, i) => (i === 90 ? 'User-AGENT: within the bound' : i === 110 ? 'host: past the bound' : `F${i}: v`)),
  ];
  const short = Buffer.from(`${lines.slice(0, 9).join('\r\n')}\r\nno colon here\r\n:empty name\r\n\r\n`, 'latin1');
  const shortOnly = parseRequestHead(short, 0, undefined, { onlyHeaders: ONLY });
  assert.deepEqual(shortOnly, onlyFields(parseRequestHead(short), ONLY), 'a complete head of a few lines');
  assert.ok(shortOnly.ok && shortOnly.value.headersComplete);
  assert.deepEqual(
    shortOnly.value.headers.map((h) => `${h.name}=${h.value}`),
    ['host=h1:80', 'user-agent=ua/1', 'host=h2', 'x=x-value'],
  );
  const wire = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const only = parseRequestHead(wire, 0, undefined, { onlyHeaders: ONLY });
  assert.deepEqual(only, onlyFields(parseRequestHead(wire), ONLY));
  assert.ok(only.ok);
  assert.deepEqual(
    only.value.headers.map((h) => `${h.name}=${h.value}`),
    ['host=h1:80', 'user-agent=ua/1', 'host=h2', 'x=x-value', 'user-agent=within the bound'],
  );
  for (let k = 0; k <= wire.length; k += 7) {
    assert.deepEqual(parseRequestHead(wire.subarray(0, k), 0, undefined, { onlyHeaders: ONLY }), onlyFields(parseRequestHead(wire.subarray(0, k)), ONLY), `cut at ${k}`);
  }
});
