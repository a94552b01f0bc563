import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ExchangeFlags } from '../../../src/native/exchangeDecoder';
import { http2Describer } from '../../../src/protocols/http2/describe';
import { decodeGrpcMessage, grpcStatusName, isGrpcError, parseGrpcStatus } from '../../../src/protocols/grpc/status';
import type { Description } from '../../../src/protocols';
import { describeContext, fields, h2Exchange, withTrailers, type H2Overrides } from '../http2/fixtures';

const CALL = fields(
  [':method', 'POST'],
  [':scheme', 'http'],
  [':path', '/shop.v1.Inventory/GetItem'],
  [':authority', 'inventory:50051'],
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
  ['grpc-timeout', '1S'],
  ['user-agent', 'grpc-node-js/1.14.3'],
  ['authorization', 'Bearer s3cr3t'],
);
const OK_HEADERS = fields([':status', '200'], ['content-type', 'application/grpc']);

function answered(status: string, message?: string): Buffer {
  return withTrailers(OK_HEADERS, message === undefined ? fields(['grpc-status', status]) : fields(['grpc-status', status], ['grpc-message', message]));
}

function span(over: H2Overrides): Description {
  const d = http2Describer.describe(h2Exchange({ request: CALL, response: answered('0'), ...over }), describeContext(['/*']));
  assert.ok(d.ok, `expected a span, got ${d.ok ? '' : d.reason}`);
  return d;
}

test('unary OK on the server: package.Service/Method, rpc.* attributes, no http.* ones', () => {
  const d = span({ requestBytes: 12, responseBytes: 40 });
  assert.equal(d.name, 'shop.v1.Inventory/GetItem');
  assert.equal(d.kind, SpanKind.SERVER);
  assert.deepEqual(d.status, { code: SpanStatusCode.UNSET });
  assert.deepEqual(d.attributes, {
    'rpc.system': 'grpc',
    'rpc.service': 'shop.v1.Inventory',
    'rpc.method': 'GetItem',
    'rpc.grpc.status_code': 0,
    'server.address': 'inventory',
    'server.port': 50051,
    'client.address': '10.0.0.9',
    'network.peer.address': '10.0.0.9',
    'network.peer.port': 51234,
    'network.protocol.name': 'http',
    'network.protocol.version': '2',
  });
});

test('unary OK on the client: CLIENT kind, server from :authority, no client.address', () => {
  const d = span({ role: 'client', remoteAddress: '10.0.0.30', remotePort: 50051 });
  assert.equal(d.kind, SpanKind.CLIENT);
  assert.deepEqual(d.status, { code: SpanStatusCode.UNSET });
  assert.equal(d.attributes['client.address'], undefined);
  assert.equal(d.attributes['server.address'], 'inventory');
  assert.equal(d.attributes['network.peer.address'], '10.0.0.30');
});

test('NOT_FOUND: UNSET on the server, ERROR on the client with the status name and the message', () => {
  const server = span({ response: answered('5', 'item 7 not found') });
  assert.deepEqual(server.status, { code: SpanStatusCode.UNSET });
  assert.equal(server.attributes['rpc.grpc.status_code'], 5);
  assert.equal(server.attributes['error.type'], undefined);
  const client = span({ role: 'client', response: answered('5', 'item 7 not found') });
  assert.deepEqual(client.status, { code: SpanStatusCode.ERROR, message: 'item 7 not found' });
  assert.equal(client.attributes['error.type'], 'NOT_FOUND');
});

test('INTERNAL, UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, UNAVAILABLE, DATA_LOSS are server errors', () => {
  for (const [code, name] of [[13, 'INTERNAL'], [2, 'UNKNOWN'], [4, 'DEADLINE_EXCEEDED'], [12, 'UNIMPLEMENTED'], [14, 'UNAVAILABLE'], [15, 'DATA_LOSS']] as const) {
    const d = span({ response: answered(String(code)) });
    assert.deepEqual(d.status, { code: SpanStatusCode.ERROR }, name);
    assert.equal(d.attributes['error.type'], name);
    assert.equal(d.attributes['rpc.grpc.status_code'], code);
  }
  for (const code of [1, 3, 6, 7, 8, 9, 10, 11, 16, 17]) assert.equal(span({ response: answered(String(code)) }).status.code, SpanStatusCode.UNSET, String(code));
  // Outside the registry: an error on the client, named by its number.
  const odd = span({ role: 'client', response: answered('42') });
  assert.equal(odd.attributes['error.type'], '42');
});

test('trailers-only response: grpc-status in the only header block', () => {
  const d = span({ role: 'client', response: fields([':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '14'], ['grpc-message', 'upstream down']) });
  assert.deepEqual(d.status, { code: SpanStatusCode.ERROR, message: 'upstream down' });
  assert.equal(d.attributes['rpc.grpc.status_code'], 14);
  assert.equal(d.attributes['error.type'], 'UNAVAILABLE');
});

test('grpc-message is percent-decoded UTF-8; malformed escapes stay as sent', () => {
  const d = span({ role: 'client', response: answered('3', 'bad%20arg%3A%20%E2%9C%93 100%') });
  assert.equal(d.status.message, 'bad arg: \u2713 100%');
  assert.equal(decodeGrpcMessage('plain'), 'plain');
  assert.equal(decodeGrpcMessage('%zz%4'), '%zz%4');
  assert.equal(decodeGrpcMessage('%e2%9c%93'), '\u2713');
  // Raw UTF-8 (as latin1 chars) that a sender failed to escape; invalid UTF-8 becomes U+FFFD.
  assert.equal(decodeGrpcMessage(Buffer.from('caf\u00e9', 'utf8').toString('latin1')), 'caf\u00e9');
  assert.equal(decodeGrpcMessage('%FF'), '\ufffd');
});

test('unknown :path: named gRPC, method_unknown, no service or method guessed', () => {
  const request = fields([':method', 'POST'], [':scheme', 'http'], '?:path', ['content-type', 'application/grpc']);
  const d = span({ flags: ExchangeFlags.HeadersIncomplete, request });
  assert.equal(d.name, 'gRPC');
  assert.equal(d.attributes['sonde.rpc.method_unknown'], true);
  assert.equal(d.attributes['rpc.service'], undefined);
  assert.equal(d.attributes['rpc.method'], undefined);
  assert.equal(d.attributes['sonde.http2.headers_incomplete'], true);
  assert.equal(d.attributes['rpc.grpc.status_code'], 0);
  for (const path of ['/', '/onlyservice', '/a/b/c', 'pkg.S/M', '/pkg.S/', '//M', '/pkg.S/M?x=1']) {
    const odd = span({ request: fields([':method', 'POST'], [':path', path], ['content-type', 'application/grpc']) });
    assert.equal(odd.name, 'gRPC', path);
    assert.equal(odd.attributes['sonde.rpc.method_unknown'], true, path);
  }
  assert.equal(span({ request: fields([':path', '/Greeter/SayHello'], ['content-type', 'application/grpc+proto']) }).name, 'Greeter/SayHello');
});

test('content-type unknown on both sides: a grpc-status in the response still says gRPC', () => {
  const request = fields([':method', 'POST'], [':path', '/shop.v1.Inventory/GetItem'], '?');
  const d = span({ flags: ExchangeFlags.HeadersIncomplete, request, response: withTrailers(fields([':status', '200'], '?'), fields(['grpc-status', '0'])) });
  assert.equal(d.name, 'shop.v1.Inventory/GetItem');
  assert.equal(d.attributes['rpc.grpc.status_code'], 0);
  // A known content-type that is not gRPC keeps the span HTTP, whatever else the response says.
  const http = span({ request: fields([':method', 'POST'], [':path', '/x'], ['content-type', 'application/json']), response: fields([':status', '200'], ['grpc-status', '0']) });
  assert.equal(http.attributes['rpc.system'], undefined);
  // The context's route "/*" names HTTP spans; gRPC spans are named by their method alone.
  assert.equal(http.name, 'POST /*');
});

test('no grpc-status and a stream reset: ERROR named by the HTTP/2 error code', () => {
  const d = span({ role: 'client', flags: ExchangeFlags.StreamReset, endErrorCode: 8, response: OK_HEADERS });
  assert.equal(d.status.code, SpanStatusCode.ERROR);
  assert.equal(d.attributes['error.type'], 'CANCEL');
  assert.equal(d.attributes['sonde.http2.error_code'], 'CANCEL');
  assert.equal(d.attributes['rpc.grpc.status_code'], undefined);
  // A reset after the trailers (RST_STREAM NO_ERROR is common) leaves the status to grpc-status.
  const after = span({ flags: ExchangeFlags.StreamReset, endErrorCode: 0 });
  assert.deepEqual(after.status, { code: SpanStatusCode.UNSET });
  assert.equal(after.attributes['sonde.http2.error_code'], 'NO_ERROR');
});

test('no response at all: timeout or connection_closed', () => {
  const none = { response: Buffer.alloc(0), responseStartNs: 0, responseEndNs: 0 };
  assert.equal(span({ ...none, flags: ExchangeFlags.NoResponse }).attributes['error.type'], 'timeout');
  assert.equal(span({ ...none, flags: ExchangeFlags.ClosedBeforeResponse }).attributes['error.type'], 'connection_closed');
});

test('grpc-status unknown, or trailers possibly lost: UNSET and status_unknown', () => {
  const hidden = span({ flags: ExchangeFlags.HeadersIncomplete, response: withTrailers(OK_HEADERS, fields('?grpc-status')) });
  assert.deepEqual(hidden.status, { code: SpanStatusCode.UNSET });
  assert.equal(hidden.attributes['sonde.rpc.status_unknown'], true);
  // Headers only, but the flag says a block was lost: the trailers may have been it.
  const lost = span({ role: 'client', flags: ExchangeFlags.HeadersIncomplete, response: OK_HEADERS });
  assert.deepEqual(lost.status, { code: SpanStatusCode.UNSET });
  assert.equal(lost.attributes['sonde.rpc.status_unknown'], true);
  const cut = span({ role: 'client', flags: ExchangeFlags.ResponseIncomplete, response: OK_HEADERS });
  assert.equal(cut.attributes['sonde.rpc.status_unknown'], true);
});

test('a complete response that ended without grpc-status: missing_grpc_status', () => {
  const d = span({ role: 'client', response: withTrailers(fields([':status', '503'], ['content-type', 'application/grpc']), fields(['x-other', '1'])) });
  assert.deepEqual(d.status, { code: SpanStatusCode.ERROR, message: 'response ended without grpc-status (HTTP status 503)' });
  assert.equal(d.attributes['error.type'], 'missing_grpc_status');
  assert.equal(d.attributes['http.response.status_code'], undefined);
  const bad = span({ role: 'client', response: answered('OK') });
  assert.equal(bad.attributes['error.type'], 'malformed_grpc_status');
  assert.equal(bad.attributes['rpc.grpc.status_code'], undefined);
});

test('streaming calls are one exchange like any other', () => {
  const d = span({ request: fields([':method', 'POST'], [':path', '/chat.Chat/Stream'], ['content-type', 'application/grpc']), requestBytes: 10_000, responseBytes: 90_000 });
  assert.equal(d.name, 'chat.Chat/Stream');
  assert.equal(d.endNs, 5_250_000_000);
  assert.equal(d.attributes['http.request.body.size'], undefined);
});

test('status helpers', () => {
  assert.equal(grpcStatusName(0), 'OK');
  assert.equal(grpcStatusName(16), 'UNAUTHENTICATED');
  assert.equal(grpcStatusName(17), '17');
  assert.equal(isGrpcError(5, true), false);
  assert.equal(isGrpcError(5, false), true);
  assert.equal(isGrpcError(0, false), false);
  assert.equal(parseGrpcStatus('14'), 14);
  assert.equal(parseGrpcStatus(''), undefined);
  assert.equal(parseGrpcStatus('-1'), undefined);
  assert.equal(parseGrpcStatus(' 1'), undefined);
  assert.equal(parseGrpcStatus('12345678901'), undefined);
});

test('joined mid-life: content-type and grpc-status unknown, a POST to a call path answered with trailers is gRPC, marked inferred', () => {
  const request = fields([':method', 'POST'], [':scheme', 'http'], [':path', '/shop.v1.Inventory/GetItem'], '?', '?');
  const d = span({ flags: ExchangeFlags.HeadersIncomplete, request, response: withTrailers(fields([':status', '200'], '?'), fields('?', '?')) });
  assert.equal(d.name, 'shop.v1.Inventory/GetItem');
  assert.equal(d.attributes['rpc.system'], 'grpc');
  assert.equal(d.attributes['sonde.rpc.system_inferred'], true);
  assert.equal(d.attributes['rpc.grpc.status_code'], undefined);
  assert.equal(d.attributes['sonde.rpc.status_unknown'], true);
  assert.deepEqual(d.status, { code: SpanStatusCode.UNSET });
  // Without trailers, or not a POST, or not a call path, nothing says gRPC: an HTTP/2 span.
  const noTrailers = span({ flags: ExchangeFlags.HeadersIncomplete, request, response: fields([':status', '200'], '?') });
  assert.equal(noTrailers.attributes['rpc.system'], undefined);
  const get = span({ flags: ExchangeFlags.HeadersIncomplete, request: fields([':method', 'GET'], [':path', '/shop.v1.Inventory/GetItem'], '?'), response: withTrailers(fields([':status', '200']), fields('?')) });
  assert.equal(get.attributes['rpc.system'], undefined);
  // A declared gRPC content-type is not "inferred".
  assert.equal(span({}).attributes['sonde.rpc.system_inferred'], undefined);
});
