/**
 * HTTP/2 exchanges as the native stitcher records them (HTTP2_PAYLOAD in
 * native/src/core/ExchangeRecord.h): header fields as text lines, laid out
 * in one payload among garbage as decodeExchanges leaves them in a batch.
 */
import { ExchangeProtocol, type Exchange } from '../../../src/native/exchangeDecoder';
import { compileRoutes } from '../../../src/spans/routes';
import type { DescribeContext } from '../../../src/protocols';
import { EXCHANGE_DEFAULTS, exchangeOf, type HeadFields } from '../../support/exchange';

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

export type H2Overrides = Partial<Omit<Exchange, HeadFields>> & { request?: Buffer; response?: Buffer };

export function h2Exchange(over: H2Overrides = {}): Exchange {
  const {
    request = fields([':method', 'GET'], [':scheme', 'http'], [':authority', 'shop.example.com:8443'], [':path', '/']),
    response = fields([':status', '200']),
    ...rest
  } = over;
  return exchangeOf(
    { ...EXCHANGE_DEFAULTS, protocol: ExchangeProtocol.Http2, streamId: 3, family: 10, ...rest },
    { before: BEFORE, request, between: BETWEEN, response, after: AFTER },
  );
}

export function describeContext(routes: string[] = []): DescribeContext {
  return { routes: compileRoutes(routes) };
}
