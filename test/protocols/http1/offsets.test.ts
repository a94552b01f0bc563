/**
 * The pipeline parses heads in place inside an exchange batch: the same
 * message must parse the same whether alone or between other bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequestHead, parseResponseHead } from '../../../src/protocols/http1';

const REQUEST = 'GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\nbody';
const RESPONSE = 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';

test('a request parses identically inside a larger buffer', () => {
  const alone = parseRequestHead(Buffer.from(REQUEST, 'latin1'));
  const garbage = Buffer.from('\u0000\u0001HTTP/1.1 200 OK\r\n', 'latin1');
  const inside = Buffer.concat([garbage, Buffer.from(REQUEST, 'latin1'), Buffer.from('GET /other HTTP/1.1\r\n\r\n')]);
  const parsed = parseRequestHead(inside, garbage.length, garbage.length + REQUEST.length);
  assert.deepEqual(parsed, alone);
});

test('every cut of a request inside a larger buffer agrees with the cut alone', () => {
  const bytes = Buffer.from(REQUEST, 'latin1');
  const padded = Buffer.concat([Buffer.from('xxxx'), bytes, Buffer.from('\r\nGET / HTTP/1.1\r\n\r\n')]);
  for (let k = 0; k <= bytes.length; k++) {
    assert.deepEqual(parseRequestHead(padded, 4, 4 + k), parseRequestHead(bytes.subarray(0, k)), `cut at ${k}`);
  }
});

test('a response status line can be read without its headers', () => {
  const bytes = Buffer.concat([Buffer.from('zz'), Buffer.from(RESPONSE, 'latin1')]);
  const full = parseResponseHead(bytes, 2);
  const statusOnly = parseResponseHead(bytes, 2, undefined, { headers: false });
  assert.ok(full.ok && statusOnly.ok);
  assert.equal(statusOnly.value.statusCode, 404);
  assert.equal(statusOnly.value.reason, 'Not Found');
  assert.deepEqual(statusOnly.value.headers, []);
  assert.equal(full.value.headers.length, 1);
  assert.deepEqual(parseResponseHead(bytes, 2, 2), { ok: false, reason: 'empty' });
});
