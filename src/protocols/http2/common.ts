/**
 * What HTTP/2 and gRPC spans share: the endpoint attributes, what the
 * capture could not see, and the status of a stream that got no response.
 */
import { SpanStatusCode, type Attributes, type SpanStatus } from '@opentelemetry/api';
import { ExchangeFlags, type Exchange } from '../../native/exchangeDecoder';
import { http2ErrorName } from './errorCodes';
import { fieldValue, splitAuthority, type FieldBlock } from './parse';

export interface ServerEndpoint {
  address: string;
  port: number;
  /**
   * The request's authority as sent, without userinfo; undefined when it is
   * unknown or was not sent, and the address and port are the socket's.
   */
  authority: string | undefined;
}

/**
 * The server the request was for: its :authority (or a Host field, which
 * an intermediary may carry instead, RFC 9113 §8.3.1), else the server end
 * of the socket (the local end on a server, the remote end on a client).
 */
export function serverEndpoint(x: Exchange, request: FieldBlock): ServerEndpoint {
  const isServer = x.role === 'server';
  const socketAddress = isServer ? x.localAddress : x.remoteAddress;
  const socketPort = isServer ? x.localPort : x.remotePort;
  let authority = fieldValue(request, ':authority');
  if (authority === undefined) authority = fieldValue(request, 'host');
  if (typeof authority !== 'string' || authority === '') return { address: socketAddress, port: socketPort, authority: undefined };
  const at = authority.lastIndexOf('@');
  const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
  const { name, port } = splitAuthority(hostPort);
  if (name === '') return { address: socketAddress, port: socketPort, authority: undefined };
  return { address: name, port: port ?? socketPort, authority: hostPort };
}

/** server.*, client.* and network.peer.*, as the HTTP/1 describer sets them. */
export function setEndpointAttributes(a: Attributes, x: Exchange, server: ServerEndpoint): void {
  a['server.address'] = server.address;
  a['server.port'] = server.port;
  if (x.role === 'server') a['client.address'] = x.remoteAddress;
  a['network.peer.address'] = x.remoteAddress;
  a['network.peer.port'] = x.remotePort;
}

/**
 * What the capture says about itself: fields it could not decode, a stream
 * ended by RST_STREAM or GOAWAY, a response closed out before its end.
 */
export function setCaptureAttributes(a: Attributes, x: Exchange, blocks: readonly (FieldBlock | undefined)[]): void {
  let incomplete = (x.flags & ExchangeFlags.HeadersIncomplete) !== 0;
  // A "?" or broken line the flag does not account for is said all the same.
  for (const b of blocks) if (b !== undefined && b.fields.length > 0 && !b.complete) incomplete = true;
  if (incomplete) a['sonde.http2.headers_incomplete'] = true;
  if (x.flags & ExchangeFlags.StreamReset) a['sonde.http2.error_code'] = http2ErrorName(x.endErrorCode);
  if (x.flags & ExchangeFlags.ResponseIncomplete) a['sonde.response.incomplete'] = true;
}

/**
 * The status of a stream whose response gave no status of its own: reset,
 * or never answered. Undefined when a response was seen and the caller must
 * judge its fields.
 */
export function statusWithoutResponse(x: Exchange, attributes: Attributes): SpanStatus | undefined {
  if (x.flags & ExchangeFlags.StreamReset) {
    const name = http2ErrorName(x.endErrorCode);
    attributes['error.type'] = name;
    return { code: SpanStatusCode.ERROR, message: `stream reset (${name})` };
  }
  if (x.responseStartNs !== 0) return undefined;
  if (x.flags & ExchangeFlags.NoResponse) {
    attributes['error.type'] = 'timeout';
    return { code: SpanStatusCode.ERROR, message: 'no response before the response timeout' };
  }
  attributes['error.type'] = 'connection_closed';
  return { code: SpanStatusCode.ERROR, message: 'connection closed before a response' };
}
