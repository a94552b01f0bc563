import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { ExchangeFlags } from '../../../src/native/exchangeDecoder';
import { http2Describer, type Http2Failure } from '../../../src/protocols/http2/describe';
import type { DescribeFailure, Description } from '../../../src/protocols';
import { describeContext, fields, h2Exchange, withTrailers, type H2Overrides } from './fixtures';

function describe(over: H2Overrides, routes: string[] = []): Description | DescribeFailure<Http2Failure> {
  return http2Describer.describe(h2Exchange(over), describeContext(routes));
}

function span(over: H2Overrides, routes: string[] = []): Description {
  const d = describe(over, routes);
  assert.ok(d.ok, `expected a span, got ${d.ok ? '' : d.reason}`);
  return d;
}

const SECRET_AUTH = 'Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig-s3cr3t';
const SECRET_COOKIE = 'sid=cookie-s3cr3t';
const CREDENTIALS = [['authorization', SECRET_AUTH], ['cookie', SECRET_COOKIE]] as const;

const described: Description[] = [];
function kept(d: Description): Description {
  described.push(d);
  return d;
}

test('server GET: query redacted, :authority gives server.address/port, HTTP/2 protocol attributes', () => {
  const d = kept(
    span({
      request: fields(
        [':method', 'GET'],
        [':scheme', 'https'],
        [':authority', 'shop.example.com:8443'],
        [':path', '/search?q=shoes&token=abc123&page=2'],
        ['user-agent', 'curl/8.5.0'],
        ...CREDENTIALS,
      ),
      response: fields([':status', '200'], ['content-type', 'text/html'], ['set-cookie', SECRET_COOKIE]),
      requestBytes: 0,
      responseBytes: 1234,
    }),
  );
  assert.equal(d.name, 'GET');
  assert.equal(d.kind, SpanKind.SERVER);
  assert.deepEqual(d.status, { code: SpanStatusCode.UNSET });
  assert.equal(d.endNs, 5_250_000_000);
  assert.deepEqual(d.attributes, {
    'http.request.method': 'GET',
    'url.scheme': 'https',
    'url.path': '/search',
    'url.query': 'q=shoes&token=REDACTED&page=2',
    'server.address': 'shop.example.com',
    'server.port': 8443,
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'network.protocol.version': '2',
    'user_agent.original': 'curl/8.5.0',
    'http.response.body.size': 1234,
    'http.response.status_code': 200,
  });
});

test('client GET: url.full from :scheme, :authority and :path, query redacted', () => {
  const d = kept(
    span({
      role: 'client',
      remoteAddress: '10.0.0.20',
      remotePort: 443,
      request: fields([':method', 'GET'], [':scheme', 'https'], [':authority', 'api.example.com'], [':path', '/v1/items?api_key=k1&limit=5'], ...CREDENTIALS),
    }),
  );
  assert.equal(d.name, 'GET');
  assert.equal(d.kind, SpanKind.CLIENT);
  assert.deepEqual(d.attributes, {
    'http.request.method': 'GET',
    'url.full': 'https://api.example.com/v1/items?api_key=REDACTED&limit=5',
    'server.address': 'api.example.com',
    'server.port': 443,
    'network.peer.address': '10.0.0.20',
    'network.peer.port': 443,
    'network.protocol.version': '2',
    'http.response.status_code': 200,
  });
});

test('POST: DATA bytes are the body sizes', () => {
  const d = kept(
    span({
      request: fields([':method', 'POST'], [':scheme', 'http'], [':authority', 'shop'], [':path', '/orders'], ['content-type', 'application/json']),
      response: fields([':status', '201']),
      requestBytes: 187,
      responseBytes: 42,
    }),
  );
  assert.equal(d.name, 'POST');
  assert.equal(d.attributes['http.request.body.size'], 187);
  assert.equal(d.attributes['http.response.body.size'], 42);
  // No port in :authority: the port the request came in on.
  assert.equal(d.attributes['server.address'], 'shop');
  assert.equal(d.attributes['server.port'], 8080);
  assert.equal(d.attributes['http.request.size'], undefined);
});

test('status: 404 is an error on the client only, 500 on both sides', () => {
  const at = (role: 'server' | 'client', status: string) => kept(span({ role, response: fields([':status', status]) }));
  assert.deepEqual(at('server', '404').status, { code: SpanStatusCode.UNSET });
  assert.equal(at('server', '404').attributes['error.type'], undefined);
  assert.deepEqual(at('client', '404').status, { code: SpanStatusCode.ERROR });
  assert.equal(at('client', '404').attributes['error.type'], '404');
  for (const role of ['server', 'client'] as const) {
    const d = at(role, '500');
    assert.deepEqual(d.status, { code: SpanStatusCode.ERROR });
    assert.equal(d.attributes['error.type'], '500');
    assert.equal(d.attributes['http.response.status_code'], 500);
  }
});

test('route templates name server spans and set http.route; the query does not affect the match', () => {
  const d = kept(span({ request: fields([':method', 'GET'], [':scheme', 'http'], [':path', '/users/42?expand=1']) }, ['/users/:id']));
  assert.equal(d.name, 'GET /users/:id');
  assert.equal(d.attributes['http.route'], '/users/:id');
  assert.equal(d.attributes['url.path'], '/users/42');
  const client = kept(span({ role: 'client', request: fields([':method', 'GET'], [':scheme', 'http'], [':path', '/users/42']) }, ['/users/:id']));
  assert.equal(client.name, 'GET');
  assert.equal(client.attributes['http.route'], undefined);
});

test('a method outside the known set: _OTHER, the original, and "HTTP" as the name', () => {
  const d = kept(span({ request: fields([':method', 'PURGE'], [':scheme', 'http'], [':path', '/cache']) }, ['/cache']));
  assert.equal(d.name, 'HTTP /cache');
  assert.equal(d.attributes['http.request.method'], '_OTHER');
  assert.equal(d.attributes['http.request.method_original'], 'PURGE');
  assert.equal(d.attributes['sonde.http.method_unknown'], undefined);
});

test('unknown :method: _OTHER, method_unknown, named HTTP, no original invented', () => {
  const d = kept(
    span({ flags: ExchangeFlags.HeadersIncomplete, request: fields('?:method', [':scheme', 'http'], [':authority', 'shop'], [':path', '/a']) }, ['/a']),
  );
  assert.equal(d.name, 'HTTP /a');
  assert.equal(d.attributes['http.request.method'], '_OTHER');
  assert.equal(d.attributes['http.request.method_original'], undefined);
  assert.equal(d.attributes['sonde.http.method_unknown'], true);
  assert.equal(d.attributes['sonde.http2.headers_incomplete'], true);
  assert.equal(d.attributes['url.path'], '/a');
});

test('unknown :path on a server: no url.path, no query, no route, path_unknown', () => {
  const d = kept(span({ flags: ExchangeFlags.HeadersIncomplete, request: fields([':method', 'GET'], [':scheme', 'http'], '?:path') }, ['/*']));
  assert.equal(d.name, 'GET');
  assert.equal(d.attributes['sonde.url.path_unknown'], true);
  for (const key of ['url.path', 'url.query', 'http.route']) assert.equal(d.attributes[key], undefined, key);
  assert.equal(d.attributes['url.scheme'], 'http');
});

test('unknown :path on a client: url.full stops at the authority', () => {
  const d = kept(
    span({ role: 'client', flags: ExchangeFlags.HeadersIncomplete, request: fields([':method', 'GET'], [':scheme', 'http'], [':authority', 'inv:9000'], '?') }),
  );
  assert.equal(d.attributes['url.full'], 'http://inv:9000');
  assert.equal(d.attributes['sonde.url.path_unknown'], true);
  assert.equal(d.attributes['server.address'], 'inv');
  assert.equal(d.attributes['server.port'], 9000);
});

test('a "?" line hides every field the block does not show: :authority and :scheme become unknown', () => {
  const d = kept(span({ role: 'client', flags: ExchangeFlags.HeadersIncomplete, remotePort: 9000, request: fields([':method', 'GET'], '?', [':path', '/x']) }));
  // No scheme, no url.full: guessing "http" could be wrong.
  assert.equal(d.attributes['url.full'], undefined);
  assert.equal(d.attributes['server.address'], '10.0.0.9');
  assert.equal(d.attributes['server.port'], 9000);
  assert.equal(d.attributes['sonde.url.path_unknown'], undefined);
});

test('client without :authority: url.full names the address connected to, IPv6 bracketed, default port left out', () => {
  const v6 = kept(span({ role: 'client', remoteAddress: 'fd00::2', remotePort: 8443, request: fields([':method', 'GET'], [':scheme', 'https'], [':path', '/p']) }));
  assert.equal(v6.attributes['url.full'], 'https://[fd00::2]:8443/p');
  assert.equal(v6.attributes['server.address'], 'fd00::2');
  const v4 = kept(span({ role: 'client', remoteAddress: '10.0.0.20', remotePort: 80, request: fields([':method', 'GET'], [':scheme', 'http'], [':path', '/p']) }));
  assert.equal(v4.attributes['url.full'], 'http://10.0.0.20/p');
  // A Host field (from an HTTP/1 intermediary) stands in for :authority.
  const host = kept(span({ request: fields([':method', 'GET'], [':scheme', 'http'], [':path', '/'], ['host', 'legacy:81']) }));
  assert.equal(host.attributes['server.address'], 'legacy');
  assert.equal(host.attributes['server.port'], 81);
});

test('userinfo in :authority never reaches an attribute', () => {
  const d = kept(span({ role: 'client', request: fields([':method', 'GET'], [':scheme', 'http'], [':authority', 'bob:pa55w0rd@inv:81'], [':path', '/']) }));
  assert.equal(d.attributes['url.full'], 'http://inv:81/');
  for (const v of Object.values(d.attributes)) assert.ok(!String(v).includes('pa55w0rd'));
});

test('request headers missing (block lost, HeadersIncomplete): still a span, everything unknown said so', () => {
  const d = kept(span({ flags: ExchangeFlags.HeadersIncomplete, request: Buffer.alloc(0) }));
  assert.equal(d.name, 'HTTP');
  assert.equal(d.kind, SpanKind.SERVER);
  assert.deepEqual(d.attributes, {
    'http.request.method': '_OTHER',
    'sonde.http.method_unknown': true,
    'sonde.url.path_unknown': true,
    'sonde.http2.headers_incomplete': true,
    'server.address': '10.0.0.5',
    'server.port': 8080,
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'network.protocol.version': '2',
    'http.response.status_code': 200,
  });
});

test('no request field and no HeadersIncomplete: the record breaks the contract, counted as a failure', () => {
  assert.deepEqual(describe({ request: Buffer.alloc(0) }), { ok: false, reason: 'http2-request-headers-missing' });
  assert.deepEqual(http2Describer.failures, ['http2-request-headers-missing']);
});

test('a stream reset before any :status: ERROR, error.type and sonde.http2.error_code name the code', () => {
  for (const [code, name] of [[8, 'CANCEL'], [7, 'REFUSED_STREAM'], [2, 'INTERNAL_ERROR'], [0x42, '0x42']] as const) {
    const d = kept(span({ flags: ExchangeFlags.StreamReset, endErrorCode: code, response: Buffer.alloc(0), responseStartNs: 0, responseEndNs: 0 }));
    assert.equal(d.status.code, SpanStatusCode.ERROR);
    assert.equal(d.attributes['error.type'], name);
    assert.equal(d.attributes['sonde.http2.error_code'], name);
    assert.equal(d.attributes['http.response.status_code'], undefined);
    assert.equal(d.endNs, 5_000_100_000);
  }
});

test('a reset after the response headers: the status code decides, the reset is still said', () => {
  const d = kept(span({ flags: ExchangeFlags.StreamReset, endErrorCode: 0, response: fields([':status', '200']) }));
  assert.deepEqual(d.status, { code: SpanStatusCode.UNSET });
  assert.equal(d.attributes['sonde.http2.error_code'], 'NO_ERROR');
  assert.equal(d.attributes['error.type'], undefined);
});

test('no response: timeout or connection closed, as for HTTP/1', () => {
  const none = { response: Buffer.alloc(0), responseStartNs: 0, responseEndNs: 0 };
  const timeout = kept(span({ ...none, flags: ExchangeFlags.NoResponse }));
  assert.equal(timeout.status.code, SpanStatusCode.ERROR);
  assert.equal(timeout.attributes['error.type'], 'timeout');
  const closed = kept(span({ ...none, role: 'client', flags: ExchangeFlags.ClosedBeforeResponse }));
  assert.equal(closed.attributes['error.type'], 'connection_closed');
});

test('a response whose :status is unknown: UNSET and said so; a missing or invalid :status: malformed_response', () => {
  const unknown = kept(span({ flags: ExchangeFlags.HeadersIncomplete, response: fields('?:status', ['content-type', 'text/plain']) }));
  assert.deepEqual(unknown.status, { code: SpanStatusCode.UNSET });
  assert.equal(unknown.attributes['sonde.http.status_code_unknown'], true);
  assert.equal(unknown.attributes['http.response.status_code'], undefined);
  const lost = kept(span({ flags: ExchangeFlags.HeadersIncomplete, response: Buffer.alloc(0) }));
  assert.equal(lost.attributes['sonde.http.status_code_unknown'], true);
  for (const response of [fields(['content-type', 'text/plain']), fields([':status', '2x0']), fields([':status', '99'])]) {
    const bad = kept(span({ response }));
    assert.equal(bad.status.code, SpanStatusCode.ERROR);
    assert.equal(bad.attributes['error.type'], 'malformed_response');
  }
});

test('ResponseIncomplete is said as for HTTP/1; trailers of a plain HTTP/2 response change nothing', () => {
  const d = kept(span({ flags: ExchangeFlags.ResponseIncomplete, response: withTrailers(fields([':status', '200']), fields(['x-checksum', 'abc'])) }));
  assert.equal(d.attributes['sonde.response.incomplete'], true);
  assert.equal(d.attributes['http.response.status_code'], 200);
  assert.equal(d.attributes['rpc.system'], undefined);
});

test('plain CONNECT has no :path, and lacks none', () => {
  const d = kept(span({ role: 'client', request: fields([':method', 'CONNECT'], [':authority', 'db:5432']) }));
  assert.equal(d.name, 'CONNECT');
  assert.equal(d.attributes['sonde.url.path_unknown'], undefined);
  assert.equal(d.attributes['server.address'], 'db');
  assert.equal(d.attributes['server.port'], 5432);
});

test('credential fields never appear in any attribute', () => {
  assert.ok(described.length >= 20);
  for (const d of described) {
    const values: Attributes[string][] = Object.values(d.attributes);
    for (const v of values) for (const secret of ['s3cr3t', 'eyJhbGci', 'abc123', 'k1&']) assert.ok(!String(v).includes(secret), `${d.name}: ${String(v)}`);
  }
});
