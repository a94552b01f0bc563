/**
 * HTTP/2 exchanges as the native stitcher records them (HTTP2_PAYLOAD in
 * native/src/core/ExchangeRecord.h): header fields as text lines, laid out
 * in one payload among garbage as decodeExchanges leaves them in a batch.
 */
import { ExchangeProtocol, LinkSource, type Exchange } from '../../../src/native/exchangeDecoder';
import { compileRoutes } from '../../../src/spans/routes';
import type { DescribeContext } from '../../../src/protocols';

/** One "\r\n"-ended line per entry: "name: value" pairs, or a raw line as given ("?", "?name"). */
export function fields(...entries: (readonly [string, string] | string)[]): Buffer {
  return Buffer.from(entries.map((e) => (typeof e === 'string' ? `${e}\r\n` : `${e[0]}: ${e[1]}\r\n`)).join(''), 'latin1');
}

/** Response headers, then an empty line and the trailers. */
export function withTrailers(headers: Buffer, trailers: Buffer): Buffer {
  return Buffer.concat([headers, Buffer.from('\r\n'), trailers]);
}

/**
 * Field lines a describer reading outside its offsets would pick up: a
 * different method, path, status and grpc-status.
 */
const BEFORE = fields([':method', 'DELETE'], [':path', '/garbage-before'], [':status', '599'], ['grpc-status', '13']);
const BETWEEN = fields([':status', '598'], ['content-type', 'application/grpc'], ['grpc-status', '14']);
const AFTER = fields(['grpc-status', '15'], [':status', '597']);

type HeadFields = 'payload' | 'requestHeadStart' | 'requestHeadEnd' | 'responseHeadStart' | 'responseHeadEnd';
export type H2Overrides = Partial<Omit<Exchange, HeadFields>> & { request?: Buffer; response?: Buffer };

export function h2Exchange(over: H2Overrides = {}): Exchange {
  const {
    request = fields([':method', 'GET'], [':scheme', 'http'], [':authority', 'shop.example.com:8443'], [':path', '/']),
    response = fields([':status', '200']),
    ...rest
  } = over;
  const payload = Buffer.concat([BEFORE, request, BETWEEN, response, AFTER]);
  const requestHeadStart = BEFORE.length;
  const responseHeadStart = requestHeadStart + request.length + BETWEEN.length;
  return {
    role: 'server',
    protocol: ExchangeProtocol.Http2,
    streamId: 3,
    endErrorCode: 0,
    flags: 0,
    linkSource: LinkSource.None,
    traceFlags: 1,
    pid: 4242,
    tid: 4243,
    fd: 17,
    generation: 1,
    family: 10,
    localAddress: '10.0.0.5',
    localPort: 8080,
    remoteAddress: '10.0.0.9',
    remotePort: 51234,
    requestStartNs: 5_000_000_001,
    requestEndNs: 5_000_100_000,
    responseStartNs: 5_002_000_000,
    responseEndNs: 5_250_000_000,
    requestBytes: 0,
    responseBytes: 0,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    parentSpanId: '',
    comm: 'node',
    ...rest,
    payload,
    requestHeadStart,
    requestHeadEnd: requestHeadStart + request.length,
    responseHeadStart,
    responseHeadEnd: responseHeadStart + response.length,
  };
}

export function describeContext(routes: string[] = []): DescribeContext {
  return { routes: compileRoutes(routes) };
}
