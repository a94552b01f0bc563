/**
 * What an HTTP/2 exchange (one stream) means as a span, with the stable HTTP
 * semantic conventions and the same shapes as the HTTP/1 describer. gRPC
 * travels on the same protocol id and is handed to its own describer.
 *
 * HPACK makes some fields unknowable: a dynamic-table entry inserted before
 * sonde saw the connection decodes to "?". Such a field is said to be
 * unknown (`sonde.*_unknown`), never guessed.
 */
import { SpanKind, SpanStatusCode, type Attributes, type SpanStatus } from '@opentelemetry/api';
import { ExchangeFlags, type Exchange } from '../../native/exchangeDecoder';
import { lastSeenNs, type DescribeContext, type DescribeFailure, type Description, type ProtocolDescriber } from '../Describer';
import { describeGrpc, isGrpc } from '../grpc/describe';
import { redactQuery } from '../http1/redact';
import { serverEndpoint, setCaptureAttributes, setEndpointAttributes, statusWithoutResponse, type ServerEndpoint } from './common';
import { fieldValue, parseRequestFields, parseResponseFields, UNKNOWN, type FieldBlock, type Http2Response } from './parse';

/** As the HTTP/1 describer's: the methods HTTP semconv names a span by. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);

/**
 * Why an HTTP/2 exchange gives no span:
 * - `http2-request-headers-missing`: the record holds no request field at
 *   all and does not say that a header block was lost (HeadersIncomplete):
 *   a record that breaks the HTTP2_PAYLOAD contract. A lost block still
 *   gives a span, with its fields unknown.
 */
export type Http2Failure = 'http2-request-headers-missing';

const HEADERS_MISSING: DescribeFailure<Http2Failure> = Object.freeze({ ok: false, reason: 'http2-request-headers-missing' });

export const http2Describer: ProtocolDescriber<Http2Failure> = {
  failures: ['http2-request-headers-missing'],
  describe: describeHttp2,
};

export function describeHttp2(x: Exchange, ctx: DescribeContext): Description | DescribeFailure<Http2Failure> {
  const request = parseRequestFields(x.payload, x.requestHeadStart, x.requestHeadEnd);
  if (request.fields.length === 0 && !(x.flags & ExchangeFlags.HeadersIncomplete)) return HEADERS_MISSING;
  const response = parseResponseFields(x.payload, x.responseHeadStart, x.responseHeadEnd);
  if (isGrpc(request, response)) return describeGrpc(x, request, response);

  const isServer = x.role === 'server';
  const attributes: Attributes = {};
  const rawMethod = fieldValue(request, ':method');
  let method: string;
  if (typeof rawMethod !== 'string') {
    method = '_OTHER';
    attributes['sonde.http.method_unknown'] = true;
  } else {
    method = KNOWN_METHODS.has(rawMethod) ? rawMethod : '_OTHER';
    if (method === '_OTHER') attributes['http.request.method_original'] = rawMethod;
  }
  attributes['http.request.method'] = method;

  const target = requestTarget(request, method, x.tls);
  if (target.pathUnknown) attributes['sonde.url.path_unknown'] = true;
  const server = serverEndpoint(x, request);
  if (isServer) setServerUrl(attributes, target);
  else setClientUrl(attributes, x, target, server);
  setEndpointAttributes(attributes, x, server);
  // network.protocol.name is left out as for HTTP/1: the HTTP conventions
  // ask for it only when it is not "http".
  attributes['network.protocol.version'] = '2';

  const userAgent = fieldValue(request, 'user-agent');
  if (typeof userAgent === 'string') attributes['user_agent.original'] = userAgent;
  // DATA payload bytes of the stream: the bodies, without frame or HPACK overhead.
  if (x.requestBytes > 0) attributes['http.request.body.size'] = x.requestBytes;
  if (x.responseBytes > 0) attributes['http.response.body.size'] = x.responseBytes;
  setCaptureAttributes(attributes, x, [request, response.headers, response.trailers]);
  const route = isServer && target.path !== undefined && target.path.charCodeAt(0) === 47 ? ctx.routes.match(target.path) : undefined;
  if (route) attributes['http.route'] = route;

  const status = spanStatus(x, response, isServer, attributes);
  // HTTP semconv: "{method} {target}", and "HTTP" for a method outside the known set.
  const nameMethod = method === '_OTHER' ? 'HTTP' : method;
  return {
    ok: true,
    name: route ? `${nameMethod} ${route}` : nameMethod,
    kind: isServer ? SpanKind.SERVER : SpanKind.CLIENT,
    attributes,
    status,
    endNs: lastSeenNs(x),
  };
}

interface RequestTarget {
  scheme: string | undefined;
  /** Without the query; undefined when unknown or not sent. */
  path: string | undefined;
  /** Without the leading '?'; undefined when the path has none. */
  query: string | undefined;
  /** The request should have had a :path and the capture cannot tell it. */
  pathUnknown: boolean;
}

function requestTarget(request: FieldBlock, method: string, tls: boolean): RequestTarget {
  const scheme = fieldValue(request, ':scheme');
  const rawPath = fieldValue(request, ':path');
  // A :scheme HPACK-indexed before sonde started is unknown; TLS plaintext
  // (OpenSSL uprobes) still tells it.
  const knownScheme = typeof scheme === 'string' && scheme !== '' ? scheme : tls ? 'https' : undefined;
  if (typeof rawPath !== 'string' || rawPath === '') {
    // A plain CONNECT has no :path (RFC 9113 §8.5); any other request
    // without one broke the protocol, and its path is not known either.
    const pathUnknown = rawPath === UNKNOWN || (rawPath === undefined && method !== 'CONNECT');
    return { scheme: knownScheme, path: undefined, query: undefined, pathUnknown };
  }
  const q = rawPath.indexOf('?');
  if (q < 0) return { scheme: knownScheme, path: rawPath, query: undefined, pathUnknown: false };
  return { scheme: knownScheme, path: rawPath.slice(0, q), query: rawPath.slice(q + 1), pathUnknown: false };
}

function setServerUrl(a: Attributes, target: RequestTarget): void {
  if (target.scheme !== undefined) a['url.scheme'] = target.scheme;
  if (target.path !== undefined) a['url.path'] = target.path;
  if (target.query !== undefined) a['url.query'] = redactQuery(target.query);
}

/**
 * url.full needs the scheme, which the socket cannot tell; the authority
 * falls back to the address the client connected to, as for HTTP/1.
 */
function setClientUrl(a: Attributes, x: Exchange, target: RequestTarget, server: ServerEndpoint): void {
  if (target.scheme === undefined) return;
  const authority = server.authority ?? socketAuthority(target.scheme, x.remoteAddress, x.remotePort);
  let full = `${target.scheme}://${authority}`;
  // Asterisk form (OPTIONS *) and the like: the target is not part of the URL.
  if (target.path !== undefined && target.path.charCodeAt(0) === 47) {
    full += target.path;
    if (target.query !== undefined) full += `?${redactQuery(target.query)}`;
  }
  a['url.full'] = full;
}

function socketAuthority(scheme: string, address: string, port: number): string {
  const host = address.includes(':') ? `[${address}]` : address;
  const defaultPort = scheme === 'https' ? 443 : scheme === 'http' ? 80 : -1;
  return port === defaultPort ? host : `${host}:${port}`;
}

function spanStatus(x: Exchange, response: Http2Response, isServer: boolean, attributes: Attributes): SpanStatus {
  const status = fieldValue(response.headers, ':status');
  const code = typeof status === 'string' ? statusCode(status) : undefined;
  if (code !== undefined) {
    attributes['http.response.status_code'] = code;
    if (code >= 500 || (!isServer && code >= 400)) {
      attributes['error.type'] = String(code);
      return { code: SpanStatusCode.ERROR };
    }
    return { code: SpanStatusCode.UNSET };
  }
  const ended = statusWithoutResponse(x, attributes);
  if (ended) return ended;
  if (status === UNKNOWN) {
    attributes['sonde.http.status_code_unknown'] = true;
    return { code: SpanStatusCode.UNSET };
  }
  attributes['error.type'] = 'malformed_response';
  return { code: SpanStatusCode.ERROR, message: 'response without a valid :status' };
}

/** Three digits, 100..999 (RFC 9110 §15), as the HTTP/1 parser accepts them. */
function statusCode(text: string): number | undefined {
  if (text.length !== 3) return undefined;
  let n = 0;
  for (let i = 0; i < 3; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
    n = n * 10 + (c - 0x30);
  }
  return n >= 100 ? n : undefined;
}
