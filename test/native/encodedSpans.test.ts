/**
 * The golden test of the spans the addon encodes (native/src/encode/
 * EncodedSpans.h): for every record it encodes, plain HTTP/1, gRPC or plain
 * HTTP/2, its
 * Span message must be byte for byte what the JavaScript path (describer,
 * buildSpan, OtlpSpanEncoder) gives for the same record, once the pipeline
 * has written the epoch times in, and the attributes the RED metrics read
 * of it must be the built span's. Records it declines are the JavaScript
 * path's alone. A corpus per protocol says which kinds of record each side
 * takes; a fuzz over heads, fields, addresses and flags holds the equality
 * wherever the addon says yes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { loadNativeModule } from '../../src/native/binding';
import { MonotonicClock } from '../../src/native/clock';
import { EncodedSpanCursor, EncodedSpanShape } from '../../src/native/encodedSpans';
import { EncodedSpanAttributes } from '../../src/pipeline/encodedSpanAttributes';
import { RED_HISTOGRAMS } from '../../src/metrics/RedMetrics';
import { SpanKind, type Attributes } from '@opentelemetry/api';
import { ExchangeProtocol, exchangeAt } from '../../src/native/exchangeDecoder';
import { OtlpSpanEncoder } from '../../src/export/otlp/encodeTraces';
import { buildSpan, type SpanBuildContext } from '../../src/spans/buildSpan';
import { compileRoutes } from '../../src/spans/routes';
import { mulberry32 } from '../support/random';
import { encodeRecord, v4mapped, v6, type RecordSpec } from '../support/records';

const native = loadNativeModule();
const REAL_NS = 1_764_633_600_123_456_789n;
const MONO_NS = 5_000_000_000n;

function context(): SpanBuildContext {
  return {
    clock: new MonotonicClock(() => [REAL_NS, MONO_NS], { nowMs: () => 0, refreshEveryMs: 1e12 }),
    resource: resourceFromAttributes({ 'service.name': 'golden' }),
    scope: { name: 'sonde', version: '0.0.0-test' },
    routes: compileRoutes([]),
  };
}

/** The Span message the JavaScript path gives for the record, or undefined when it gives no span. */
function viaJavaScript(record: Buffer, c: SpanBuildContext): Buffer | undefined {
  const result = buildSpan(exchangeAt(record, 0), c);
  if (!result.ok) return undefined;
  const encoded = new OtlpSpanEncoder({ slabBytes: 64 * 1024 }).encode(result.span);
  return Buffer.from(encoded.slab.subarray(encoded.start, encoded.start + encoded.length));
}

interface AddonSpan {
  bytes: Buffer;
  shape: EncodedSpanShape;
  name: string;
  /** What the pipeline hands the RED metrics for it. */
  metricAttributes: Attributes;
  statusCode: number;
  method: string;
  httpMinor: number;
  endNs: number;
  recordOffset: number;
  serverAddress: string;
  serverPort: number;
}

/**
 * One for the whole file, as the pipeline keeps one: its sets are found
 * again by key, and two spans whose keys collide would share one.
 */
const attributes = new EncodedSpanAttributes();

/** The addon's entries for a batch, epoch times written in as the pipeline writes them. */
function viaAddon(records: Buffer, c: SpanBuildContext): AddonSpan[] {
  const cursor = new EncodedSpanCursor();
  cursor.reset(native.encodeSpans(records));
  const out: AddonSpan[] = [];
  for (; cursor.at >= 0; cursor.next()) {
    c.clock.writeEpochNs(cursor.view, cursor.startTimeAt, cursor.endTimeAt);
    const x = exchangeAt(records, cursor.recordOffset);
    out.push({
      bytes: Buffer.from(cursor.buffer.subarray(cursor.spanStart, cursor.spanStart + cursor.spanBytes)),
      shape: cursor.shape,
      name: cursor.buffer.toString('latin1', cursor.nameAt, cursor.nameAt + cursor.nameBytes),
      metricAttributes: attributes.of(cursor, x.role === 'server', x.tls),
      statusCode: cursor.statusCode,
      method: cursor.method,
      httpMinor: cursor.httpMinor,
      endNs: cursor.endNs,
      recordOffset: cursor.recordOffset,
      serverAddress: cursor.buffer.toString('latin1', cursor.serverAddressAt, cursor.serverAddressAt + cursor.serverAddressBytes),
      serverPort: cursor.serverPort,
    });
  }
  return out;
}

/** Whether the addon encoded the record; when it did, its bytes are the JavaScript path's. */
function compare(spec: RecordSpec, label: string): boolean {
  const record = encodeRecord(spec);
  const c = context();
  const addon = viaAddon(record, c);
  if (addon.length === 0) return false;
  assert.equal(addon.length, 1);
  const js = viaJavaScript(record, c);
  assert.ok(js, `${label}: the addon encoded a record the JavaScript path gives no span for`);
  assert.equal(addon[0].bytes.toString('hex'), js.toString('hex'), `${label}: Span bytes differ`);
  const x = exchangeAt(record, 0);
  assert.equal(addon[0].recordOffset, 0);
  assert.equal(addon[0].endNs, x.responseEndNs || x.responseStartNs, label);
  const built = buildSpan(x, c);
  assert.ok(built.ok);
  const a = built.span.attributes;
  assert.equal(addon[0].name, built.span.name, label);
  assert.equal(addon[0].serverAddress, a['server.address'], label);
  assert.equal(addon[0].serverPort, a['server.port'], label);
  if (addon[0].shape === EncodedSpanShape.Grpc) {
    assert.equal(addon[0].statusCode, a['rpc.grpc.status_code'], label);
  } else {
    assert.equal(addon[0].shape, x.protocol === ExchangeProtocol.Http2 ? EncodedSpanShape.Http2 : EncodedSpanShape.Http, label);
    assert.equal(addon[0].statusCode, a['http.response.status_code'], label);
    assert.equal(addon[0].method, a['http.request.method'], label);
  }
  // What the RED metrics key the span on, read from the addon's entry or
  // from the built span, is the same set.
  const server = built.span.kind === SpanKind.SERVER;
  const histogram = a['rpc.system'] !== undefined ? (server ? RED_HISTOGRAMS.rpcServer : RED_HISTOGRAMS.rpcClient) : server ? RED_HISTOGRAMS.httpServer : RED_HISTOGRAMS.httpClient;
  const kept = (from: Attributes): Attributes => Object.fromEntries(histogram.keys.filter((k) => from[k] !== undefined).map((k) => [k, from[k]]));
  assert.deepEqual(kept(addon[0].metricAttributes), kept(a), `${label}: metric attributes differ`);
  return true;
}

const head = (text: string): Buffer => Buffer.from(text, 'latin1');

test('plain HTTP/1 exchanges are encoded, byte for byte as JavaScript encodes them', () => {
  const cases: Array<[string, RecordSpec]> = [
    ['hey', { request: head('GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: hey/0.0.1\r\nAccept-Encoding: gzip\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok') }],
    ['no host, HTTP/1.0', { request: head('GET /health HTTP/1.0\r\n\r\n'), response: head('HTTP/1.0 204\r\n\r\n') }],
    ['empty host and user agent', { request: head('POST /a HTTP/1.1\r\nhost:\r\nuser-agent: \r\n\r\n'), response: head('HTTP/1.1 201 Created\r\n\r\n') }],
    ['host without port', { request: head('PUT /items/7 HTTP/1.1\r\nHOST: api.example.com\r\n\r\n'), response: head('HTTP/1.1 404 Not Found\r\n\r\n') }],
    ['port out of range, so the local port', { request: head('GET / HTTP/1.1\r\nHost: h:70000\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['port zero, with leading zeros', { request: head('GET / HTTP/1.1\r\nHost: h:000\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['two colons: no port', { request: head('GET / HTTP/1.1\r\nHost: ::1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['first host counts', { request: head('GET / HTTP/1.1\r\nHost: a:81\r\nHost: b:82\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['server error', { request: head('DELETE /x HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 503 Service Unavailable\r\n\r\n') }],
    ['TLS, child span, unsampled', { source: 2, traceFlags: 0, parentSpanId: '00f067aa0ba902b7', request: head('HEAD / HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['response incomplete, no sizes', { flags: 1 << 5, requestBytes: 0n, responseBytes: 0n, request: head('OPTIONS /x HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 100 Continue\r\n\r\n') }],
    ['response end unknown', { responseEndNs: 0n, request: head('PATCH /x HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['IPv6 peers', { family: 10, localAddr: v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]), remoteAddr: v6([0, 0, 0, 0, 0, 0, 0, 1]), request: head('GET / HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['IPv6 without a run of zeros', { family: 10, remoteAddr: v6([1, 2, 3, 4, 5, 6, 7, 8]), localAddr: v6([0xfe80, 0, 1, 0, 0, 2, 0, 0]), request: head('GET / HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['long user agent (lengths over 127)', { request: head(`GET /${'p'.repeat(150)} HTTP/1.1\r\nUser-Agent: ${'Mozilla/5.0 '.repeat(30)}\r\n\r\n`), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['huge sizes', { requestBytes: 2n ** 40n, responseBytes: 2n ** 50n, request: head('GET / HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['client, named by its Host field', { role: 2, request: head('GET /api/items HTTP/1.1\r\nHost: api.internal:8080\r\nUser-Agent: node\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['client, default port left out', { role: 2, request: head('GET /x HTTP/1.1\r\nHost: example.com:80\r\n\r\n'), response: head('HTTP/1.1 301 Moved\r\n\r\n') }],
    ['client over TLS, 443 left out', { role: 2, source: 2, request: head('GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n'), remotePort: 443, response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['client 4xx is an error', { role: 2, request: head('DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n'), response: head('HTTP/1.1 404 Not Found\r\n\r\n') }],
    ['client without Host: the peer, IPv6 bracketed', { role: 2, family: 10, remoteAddr: v6([0xfd00, 0, 0, 0, 0, 0, 0, 7]), remotePort: 9000, request: head('POST /rpc HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['client, host with two colons', { role: 2, request: head('GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['client, port out of range: the peer port', { role: 2, request: head('GET / HTTP/1.1\r\nHost: h:99999\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['query without anything to redact', { request: head('GET /search?q=socks&page=2 HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['empty query, and a second ? and # kept in it', { request: head('GET /a?x=1?y#z HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['a lone ?', { request: head('GET /a? HTTP/1.1\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['client with a query', { role: 2, request: head('GET /b?c=1&d HTTP/1.1\r\nHost: b:8080\r\n\r\n'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
    ['control char in a value, body after the head', { request: head('POST / HTTP/1.1\r\nUser-Agent: a\x01b\r\nContent-Length: 3\r\n\r\nabc'), response: head('HTTP/1.1 200 OK\r\n\r\n') }],
  ];
  for (const [label, spec] of cases) assert.ok(compare(spec, label), `${label}: expected the addon to encode it`);
});

test('what the addon leaves to JavaScript', () => {
  const ok = head('HTTP/1.1 200 OK\r\n\r\n');
  const cases: Array<[string, RecordSpec]> = [
    ['client in absolute form, through a proxy', { role: 2, request: head('GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n'), response: ok }],
    ['client with a query that may hold a secret', { role: 2, request: head('GET /b?password=1 HTTP/1.1\r\nHost: a\r\n\r\n'), response: ok }],
    ['unknown role', { role: 3 }],
    ['HTTP/2', { protocol: 2, request: head(':method: GET\r\n'), response: head(':status: 200\r\n') }],
    ['query that may hold a secret', { request: head('GET /?q=1&access_token=x HTTP/1.1\r\n\r\n'), response: ok }],
    ['query whose hint is in a value', { request: head('GET /?q=keyboard HTTP/1.1\r\n\r\n'), response: ok }],
    ['query in capitals', { request: head('GET /?SIG=1 HTTP/1.1\r\n\r\n'), response: ok }],
    ['percent-encoded query', { request: head('GET /?%74oken=1 HTTP/1.1\r\n\r\n'), response: ok }],
    ['unknown method', { request: head('PURGE / HTTP/1.1\r\n\r\n'), response: ok }],
    ['CONNECT', { request: head('CONNECT h:443 HTTP/1.1\r\n\r\n'), response: ok }],
    ['absolute form', { request: head('GET http://a/ HTTP/1.1\r\n\r\n'), response: ok }],
    ['cut head', { request: head('GET / HTTP/1.1\r\nHost: a\r\n'), response: ok }],
    ['cut request line', { request: head('GET /abc'), response: ok }],
    ['bare LF', { request: head('GET / HTTP/1.1\nHost: a\n\n'), response: ok }],
    ['byte above 0x7f', { request: head('GET /caf\xe9 HTTP/1.1\r\n\r\n'), response: ok }],
    ['bracketed host', { request: head('GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n'), response: ok }],
    ['port not digits', { request: head('GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n'), response: ok }],
    ['no response', { responseStartNs: 0n, responseEndNs: 0n, response: Buffer.alloc(0) }],
    ['garbled response', { response: head('HTTP/1.1 2x0 OK\r\n\r\n') }],
    ['cut status line', { response: head('HTTP/1.1 200 O') }],
    ['leading empty line', { request: head('\r\nGET / HTTP/1.1\r\n\r\n'), response: ok }],
  ];
  for (const [label, spec] of cases) assert.equal(compare(spec, label), false, `${label}: expected JavaScript to build it`);
});

test('entries follow their records through a batch', () => {
  const specs: RecordSpec[] = [
    { request: head('GET /a HTTP/1.1\r\n\r\n') },
    { role: 2, request: head('GET /b?token=c HTTP/1.1\r\n\r\n') },
    { request: head('GET /b?c%20 HTTP/1.1\r\n\r\n') },
    { request: head('POST /d HTTP/1.1\r\n\r\n'), spanId: '1111111111111111' },
  ];
  const records = specs.map((s) => encodeRecord(s));
  const batch = Buffer.concat(records);
  const c = context();
  const addon = viaAddon(batch, c);
  assert.deepEqual(
    addon.map((a) => a.recordOffset),
    [0, records[0].length + records[1].length + records[2].length],
  );
  assert.deepEqual(
    addon.map((a) => a.method),
    ['GET', 'POST'],
  );
  assert.equal(addon[1].bytes.toString('hex'), viaJavaScript(records[3], c)!.toString('hex'));
  // A corrupt record ends the walk; JavaScript reports the batch.
  const corrupt = encodeRecord({ recordBytes: 10 });
  assert.equal(native.encodeSpans(Buffer.concat([records[0], corrupt, records[3]])).length > 0, true);
  assert.equal(viaAddon(Buffer.concat([corrupt, records[0]]), c).length, 0);
});

test('fuzz: wherever the addon encodes, JavaScript gives the same bytes', () => {
  const rnd = mulberry32(20261202);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)];
  // Each part is mostly one the addon takes, sometimes one it must leave.
  const part = <T>(good: readonly T[], bad: readonly T[]): T => (rnd() < 0.8 ? pick(good) : pick(bad));
  const methods = [['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'], ['get', 'PURGE', 'TRACE', 'QUERY', 'CONNECT', 'GETX']] as const;
  const targets = [['/', '/users/42', '/a/b/c.html', '/%7Euser', '/#frag', '/a:b@c', '/x?y=1', '/s?q=socks&page=2', '/?', '/a?b?c#d'], ['/p?monkey=1', '/p?Author=me', '/x?token=1', '/x?A=%20', '/x?SIG=1', '/x?api_key=k', '*', 'http://h/p', '/caf\xe9', '/a b', '/\x7f', '']] as const;
  const hosts = [['', `Host: ${'h'.repeat(300)}.example:8080\r\n`, 'Host: a.example\r\n', 'host: 10.0.0.1:8443\r\n', 'HOST:h:0\r\n', 'Host: h:65535\r\n', 'Host: h:65536\r\n', 'Host:   spaced \t\r\n', 'Host: a:b:c\r\n', 'Host: :80\r\n', 'Host: h:0080\r\n', 'Host:\r\n', ' Host: folded\r\n', 'Host : x\r\n'], ['Host: [::1]:80\r\n', 'Host: h:\r\n', 'Host: h:1e2\r\n', 'Host: \xe9\r\n', 'Host: h: 80\r\n', 'Host: 0123456789\xe9.example\r\n']] as const;
  const agents = [['', 'User-Agent: curl/8.5.0\r\n', 'user-agent:\r\n', `User-Agent: ${'Mozilla/5.0 (X11; Linux x86_64) '.repeat(5)}\r\n`, 'User-Agent: a\tb \r\n', 'User-Agent: x\r\nUser-Agent: y\r\n'], ['User-Agent: \xff\r\n', 'User-Agent: a\rb\r\n', 'User-Agent: abcd\xe9fghijklmnop\r\n', 'User-Agent: abcdefg\nhijklmnop\r\n']] as const;
  const others = [['', 'Accept: */*\r\n', 'X-A: 1\r\nX-B: 2\r\n', 'Cookie: a=b; c=d\r\n', 'Bad Line\r\n', ':empty-name\r\n', 'X-Bin: \x00\x1f\r\n'], ['X-Lf: a\nb\r\n', 'X-Hi: \x80\r\n', 'X-\xe9: a long enough value\r\n', 'X-Long: 0123456789\nabcdefgh\r\n', 'X-Long: 0123456789abcdef\x80\r\n']] as const;
  const versions = [['HTTP/1.1', 'HTTP/1.0'], ['HTTP/1.2', 'HTTP/2.0', 'http/1.1', 'HTTP/1.1 ']] as const;
  const statuses = [['HTTP/1.1 200 OK\r\n\r\n', 'HTTP/1.1 204\r\n\r\n', 'HTTP/1.0 500 Oops\r\n', 'HTTP/1.1 404 \r\n', 'HTTP/1.1 999 High\r\n', 'HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n'], ['HTTP/1.1 099 Low\r\n', 'HTTP/1.1 200', 'HTTP/1.1 200 OK', 'HTTP/1.1 2000\r\n', 'HTTP/1.1 200\n', 'HTTP/1.1 200\r', 'garbage\r\n', '\r\nHTTP/1.1 200 OK\r\n', 'HTTP/2.0 200 OK\r\n']] as const;
  const addresses = [v4mapped(127, 0, 0, 1), v4mapped(10, 1, 2, 3), v6([0, 0, 0, 0, 0, 0, 0, 1]), v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]), v6([0, 0, 1, 0, 0, 0, 0, 0]), v6([0xfe80, 0, 0, 0, 0x1ff, 0xfe23, 0x4567, 0x890a])];
  let encoded = 0;
  let declined = 0;
  for (let i = 0; i < 3000; i++) {
    let request = `${part(...methods)} ${part(...targets)} ${part(...versions)}\r\n`;
    const lines = [part(...hosts), part(...agents), part(...others), rnd() < 0.3 ? part(...hosts) : ''];
    for (let j = lines.length - 1; j > 0; j--) {
      const k = Math.floor(rnd() * (j + 1));
      [lines[j], lines[k]] = [lines[k], lines[j]];
    }
    request += `${lines.join('')}\r\n`;
    if (rnd() < 0.05) request = request.replace(/\r\n/g, '\n');
    let requestBytes = head(request);
    if (rnd() < 0.1) requestBytes = requestBytes.subarray(0, Math.floor(rnd() * requestBytes.length));
    const hasResponse = rnd() < 0.95;
    const spec: RecordSpec = {
      role: rnd() < 0.6 ? 1 : rnd() < 0.97 ? 2 : 3,
      source: rnd() < 0.3 ? 2 : 1,
      flags: rnd() < 0.2 ? 1 << 5 : 0,
      traceFlags: rnd() < 0.5 ? 1 : 0,
      parentSpanId: rnd() < 0.5 ? '0000000000000000' : '00f067aa0ba902b7',
      localAddr: pick(addresses),
      remoteAddr: pick(addresses),
      localPort: Math.floor(rnd() * 65536),
      remotePort: Math.floor(rnd() * 65536),
      requestStartNs: 1_000_000n + BigInt(Math.floor(rnd() * 1e9)),
      responseStartNs: hasResponse ? 2_000_000_000n : 0n,
      responseEndNs: hasResponse && rnd() < 0.9 ? 2_000_000_000n + BigInt(Math.floor(rnd() * 1e9)) : 0n,
      requestBytes: BigInt(Math.floor(rnd() * 3) * Math.floor(rnd() * 1e6)),
      responseBytes: BigInt(Math.floor(rnd() * 3) * Math.floor(rnd() * 1e6)),
      request: requestBytes,
      response: hasResponse ? head(part(...statuses)) : Buffer.alloc(0),
    };
    if (compare(spec, `fuzz case ${i}: ${JSON.stringify(request)}`)) encoded++;
    else declined++;
  }
  // Both sides must be well exercised for the equality to mean anything.
  assert.ok(encoded > 300, `only ${encoded} of 3000 fuzz cases were encoded`);
  assert.ok(declined > 300, `only ${declined} of 3000 fuzz cases were declined`);
});

/** An HTTP/2 record as the stitcher writes it (HTTP2_PAYLOAD): field lines, and trailers after an empty line. */
function h2(request: string[], response: string[], trailers?: string[], spec: RecordSpec = {}): RecordSpec {
  const lines = (fields: string[]): string => fields.map((f) => `${f}\r\n`).join('');
  return {
    protocol: 2,
    streamId: 1,
    request: head(lines(request)),
    response: head(lines(response) + (trailers ? `\r\n${lines(trailers)}` : '')),
    ...spec,
  };
}

const GRPC_REQUEST = [':method: POST', ':scheme: http', ':path: /demo.Echo/Unary', ':authority: 127.0.0.1:50051', 'content-type: application/grpc', 'te: trailers', 'user-agent: grpc-node-js/1.14.3'];
const GRPC_RESPONSE = [':status: 200', 'content-type: application/grpc+proto'];
const GRPC_OK = ['grpc-status: 0', 'grpc-message: OK'];

test('gRPC calls are encoded, byte for byte as JavaScript encodes them', () => {
  const cases: Array<[string, RecordSpec]> = [
    ['grpc-js unary', h2(GRPC_REQUEST, GRPC_RESPONSE, GRPC_OK)],
    ['client, by its authority', h2(GRPC_REQUEST, GRPC_RESPONSE, GRPC_OK, { role: 2, remotePort: 50051 })],
    ['client, authority without a port: the peer port', h2([':path: /a.B/C', ':authority: backend', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK, { role: 2, remotePort: 7000 })],
    ['no authority: Host', h2([':path: /a.B/C', 'host: h:81', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['no authority nor Host: the socket', h2([':path: /a.B/C', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['empty authority: the socket, Host not read', h2([':authority: ', 'host: h:81', ':path: /a.B/C', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['authority with two colons: no port', h2([':authority: a:b:c', ':path: /a.B/C', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK, { role: 2 })],
    ['authority with a bad port: the socket port', h2([':authority: h:0', ':path: /a.B/C', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['authority of a port only: the socket', h2([':authority: :8080', ':path: /a.B/C', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['upper-case names and content-type', h2([':PATH: /a.B/C', 'Content-Type: APPLICATION/GRPC+JSON'], GRPC_RESPONSE, GRPC_OK)],
    ['first :path counts', h2([':path: /a.B/C', ':path: /d.E/F', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['trailers-only response', h2(GRPC_REQUEST, [':status: 200', 'content-type: application/grpc', 'grpc-status: 5', 'grpc-message: no such thing'], undefined, { role: 2 })],
    ['server NOT_FOUND is not its error', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: 5', 'grpc-message: missing'])],
    ['server INTERNAL, with its message', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: 13', 'grpc-message: it broke: badly'])],
    ['server UNAVAILABLE, empty message', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: 14', 'grpc-message: '])],
    ['client error, no message', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: 3'], { role: 2 })],
    ['client, code outside the registry', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: 99'], { role: 2 })],
    ['trailer status over the headers\' one', h2(GRPC_REQUEST, [...GRPC_RESPONSE, 'grpc-status: 2'], GRPC_OK)],
    ['response incomplete', h2(GRPC_REQUEST, GRPC_RESPONSE, GRPC_OK, { flags: 1 << 5 })],
    ['TLS, child span, unsampled, IPv6', h2(GRPC_REQUEST, GRPC_RESPONSE, GRPC_OK, { source: 2, traceFlags: 0, parentSpanId: '00f067aa0ba902b7', family: 10, localAddr: v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]), remoteAddr: v6([0, 0, 0, 0, 0, 0, 0, 1]) })],
    ['response end unknown', h2(GRPC_REQUEST, GRPC_RESPONSE, GRPC_OK, { responseEndNs: 0n })],
    ['long method name (lengths over 127)', h2([`:path: /${'pkg.'.repeat(20)}Service/${'M'.repeat(100)}`, 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['a field value with ": " in it', h2([':path: /a.B/C', 'x-note: a: b', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['a path of 20,000 bytes (three-byte lengths)', h2([`:path: /${'s'.repeat(10_000)}/${'m'.repeat(10_000)}`, ':authority: h', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK, { role: 2 })],
    ['an error message of 20,000 bytes', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: 13', `grpc-message: ${'e'.repeat(20_000)}`])],
    ['authority and Host: the authority', h2([':path: /a.B/C', 'host: h:1', ':authority: a:2', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK, { role: 2 })],
    ['grpc-status twice: the first', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: 0', 'grpc-status: 13'])],
    ['upper-case Grpc-Status', h2(GRPC_REQUEST, GRPC_RESPONSE, ['Grpc-Status: 14', 'GRPC-MESSAGE: down'])],
    // Two calls whose key fields differ only in where a space falls: each keeps its own metric attributes.
    ['client, an authority with a space', h2([':path: /a/b', ':authority: x y', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK, { role: 2, remotePort: 9 })],
    ['client, a service with a space', h2([':path: /y a/b', ':authority: x', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK, { role: 2, remotePort: 9 })],
  ];
  for (const [label, spec] of cases) assert.ok(compare(spec, label), `${label}: expected the addon to encode it`);
});

test('gRPC calls the addon leaves to JavaScript', () => {
  const cases: Array<[string, RecordSpec]> = [
    ['plain HTTP/2', h2([':method: GET', ':path: /', ':authority: a'], [':status: 200'])],
    ['content-type only in the response', h2([':method: POST', ':path: /a.B/C'], [':status: 200', 'content-type: application/grpc'], GRPC_OK)],
    ['inferred by shape (content-type unknown)', h2([':method: POST', ':path: /a.B/C', '?content-type'], GRPC_RESPONSE, GRPC_OK)],
    ['a field unknown', h2([...GRPC_REQUEST, '?'], GRPC_RESPONSE, GRPC_OK)],
    ['headers flagged incomplete', h2(GRPC_REQUEST, GRPC_RESPONSE, GRPC_OK, { flags: 1 << 6 })],
    ['stream reset', h2(GRPC_REQUEST, GRPC_RESPONSE, GRPC_OK, { flags: 1 << 7, endErrorCode: 8 })],
    ['no response', h2(GRPC_REQUEST, [], undefined, { responseStartNs: 0n, responseEndNs: 0n })],
    ['no grpc-status', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-message: where']) ],
    ['malformed grpc-status', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: x'])],
    ['empty trailers', h2(GRPC_REQUEST, GRPC_RESPONSE, [])],
    ['percent-encoded message', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: 13', 'grpc-message: 100%25 broken'])],
    ['path that names no method', h2([':path: /a.B', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['path with a query', h2([':path: /a.B/C?x', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['userinfo in the authority', h2([':authority: u@h:1', ':path: /a.B/C', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['bracketed authority', h2([':authority: [::1]:50051', ':path: /a.B/C', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['byte above 0x7f', h2([':path: /a.B/C\xe9', 'content-type: application/grpc'], GRPC_RESPONSE, GRPC_OK)],
    ['bare LF', { protocol: 2, request: head(':path: /a.B/C\ncontent-type: application/grpc\n'), response: head(':status: 200\r\n\r\ngrpc-status: 0\r\n') }],
    ['cut last line', { protocol: 2, request: head(':path: /a.B/C\r\ncontent-type: application/grpc'), response: head(':status: 200\r\n\r\ngrpc-status: 0\r\n') }],
    ['line without a separator', h2([':path: /a.B/C', 'content-type: application/grpc', 'broken'], GRPC_RESPONSE, GRPC_OK)],
    ['unknown role', h2(GRPC_REQUEST, GRPC_RESPONSE, GRPC_OK, { role: 3 })],
    ['a second empty line in the response', { protocol: 2, request: head(':path: /a.B/C\r\ncontent-type: application/grpc\r\n'), response: head(':status: 200\r\n\r\ngrpc-status: 0\r\n\r\nx: y\r\n') }],
    ['grpc-status past 65535', h2(GRPC_REQUEST, GRPC_RESPONSE, ['grpc-status: 65536'], { role: 2 })],
  ];
  for (const [label, spec] of cases) assert.equal(compare(spec, label), false, `${label}: expected JavaScript to build it`);
});

test('fuzz: wherever the addon encodes a gRPC call, JavaScript gives the same bytes', () => {
  const rnd = mulberry32(20261204);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)];
  const part = <T>(good: readonly T[], bad: readonly T[]): T => (rnd() < 0.85 ? pick(good) : pick(bad));
  const paths = [[':path: /demo.Echo/Unary', ':path: /a/b', ':path: /grpc.health.v1.Health/Check', `:path: /${'s'.repeat(200)}/m`, ':PATH: /x.Y/Z', ':path: /a.B/C#d'], [':path: /a', ':path: //b', ':path: /a/', ':path: /a/b/c', ':path: a/b', ':path: /a/b?c', '?:path', ':path: /\xe9/b', '']] as const;
  const authorities = [['', ':authority: 127.0.0.1:50051', ':authority: a:1\r\nhost: b:2', 'host: b:2\r\n:authority: a', ':authority: x y', ':authority: svc', ':authority: svc:0', ':authority: svc:65536', ':authority: svc:08080', ':authority: a:b:c', ':authority: :1', ':authority: ', 'host: h:9', `:authority: ${'h'.repeat(300)}:1`], [':authority: u@h', ':authority: [::1]:1', ':authority: h:\xe9', '?:authority']] as const;
  const types = [['content-type: application/grpc', 'content-type: application/grpc+proto', 'content-type: Application/GRPC-web', 'content-type: application/grpc; charset=x'], ['', 'content-type: application/json', 'content-type: application/grp', '?content-type', '?']] as const;
  const others = [['', ':method: POST', ':scheme: https', 'te: trailers', 'user-agent: grpc-python/1.51', 'grpc-timeout: 1S', 'x-a: 1: 2', 'x-empty: '], ['broken line', 'x-hi: \x80']] as const;
  const statuses = [['Grpc-Status: 13', 'grpc-status: 5\r\ngrpc-status: 0', 'GRPC-STATUS: 2\r\ngrpc-message: x', 'grpc-status: 0', 'grpc-status: 1', 'grpc-status: 2', 'grpc-status: 4', 'grpc-status: 5', 'grpc-status: 12', 'grpc-status: 13', 'grpc-status: 14', 'grpc-status: 15', 'grpc-status: 16', 'grpc-status: 17', 'grpc-status: 00', 'grpc-status: 65535'], ['', 'grpc-status: -1', 'grpc-status: 1x', 'grpc-status: ', 'grpc-status: 65536', 'grpc-status: 12345678901', '?grpc-status']] as const;
  const messages = [['', 'grpc-message: ', 'grpc-message: not found', 'grpc-message: a: b', `grpc-message: ${'m'.repeat(200)}`], ['grpc-message: %41', 'grpc-message: 100%', 'grpc-message: caf\xe9']] as const;
  const addresses = [v4mapped(127, 0, 0, 1), v4mapped(10, 1, 2, 3), v6([0, 0, 0, 0, 0, 0, 0, 1]), v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])];
  const shuffled = (lines: string[]): string[] => {
    for (let j = lines.length - 1; j > 0; j--) {
      const k = Math.floor(rnd() * (j + 1));
      [lines[j], lines[k]] = [lines[k], lines[j]];
    }
    return lines.filter((l) => l !== '');
  };
  let encoded = 0;
  let declined = 0;
  for (let i = 0; i < 3000; i++) {
    const request = shuffled([part(...paths), part(...authorities), part(...types), part(...others), part(...others), rnd() < 0.2 ? part(...paths) : '']);
    const status = [part(...statuses), part(...messages)];
    const trailersOnly = rnd() < 0.2;
    const response = shuffled([':status: 200', rnd() < 0.7 ? 'content-type: application/grpc' : '', ...(trailersOnly ? status : [])]);
    const trailers = trailersOnly ? undefined : rnd() < 0.9 ? shuffled(status) : undefined;
    const spec = h2(request, response, trailers, {
      role: rnd() < 0.5 ? 1 : rnd() < 0.97 ? 2 : 3,
      source: rnd() < 0.2 ? 2 : 1,
      flags: rnd() < 0.8 ? 0 : pick([1 << 5, 1 << 6, 1 << 7, 1 << 2, 1 << 4, (1 << 5) | (1 << 2), (1 << 5) | (1 << 3) | (1 << 4), (1 << 0) | (1 << 5)]),
      endErrorCode: 8,
      traceFlags: rnd() < 0.5 ? 1 : 0,
      parentSpanId: rnd() < 0.5 ? '0000000000000000' : '00f067aa0ba902b7',
      localAddr: pick(addresses),
      remoteAddr: pick(addresses),
      localPort: Math.floor(rnd() * 65536),
      remotePort: Math.floor(rnd() * 65536),
      requestStartNs: 1_000_000n + BigInt(Math.floor(rnd() * 1e9)),
      responseStartNs: rnd() < 0.97 ? 2_000_000_000n : 0n,
      responseEndNs: rnd() < 0.9 ? 2_000_000_000n + BigInt(Math.floor(rnd() * 1e9)) : 0n,
    });
    if (rnd() < 0.05) spec.response = spec.response!.subarray(0, Math.floor(rnd() * spec.response!.length));
    if (compare(spec, `gRPC fuzz case ${i}: ${JSON.stringify([request, response, trailers])}`)) encoded++;
    else declined++;
  }
  assert.ok(encoded > 300, `only ${encoded} of 3000 fuzz cases were encoded`);
  assert.ok(declined > 300, `only ${declined} of 3000 fuzz cases were declined`);
});

const H2_REQUEST = [':method: GET', ':scheme: http', ':path: /items/1', ':authority: 127.0.0.1:8443', 'user-agent: h2load nghttp2/1.52.0', 'accept: */*'];
const H2_RESPONSE = [':status: 200', 'content-type: text/plain', 'content-length: 6'];

test('plain HTTP/2 streams are encoded, byte for byte as JavaScript encodes them', () => {
  const cases: Array<[string, RecordSpec]> = [
    ['h2load GET', h2(H2_REQUEST, H2_RESPONSE, undefined, { requestBytes: 0n, responseBytes: 6n })],
    ['client, by its authority', h2(H2_REQUEST, H2_RESPONSE, undefined, { role: 2, remotePort: 8443 })],
    ['client, no authority: the socket, default port left out', h2([':method: GET', ':scheme: http', ':path: /', 'content-type: text/plain'], [':status: 204'], undefined, { role: 2, remotePort: 80 })],
    ['client, no authority, IPv6 socket', h2([':method: GET', ':scheme: http', ':path: /a?b=1', 'content-type: text/plain'], [':status: 200'], undefined, { role: 2, family: 10, remoteAddr: v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]), remotePort: 8080 })],
    ['client, TLS, https default port', h2([':method: GET', ':scheme: https', ':path: /', 'accept: x'], H2_RESPONSE, undefined, { role: 2, source: 2, remotePort: 443 })],
    ['client, TLS, authority with the port', h2([':method: POST', ':scheme: https', ':path: /submit', ':authority: api.example:8443', 'content-type: application/json'], [':status: 201'], undefined, { role: 2, source: 2, requestBytes: 120n })],
    ['server, TLS', h2([':method: GET', ':scheme: https', ':path: /', ':authority: example.org'], H2_RESPONSE, undefined, { source: 2 })],
    ['Host instead of :authority', h2([':method: GET', ':scheme: http', ':path: /', 'host: h:81'], H2_RESPONSE)],
    ['empty :authority: the socket, Host not read', h2([':method: GET', ':scheme: http', ':path: /', ':authority: ', 'host: h:81'], H2_RESPONSE, undefined, { role: 2 })],
    ['authority with two colons: no port', h2([':method: GET', ':scheme: http', ':path: /', ':authority: a:b:c'], H2_RESPONSE, undefined, { role: 2 })],
    ['authority with a bad port', h2([':method: GET', ':scheme: http', ':path: /', ':authority: h:0'], H2_RESPONSE, undefined, { role: 2 })],
    ['authority of a port only: the socket', h2([':method: GET', ':scheme: http', ':path: /', ':authority: :8080'], H2_RESPONSE, undefined, { role: 2, remotePort: 9000 })],
    ['query', h2([':method: GET', ':scheme: http', ':path: /search?q=books&page=2'], H2_RESPONSE)],
    ['empty query', h2([':method: GET', ':scheme: http', ':path: /search?'], H2_RESPONSE, undefined, { role: 2 })],
    ['every method', h2([':method: PATCH', ':scheme: http', ':path: /p'], H2_RESPONSE)],
    ['server 500', h2(H2_REQUEST, [':status: 500', 'content-type: text/html'])],
    ['server 404 is not its error', h2(H2_REQUEST, [':status: 404', 'content-type: text/html'])],
    ['client 404 is', h2(H2_REQUEST, [':status: 404', 'content-type: text/html'], undefined, { role: 2 })],
    ['trailers', h2(H2_REQUEST, H2_RESPONSE, ['x-checksum: abc'])],
    ['response incomplete', h2(H2_REQUEST, H2_RESPONSE, undefined, { flags: 1 << 5 })],
    ['body sizes', h2([':method: PUT', ':scheme: http', ':path: /blob', 'content-type: application/octet-stream'], [':status: 200'], undefined, { requestBytes: 1_000_000n, responseBytes: 2n })],
    ['child span, unsampled', h2(H2_REQUEST, H2_RESPONSE, undefined, { traceFlags: 0, parentSpanId: '00f067aa0ba902b7' })],
    ['response end unknown', h2(H2_REQUEST, H2_RESPONSE, undefined, { responseEndNs: 0n })],
    ['upper-case names, first field counts', h2([':METHOD: GET', ':Scheme: http', ':PATH: /a', ':path: /b', 'User-Agent: x', 'Content-Type: text/plain'], [':STATUS: 302', ':status: 200'])],
    ['a path of 20,000 bytes (three-byte lengths)', h2([':method: GET', ':scheme: http', `:path: /${'p'.repeat(20_000)}`, ':authority: h', 'accept: */*', 'content-type: text/plain'], H2_RESPONSE, undefined, { role: 2 })],
    ['response content-type only', h2([':method: GET', ':scheme: http', ':path: /'], [':status: 200', 'content-type: application/json'])],
  ];
  for (const [label, spec] of cases) assert.ok(compare(spec, label), `${label}: expected the addon to encode it`);
});

test('plain HTTP/2 streams the addon leaves to JavaScript', () => {
  const cases: Array<[string, RecordSpec]> = [
    ['no content-type on either side', h2([':method: GET', ':scheme: http', ':path: /'], [':status: 200'])],
    ['gRPC content-type in the response', h2([':method: POST', ':scheme: http', ':path: /a.B/C', 'content-type: text/plain'], [':status: 200', 'content-type: application/grpc'])],
    ['a method outside the list', h2([':method: QUERY', ':scheme: http', ':path: /', 'content-type: text/plain'], H2_RESPONSE)],
    ['lower-case method', h2([':method: get', ':scheme: http', ':path: /'], H2_RESPONSE)],
    ['CONNECT', h2([':method: CONNECT', ':authority: h:443'], H2_RESPONSE)],
    ['no :scheme', h2([':method: GET', ':path: /'], H2_RESPONSE)],
    ['https scheme over plain TCP', h2([':method: GET', ':scheme: https', ':path: /'], H2_RESPONSE)],
    ['http scheme over TLS', h2([':method: GET', ':scheme: http', ':path: /'], H2_RESPONSE, undefined, { source: 2 })],
    ['asterisk path', h2([':method: OPTIONS', ':scheme: http', ':path: *'], H2_RESPONSE)],
    ['no :path', h2([':method: GET', ':scheme: http'], H2_RESPONSE)],
    ['a query that could hold a secret', h2([':method: GET', ':scheme: http', ':path: /?token=abc'], H2_RESPONSE)],
    ['a percent-encoded query', h2([':method: GET', ':scheme: http', ':path: /?q=%41'], H2_RESPONSE)],
    ['no :status', h2(H2_REQUEST, ['content-type: text/plain'])],
    ['a :status of two digits', h2(H2_REQUEST, [':status: 99', 'content-type: text/plain'])],
    ['a field unknown', h2([...H2_REQUEST, '?'], H2_RESPONSE)],
    ['an unknown trailer', h2(H2_REQUEST, H2_RESPONSE, ['?x'])],
    ['headers flagged incomplete', h2(H2_REQUEST, H2_RESPONSE, undefined, { flags: 1 << 6 })],
    ['stream reset', h2(H2_REQUEST, H2_RESPONSE, undefined, { flags: 1 << 7, endErrorCode: 8 })],
    ['no response', h2(H2_REQUEST, [], undefined, { responseStartNs: 0n, responseEndNs: 0n })],
    ['userinfo in the authority', h2([':method: GET', ':scheme: http', ':path: /', ':authority: u@h'], H2_RESPONSE)],
    ['bracketed authority', h2([':method: GET', ':scheme: http', ':path: /', ':authority: [::1]:8443'], H2_RESPONSE)],
    ['byte above 0x7f', h2([':method: GET', ':scheme: http', ':path: /caf\xe9'], H2_RESPONSE)],
    ['unknown role', h2(H2_REQUEST, H2_RESPONSE, undefined, { role: 3 })],
    ['a body size past 2^53', h2(H2_REQUEST, H2_RESPONSE, undefined, { responseBytes: 2n ** 53n })],
  ];
  for (const [label, spec] of cases) assert.equal(compare(spec, label), false, `${label}: expected JavaScript to build it`);
});

test('fuzz: wherever the addon encodes a plain HTTP/2 stream, JavaScript gives the same bytes', () => {
  const rnd = mulberry32(20261205);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)];
  // Seven request parts and two response parts may each break it: each is broken less often than in the gRPC fuzz.
  const part = <T>(good: readonly T[], bad: readonly T[]): T => (rnd() < 0.9 ? pick(good) : pick(bad));
  const methods = [[':method: GET', ':method: POST', ':method: HEAD', ':method: DELETE', ':method: OPTIONS', ':method: PUT', ':method: PATCH'], ['', ':method: get', ':method: QUERY', ':method: TRACE', ':method: CONNECT', ':method: BREW', '?:method']] as const;
  const schemes = [[':scheme: http', ':scheme: https', ':SCHEME: http'], ['', ':scheme: ', ':scheme: HTTP', ':scheme: ftp', '?:scheme']] as const;
  const paths = [[':path: /', ':path: /a/b', ':path: /a?b=c', ':path: /a?', ':path: /?x=1&y=2', `:path: /${'p'.repeat(300)}`, ':path: /a#frag', ':path: //x', ':path: /a b'], ['', ':path: ', ':path: *', ':path: a', ':path: /?token=1', ':path: /?KEY=2', ':path: /%41', ':path: /\xe9', '?:path']] as const;
  const authorities = [['', ':authority: 127.0.0.1:8080', ':authority: a:1\r\nhost: b:2', 'host: b:2\r\n:authority: a', ':authority: x y', ':authority: svc', ':authority: svc:0', ':authority: svc:65536', ':authority: svc:080', ':authority: a:b:c', ':authority: :1', ':authority: ', 'host: h:9', `:authority: ${'h'.repeat(300)}:1`], [':authority: u@h', ':authority: [::1]:1', ':authority: h:\xe9', '?:authority']] as const;
  const types = [['', 'content-type: text/plain', 'content-type: application/json', 'Content-Type: TEXT/HTML'], ['content-type: application/grpc', 'content-type: APPLICATION/GRPC+proto', '?content-type']] as const;
  const others = [['', 'user-agent: curl/8.5', 'User-Agent: a: b', 'accept: */*', 'x-empty: ', 'te: trailers'], ['broken line', 'x-hi: \x80', '?']] as const;
  const statuses = [[':status: 200', ':status: 204', ':status: 301', ':status: 404', ':status: 500', ':status: 503', ':status: 100', ':status: 999'], ['', ':status: 99', ':status: 1000', ':status: 2x0', ':status: ', '?:status', 'grpc-status: 0']] as const;
  const addresses = [v4mapped(127, 0, 0, 1), v4mapped(10, 1, 2, 3), v6([0, 0, 0, 0, 0, 0, 0, 1]), v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])];
  const shuffled = (lines: string[]): string[] => {
    for (let j = lines.length - 1; j > 0; j--) {
      const k = Math.floor(rnd() * (j + 1));
      [lines[j], lines[k]] = [lines[k], lines[j]];
    }
    return lines.filter((l) => l !== '');
  };
  let encoded = 0;
  let declined = 0;
  for (let i = 0; i < 3000; i++) {
    const tls = rnd() < 0.3;
    const request = shuffled([part(...methods), part(...schemes), part(...paths), part(...authorities), part(...types), part(...others), part(...others)]);
    const response = shuffled([part(...statuses), part(...types), rnd() < 0.3 ? part(...others) : '']);
    const trailers = rnd() < 0.1 ? shuffled([part(...others)]) : undefined;
    const spec = h2(request, response, trailers, {
      role: rnd() < 0.5 ? 1 : rnd() < 0.97 ? 2 : 3,
      source: tls ? 2 : 1,
      flags: rnd() < 0.8 ? 0 : pick([1 << 5, 1 << 6, 1 << 7, 1 << 2, 1 << 4, (1 << 5) | (1 << 2), (1 << 0) | (1 << 5)]),
      endErrorCode: 8,
      traceFlags: rnd() < 0.5 ? 1 : 0,
      parentSpanId: rnd() < 0.5 ? '0000000000000000' : '00f067aa0ba902b7',
      localAddr: pick(addresses),
      remoteAddr: pick(addresses),
      localPort: Math.floor(rnd() * 65536),
      remotePort: pick([80, 443, 8080, Math.floor(rnd() * 65536)]),
      requestBytes: rnd() < 0.5 ? 0n : BigInt(Math.floor(rnd() * 1e6)),
      responseBytes: rnd() < 0.2 ? 0n : BigInt(Math.floor(rnd() * 1e6)),
      requestStartNs: 1_000_000n + BigInt(Math.floor(rnd() * 1e9)),
      responseStartNs: rnd() < 0.97 ? 2_000_000_000n : 0n,
      responseEndNs: rnd() < 0.9 ? 2_000_000_000n + BigInt(Math.floor(rnd() * 1e9)) : 0n,
    });
    if (rnd() < 0.05) spec.response = spec.response!.subarray(0, Math.floor(rnd() * spec.response!.length));
    if (compare(spec, `HTTP/2 fuzz case ${i}: ${JSON.stringify([request, response, trailers])}`)) encoded++;
    else declined++;
  }
  assert.ok(encoded > 300, `only ${encoded} of 3000 fuzz cases were encoded`);
  assert.ok(declined > 300, `only ${declined} of 3000 fuzz cases were declined`);
});
