/**
 * Turns one exchange seen on the wire into an OpenTelemetry span with the
 * stable HTTP semantic conventions (v1.23+ names).
 */
import type { Attributes, SpanStatus } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { ExchangeFlags, type Exchange } from '../native/exchangeDecoder';
import type { MonotonicClock } from '../native/clock';
import { hrTimeDuration } from '../native/clock';
import { headerValue, parseRequestHead, parseResponseHead, redactQuery, type RequestHead, type ResponseHead } from '../protocols/http1';
import type { RouteMatcher } from './routes';
import { SpanKind, SpanStatusCode, WireSpan } from './WireSpan';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);

export interface SpanBuildContext {
  clock: MonotonicClock;
  resource: Resource;
  scope: InstrumentationScope;
  routes: RouteMatcher;
}

export type BuildFailure = 'request-not-http' | 'request-truncated' | 'request-malformed';
export type BuildResult = { ok: true; span: WireSpan } | { ok: false; reason: BuildFailure };

export function buildSpan(x: Exchange, ctx: SpanBuildContext): BuildResult {
  const req = parseRequestHead(x.requestHead);
  if (!req.ok) {
    const reason: BuildFailure =
      req.reason === 'truncated-start-line' || req.reason === 'empty' ? 'request-truncated' : req.reason === 'not-http' ? 'request-not-http' : 'request-malformed';
    return { ok: false, reason };
  }
  const request = req.value;
  const res = x.responseStartNs !== 0n ? parseResponseHead(x.responseHead) : undefined;
  const response = res && res.ok ? res.value : undefined;
  const isServer = x.role === 'server';

  const attributes = isServer ? serverAttributes(x, request) : clientAttributes(x, request);
  const method = KNOWN_METHODS.has(request.method) ? request.method : '_OTHER';
  attributes['http.request.method'] = method;
  if (method === '_OTHER') attributes['http.request.method_original'] = request.method;
  attributes['network.protocol.name'] = 'http';
  attributes['network.protocol.version'] = request.version;
  attributes['network.transport'] = 'tcp';
  attributes['network.type'] = x.family === 2 || isIpv4(x.remoteAddress) ? 'ipv4' : 'ipv6';
  const userAgent = headerValue(request.headers, 'user-agent');
  if (userAgent !== undefined) attributes['user_agent.original'] = userAgent;
  if (x.requestBytes > 0) attributes['http.request.size'] = x.requestBytes;
  if (x.responseBytes > 0) attributes['http.response.size'] = x.responseBytes;
  const route = isServer && request.path ? ctx.routes.match(request.path) : undefined;
  if (route) attributes['http.route'] = route;

  const status = spanStatus(x, response, isServer, attributes);
  const endNs = x.responseEndNs !== 0n ? x.responseEndNs : x.responseStartNs !== 0n ? x.responseStartNs : x.requestEndNs;
  const span = new WireSpan(
    route ? `${method} ${route}` : method === '_OTHER' ? 'HTTP' : method,
    isServer ? SpanKind.SERVER : SpanKind.CLIENT,
    { traceId: x.traceId, spanId: x.spanId, traceFlags: x.traceFlags },
    x.parentSpanId,
    ctx.clock.toHrTime(x.requestStartNs),
    ctx.clock.toHrTime(endNs),
    hrTimeDuration(x.requestStartNs, endNs),
    status,
    attributes,
    ctx.resource,
    ctx.scope,
  );
  return { ok: true, span };
}

function serverAttributes(x: Exchange, request: RequestHead): Attributes {
  const a: Attributes = {
    'url.scheme': 'http',
    'url.path': request.path,
    'client.address': x.remoteAddress,
    'client.port': x.remotePort,
    'network.peer.address': x.remoteAddress,
    'network.peer.port': x.remotePort,
    'network.local.address': x.localAddress,
    'network.local.port': x.localPort,
  };
  if (request.query !== undefined) a['url.query'] = redactQuery(request.query);
  const host = splitHost(headerValue(request.headers, 'host'));
  a['server.address'] = host?.name ?? x.localAddress;
  a['server.port'] = host?.port ?? x.localPort;
  return a;
}

function clientAttributes(x: Exchange, request: RequestHead): Attributes {
  const host = splitHost(headerValue(request.headers, 'host'));
  const serverAddress = host?.name ?? x.remoteAddress;
  const a: Attributes = {
    'server.address': serverAddress,
    'server.port': x.remotePort,
    'network.peer.address': x.remoteAddress,
    'network.peer.port': x.remotePort,
  };
  let full: string;
  if (request.target.startsWith('http://') || request.target.startsWith('https://')) {
    // Absolute form: the client talks to a proxy.
    const q = request.target.indexOf('?');
    full = q < 0 ? request.target : `${request.target.slice(0, q)}?${redactQuery(request.target.slice(q + 1))}`;
  } else {
    const authority = x.remotePort === 80 ? bracketed(serverAddress) : `${bracketed(serverAddress)}:${x.remotePort}`;
    full = `http://${authority}${request.path}${request.query !== undefined ? `?${redactQuery(request.query)}` : ''}`;
  }
  a['url.full'] = full;
  return a;
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
  if (x.responseStartNs !== 0n) {
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

function splitHost(host: string | undefined): { name: string; port?: number } | undefined {
  if (!host) return undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return { name: host };
    const port = host[end + 1] === ':' ? Number(host.slice(end + 2)) : undefined;
    return { name: host.slice(1, end), port: Number.isInteger(port) ? port : undefined };
  }
  const colon = host.lastIndexOf(':');
  if (colon < 0 || host.indexOf(':') !== colon) return { name: host };
  const port = Number(host.slice(colon + 1));
  return { name: host.slice(0, colon), port: Number.isInteger(port) && port > 0 ? port : undefined };
}

function bracketed(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

function isIpv4(address: string): boolean {
  return !address.includes(':');
}
