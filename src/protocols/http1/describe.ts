/**
 * What an HTTP/1.x exchange means as a span, with the stable HTTP semantic
 * conventions. This runs once per request the host serves or makes, so it
 * parses in place and sets only the attributes the conventions require or
 * recommend for HTTP spans.
 */
import { SpanKind, SpanStatusCode, type Attributes, type SpanStatus } from '@opentelemetry/api';
import { ExchangeFlags, type Exchange } from '../../native/exchangeDecoder';
import { lastSeenNs, type DescribeContext, type DescribeFailure, type Description, type ProtocolDescriber } from '../Describer';
import { headerValue, parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from './parse';
import { redactQuery } from './redact';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);
const NO_HEADERS = { headers: false } as const;
/** The request's fields a span reads (lower-case): the others are only scanned past. */
const DESCRIBED_HEADERS = { onlyHeaders: ['host', 'user-agent'] } as const;

/**
 * Ends a URL value the capture cut short. OpenTelemetry has no truncation
 * marker (SDK attribute limits cut values silently), so the cut is said
 * twice: `sonde.url.truncated` to filter on in a backend, and this char for
 * whoever reads the value, in a backend or on the console line, so that a
 * cut URL never passes for the one the client asked for. It can never be a
 * char the client sent: targets are decoded as latin1, so every char from
 * the wire is below U+0100.
 */
const CUT_MARKER = '\u2026';

/**
 * Why a request head gives no span:
 * - `request-not-http`: another protocol, HTTP/0.9 or HTTP/2;
 * - `request-truncated`: nothing captured, or a capture that ends too early in
 *   the request line to tell;
 * - `request-malformed`: HTTP/1, but a request line that breaks the grammar.
 */
export type Http1Failure = 'request-not-http' | 'request-truncated' | 'request-malformed';

const NOT_HTTP: DescribeFailure<Http1Failure> = Object.freeze({ ok: false, reason: 'request-not-http' });
const TRUNCATED: DescribeFailure<Http1Failure> = Object.freeze({ ok: false, reason: 'request-truncated' });
const MALFORMED: DescribeFailure<Http1Failure> = Object.freeze({ ok: false, reason: 'request-malformed' });

export const http1Describer: ProtocolDescriber<Http1Failure> = {
  failures: ['request-not-http', 'request-truncated', 'request-malformed'],
  describe: describeHttp1,
};

export function describeHttp1(x: Exchange, ctx: DescribeContext): Description | DescribeFailure<Http1Failure> {
  const req = parseRequestHead(x.payload, x.requestHeadStart, x.requestHeadEnd, DESCRIBED_HEADERS);
  if (!req.ok) return req.reason === 'truncated-start-line' || req.reason === 'empty' ? TRUNCATED : req.reason === 'not-http' ? NOT_HTTP : MALFORMED;
  const request = req.value;
  const res = x.responseStartNs !== 0 ? parseResponseHead(x.payload, x.responseHeadStart, x.responseHeadEnd, NO_HEADERS) : undefined;
  const response = res && res.ok ? res.value : undefined;
  const isServer = x.role === 'server';

  const method = KNOWN_METHODS.has(request.method) ? request.method : '_OTHER';
  const attributes: Attributes = { 'http.request.method': method };
  if (method === '_OTHER') attributes['http.request.method_original'] = request.method;
  if (isServer) setServerAttributes(attributes, x, request);
  else setClientAttributes(attributes, x, request);
  if (request.targetTruncated) attributes['sonde.url.truncated'] = true;
  // Empty when the capture ended inside the request line.
  if (request.version !== '') attributes['network.protocol.version'] = request.version;
  const userAgent = headerValue(request.headers, 'user-agent');
  if (userAgent !== undefined) attributes['user_agent.original'] = userAgent;
  if (x.requestBytes > 0) attributes['http.request.size'] = x.requestBytes;
  if (x.responseBytes > 0) attributes['http.response.size'] = x.responseBytes;
  if (x.flags & ExchangeFlags.ResponseIncomplete) attributes['sonde.response.incomplete'] = true;
  // A cut path could match a route its full path does not.
  const route = isServer && !isPathCut(request) && request.path.charCodeAt(0) === 47 ? ctx.routes.match(request.path) : undefined;
  if (route) attributes['http.route'] = route;

  const status = spanStatus(x, response, isServer, attributes);
  // HTTP semconv: "{method} {target}", and "HTTP" stands for a method
  // outside the known set.
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

/** A cut target ends in its query when it reached one, else in its path. */
function isPathCut(request: RequestHead): boolean {
  return request.targetTruncated && request.query === undefined;
}

/**
 * The query with sensitive values redacted, marked when cut. Redaction comes
 * first: it must judge the value the client sent, not the marker, and a
 * parameter cut inside its value is redacted like a whole one.
 */
function exportedQuery(request: RequestHead, query: string): string {
  const redacted = redactQuery(query);
  return request.targetTruncated ? redacted + CUT_MARKER : redacted;
}

function setServerAttributes(a: Attributes, x: Exchange, request: RequestHead): void {
  a['url.scheme'] = x.tls ? 'https' : 'http';
  a['url.path'] = isPathCut(request) ? request.path + CUT_MARKER : request.path;
  if (request.query !== undefined) a['url.query'] = exportedQuery(request, request.query);
  const host = splitHost(headerValue(request.headers, 'host'));
  a['server.address'] = host?.name ?? x.localAddress;
  a['server.port'] = host?.port ?? x.localPort;
  a['client.address'] = x.remoteAddress;
  a['network.peer.address'] = x.remoteAddress;
  a['network.peer.port'] = x.remotePort;
}

function setClientAttributes(a: Attributes, x: Exchange, request: RequestHead): void {
  const target = request.target;
  let serverAddress: string;
  let serverPort: number;
  let full: string;
  if (target.startsWith('http://') || target.startsWith('https://')) {
    // Absolute form: the client talks to a proxy; the server is the URL's,
    // unless the capture ended before the URL's authority did.
    const url = !request.targetTruncated || ABSOLUTE_AUTHORITY_COMPLETE.test(target) ? safeUrl(target) : undefined;
    serverAddress = url ? url.hostname.replace(/^\[|\]$/g, '') : x.remoteAddress;
    serverPort = url ? Number(url.port) || (url.protocol === 'https:' ? 443 : 80) : x.remotePort;
    const q = target.indexOf('?');
    if (q >= 0) full = `${target.slice(0, q)}?${exportedQuery(request, target.slice(q + 1))}`;
    else full = request.targetTruncated ? target + CUT_MARKER : target;
  } else {
    // CONNECT names its server in the target itself (host:port), when whole.
    const hostField = request.method === 'CONNECT' ? (request.targetTruncated ? undefined : target) : headerValue(request.headers, 'host');
    const host = splitHost(hostField);
    serverAddress = host?.name ?? x.remoteAddress;
    serverPort = host?.port ?? x.remotePort;
    // The plaintext of a TLS connection (OpenSSL uprobes) is HTTPS.
    const scheme = x.tls ? 'https' : 'http';
    const authority = serverPort === (x.tls ? 443 : 80) ? bracketed(serverAddress) : `${bracketed(serverAddress)}:${serverPort}`;
    if (request.method === 'CONNECT') full = `${scheme}://${target}${request.targetTruncated ? CUT_MARKER : ''}`;
    // Asterisk form and the like: the target is not part of the URL, so neither is its cut.
    else if (request.path.charCodeAt(0) !== 47) full = `${scheme}://${authority}`;
    else if (request.query !== undefined) full = `${scheme}://${authority}${request.path}?${exportedQuery(request, request.query)}`;
    else full = `${scheme}://${authority}${request.path}${request.targetTruncated ? CUT_MARKER : ''}`;
  }
  a['server.address'] = serverAddress;
  a['server.port'] = serverPort;
  a['url.full'] = full;
  a['network.peer.address'] = x.remoteAddress;
  a['network.peer.port'] = x.remotePort;
}

function spanStatus(x: Exchange, response: ResponseHead | undefined, isServer: boolean, attributes: Attributes): SpanStatus {
  if (response) {
    attributes['http.response.status_code'] = response.statusCode;
    const failed = response.statusCode >= 500 || (!isServer && response.statusCode >= 400);
    if (failed) {
      attributes['error.type'] = String(response.statusCode);
      return { code: SpanStatusCode.ERROR };
    }
    return { code: SpanStatusCode.UNSET };
  }
  if (x.responseStartNs !== 0) {
    attributes['error.type'] = 'malformed_response';
    return { code: SpanStatusCode.ERROR, message: 'response head could not be parsed' };
  }
  if (x.flags & ExchangeFlags.NoResponse) {
    attributes['error.type'] = 'timeout';
    return { code: SpanStatusCode.ERROR, message: 'no response before the response timeout' };
  }
  attributes['error.type'] = 'connection_closed';
  return { code: SpanStatusCode.ERROR, message: 'connection closed before a response' };
}

function validPort(text: string): number | undefined {
  if (text === '') return undefined;
  const port = Number(text);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}

function splitHost(host: string | undefined): { name: string; port?: number } | undefined {
  if (!host) return undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return { name: host };
    return { name: host.slice(1, end), port: host[end + 1] === ':' ? validPort(host.slice(end + 2)) : undefined };
  }
  const colon = host.lastIndexOf(':');
  if (colon < 0 || host.indexOf(':') !== colon) return { name: host };
  return { name: host.slice(0, colon), port: validPort(host.slice(colon + 1)) };
}

/** "scheme://authority" followed by the start of a path, query or fragment. */
const ABSOLUTE_AUTHORITY_COMPLETE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*[/?#]/;

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function bracketed(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}
