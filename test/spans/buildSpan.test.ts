import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { buildSpan, type BuildResult, type SpanBuildContext } from '../../src/spans/buildSpan';
import { WireSpan } from '../../src/spans/WireSpan';
import { compileRoutes } from '../../src/spans/routes';
import { MonotonicClock } from '../../src/native/clock';
import { ExchangeFlags, ExchangeProtocol, LinkSource, requestHeadOf, responseHeadOf, type Exchange } from '../../src/native/exchangeDecoder';
import { decodeExportTraceServiceRequest } from '../support/otlp-decode';
import { EXCHANGE_DEFAULTS, exchangeOf, type HeadFields } from '../support/exchange';

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/**
 * realtime - monotonic = 1_699_999_998_999_999_999 ns, so a monotonic time
 * of 5_000_000_001 ns is exactly 1_700_000_004.000000000 s since the epoch:
 * the nanosecond part has to carry into the seconds to come out right.
 */
const REAL_NS = 1_700_000_000_999_999_999n;
const MONO_NS = 2_000_000_000n;
const OFFSET_NS = REAL_NS - MONO_NS;

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const PARENT_ID = 'b7ad6b7169203331';

const SECRET_AUTH = 'Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig-s3cr3t';
const SECRET_COOKIE = 'sid=cookie-s3cr3t; theme=dark';
const SECRET_PROXY_AUTH = 'Basic cHJveHk6cHJveHktczNjcjN0';
const SECRET_SET_COOKIE = 'sid=set-cookie-s3cr3t; HttpOnly';
const SECRET_FRAGMENTS = ['s3cr3t', 'eyJhbGciOiJIUzI1NiJ9', 'cHJveHk6', 'Bearer', 'Basic ', 'HttpOnly'];

function ctx(routes: string[] = []): SpanBuildContext {
  return {
    clock: new MonotonicClock(() => [REAL_NS, MONO_NS], { nowMs: () => 0, refreshEveryMs: 1e12 }),
    resource: resourceFromAttributes({ 'service.name': 'checkout', 'process.pid': 4242 }),
    scope: { name: 'sonde', version: '0.1.0' },
    routes: compileRoutes(routes),
  };
}

function wire(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/**
 * Bytes around and between the heads in every payload built below, as in a
 * decoded batch where the heads sit among other records. A parser that
 * strays outside [start, end) sees them and fails the test: the bytes before
 * parse as a different request, the bytes between complete a cut request
 * line, and the bytes after hold a valid status line.
 */
const GARBAGE_BEFORE = wire('PUT /garbage-before HTTP/1.0\r\nHost: garbage-before:1\r\nUser-Agent: garbage\r\n\r\n');
const GARBAGE_BETWEEN = wire(' HTTP/1.1\r\nHost: garbage-between:2\r\n\r\n');
const GARBAGE_AFTER = wire('\r\nHTTP/1.1 599 Garbage After\r\n\r\n');

/** Exchange fields, with the heads given as separate buffers. */
type ExchangeOverrides = Partial<Omit<Exchange, HeadFields>> & { requestHead?: Buffer; responseHead?: Buffer };

function exchange(over: ExchangeOverrides = {}): Exchange {
  const {
    requestHead = wire('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
    responseHead = wire('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
    ...rest
  } = over;
  return exchangeOf(
    { ...EXCHANGE_DEFAULTS, requestBytes: 187, responseBytes: 342, traceId: TRACE_ID, spanId: SPAN_ID, ...rest },
    { before: GARBAGE_BEFORE, request: requestHead, between: GARBAGE_BETWEEN, response: responseHead, after: GARBAGE_AFTER },
  );
}

test('the exchange fixture places the heads at their offsets, among garbage', () => {
  const req = wire('GET /fixture HTTP/1.1\r\n\r\n');
  const res = wire('HTTP/1.1 204 No Content\r\n\r\n');
  const x = exchange({ requestHead: req, responseHead: res });
  assert.deepEqual(requestHeadOf(x), req);
  assert.deepEqual(responseHeadOf(x), res);
  assert.ok(x.requestHeadStart > 0 && x.responseHeadStart > x.requestHeadEnd && x.responseHeadEnd < x.payload.length);
  assert.equal(exchange({ requestHead: Buffer.alloc(0) }).requestHeadStart, exchange({ requestHead: Buffer.alloc(0) }).requestHeadEnd);
});

function ok(result: BuildResult): WireSpan {
  assert.ok(result.ok, `expected a span, got ${result.ok ? '' : result.reason}`);
  return result.span;
}

/** Every span built by this file, for the exporter and secret-scan tests. */
const built: WireSpan[] = [];
function build(x: Exchange, c: SpanBuildContext = ctx()): WireSpan {
  const span = ok(buildSpan(x, c));
  built.push(span);
  return span;
}

/** Headers carrying credentials, added to every request below. */
const CREDENTIAL_HEADERS = `Authorization: ${SECRET_AUTH}\r\nCookie: ${SECRET_COOKIE}\r\nProxy-Authorization: ${SECRET_PROXY_AUTH}\r\n`;

// ---------------------------------------------------------------------------
// Server spans
// ---------------------------------------------------------------------------

test('server GET: query token redacted, Host header gives server.address/port', () => {
  const span = build(
    exchange({
      requestHead: wire(
        'GET /search?q=shoes&token=abc123&page=2 HTTP/1.1\r\n' +
          'Host: shop.example.com:8443\r\n' +
          'User-Agent: curl/8.5.0\r\n' +
          CREDENTIAL_HEADERS +
          '\r\n',
      ),
      responseHead: wire(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: ${SECRET_SET_COOKIE}\r\n\r\nok`),
    }),
  );
  assert.equal(span.name, 'GET');
  assert.equal(span.kind, SpanKind.SERVER);
  assert.deepEqual(span.status, { code: SpanStatusCode.UNSET });
  assert.deepEqual(span.attributes, {
    'url.scheme': 'http',
    'url.path': '/search',
    'url.query': 'q=shoes&token=REDACTED&page=2',
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'server.address': 'shop.example.com',
    'server.port': 8443,
    'http.request.method': 'GET',
    'network.protocol.version': '1.1',
    'user_agent.original': 'curl/8.5.0',
    'http.request.size': 187,
    'http.response.size': 342,
    'http.response.status_code': 200,
  });
  assert.deepEqual(span.spanContext(), { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, isRemote: false });
  assert.equal(span.parentSpanContext, undefined);
  assert.equal(span.ended, true);
  assert.deepEqual(span.events, []);
  assert.deepEqual(span.links, []);
  assert.equal(span.resource.attributes['service.name'], 'checkout');
  assert.deepEqual(span.instrumentationScope, { name: 'sonde', version: '0.1.0' });
});

test('server GET without Host header falls back to the local address and port', () => {
  const span = build(exchange({ requestHead: wire('GET /health HTTP/1.0\r\n\r\n'), requestBytes: 0, responseBytes: 0 }));
  assert.deepEqual(span.attributes, {
    'url.scheme': 'http',
    'url.path': '/health',
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'server.address': '10.0.0.5',
    'server.port': 8080,
    'http.request.method': 'GET',
    'network.protocol.version': '1.0',
    'http.response.status_code': 200,
  });
});

test('server Host header without a port keeps the name and uses the local port', () => {
  const span = build(exchange({ requestHead: wire('GET / HTTP/1.1\r\nHost: api.internal\r\n\r\n') }));
  assert.equal(span.attributes['server.address'], 'api.internal');
  assert.equal(span.attributes['server.port'], 8080);
});

test('server POST answered 500: ERROR status with error.type "500"', () => {
  const span = build(
    exchange({
      requestHead: wire(
        'POST /orders HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: application/json\r\nContent-Length: 14\r\n' +
          CREDENTIAL_HEADERS +
          '\r\n{"sku":"A-1"}',
      ),
      responseHead: wire('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n'),
      requestBytes: 250,
      responseBytes: 64,
    }),
  );
  assert.equal(span.name, 'POST');
  assert.equal(span.kind, SpanKind.SERVER);
  assert.deepEqual(span.status, { code: SpanStatusCode.ERROR });
  assert.deepEqual(span.attributes, {
    'url.scheme': 'http',
    'url.path': '/orders',
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'server.address': 'shop.example.com',
    'server.port': 8080,
    'http.request.method': 'POST',
    'network.protocol.version': '1.1',
    'http.request.size': 250,
    'http.response.size': 64,
    'http.response.status_code': 500,
    'error.type': '500',
  });
});

test('server 404 is not an error on the server side', () => {
  const span = build(exchange({ responseHead: wire('HTTP/1.1 404 Not Found\r\n\r\n') }));
  assert.deepEqual(span.status, { code: SpanStatusCode.UNSET });
  assert.equal(span.attributes['http.response.status_code'], 404);
  assert.equal('error.type' in span.attributes, false);
});

// ---------------------------------------------------------------------------
// Client spans
// ---------------------------------------------------------------------------

test('client GET answered 404: ERROR for a client, url.full built from Host and peer port', () => {
  const span = build(
    exchange({
      role: 'client',
      localAddress: '10.0.0.5',
      localPort: 40000,
      remoteAddress: '10.0.0.20',
      remotePort: 9000,
      requestHead: wire('GET /v1/items/7?api_key=k-123&lang=en HTTP/1.1\r\nHost: inventory:9000\r\nUser-Agent: node\r\n' + CREDENTIAL_HEADERS + '\r\n'),
      responseHead: wire('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'),
      requestBytes: 120,
      responseBytes: 0,
    }),
  );
  assert.equal(span.name, 'GET');
  assert.equal(span.kind, SpanKind.CLIENT);
  assert.deepEqual(span.status, { code: SpanStatusCode.ERROR });
  assert.deepEqual(span.attributes, {
    'server.address': 'inventory',
    'server.port': 9000,
    'network.peer.address': '10.0.0.20',
    'network.peer.port': 9000,
    'url.full': 'http://inventory:9000/v1/items/7?api_key=REDACTED&lang=en',
    'http.request.method': 'GET',
    'network.protocol.version': '1.1',
    'user_agent.original': 'node',
    'http.request.size': 120,
    'http.response.status_code': 404,
    'error.type': '404',
  });
});

test('client to port 80 leaves the port out of url.full; no Host uses the peer address', () => {
  const span = build(
    exchange({
      role: 'client',
      remoteAddress: '93.184.216.34',
      remotePort: 80,
      requestHead: wire('GET /index.html HTTP/1.1\r\n\r\n'),
      responseHead: wire('HTTP/1.1 200 OK\r\n\r\n'),
    }),
  );
  assert.equal(span.attributes['url.full'], 'http://93.184.216.34/index.html');
  assert.equal(span.attributes['server.address'], '93.184.216.34');
  assert.equal(span.attributes['server.port'], 80);
  assert.deepEqual(span.status, { code: SpanStatusCode.UNSET });
});

test('TLS plaintext (OpenSSL uprobes) is HTTPS: url.scheme on a server, url.full with 443 left out on a client', () => {
  const server = build(exchange({ tls: true, requestHead: wire('GET /secure?x=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n') }));
  assert.equal(server.attributes['url.scheme'], 'https');
  assert.equal(server.attributes['url.path'], '/secure');
  const client = (port: number) =>
    build(
      exchange({
        tls: true,
        role: 'client',
        remoteAddress: '93.184.216.34',
        remotePort: port,
        requestHead: wire('GET /index.html HTTP/1.1\r\n\r\n'),
        responseHead: wire('HTTP/1.1 200 OK\r\n\r\n'),
      }),
    );
  assert.equal(client(443).attributes['url.full'], 'https://93.184.216.34/index.html');
  assert.equal(client(80).attributes['url.full'], 'https://93.184.216.34:80/index.html');
  assert.equal(client(8443).attributes['url.full'], 'https://93.184.216.34:8443/index.html');
  assert.equal(build(exchange({ tls: false })).attributes['url.scheme'], 'http');
});

test('client request in absolute form through a proxy: url.full is the target, query redacted, server is the origin', () => {
  const span = build(
    exchange({
      role: 'client',
      remoteAddress: '10.0.0.1',
      remotePort: 3128,
      requestHead: wire(
        'GET http://api.example.com/v1/items?access_token=t0k3n&x=1 HTTP/1.1\r\nHost: api.example.com\r\n' + CREDENTIAL_HEADERS + '\r\n',
      ),
      responseHead: wire('HTTP/1.1 200 OK\r\n\r\n'),
      requestBytes: 0,
      responseBytes: 0,
    }),
  );
  assert.equal(span.name, 'GET');
  assert.deepEqual(span.status, { code: SpanStatusCode.UNSET });
  assert.deepEqual(span.attributes, {
    'server.address': 'api.example.com',
    'server.port': 80,
    'network.peer.address': '10.0.0.1',
    'network.peer.port': 3128,
    'url.full': 'http://api.example.com/v1/items?access_token=REDACTED&x=1',
    'http.request.method': 'GET',
    'network.protocol.version': '1.1',
    'http.response.status_code': 200,
  });
});

test('client through a proxy: server.port is the origin port (80/443 by scheme, else explicit), not the proxy port', () => {
  const cases: Array<[target: string, host: string, address: string, port: number]> = [
    ['http://api.example.com/v1/items', 'api.example.com', 'api.example.com', 80],
    ['https://api.example.com/v1/items', 'api.example.com', 'api.example.com', 443],
    ['http://api.example.com:8081/v1/items', 'api.example.com:8081', 'api.example.com', 8081],
    ['https://api.example.com:8443/v1/items', 'api.example.com:8443', 'api.example.com', 8443],
    ['http://[2001:db8::9]:8082/v1/items', '[2001:db8::9]:8082', '2001:db8::9', 8082],
  ];
  for (const [target, host, address, port] of cases) {
    const span = build(
      exchange({
        role: 'client',
        remoteAddress: '10.0.0.1',
        remotePort: 3128,
        requestHead: wire(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`),
      }),
    );
    assert.equal(span.attributes['server.address'], address, target);
    assert.equal(span.attributes['server.port'], port, target);
    assert.equal(span.attributes['url.full'], target, target);
    assert.equal(span.attributes['network.peer.address'], '10.0.0.1', target);
    assert.equal(span.attributes['network.peer.port'], 3128, target);
  }
});

test('client absolute-form target without a query is used verbatim', () => {
  const span = build(
    exchange({
      role: 'client',
      remoteAddress: '10.0.0.1',
      remotePort: 3128,
      requestHead: wire('GET https://api.example.com:8443/x HTTP/1.1\r\nHost: api.example.com:8443\r\n\r\n'),
    }),
  );
  assert.equal(span.attributes['url.full'], 'https://api.example.com:8443/x');
});

// ---------------------------------------------------------------------------
// IPv6
// ---------------------------------------------------------------------------

test('server with an IPv6 peer: addresses as formatted', () => {
  const span = build(
    exchange({
      family: 10,
      localAddress: '2001:db8::1',
      localPort: 8080,
      remoteAddress: '2001:db8::7',
      remotePort: 40001,
      requestHead: wire('GET /v6 HTTP/1.1\r\n\r\n'),
      requestBytes: 0,
      responseBytes: 0,
    }),
  );
  assert.deepEqual(span.attributes, {
    'url.scheme': 'http',
    'url.path': '/v6',
    'client.address': '2001:db8::7',
    'network.peer.address': '2001:db8::7',
    'network.peer.port': 40001,
    'server.address': '2001:db8::1',
    'server.port': 8080,
    'http.request.method': 'GET',
    'network.protocol.version': '1.1',
    'http.response.status_code': 200,
  });
});

test('server with a bracketed IPv6 Host header', () => {
  const span = build(exchange({ family: 10, remoteAddress: '::1', localAddress: '::1', requestHead: wire('GET / HTTP/1.1\r\nHost: [::1]:9090\r\n\r\n') }));
  assert.deepEqual(span.attributes, {
    'url.scheme': 'http',
    'url.path': '/',
    'client.address': '::1',
    'network.peer.address': '::1',
    'network.peer.port': 51234,
    'server.address': '::1',
    'server.port': 9090,
    'http.request.method': 'GET',
    'network.protocol.version': '1.1',
    'http.request.size': 187,
    'http.response.size': 342,
    'http.response.status_code': 200,
  });
});

test('client CONNECT and asterisk-form requests get a well-formed url.full', () => {
  const cases: Array<[head: string, full: string, address: string, port: number]> = [
    ['CONNECT db.example.com:443 HTTP/1.1\r\nHost: db.example.com:443\r\n\r\n', 'http://db.example.com:443', 'db.example.com', 443],
    ['OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n', 'http://h:8080', 'h', 8080],
    ['OPTIONS * HTTP/1.1\r\nHost: h:9000\r\n\r\n', 'http://h:9000', 'h', 9000],
  ];
  for (const [head, full, address, port] of cases) {
    const span = build(exchange({ role: 'client', remotePort: 8080, requestHead: wire(head) }));
    assert.equal(span.attributes['url.full'], full, head);
    assert.doesNotThrow(() => new URL(full), full);
    assert.equal(span.attributes['server.address'], address, head);
    assert.equal(span.attributes['server.port'], port, head);
  }
});

test('server Host header with an empty port ("h:") falls back to the local port', () => {
  const span = build(exchange({ requestHead: wire('GET / HTTP/1.1\r\nHost: h:\r\n\r\n') }));
  assert.equal(span.attributes['server.address'], 'h');
  assert.equal(span.attributes['server.port'], 8080);
});

test('server bracketed IPv6 Host header with an empty port ("[::1]:") falls back to the local port, not 0', () => {
  const span = build(exchange({ family: 10, localAddress: '::1', remoteAddress: '::1', requestHead: wire('GET / HTTP/1.1\r\nHost: [::1]:\r\n\r\n') }));
  assert.equal(span.attributes['server.address'], '::1');
  assert.equal(span.attributes['server.port'], 8080);
});

test('client bracketed IPv6 Host header with an empty port ("[::1]:") falls back to the peer port, not 0', () => {
  const span = build(
    exchange({ role: 'client', family: 10, localAddress: '::1', remoteAddress: '::1', remotePort: 9000, requestHead: wire('GET /p HTTP/1.1\r\nHost: [::1]:\r\n\r\n') }),
  );
  assert.equal(span.attributes['server.address'], '::1');
  assert.equal(span.attributes['server.port'], 9000);
  assert.equal(span.attributes['url.full'], 'http://[::1]:9000/p');
});

test('client to an IPv6 peer brackets the address in url.full', () => {
  const span = build(
    exchange({
      role: 'client',
      family: 10,
      localAddress: '2001:db8::1',
      remoteAddress: '2001:db8::2',
      remotePort: 8080,
      requestHead: wire('GET /a?b=1 HTTP/1.1\r\n\r\n'),
    }),
  );
  assert.deepEqual(span.attributes, {
    'server.address': '2001:db8::2',
    'server.port': 8080,
    'network.peer.address': '2001:db8::2',
    'network.peer.port': 8080,
    'url.full': 'http://[2001:db8::2]:8080/a?b=1',
    'http.request.method': 'GET',
    'network.protocol.version': '1.1',
    'http.request.size': 187,
    'http.response.size': 342,
    'http.response.status_code': 200,
  });
});

test('an AF_INET6 socket talking to a v4-mapped peer shows plain IPv4 addresses', () => {
  const span = build(exchange({ family: 10, remoteAddress: '127.0.0.1', localAddress: '127.0.0.1', requestHead: wire('GET / HTTP/1.1\r\n\r\n') }));
  assert.deepEqual(span.attributes, {
    'url.scheme': 'http',
    'url.path': '/',
    'client.address': '127.0.0.1',
    'network.peer.address': '127.0.0.1',
    'network.peer.port': 51234,
    'server.address': '127.0.0.1',
    'server.port': 8080,
    'http.request.method': 'GET',
    'network.protocol.version': '1.1',
    'http.request.size': 187,
    'http.response.size': 342,
    'http.response.status_code': 200,
  });
});

// ---------------------------------------------------------------------------
// Methods
// ---------------------------------------------------------------------------

test('unknown method becomes _OTHER with http.request.method_original, span name "HTTP"', () => {
  const span = build(exchange({ requestHead: wire('PURGE /cache/item HTTP/1.1\r\nHost: cache:8080\r\n\r\n'), requestBytes: 0, responseBytes: 0 }));
  assert.equal(span.name, 'HTTP');
  assert.deepEqual(span.attributes, {
    'url.scheme': 'http',
    'url.path': '/cache/item',
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'server.address': 'cache',
    'server.port': 8080,
    'http.request.method': '_OTHER',
    'http.request.method_original': 'PURGE',
    'network.protocol.version': '1.1',
    'http.response.status_code': 200,
  });
});

test('methods are case-sensitive: "get" is _OTHER', () => {
  const span = build(exchange({ requestHead: wire('get / HTTP/1.1\r\n\r\n') }));
  assert.equal(span.attributes['http.request.method'], '_OTHER');
  assert.equal(span.attributes['http.request.method_original'], 'get');
  assert.equal(span.name, 'HTTP');
});

test('every known method keeps its name and has no method_original', () => {
  for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']) {
    const span = ok(buildSpan(exchange({ requestHead: wire(`${m} /x HTTP/1.1\r\n\r\n`) }), ctx()));
    assert.equal(span.name, m);
    assert.equal(span.attributes['http.request.method'], m);
    assert.equal('http.request.method_original' in span.attributes, false);
  }
  const connect = ok(buildSpan(exchange({ role: 'client', requestHead: wire('CONNECT db.example.com:443 HTTP/1.1\r\n\r\n') }), ctx()));
  assert.equal(connect.name, 'CONNECT');
});

test('unknown method on a matched route is named "HTTP {route}", not "_OTHER {route}"', () => {
  const span = build(exchange({ requestHead: wire('PURGE /users/42 HTTP/1.1\r\n\r\n') }), ctx(['/users/:id']));
  assert.equal(span.attributes['http.route'], '/users/:id');
  assert.equal(span.attributes['http.request.method'], '_OTHER');
  assert.equal(span.attributes['http.request.method_original'], 'PURGE');
  assert.equal(span.name, 'HTTP /users/:id');
});

// ---------------------------------------------------------------------------
// Missing or broken responses
// ---------------------------------------------------------------------------

test('no response with the NoResponse flag: error.type timeout, ends at the request end', () => {
  const span = build(
    exchange({
      flags: ExchangeFlags.NoResponse,
      requestHead: wire('GET /slow HTTP/1.1\r\nHost: svc\r\n\r\n'),
      responseHead: Buffer.alloc(0),
      responseStartNs: 0,
      responseEndNs: 0,
      requestBytes: 40,
      responseBytes: 0,
    }),
  );
  assert.deepEqual(span.status, { code: SpanStatusCode.ERROR, message: 'no response before the response timeout' });
  assert.deepEqual(span.attributes, {
    'url.scheme': 'http',
    'url.path': '/slow',
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'server.address': 'svc',
    'server.port': 8080,
    'http.request.method': 'GET',
    'network.protocol.version': '1.1',
    'http.request.size': 40,
    'error.type': 'timeout',
  });
  // end = requestEndNs = 5_000_100_000 mono
  assert.deepEqual(span.endTime, [1_700_000_004, 99_999]);
  assert.deepEqual(span.duration, [0, 99_999]);
});

test('connection closed before the response: error.type connection_closed', () => {
  const span = build(
    exchange({
      role: 'client',
      flags: ExchangeFlags.ClosedBeforeResponse,
      remotePort: 80,
      requestHead: wire('DELETE /v1/item/9 HTTP/1.1\r\nHost: store\r\n\r\n'),
      responseHead: Buffer.alloc(0),
      responseStartNs: 0,
      responseEndNs: 0,
      requestBytes: 0,
      responseBytes: 0,
    }),
  );
  assert.deepEqual(span.status, { code: SpanStatusCode.ERROR, message: 'connection closed before a response' });
  assert.deepEqual(span.attributes, {
    'server.address': 'store',
    'server.port': 80,
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 80,
    'url.full': 'http://store/v1/item/9',
    'http.request.method': 'DELETE',
    'network.protocol.version': '1.1',
    'error.type': 'connection_closed',
  });
});

test('a response that was seen but cannot be parsed: error.type malformed_response', () => {
  // Empty and cut heads too: the valid status line just past their end must not be read.
  for (const head of [wire('SSH-2.0-OpenSSH_9.6\r\n'), Buffer.alloc(0), wire('\r\n'), wire('HTTP/1.1 20')]) {
    const span = build(exchange({ responseHead: head }));
    const label = JSON.stringify(head.toString('latin1'));
    assert.deepEqual(span.status, { code: SpanStatusCode.ERROR, message: 'response head could not be parsed' }, label);
    assert.equal(span.attributes['error.type'], 'malformed_response', label);
    assert.equal('http.response.status_code' in span.attributes, false, label);
  }
});

test('response head is ignored when responseStartNs is 0', () => {
  const span = build(exchange({ responseStartNs: 0, responseEndNs: 0, flags: ExchangeFlags.NoResponse }));
  assert.equal('http.response.status_code' in span.attributes, false);
  assert.equal(span.attributes['error.type'], 'timeout');
});

test('end falls back to the response start when the response end is 0', () => {
  const span = build(exchange({ responseEndNs: 0 }));
  // responseStartNs 5_002_000_000 -> 1_700_000_004.001999999
  assert.deepEqual(span.endTime, [1_700_000_004, 1_999_999]);
  assert.deepEqual(span.duration, [0, 1_999_999]);
});

// ---------------------------------------------------------------------------
// Unparseable requests
// ---------------------------------------------------------------------------

test('unparseable request bytes give ok:false with a reason', () => {
  const cases: Array<[string, Buffer]> = [
    ['request-not-http', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0a])],
    ['request-not-http', wire('SSH-2.0-OpenSSH_9.6\r\n')],
    ['request-not-http', wire('GET /\r\n')],
    ['request-truncated', wire('GET')],
    ['request-truncated', wire('GET ')],
    ['request-truncated', Buffer.alloc(0)],
    ['request-truncated', wire('\r\n\r\n')],
    ['request-malformed', wire('GET /a HTTP/1.x\r\n\r\n')],
    ['request-malformed', wire('GET  HTTP/1.1\r\n\r\n')],
  ];
  for (const [reason, head] of cases) {
    assert.deepEqual(buildSpan(exchange({ requestHead: head }), ctx()), { ok: false, reason }, `for ${JSON.stringify(head.toString('latin1'))}`);
  }
});

// ---------------------------------------------------------------------------
// Heads larger than the capture
// ---------------------------------------------------------------------------

/** A GraphQL-style GET with a 5 KB query string, as browsers and gateways send. */
const LONG_QUERY = `query=${'%7Bitems(first%3A100)%7Bid%20name%7D%7D'.repeat(140)}&x=1`;
const LONG_REQUEST = wire(`GET /graphql?${LONG_QUERY} HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0\r\n\r\n`);
const CUT = '\u2026';

test('a request cut at 1024 bytes inside a 5 KB query: a server span with the query cut and marked', () => {
  assert.ok(LONG_REQUEST.length > 5000);
  const span = build(exchange({ requestHead: LONG_REQUEST.subarray(0, 1024), requestBytes: LONG_REQUEST.length }));
  assert.equal(span.name, 'GET');
  assert.equal(span.kind, SpanKind.SERVER);
  assert.deepEqual(span.status, { code: SpanStatusCode.UNSET });
  assert.deepEqual(span.attributes, {
    'url.scheme': 'http',
    'url.path': '/graphql',
    'url.query': LONG_QUERY.slice(0, 1024 - 'GET /graphql?'.length) + CUT,
    'sonde.url.truncated': true,
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    // The Host header was past the cut.
    'server.address': '10.0.0.5',
    'server.port': 8080,
    'http.request.method': 'GET',
    'http.request.size': LONG_REQUEST.length,
    'http.response.size': 342,
    'http.response.status_code': 200,
  });
});

test('a request cut inside its path: url.path cut and marked, no route guessed from the cut path', () => {
  const span = build(
    exchange({ requestHead: wire('POST /users/42/orders/7/items'), responseHead: wire('HTTP/1.1 503 Busy\r\n\r\n') }),
    ctx(['/users/:id/orders/:orderId/items', '/users/:id']),
  );
  assert.equal(span.name, 'POST');
  assert.equal(span.attributes['url.path'], `/users/42/orders/7/items${CUT}`);
  assert.equal('url.query' in span.attributes, false);
  assert.equal('http.route' in span.attributes, false);
  assert.equal(span.attributes['sonde.url.truncated'], true);
  assert.equal(span.attributes['http.response.status_code'], 503);
  assert.deepEqual(span.status, { code: SpanStatusCode.ERROR });
});

test('a request cut inside its query keeps its route: the path was whole', () => {
  const span = build(exchange({ requestHead: wire('GET /users/42?expand=orders,addr') }), ctx(['/users/:id']));
  assert.equal(span.name, 'GET /users/:id');
  assert.equal(span.attributes['http.route'], '/users/:id');
  assert.equal(span.attributes['url.query'], `expand=orders,addr${CUT}`);
});

test('a request line cut after its target: nothing marked, no network.protocol.version', () => {
  const span = build(exchange({ requestHead: wire('GET /a?b=1 HTTP/1.') }));
  assert.equal(span.attributes['url.path'], '/a');
  assert.equal(span.attributes['url.query'], 'b=1');
  assert.equal('sonde.url.truncated' in span.attributes, false);
  assert.equal('network.protocol.version' in span.attributes, false);
});

test('a sensitive parameter cut inside its value is still redacted, the marker after REDACTED', () => {
  const cases: Array<[head: string, query: string]> = [
    ['GET /cb?state=xyz&access_token=eyJhbGciOiJI', `state=xyz&access_token=REDACTED${CUT}`],
    ['GET /cb?api_key=k', `api_key=REDACTED${CUT}`],
    ['GET /cb?password=hunter2&remember=tr', `password=REDACTED&remember=tr${CUT}`],
    // Cut right after '=' or inside the name: no value arrived, nothing to hide.
    ['GET /cb?q=1&token=', `q=1&token=${CUT}`],
    ['GET /cb?q=1&tok', `q=1&tok${CUT}`],
  ];
  for (const [head, query] of cases) {
    const span = build(exchange({ requestHead: wire(head) }));
    assert.equal(span.attributes['url.query'], query, head);
  }
  const full = build(exchange({ role: 'client', remotePort: 80, requestHead: wire('GET /cb?sig=0a1b2c&x=1&sig=ff') }));
  assert.equal(full.attributes['url.full'], `http://10.0.0.9/cb?sig=REDACTED&x=1&sig=REDACTED${CUT}`);
});

test('client request cut at 1024 bytes: url.full cut and marked, server from the peer (Host was past the cut)', () => {
  const span = build(
    exchange({
      role: 'client',
      remoteAddress: '10.0.0.20',
      remotePort: 9000,
      requestHead: LONG_REQUEST.subarray(0, 1024),
      responseHead: wire('HTTP/1.1 404 Not Found\r\n\r\n'),
      requestBytes: 0,
      responseBytes: 0,
    }),
  );
  assert.equal(span.kind, SpanKind.CLIENT);
  assert.deepEqual(span.status, { code: SpanStatusCode.ERROR });
  assert.deepEqual(span.attributes, {
    'server.address': '10.0.0.20',
    'server.port': 9000,
    'network.peer.address': '10.0.0.20',
    'network.peer.port': 9000,
    'url.full': `http://10.0.0.20:9000/graphql?${LONG_QUERY.slice(0, 1024 - 'GET /graphql?'.length)}${CUT}`,
    'sonde.url.truncated': true,
    'http.request.method': 'GET',
    'http.response.status_code': 404,
    'error.type': '404',
  });
});

test('client cut in absolute form: the URL keeps its server unless the cut fell inside the authority', () => {
  const cases: Array<[head: string, full: string, address: string, port: number]> = [
    ['GET http://api.example.com:8081/v1/items?access_token=t0k', `http://api.example.com:8081/v1/items?access_token=REDACTED${CUT}`, 'api.example.com', 8081],
    ['GET https://api.example.com/v1/ite', `https://api.example.com/v1/ite${CUT}`, 'api.example.com', 443],
    ['GET http://api.example.com:80', `http://api.example.com:80${CUT}`, '10.0.0.1', 3128],
    ['CONNECT db.exam', `http://db.exam${CUT}`, '10.0.0.1', 3128],
  ];
  for (const [head, full, address, port] of cases) {
    const span = build(exchange({ role: 'client', remoteAddress: '10.0.0.1', remotePort: 3128, requestHead: wire(head) }));
    assert.equal(span.attributes['url.full'], full, head);
    assert.equal(span.attributes['server.address'], address, head);
    assert.equal(span.attributes['server.port'], port, head);
    assert.equal(span.attributes['sonde.url.truncated'], true, head);
  }
});

test('ResponseIncomplete: sonde.response.incomplete, the status still follows the status code', () => {
  const ok = build(exchange({ flags: ExchangeFlags.ResponseIncomplete }));
  assert.equal(ok.attributes['sonde.response.incomplete'], true);
  assert.equal(ok.attributes['http.response.status_code'], 200);
  assert.deepEqual(ok.status, { code: SpanStatusCode.UNSET });
  assert.equal('error.type' in ok.attributes, false);
  const failed = build(exchange({ role: 'client', flags: ExchangeFlags.ResponseIncomplete | ExchangeFlags.PreexistingConnection, responseHead: wire('HTTP/1.1 502 Bad Gateway\r\n\r\n') }));
  assert.equal(failed.attributes['sonde.response.incomplete'], true);
  assert.deepEqual(failed.status, { code: SpanStatusCode.ERROR });
  assert.equal(failed.attributes['error.type'], '502');
  assert.equal('sonde.response.incomplete' in build(exchange()).attributes, false);
});

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

test('a matching route names the span and sets http.route', () => {
  const span = build(exchange({ requestHead: wire('GET /users/42?expand=1 HTTP/1.1\r\nHost: users\r\n\r\n') }), ctx(['/health', '/users/:id', '/users/:id/orders']));
  assert.equal(span.name, 'GET /users/:id');
  assert.equal(span.attributes['http.route'], '/users/:id');
  assert.equal(span.attributes['url.path'], '/users/42');
  assert.equal(span.attributes['url.query'], 'expand=1');
});

test('no matching route: name is the method alone, no http.route', () => {
  const c = ctx(['/users/:id']);
  for (const path of ['/users', '/users/', '/users/42/orders', '/orders/42']) {
    const span = ok(buildSpan(exchange({ requestHead: wire(`GET ${path} HTTP/1.1\r\n\r\n`) }), c));
    assert.equal(span.name, 'GET', path);
    assert.equal('http.route' in span.attributes, false, path);
  }
});

test('routes are not applied to client spans', () => {
  const span = build(exchange({ role: 'client', requestHead: wire('GET /users/42 HTTP/1.1\r\n\r\n') }), ctx(['/users/:id']));
  assert.equal(span.name, 'GET');
  assert.equal('http.route' in span.attributes, false);
});

test('compileRoutes: params, literals, wildcard tails, first match wins, junk ignored', () => {
  const r = compileRoutes(['  /users/:id/orders/:orderId ', '/users/:id', '/static/*', '/users/me', 'not-a-route', '']);
  assert.equal(r.match('/users/7/orders/9'), '/users/:id/orders/:orderId');
  assert.equal(r.match('/users/me'), '/users/:id');
  assert.equal(r.match('/static/css/site.css'), '/static/*');
  assert.equal(r.match('/static/x'), '/static/*');
  assert.equal(r.match('/users//orders/9'), undefined);
  assert.equal(r.match('/other'), undefined);
  assert.equal(r.match('not-a-route'), undefined);
  assert.equal(compileRoutes([]).match('/anything'), undefined);
  assert.equal(compileRoutes(['/']).match('/'), '/');
  assert.equal(compileRoutes(['/']).match('/a'), undefined);
});

// ---------------------------------------------------------------------------
// Context and times
// ---------------------------------------------------------------------------

test('parentSpanId gives a remote parent span context in the same trace', () => {
  const span = build(exchange({ parentSpanId: PARENT_ID, linkSource: LinkSource.TraceparentHeader, traceFlags: 0x03 }));
  assert.deepEqual(span.spanContext(), { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, isRemote: false });
  assert.deepEqual(span.parentSpanContext, { traceId: TRACE_ID, spanId: PARENT_ID, traceFlags: 1, isRemote: true });
});

test('an unsampled exchange keeps traceFlags 0 on span and parent', () => {
  const span = build(exchange({ parentSpanId: PARENT_ID, traceFlags: 0 }));
  assert.equal(span.spanContext().traceFlags, 0);
  assert.equal(span.parentSpanContext?.traceFlags, 0);
});

test('start/end HrTime conversion is exact to the nanosecond, with carry', () => {
  const span = build(exchange());
  // 5_000_000_001 + 1_699_999_998_999_999_999 = 1_700_000_004_000_000_000
  assert.deepEqual(span.startTime, [1_700_000_004, 0]);
  // 5_250_000_000 + offset = 1_700_000_004_249_999_999
  assert.deepEqual(span.endTime, [1_700_000_004, 249_999_999]);
  assert.deepEqual(span.duration, [0, 249_999_999]);
  const long = build(exchange({ requestStartNs: 3_000_000_000, responseEndNs: 7_123_456_789 }));
  assert.deepEqual(long.startTime, [1_700_000_001, 999_999_999]);
  assert.deepEqual(long.endTime, [1_700_000_006, 123_456_788]);
  assert.deepEqual(long.duration, [4, 123_456_789]);
  assert.equal(
    BigInt(long.endTime[0]) * 1_000_000_000n + BigInt(long.endTime[1]) - (BigInt(long.startTime[0]) * 1_000_000_000n + BigInt(long.startTime[1])),
    BigInt(long.duration[0]) * 1_000_000_000n + BigInt(long.duration[1]),
  );
  assert.equal(OFFSET_NS + 7_123_456_789n, 1_700_000_006_123_456_788n);
});

test('HrTime conversion stays exact up to 2^53 - 1 ns of monotonic time (104 days of uptime)', () => {
  const startNs = 9_007_198_000_000_001;
  const endNs = 9_007_199_254_740_991;
  assert.equal(endNs, Number.MAX_SAFE_INTEGER);
  const span = build(exchange({ requestStartNs: startNs, requestEndNs: startNs + 1, responseStartNs: startNs + 2, responseEndNs: endNs }));
  // 9_007_198_000_000_001 + 1_699_999_998_999_999_999 = 1_709_007_197_000_000_000
  assert.deepEqual(span.startTime, [1_709_007_197, 0]);
  // 9_007_199_254_740_991 + 1_699_999_998_999_999_999 = 1_709_007_198_254_740_990
  assert.deepEqual(span.endTime, [1_709_007_198, 254_740_990]);
  assert.deepEqual(span.duration, [1, 254_740_990]);
  const hr = (t: readonly [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
  assert.equal(hr(span.startTime), OFFSET_NS + BigInt(startNs));
  assert.equal(hr(span.endTime), OFFSET_NS + BigInt(endNs));
  assert.equal(hr(span.duration), BigInt(endNs) - BigInt(startNs));
});

test('heads are parsed in place: exchanges sharing one payload each read only their own bytes', () => {
  // Laid out as decodeExchanges leaves them: one batch buffer, offsets into it.
  const parts = [
    wire('GET /first?a=1 HTTP/1.1\r\nHost: one:81\r\n\r\n'),
    wire('HTTP/1.1 201 Created\r\n\r\n'),
    wire('POST /second HTTP/1.0\r\nHost: two:82\r\nUser-Agent: ua-2\r\n\r\n'),
    wire('HTTP/1.0 503 Busy\r\n\r\n'),
  ];
  const payload = Buffer.concat(parts);
  const at = (i: number) => parts.slice(0, i).reduce((n, p) => n + p.length, 0);
  const first = exchange({ requestHead: Buffer.alloc(0), responseHead: Buffer.alloc(0) });
  Object.assign(first, { payload, requestHeadStart: at(0), requestHeadEnd: at(1), responseHeadStart: at(1), responseHeadEnd: at(2) });
  const second = exchange({ requestHead: Buffer.alloc(0), responseHead: Buffer.alloc(0), requestBytes: 0, responseBytes: 0 });
  Object.assign(second, { payload, requestHeadStart: at(2), requestHeadEnd: at(3), responseHeadStart: at(3), responseHeadEnd: at(4) });
  const a = build(first);
  const b = build(second);
  assert.equal(a.name, 'GET');
  assert.equal(a.attributes['url.path'], '/first');
  assert.equal(a.attributes['url.query'], 'a=1');
  assert.equal(a.attributes['server.address'], 'one');
  assert.equal(a.attributes['server.port'], 81);
  assert.equal(a.attributes['http.response.status_code'], 201);
  assert.equal('user_agent.original' in a.attributes, false);
  assert.deepEqual(b.attributes, {
    'url.scheme': 'http',
    'url.path': '/second',
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'server.address': 'two',
    'server.port': 82,
    'http.request.method': 'POST',
    'network.protocol.version': '1.0',
    'user_agent.original': 'ua-2',
    'http.response.status_code': 503,
    'error.type': '503',
  });
  // Nothing was copied out of or written into the shared buffer.
  assert.deepEqual(payload, Buffer.concat(parts));
});

test('an end before the start gives a zero duration, never a negative one', () => {
  const span = build(exchange({ requestStartNs: 9_000_000_000, responseEndNs: 8_000_000_000 }));
  assert.deepEqual(span.duration, [0, 0]);
});

// ---------------------------------------------------------------------------
// Validity as ReadableSpans, secrets
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// HTTP/2 and gRPC (protocol id 2): header fields as text lines
// ---------------------------------------------------------------------------

function h2Lines(...pairs: [string, string][]): Buffer {
  return wire(pairs.map(([n, v]) => `${n}: ${v}\r\n`).join(''));
}

test('an HTTP/2 exchange becomes an HTTP span through the built-in registry, with ids and exact times', () => {
  const span = build(
    exchange({
      protocol: ExchangeProtocol.Http2,
      streamId: 5,
      parentSpanId: PARENT_ID,
      requestHead: h2Lines([':method', 'GET'], [':scheme', 'https'], [':authority', 'shop:8443'], [':path', '/users/7?session=abc&x=1'], ['authorization', SECRET_AUTH], ['cookie', SECRET_COOKIE]),
      responseHead: h2Lines([':status', '200'], ['set-cookie', SECRET_SET_COOKIE]),
    }),
    ctx(['/users/:id']),
  );
  assert.equal(span.name, 'GET /users/:id');
  assert.equal(span.kind, SpanKind.SERVER);
  assert.deepEqual(span.attributes, {
    'http.request.method': 'GET',
    'url.scheme': 'https',
    'url.path': '/users/7',
    'url.query': 'session=REDACTED&x=1',
    'http.route': '/users/:id',
    'server.address': 'shop',
    'server.port': 8443,
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'network.protocol.version': '2',
    'http.request.body.size': 187,
    'http.response.body.size': 342,
    'http.response.status_code': 200,
  });
  assert.deepEqual(span.startTime, [1_700_000_004, 0]);
  assert.deepEqual(span.endTime, [1_700_000_004, 249_999_999]);
  assert.equal(span.parentSpanContext?.spanId, PARENT_ID);
});

test('an HTTP/2 client stream reset by the server: ERROR named by the error code', () => {
  const span = build(
    exchange({
      protocol: ExchangeProtocol.Http2,
      role: 'client',
      flags: ExchangeFlags.StreamReset,
      endErrorCode: 7,
      requestHead: h2Lines([':method', 'POST'], [':scheme', 'http'], [':authority', 'inv:9000'], [':path', '/v1/reserve'], ['cookie', SECRET_COOKIE]),
      responseHead: Buffer.alloc(0),
      responseStartNs: 0,
      responseEndNs: 0,
    }),
  );
  assert.equal(span.name, 'POST');
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.equal(span.attributes['error.type'], 'REFUSED_STREAM');
  assert.equal(span.attributes['sonde.http2.error_code'], 'REFUSED_STREAM');
  assert.equal(span.attributes['url.full'], 'http://inv:9000/v1/reserve');
  // No response: the span ends with the request.
  assert.deepEqual(span.endTime, [1_700_000_004, 99_999]);
});

test('a gRPC call on protocol id 2 becomes an RPC span, and serializes to OTLP', () => {
  const result = buildSpan(
    exchange({
      protocol: ExchangeProtocol.Http2,
      role: 'client',
      remoteAddress: '10.0.0.30',
      remotePort: 50051,
      requestHead: h2Lines([':method', 'POST'], [':scheme', 'http'], [':path', '/shop.v1.Inventory/GetItem'], [':authority', 'inventory:50051'], ['content-type', 'application/grpc'], ['authorization', SECRET_AUTH]),
      responseHead: Buffer.concat([h2Lines([':status', '200'], ['content-type', 'application/grpc']), wire('\r\n'), h2Lines(['grpc-status', '5'], ['grpc-message', 'item%207%20not%20found'])]),
    }),
    ctx(['/*']),
  );
  const span = ok(result);
  assert.equal(span.name, 'shop.v1.Inventory/GetItem');
  assert.equal(span.kind, SpanKind.CLIENT);
  assert.deepEqual(span.status, { code: SpanStatusCode.ERROR, message: 'item 7 not found' });
  assert.deepEqual(span.attributes, {
    'rpc.system': 'grpc',
    'rpc.service': 'shop.v1.Inventory',
    'rpc.method': 'GetItem',
    'rpc.grpc.status_code': 5,
    'error.type': 'NOT_FOUND',
    'server.address': 'inventory',
    'server.port': 50051,
    'network.peer.address': '10.0.0.30',
    'network.peer.port': 50051,
    'network.protocol.name': 'http',
    'network.protocol.version': '2',
  });
  const bytes = ProtobufTraceSerializer.serializeRequest([span]);
  assert.ok(bytes);
  const [received] = decodeExportTraceServiceRequest(bytes);
  assert.equal(received.name, 'shop.v1.Inventory/GetItem');
  assert.equal(received.statusCode, 'ERROR');
  assert.deepEqual(received.attributes, span.attributes as Record<string, string | number>);
});

test('built spans go through a real InMemorySpanExporter unchanged', async () => {
  assert.ok(built.length >= 10, `expected the tests above to have built spans, got ${built.length}`);
  const exporter = new InMemorySpanExporter();
  const result = await new Promise<ExportResult>((resolve) => exporter.export(built as ReadableSpan[], resolve));
  assert.equal(result.code, ExportResultCode.SUCCESS);
  const finished = exporter.getFinishedSpans();
  assert.equal(finished.length, built.length);
  for (let i = 0; i < built.length; i++) {
    const s = finished[i];
    assert.equal(s, built[i]);
    assert.equal(s.ended, true);
    assert.match(s.spanContext().traceId, /^[0-9a-f]{32}$/);
    assert.match(s.spanContext().spanId, /^[0-9a-f]{16}$/);
    assert.ok(s.kind === SpanKind.SERVER || s.kind === SpanKind.CLIENT);
    for (const t of [s.startTime, s.endTime, s.duration]) {
      assert.ok(Number.isInteger(t[0]) && Number.isInteger(t[1]) && t[1] >= 0 && t[1] < 1e9, `bad HrTime ${t}`);
    }
    for (const [k, v] of Object.entries(s.attributes)) {
      assert.ok(typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v)) || v === true, `${k} is ${JSON.stringify(v)}`);
    }
  }
  await exporter.shutdown();
  assert.equal(exporter.getFinishedSpans().length, 0);
});

test('the attributes dropped for speed are set on no built span', () => {
  const dropped = ['network.local.address', 'network.local.port', 'network.protocol.name', 'network.transport', 'network.type', 'client.port'];
  for (const span of built) {
    for (const key of dropped) assert.equal(key in span.attributes, false, `${span.name} sets ${key}`);
  }
});

test('built spans serialize to OTLP protobuf with exact nanosecond times and attributes', () => {
  const span = ok(buildSpan(exchange({ parentSpanId: PARENT_ID, requestHead: wire('GET /p?q=1 HTTP/1.1\r\nHost: h:1\r\n\r\n') }), ctx()));
  const bytes = ProtobufTraceSerializer.serializeRequest([span]);
  assert.ok(bytes);
  const [received] = decodeExportTraceServiceRequest(bytes);
  assert.equal(received.traceId, TRACE_ID);
  assert.equal(received.spanId, SPAN_ID);
  assert.equal(received.parentSpanId, PARENT_ID);
  assert.equal(received.name, 'GET');
  assert.equal(received.kind, 'SERVER');
  assert.equal(received.statusCode, 'UNSET');
  assert.equal(received.startTimeUnixNano, 1_700_000_004_000_000_000n);
  assert.equal(received.endTimeUnixNano, 1_700_000_004_249_999_999n);
  assert.deepEqual(received.attributes, span.attributes as Record<string, string | number>);
  assert.equal(received.resource['service.name'], 'checkout');
});

test('Authorization, Cookie and Set-Cookie values never appear in any attribute value', () => {
  // One more of each role, then scan everything built in this file.
  build(exchange({ role: 'client', requestHead: wire(`PUT /x HTTP/1.1\r\nHost: y\r\n${CREDENTIAL_HEADERS}\r\n`), responseHead: wire(`HTTP/1.1 201 Created\r\nSet-Cookie: ${SECRET_SET_COOKIE}\r\n\r\n`) }));
  build(exchange({ requestHead: wire(`PATCH /x HTTP/1.1\r\n${CREDENTIAL_HEADERS}Host: y\r\n\r\n`) }));
  let withCredentials = 0;
  for (const span of built) {
    const values: Attributes[string][] = Object.values(span.attributes);
    for (const v of values) {
      const text = Array.isArray(v) ? v.join('\n') : String(v);
      for (const fragment of SECRET_FRAGMENTS) assert.ok(!text.includes(fragment), `${span.name}: attribute value ${JSON.stringify(text)} leaks ${fragment}`);
    }
    for (const key of Object.keys(span.attributes)) assert.ok(!/authorization|cookie/i.test(key), `attribute ${key} carries a credential header`);
    withCredentials++;
  }
  assert.ok(withCredentials >= 10);
});

test('WireSpan built directly: sampled bit only, no parent for an empty parentSpanId', () => {
  const resource = resourceFromAttributes({ 'service.name': 'x' });
  const s = new WireSpan('n', SpanKind.CLIENT, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0xff }, '', [1, 2], [3, 4], [2, 2], { code: SpanStatusCode.UNSET }, {}, resource, { name: 'sonde' });
  assert.deepEqual(s.spanContext(), { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, isRemote: false });
  assert.equal(s.parentSpanContext, undefined);
  assert.equal(s.droppedAttributesCount, 0);
  assert.equal(s.droppedEventsCount, 0);
  assert.equal(s.droppedLinksCount, 0);
  assert.deepEqual([s.startTime, s.endTime, s.duration], [[1, 2], [3, 4], [2, 2]]);
});
