import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fieldValue, parseRequestFields, parseResponseFields, splitAuthority, UNKNOWN, type FieldBlock } from '../../../src/protocols/http2/parse';
import { http2ErrorName } from '../../../src/protocols/http2/errorCodes';

function block(text: string): FieldBlock {
  const b = Buffer.from(`garbage: before\r\n${text}:path: /after\r\n`, 'latin1');
  return parseRequestFields(b, 17, 17 + Buffer.byteLength(text, 'latin1'));
}

test('field lines: pseudo-headers, values with ": " in them, empty values, wire order kept', () => {
  const b = block(':method: GET\r\n:path: /a?b=1\r\n:authority: h:1\r\nx-note: a: b\r\nx-empty: \r\nx-dup: 1\r\nx-dup: 2\r\n');
  assert.equal(b.complete, true);
  assert.deepEqual(b.fields, [
    { name: ':method', value: 'GET' },
    { name: ':path', value: '/a?b=1' },
    { name: ':authority', value: 'h:1' },
    { name: 'x-note', value: 'a: b' },
    { name: 'x-empty', value: '' },
    { name: 'x-dup', value: '1' },
    { name: 'x-dup', value: '2' },
  ]);
  assert.equal(fieldValue(b, ':path'), '/a?b=1');
  assert.equal(fieldValue(b, 'x-dup'), '1');
  // Absent from a complete block: not sent.
  assert.equal(fieldValue(b, 'user-agent'), undefined);
});

test('"?name" is a field whose value is unknown; "?" hides any absent field', () => {
  const named = block(':method: GET\r\n?:path\r\n');
  assert.equal(named.complete, true);
  assert.equal(fieldValue(named, ':path'), UNKNOWN);
  assert.equal(fieldValue(named, 'user-agent'), undefined);

  const anonymous = block(':method: GET\r\n?\r\n');
  assert.equal(anonymous.complete, false);
  assert.equal(fieldValue(anonymous, ':method'), 'GET');
  assert.equal(fieldValue(anonymous, ':path'), UNKNOWN);
  assert.deepEqual(anonymous.fields[1], { name: undefined, value: undefined });
});

test('a missing block (empty payload) knows no field', () => {
  const empty = parseRequestFields(Buffer.from(':method: GET\r\n'), 5, 5);
  assert.equal(empty.complete, false);
  assert.deepEqual(empty.fields, []);
  assert.equal(fieldValue(empty, ':method'), UNKNOWN);
});

test('lines that break the format are unknown fields, and make the block incomplete', () => {
  for (const line of ['no-separator', ':status:200', 'x:', ': ']) {
    const b = block(`:method: GET\r\n${line}\r\n`);
    assert.equal(b.complete, false, line);
    assert.equal(fieldValue(b, ':method'), 'GET');
    assert.equal(fieldValue(b, ':path'), UNKNOWN, line);
  }
  // An unterminated last line may be a value cut short: not trusted.
  const cut = parseRequestFields(Buffer.from(':method: GET\r\n:path: /very/lo'), 0, 29);
  assert.equal(cut.complete, false);
  assert.equal(fieldValue(cut, ':path'), UNKNOWN);
});

test('bare LF line ends are read too; names are matched lower-cased', () => {
  const b = block(':method: GET\nUser-Agent: curl\n');
  assert.equal(fieldValue(b, ':method'), 'GET');
  assert.equal(fieldValue(b, 'user-agent'), 'curl');
});

test('response: headers, then trailers after an empty line', () => {
  const text = ':status: 200\r\ncontent-type: application/grpc\r\n\r\ngrpc-status: 0\r\ngrpc-message: \r\n';
  const buf = Buffer.from(`xx${text}grpc-status: 13\r\n`, 'latin1');
  const r = parseResponseFields(buf, 2, 2 + text.length);
  assert.equal(r.headers.complete, true);
  assert.equal(fieldValue(r.headers, ':status'), '200');
  assert.equal(fieldValue(r.headers, 'grpc-status'), undefined);
  assert.ok(r.trailers);
  assert.equal(r.trailers.complete, true);
  assert.equal(fieldValue(r.trailers, 'grpc-status'), '0');
  assert.equal(fieldValue(r.trailers, 'grpc-message'), '');

  const noTrailers = parseResponseFields(Buffer.from(':status: 204\r\n'), 0, 14);
  assert.equal(noTrailers.trailers, undefined);
  // A lost header block before trailers: the headers are unknown, the trailers are not.
  const lostHeaders = parseResponseFields(Buffer.from('\r\ngrpc-status: 5\r\n'), 0, 18);
  assert.equal(fieldValue(lostHeaders.headers, ':status'), UNKNOWN);
  assert.equal(fieldValue(lostHeaders.trailers!, 'grpc-status'), '5');
});

test('offsets outside the buffer read as an empty block instead of throwing', () => {
  const b = Buffer.from(':method: GET\r\n');
  assert.deepEqual(parseRequestFields(b, 10, 2).fields, []);
  assert.deepEqual(parseRequestFields(b, -5, 1000).fields, [{ name: ':method', value: 'GET' }]);
  assert.deepEqual(parseResponseFields(b, 100, 200).headers.fields, []);
});

test('authority: host and port, IPv6 in brackets, no port, bad port, userinfo left out', () => {
  assert.deepEqual(splitAuthority('shop:8443'), { name: 'shop', port: 8443 });
  assert.deepEqual(splitAuthority('shop'), { name: 'shop', port: undefined });
  assert.deepEqual(splitAuthority('[::1]:50051'), { name: '::1', port: 50051 });
  assert.deepEqual(splitAuthority('[::1]'), { name: '::1', port: undefined });
  assert.deepEqual(splitAuthority('shop:99999'), { name: 'shop', port: undefined });
  assert.deepEqual(splitAuthority('shop:+80'), { name: 'shop', port: undefined });
  assert.deepEqual(splitAuthority('user:pw@shop:81'), { name: 'shop', port: 81 });
});

test('HTTP/2 error codes by name, unknown codes in hex', () => {
  assert.equal(http2ErrorName(0), 'NO_ERROR');
  assert.equal(http2ErrorName(8), 'CANCEL');
  assert.equal(http2ErrorName(13), 'HTTP_1_1_REQUIRED');
  assert.equal(http2ErrorName(0x1f), '0x1f');
  assert.equal(http2ErrorName(0xffffffff), '0xffffffff');
});
