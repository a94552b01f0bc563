/**
 * The protocols sonde understands, by the id the native record gives its
 * exchange. Adding a protocol is its own folder and one line here.
 */
import type { ProtocolDescriber } from './Describer';
import { ExchangeProtocol } from '../native/exchangeDecoder';
import { http1Describer } from './http1/describe';
import { http2Describer } from './http2/describe';

export type { DescribeContext, DescribeFailure, Description, ProtocolDescriber } from './Describer';
export { lastSeenNs } from './Describer';

/** Protocol id → describer; span building counts an id missing here as `unknown-protocol`. */
export type DescriberRegistry = ReadonlyMap<number, ProtocolDescriber>;

// PROTOCOL_LIST: keyed by ExchangeProtocol (src/native/exchangeDecoder.ts),
// which lines up with Protocol in native/src/core/ExchangeRecord.h.
export const describers: DescriberRegistry = new Map<number, ProtocolDescriber>([
  [ExchangeProtocol.Http1, http1Describer],
  [ExchangeProtocol.Http2, http2Describer],
]);
