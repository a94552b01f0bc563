/**
 * What a gRPC call (one HTTP/2 stream, unary or streaming) means as a span,
 * with the OpenTelemetry RPC and gRPC semantic conventions. The HTTP/2
 * describer parses the stream's fields and hands over the ones it finds to
 * be gRPC; the span then carries rpc.* attributes instead of http.* ones.
 */
import { SpanKind, SpanStatusCode, type Attributes, type SpanStatus } from '@opentelemetry/api';
import { ExchangeFlags, type Exchange } from '../../native/exchangeDecoder';
import { lastSeenNs, type Description } from '../Describer';
import { serverEndpoint, setCaptureAttributes, setEndpointAttributes, statusWithoutResponse } from '../http2/common';
import { fieldValue, UNKNOWN, type FieldBlock, type Http2Response, type Unknown } from '../http2/parse';
import { decodeGrpcMessage, grpcStatusName, isGrpcError, parseGrpcStatus } from './status';

const GRPC_CONTENT_TYPE = 'application/grpc';

/** A response that gave no grpc-status may still be short of its trailers. */
const RESPONSE_MAYBE_CUT = ExchangeFlags.HeadersIncomplete | ExchangeFlags.ResponseIncomplete | ExchangeFlags.EndEstimated;

/**
 * Whether the stream is a gRPC call: a content-type starting with
 * "application/grpc" (+proto, +json, -web...) on either side. When neither
 * content-type is known, a grpc-status or grpc-message field in the
 * response says it instead, or, failing that, the shape every gRPC call has
 * ({@link looksLikeGrpcCall}).
 */
export function isGrpc(request: FieldBlock, response: Http2Response): boolean {
  const requestType = fieldValue(request, 'content-type');
  const responseType = fieldValue(response.headers, 'content-type');
  if (isGrpcContentType(requestType) || isGrpcContentType(responseType)) return true;
  if (typeof requestType === 'string' || typeof responseType === 'string') return false;
  return (
    typeof fieldValue(response.headers, 'grpc-status') === 'string' ||
    typeof fieldValue(response.headers, 'grpc-message') === 'string' ||
    (response.trailers !== undefined &&
      (typeof fieldValue(response.trailers, 'grpc-status') === 'string' || typeof fieldValue(response.trailers, 'grpc-message') === 'string')) ||
    looksLikeGrpcCall(request, response)
  );
}

/**
 * On a connection sonde joined mid-life, a gRPC client's content-type and
 * the server's grpc-status are HPACK entries inserted before sonde came, so
 * they are unknown. What stays known is the call's shape: a POST to
 * "/package.Service/Method", answered with trailers. Plain HTTP/2 rarely has
 * trailers at all; the span says the system was inferred
 * (`sonde.rpc.system_inferred`).
 */
function looksLikeGrpcCall(request: FieldBlock, response: Http2Response): boolean {
  const path = fieldValue(request, ':path');
  return (
    fieldValue(request, ':method') === 'POST' &&
    typeof path === 'string' &&
    splitCallPath(path) !== undefined &&
    response.trailers !== undefined &&
    fieldValue(request, 'content-type') === UNKNOWN
  );
}

function isGrpcContentType(value: string | Unknown | undefined): boolean {
  return typeof value === 'string' && value.length >= GRPC_CONTENT_TYPE.length && value.slice(0, GRPC_CONTENT_TYPE.length).toLowerCase() === GRPC_CONTENT_TYPE;
}

/** The call's span; gRPC has no failure of its own: the HTTP/2 describer has checked the record. */
export function describeGrpc(x: Exchange, request: FieldBlock, response: Http2Response): Description {
  const isServer = x.role === 'server';
  const attributes: Attributes = { 'rpc.system': 'grpc' };
  const path = fieldValue(request, ':path');
  const call = typeof path === 'string' ? splitCallPath(path) : undefined;
  if (call) {
    attributes['rpc.service'] = call.service;
    attributes['rpc.method'] = call.method;
  } else {
    attributes['sonde.rpc.method_unknown'] = true;
  }
  if (!isGrpcContentType(fieldValue(request, 'content-type')) && !isGrpcContentType(fieldValue(response.headers, 'content-type')) && looksLikeGrpcCall(request, response)) {
    attributes['sonde.rpc.system_inferred'] = true;
  }
  setEndpointAttributes(attributes, x, serverEndpoint(x, request));
  // Unlike an HTTP span's, an RPC span's transport is not implied by its other attributes.
  attributes['network.protocol.name'] = 'http';
  attributes['network.protocol.version'] = '2';
  setCaptureAttributes(attributes, x, [request, response.headers, response.trailers]);
  return {
    ok: true,
    // RPC semconv: "$package.$service/$method"; "gRPC" when the path does not say it.
    name: call ? `${call.service}/${call.method}` : 'gRPC',
    kind: isServer ? SpanKind.SERVER : SpanKind.CLIENT,
    attributes,
    status: spanStatus(x, response, isServer, attributes),
    endNs: lastSeenNs(x),
  };
}

/**
 * "/package.Service/Method" (PROTOCOL-HTTP2.md: Path → ":path" "/"
 * Service-Name "/" {method name}); anything else gives no name to trust.
 */
function splitCallPath(path: string): { service: string; method: string } | undefined {
  if (path.charCodeAt(0) !== 47) return undefined;
  const slash = path.indexOf('/', 1);
  if (slash <= 1 || slash === path.length - 1) return undefined;
  if (path.indexOf('/', slash + 1) !== -1 || path.indexOf('?') !== -1) return undefined;
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/**
 * A field of the call's status: from the trailers, or from the headers of a
 * trailers-only response (which carries the status in its only block).
 */
function statusField(response: Http2Response, name: string): string | Unknown | undefined {
  if (response.trailers !== undefined) {
    const value = fieldValue(response.trailers, name);
    if (value !== undefined) return value;
  }
  return fieldValue(response.headers, name);
}

function spanStatus(x: Exchange, response: Http2Response, isServer: boolean, attributes: Attributes): SpanStatus {
  const raw = statusField(response, 'grpc-status');
  if (typeof raw === 'string') {
    const code = parseGrpcStatus(raw);
    if (code === undefined) {
      attributes['error.type'] = 'malformed_grpc_status';
      return { code: SpanStatusCode.ERROR, message: 'grpc-status is not a number' };
    }
    attributes['rpc.grpc.status_code'] = code;
    if (!isGrpcError(code, isServer)) return { code: SpanStatusCode.UNSET };
    attributes['error.type'] = grpcStatusName(code);
    // A description belongs to ERROR only (OTel trace API, Set Status).
    const message = statusField(response, 'grpc-message');
    return typeof message === 'string' && message !== '' ? { code: SpanStatusCode.ERROR, message: decodeGrpcMessage(message) } : { code: SpanStatusCode.ERROR };
  }
  const ended = statusWithoutResponse(x, attributes);
  if (ended) return ended;
  if (raw === UNKNOWN || (x.flags & RESPONSE_MAYBE_CUT) !== 0) {
    attributes['sonde.rpc.status_unknown'] = true;
    return { code: SpanStatusCode.UNSET };
  }
  attributes['error.type'] = 'missing_grpc_status';
  const httpStatus = fieldValue(response.headers, ':status');
  const message = typeof httpStatus === 'string' && /^[1-9][0-9][0-9]$/.test(httpStatus) ? `response ended without grpc-status (HTTP status ${httpStatus})` : 'response ended without grpc-status';
  return { code: SpanStatusCode.ERROR, message };
}
