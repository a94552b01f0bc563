/**
 * Exchanges as decodeExchanges hands them over, for unit tests of what reads
 * them: the heads sit inside one payload Buffer, between bytes that a reader
 * looking outside its offsets would trip over.
 */
import { ExchangeProtocol, LinkSource, type Exchange } from '../../src/native/exchangeDecoder';

export type HeadFields = 'payload' | 'requestHeadStart' | 'requestHeadEnd' | 'responseHeadStart' | 'responseHeadEnd';
export type ExchangeFields = Omit<Exchange, HeadFields>;

/** A server exchange on 10.0.0.5:8080 from 10.0.0.9, answered, a root. */
export const EXCHANGE_DEFAULTS: ExchangeFields = {
  role: 'server',
  protocol: ExchangeProtocol.Http1,
  tls: false,
  streamId: 0,
  endErrorCode: 0,
  flags: 0,
  linkSource: LinkSource.None,
  traceFlags: 1,
  pid: 4242,
  tid: 4243,
  fd: 17,
  generation: 1,
  family: 2,
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
};

/** The five parts of the payload, in order. */
export interface LaidOutHeads {
  before: Buffer;
  request: Buffer;
  between: Buffer;
  response: Buffer;
  after: Buffer;
}

export function exchangeOf(fields: ExchangeFields, heads: LaidOutHeads): Exchange {
  const requestHeadStart = heads.before.length;
  const responseHeadStart = requestHeadStart + heads.request.length + heads.between.length;
  return {
    ...fields,
    payload: Buffer.concat([heads.before, heads.request, heads.between, heads.response, heads.after]),
    requestHeadStart,
    requestHeadEnd: requestHeadStart + heads.request.length,
    responseHeadStart,
    responseHeadEnd: responseHeadStart + heads.response.length,
  };
}
