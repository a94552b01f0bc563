import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSensitiveParamName, redactQuery } from '../../../src/protocols/http1/redact';

const sensitive = [
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'accessToken',
  'X-Amz-Security-Token',
  '%74oken',
  '%54OKEN',
  'password',
  'new_password',
  'passwd',
  'pwd',
  'secret',
  'client_secret',
  'key',
  'api_key',
  'api-key',
  'apikey',
  'apiKey',
  'APIKey',
  'API_KEY',
  'access_key',
  'key_id',
  'signature',
  'X-Amz-Signature',
  'X-Goog-Signature',
  'sig',
  'oauth_sig',
  'session',
  'sessionid',
  'PHPSESSID',
  'jsessionid',
  'auth',
  'oauth_token',
  'authorization',
  'auth_code',
  'X-Amz-Credential',
  'credentials',
  'jwt',
  'code',
  'ssn',
  'user_ssn',
  'userSSN',
  'card',
  'card_number',
  'cardNumber',
  'creditcard',
  'cvv',
  'otp',
  'otp_code',
  'user[password]',
];

const harmless = [
  'keyword',
  'keywords',
  'monkey',
  'turkey',
  'hockey',
  'q',
  'id',
  'page',
  'sort',
  'zipcode',
  'country_code',
  'codec',
  'design',
  'signal',
  'signup',
  'author',
  'authors',
  'coauthor',
  'authority',
  'businessName',
  'footprint',
  'discard',
  'cardinality',
  'X-Amz-Date',
  'X-Amz-Expires',
  '',
  '%zz',
  '%',
];

test('sensitive parameter names', () => {
  for (const name of sensitive) assert.equal(isSensitiveParamName(name), true, name);
});

test('harmless parameter names', () => {
  for (const name of harmless) assert.equal(isSensitiveParamName(name), false, name);
});

test('redactQuery table', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['q=shoes&page=2', 'q=shoes&page=2'],
    ['access_token=abc.def&q=1', 'access_token=REDACTED&q=1'],
    ['q=1&api-key=XYZ', 'q=1&api-key=REDACTED'],
    ['keyword=monkey&monkey=key', 'keyword=monkey&monkey=key'],
    ['%74oken=s3cr3t&x=%74oken', '%74oken=REDACTED&x=%74oken'],
    ['token=&q=1', 'token=&q=1'],
    ['token=a&token=b&token=c', 'token=REDACTED&token=REDACTED&token=REDACTED'],
    ['token&flag&x=1', 'token&flag&x=1'],
    ['a=1&&b=2&', 'a=1&&b=2&'],
    ['password=p%40ss%26word+x&next=%2Fhome', 'password=REDACTED&next=%2Fhome'],
    ['code=4/0AX4XfWh&state=xyz', 'code=REDACTED&state=xyz'],
    ['token==b=c&z', 'token=REDACTED&z'],
    [
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20250101%2Fus-east-1%2Fs3%2Faws4_request' +
        '&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef',
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED' +
        '&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=REDACTED',
    ],
    ['sv=2022-11-02&sig=abc%3D&se=2025', 'sv=2022-11-02&sig=REDACTED&se=2025'],
    ['=value&token=x', '=value&token=REDACTED'],
  ];
  for (const [input, expected] of cases) assert.equal(redactQuery(input), expected, input);
});

test('redactQuery returns the same string when nothing is sensitive', () => {
  const q = 'a=1&b=2&c';
  assert.equal(redactQuery(q), q);
});
