/**
 * What the RED metrics read of a span the addon encoded (RedMetrics'
 * HTTP_*_KEYS and RPC_*_KEYS), as the describers set those attributes: the
 * rest of the span's attributes are only in its bytes. One frozen object
 * per combination, so that RedMetrics finds its series by the object: a
 * service answers with a few of them, and calls a few peers, over and over.
 */
import type { Attributes } from '@opentelemetry/api';
import { EncodedSpanShape, type EncodedSpanCursor } from '../native/encodedSpans';
import { grpcStatusName, isGrpcError } from '../protocols/grpc/status';

/** Sets kept per kind, past which they are started afresh. */
const MAX_SETS = 4096;

export class EncodedSpanAttributes {
  readonly #httpServer = new Map<number, Attributes>();
  readonly #byKey = new Map<string, Attributes>();

  /** The attributes of the cursor's current entry; `tls`: the record's bytes were TLS plaintext. */
  of(entry: EncodedSpanCursor, server: boolean, tls: boolean): Attributes {
    if (entry.shape === EncodedSpanShape.Grpc) return this.#grpc(entry, server);
    return server ? this.#httpServerAttributes(entry, tls) : this.#httpClientAttributes(entry);
  }

  #httpServerAttributes(entry: EncodedSpanCursor, tls: boolean): Attributes {
    const { method, statusCode } = entry;
    const version = httpVersionOf(entry);
    // A number, not a string, to look up: this runs for every span.
    const key = ((statusCode * 2 + (tls ? 1 : 0)) * 4 + version) * 256 + entry.methodIndex;
    return this.#httpServer.get(key) ?? keep(this.#httpServer, key, {
      'http.request.method': method,
      'url.scheme': tls ? 'https' : 'http',
      'network.protocol.version': HTTP_VERSIONS[version],
      'http.response.status_code': statusCode,
      ...(statusCode >= 500 ? { 'error.type': String(statusCode) } : {}),
    });
  }

  #httpClientAttributes(entry: EncodedSpanCursor): Attributes {
    const { method, statusCode, serverPort } = entry;
    const version = httpVersionOf(entry);
    const serverAddress = serverAddressOf(entry);
    const key = `c ${method} ${version} ${statusCode} ${serverPort} ${serverAddress}`;
    return this.#byKey.get(key) ?? keep(this.#byKey, key, {
      'http.request.method': method,
      'server.address': serverAddress,
      'server.port': serverPort,
      'network.protocol.version': HTTP_VERSIONS[version],
      'http.response.status_code': statusCode,
      ...(statusCode >= 400 ? { 'error.type': String(statusCode) } : {}),
    });
  }

  /** grpc/describe.ts's rpc.* attributes; the name is "service/method". */
  #grpc(entry: EncodedSpanCursor, server: boolean): Attributes {
    const { statusCode, serverPort } = entry;
    const name = entry.buffer.toString('latin1', entry.nameAt, entry.nameAt + entry.nameBytes);
    const serverAddress = server ? '' : serverAddressOf(entry);
    // Fields are separated by "\n", which none can hold (the stitcher writes
    // one field per line): "a b" and "/c" are not "a" and "b /c".
    const key = server ? `gs\n${statusCode}\n${name}` : `gc\n${statusCode}\n${serverPort}\n${serverAddress}\n${name}`;
    const cached = this.#byKey.get(key);
    if (cached) return cached;
    const slash = name.indexOf('/');
    const failed = isGrpcError(statusCode, server);
    return keep(this.#byKey, key, {
      'rpc.system': 'grpc',
      'rpc.service': name.slice(0, slash),
      'rpc.method': name.slice(slash + 1),
      ...(server ? {} : { 'server.address': serverAddress, 'server.port': serverPort }),
      'rpc.grpc.status_code': statusCode,
      ...(failed ? { 'error.type': grpcStatusName(statusCode) } : {}),
    });
  }
}

/** network.protocol.version, by {@link httpVersionOf}. */
const HTTP_VERSIONS = ['1.0', '1.1', '2'] as const;

/** An HTTP entry's version: 0 for HTTP/1.0, 1 for HTTP/1.1, 2 for HTTP/2. */
function httpVersionOf(entry: EncodedSpanCursor): 0 | 1 | 2 {
  return entry.shape === EncodedSpanShape.Http2 ? 2 : entry.httpMinor === 1 ? 1 : 0;
}

function serverAddressOf(entry: EncodedSpanCursor): string {
  return entry.buffer.toString('latin1', entry.serverAddressAt, entry.serverAddressAt + entry.serverAddressBytes);
}

function keep<K>(sets: Map<K, Attributes>, key: K, attributes: Attributes): Attributes {
  if (sets.size >= MAX_SETS) sets.clear();
  const frozen = Object.freeze(attributes);
  sets.set(key, frozen);
  return frozen;
}
