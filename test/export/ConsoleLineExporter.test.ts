import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ConsoleLineExporter, formatSpanLine, MAX_TARGET_CHARS } from '../../src/export/ConsoleLineExporter';
import { buildSpan } from '../../src/spans/buildSpan';
import { compileRoutes } from '../../src/spans/routes';
import { WireSpan } from '../../src/spans/WireSpan';
import { MonotonicClock } from '../../src/native/clock';
import { ExchangeFlags, ExchangeProtocol, type Exchange } from '../../src/native/exchangeDecoder';
import { EXCHANGE_DEFAULTS, exchangeOf } from '../support/exchange';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const PARENT = 'b7ad6b7169203331';

const ctx = {
  clock: new MonotonicClock(() => [1_700_000_000_000_000_000n, 0n], { nowMs: () => 0 }),
  resource: resourceFromAttributes({ 'service.name': 'checkout' }),
  scope: { name: 'sonde' },
  routes: compileRoutes(['/users/:id']),
};

/** Heads given as separate buffers; the factory lays them out in one payload, as decodeExchanges does. */
type ExchangeOverrides = Partial<Omit<Exchange, 'payload' | 'requestHeadStart' | 'requestHeadEnd' | 'responseHeadStart' | 'responseHeadEnd'>> & {
  requestHead?: Buffer;
  responseHead?: Buffer;
};

/** Around and between the heads: bytes a parser reading outside its offsets would trip over. */
const BEFORE = Buffer.from('DELETE /garbage HTTP/1.1\r\n\r\n');
const BETWEEN = Buffer.from('HTTP/1.1 599 Garbage\r\n\r\n');
const AFTER = Buffer.from('\r\nHTTP/1.1 598 Garbage\r\n\r\n');

function exchange(over: ExchangeOverrides): Exchange {
  const { requestHead = Buffer.from('GET / HTTP/1.1\r\n\r\n'), responseHead = Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), ...rest } = over;
  return exchangeOf(
    {
      ...EXCHANGE_DEFAULTS,
      pid: 1,
      tid: 1,
      fd: 3,
      remotePort: 50000,
      requestStartNs: 5_000_000_000,
      responseEndNs: 5_002_500_000,
      traceId: TRACE,
      spanId: SPAN,
      ...rest,
    },
    { before: BEFORE, request: requestHead, between: BETWEEN, response: responseHead, after: AFTER },
  );
}

function line(over: ExchangeOverrides): string {
  const r = buildSpan(exchange(over), ctx);
  assert.ok(r.ok);
  return formatSpanLine(r.span);
}

function hand(kind: SpanKind, attributes: Attributes, opts: { service?: string; duration?: HrTime; error?: boolean; parent?: string } = {}): WireSpan {
  return new WireSpan(
    'x',
    kind,
    { traceId: TRACE, spanId: SPAN, traceFlags: 1 },
    opts.parent ?? '',
    [1_700_000_000, 0],
    [1_700_000_001, 0],
    opts.duration ?? [1, 0],
    { code: opts.error ? SpanStatusCode.ERROR : SpanStatusCode.UNSET },
    attributes,
    resourceFromAttributes(opts.service === undefined ? {} : { 'service.name': opts.service }),
    { name: 'sonde' },
  );
}

test('server span: service, kind, method, path with redacted query, status, duration, ids', () => {
  assert.equal(
    line({ requestHead: Buffer.from('GET /search?q=shoes&token=abc HTTP/1.1\r\nHost: shop\r\n\r\n') }),
    'checkout         SERVER GET    /search?q=shoes&token=REDACTED 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
});

test('server span on a route: the route replaces the path and the query is left out', () => {
  assert.equal(
    line({ requestHead: Buffer.from('GET /users/42?expand=1 HTTP/1.1\r\n\r\n'), parentSpanId: PARENT }),
    'checkout         SERVER GET    /users/:id 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7 parent=b7ad6b7169203331',
  );
});

test('server error span with a status code shows the code', () => {
  assert.equal(
    line({ requestHead: Buffer.from('POST /orders HTTP/1.1\r\n\r\n'), responseHead: Buffer.from('HTTP/1.1 503 Service Unavailable\r\n\r\n') }),
    'checkout         SERVER POST   /orders 503 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
});

test('client span: url.full as target, parent shown', () => {
  assert.equal(
    line({
      role: 'client',
      remoteAddress: '10.0.0.20',
      remotePort: 9000,
      requestHead: Buffer.from('GET /v1/items/7 HTTP/1.1\r\nHost: inventory:9000\r\n\r\n'),
      responseHead: Buffer.from('HTTP/1.1 404 Not Found\r\n\r\n'),
      responseEndNs: 5_001_250_000,
      parentSpanId: PARENT,
    }),
    'checkout         CLIENT GET    http://inventory:9000/v1/items/7 404 1.25ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7 parent=b7ad6b7169203331',
  );
});

test('error span without a response shows error.type instead of a status code', () => {
  assert.equal(
    line({
      flags: ExchangeFlags.NoResponse,
      requestHead: Buffer.from('GET /slow HTTP/1.1\r\n\r\n'),
      responseStartNs: 0,
      responseEndNs: 0,
    }),
    'checkout         SERVER GET    /slow timeout 0.10ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({
      role: 'client',
      flags: ExchangeFlags.ClosedBeforeResponse,
      remotePort: 80,
      requestHead: Buffer.from('PUT /v1/x HTTP/1.1\r\nHost: store\r\n\r\n'),
      responseStartNs: 0,
      responseEndNs: 0,
    }),
    'checkout         CLIENT PUT    http://store/v1/x connection_closed 0.10ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
});

test('a request cut by the capture shows its cut, marked, on the line', () => {
  assert.equal(
    line({ requestHead: Buffer.from('GET /graphql?query=%7Bitems%7Bid&token=abc') }),
    'checkout         SERVER GET    /graphql?query=%7Bitems%7Bid&token=REDACTED\u2026 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({ requestHead: Buffer.from('GET /static/app.0123456789abcdef') }),
    'checkout         SERVER GET    /static/app.0123456789abcdef\u2026 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({ role: 'client', remoteAddress: '10.0.0.20', remotePort: 9000, requestHead: Buffer.from('GET /v1/search?q=shoe') }),
    'checkout         CLIENT GET    http://10.0.0.20:9000/v1/search?q=shoe\u2026 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  // A route stands for the path, which was whole; the query is never shown with a route.
  assert.equal(
    line({ requestHead: Buffer.from('GET /users/42?expand=ord') }),
    'checkout         SERVER GET    /users/:id 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
});

test('unknown methods are shown as sent, long methods are not cut', () => {
  assert.equal(
    line({ requestHead: Buffer.from('PURGE /cache HTTP/1.1\r\n\r\n') }),
    'checkout         SERVER PURGE  /cache 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({ requestHead: Buffer.from('OPTIONS /cors HTTP/1.1\r\n\r\n') }),
    'checkout         SERVER OPTIONS /cors 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
});

test('hand-built spans: missing service, INTERNAL kind, no attributes, error without error.type', () => {
  assert.equal(
    formatSpanLine(hand(SpanKind.INTERNAL, {})),
    'unknown_service  INTERNAL ?       - 1000.00ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    formatSpanLine(hand(SpanKind.SERVER, { 'http.request.method': 'GET', 'url.path': '/a' }, { service: 'a-very-long-service-name', error: true, duration: [0, 123_456] })),
    'a-very-long-service-name SERVER GET    /a error 0.12ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    formatSpanLine(hand(SpanKind.CLIENT, { 'http.request.method': 'GET', 'url.path': '/p', 'url.query': 'a=1' }, { service: 'svc', duration: [2, 5_000_000] })),
    'svc              CLIENT GET    /p?a=1 - 2005.00ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
});

test('ConsoleLineExporter writes one line per span and reports success', async () => {
  const lines: string[] = [];
  const exporter = new ConsoleLineExporter((l) => lines.push(l));
  const spans = [hand(SpanKind.SERVER, { 'http.request.method': 'GET', 'url.path': '/1' }, { service: 's' }), hand(SpanKind.SERVER, { 'http.request.method': 'GET', 'url.path': '/2' }, { service: 's' })];
  const result = await new Promise<ExportResult>((resolve) => exporter.export(spans, resolve));
  assert.equal(result.code, ExportResultCode.SUCCESS);
  assert.deepEqual(lines, spans.map(formatSpanLine));
  const empty = await new Promise<ExportResult>((resolve) => exporter.export([], resolve));
  assert.equal(empty.code, ExportResultCode.SUCCESS);
  assert.equal(lines.length, 2);
  await exporter.shutdown();
});

test('a 5 KB query string is cut to a terminal-sized target with a marker; the span keeps it whole', () => {
  const query = `q=${'x'.repeat(5000)}`;
  const r = buildSpan(exchange({ requestHead: Buffer.from(`GET /search?${query} HTTP/1.1\r\nHost: shop\r\n\r\n`) }), ctx);
  assert.ok(r.ok);
  assert.equal(r.span.attributes['url.query'], query);
  const text = formatSpanLine(r.span);
  const target = text.split(' ').filter(Boolean)[3];
  assert.equal(target.length, MAX_TARGET_CHARS);
  assert.ok(target.startsWith('/search?q=xxx') && target.endsWith('…'), target);
  assert.match(text, / 200 2\.50ms trace=/);
});

function h2(...lines: string[]): Buffer {
  return Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1');
}

test('HTTP/2 spans read like HTTP/1 ones; what the capture could not tell shows as "?"', () => {
  const protocol = ExchangeProtocol.Http2;
  assert.equal(
    line({ protocol, requestHead: h2(':method: GET', ':scheme: https', ':authority: shop', ':path: /users/42?expand=1'), responseHead: h2(':status: 200') }),
    'checkout         SERVER GET    /users/:id 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({ protocol, flags: ExchangeFlags.HeadersIncomplete, requestHead: h2('?:method', ':scheme: http', '?:path'), responseHead: h2(':status: 200') }),
    'checkout         SERVER ?      ? 200 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({ protocol, role: 'client', flags: ExchangeFlags.HeadersIncomplete, requestHead: h2(':method: GET', ':scheme: http', ':authority: inv:9000', '?'), responseHead: h2('?:status') }),
    'checkout         CLIENT GET    http://inv:9000/? ? 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({
      protocol,
      role: 'client',
      flags: ExchangeFlags.StreamReset,
      endErrorCode: 8,
      requestHead: h2(':method: POST', ':scheme: http', ':authority: inv:9000', ':path: /v1/x'),
      responseHead: Buffer.alloc(0),
      responseStartNs: 0,
      responseEndNs: 0,
    }),
    'checkout         CLIENT POST   http://inv:9000/v1/x CANCEL 0.10ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
});

test('gRPC spans: "gRPC", the call, and the status by name on either side', () => {
  const protocol = ExchangeProtocol.Http2;
  const call = h2(':method: POST', ':scheme: http', ':path: /shop.v1.Inventory/GetItem', 'content-type: application/grpc');
  const trailers = (status: string) => Buffer.concat([h2(':status: 200', 'content-type: application/grpc'), h2(''), h2(`grpc-status: ${status}`)]);
  assert.equal(
    line({ protocol, requestHead: call, responseHead: trailers('0') }),
    'checkout         SERVER gRPC   shop.v1.Inventory/GetItem OK 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({ protocol, requestHead: call, responseHead: trailers('5') }),
    'checkout         SERVER gRPC   shop.v1.Inventory/GetItem NOT_FOUND 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({ protocol, role: 'client', flags: ExchangeFlags.HeadersIncomplete, requestHead: h2(':method: POST', '?:path', 'content-type: application/grpc'), responseHead: h2(':status: 200') }),
    'checkout         CLIENT gRPC   ? ? 2.50ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
  assert.equal(
    line({ protocol, role: 'client', flags: ExchangeFlags.StreamReset, endErrorCode: 7, requestHead: call, responseHead: Buffer.alloc(0), responseStartNs: 0, responseEndNs: 0 }),
    'checkout         CLIENT gRPC   shop.v1.Inventory/GetItem REFUSED_STREAM 0.10ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7',
  );
});
