/**
 * OTLP export of spans sonde encoded itself (./encodeTraces.ts), through the
 * OTel exporters' own delegate and transport: the same gRPC channel (or HTTP
 * agent), retries, timeouts and response handling as OTLPTraceExporter, with
 * only the serializer replaced.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { ExportResult } from '@opentelemetry/core';
import type { BatchExporter } from '../ExportChannel';
import type { IOtlpExportDelegate } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyOtlpGrpcOptions, createOtlpGrpcExportDelegate } from '@opentelemetry/otlp-grpc-exporter-base';
import { ProtobufTraceSerializer, type ISerializer, type IExportTraceServiceResponse, type IExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import { OtlpRequestEncoder, type EncodedSpan } from './encodeTraces';
import { RequestBuffers } from './RequestBuffers';

// The package exports this entry point as a subpath, which this project's
// module resolution cannot type; the runtime require resolves it the same.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createOtlpHttpExportDelegate, convertLegacyHttpOptions }: typeof import('@opentelemetry/otlp-exporter-base/build/src/index-node-http') = require('@opentelemetry/otlp-exporter-base/node-http');

const GRPC_SERVICE = 'TraceExportService';
const GRPC_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** What the serializer wrote last: the exporter hands its buffer back when that export has its result. */
interface LastRequest {
  request: Uint8Array | undefined;
}

function serializerFor(
  encoder: OtlpRequestEncoder,
  buffers: RequestBuffers,
  last: LastRequest,
  handOff: (request: Uint8Array) => Uint8Array = (request) => request,
): ISerializer<EncodedSpan[], IExportTraceServiceResponse> {
  return {
    serializeRequest: (spans) => {
      const request = encoder.encode(spans, (size) => buffers.take(size));
      last.request = request;
      return handOff(request);
    },
    // Responses (partial success) are read as the OTel exporter reads them.
    deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
  };
}

/**
 * The gRPC transport starts with `Buffer.from(data)`, which copies a
 * Buffer or Uint8Array into a fresh zero-filled one (megabytes per export
 * at saturation: 5 % of the JavaScript thread in a profile) but wraps an
 * ArrayBuffer as it is. The request's ArrayBuffer is exactly its size
 * (RequestBuffers resizes a reused one to each request), so it is the same
 * bytes; grpc-js then copies them once, into its framed message, as it
 * does for every exporter.
 */
function asWholeArrayBuffer(request: Uint8Array): Uint8Array {
  if (request.byteOffset !== 0 || request.byteLength !== request.buffer.byteLength) return request;
  return request.buffer as unknown as Uint8Array;
}

const spanCounter: IExporterMetricsHelper<EncodedSpan[]> = { name: 'span', countItems: (spans) => spans.length };

/** How large a request's reused buffer may grow, past the batch byte bound (which counts spans only). */
const REQUEST_BYTES_HEADROOM = 1 << 20;

export class OtlpEncodedExporter implements BatchExporter<EncodedSpan> {
  readonly #delegate: IOtlpExportDelegate<EncodedSpan[]>;
  readonly requestBuffers: RequestBuffers;
  readonly #last: LastRequest;

  /**
   * `maxBatchBytes`: the channel's batch byte bound, which sizes the reused
   * request buffers; `reuseBuffers` false: a fresh one per request.
   */
  private constructor(make: (buffers: RequestBuffers, last: LastRequest) => IOtlpExportDelegate<EncodedSpan[]>, maxBatchBytes: number, reuseBuffers: boolean) {
    this.requestBuffers = new RequestBuffers({ maxBytes: maxBatchBytes + REQUEST_BYTES_HEADROOM, maxBuffers: reuseBuffers ? 2 : 0 });
    this.#last = { request: undefined };
    this.#delegate = make(this.requestBuffers, this.#last);
  }

  /**
   * Requests are written into reused buffers unless they are compressed
   * (OTEL_EXPORTER_OTLP_COMPRESSION=gzip): grpc-js then gzips a request on
   * a worker thread, which a cancelled call's result does not wait for, and
   * the buffer must not be resized under it. Uncompressed, grpc-js copies
   * the request into its framed message before any result can come.
   */
  static grpc(options: { url: string; metadata: Metadata; timeoutMillis: number; maxBatchBytes: number }): OtlpEncodedExporter {
    const config = convertLegacyOtlpGrpcOptions(options, 'TRACES');
    return new OtlpEncodedExporter(
      (buffers, last) =>
        createOtlpGrpcExportDelegate(
          config,
          serializerFor(new OtlpRequestEncoder(), buffers, last, asWholeArrayBuffer),
          'otlp_grpc_span_exporter',
          spanCounter,
          undefined,
          GRPC_SERVICE,
          GRPC_PATH,
        ),
      options.maxBatchBytes,
      config.compression !== 'gzip',
    );
  }

  /**
   * A fresh buffer per request: the HTTP transport reports a result as soon
   * as the response ends, which a backend may send (a 401, say) while the
   * body is still being written or gzipped from the buffer.
   */
  static httpProtobuf(options: { url: string; headers: Record<string, string>; timeoutMillis: number; maxBatchBytes: number }): OtlpEncodedExporter {
    return new OtlpEncodedExporter(
      (buffers, last) =>
        createOtlpHttpExportDelegate(
          convertLegacyHttpOptions(options, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
          serializerFor(new OtlpRequestEncoder(), buffers, last),
          'otlp_http_span_exporter',
          spanCounter,
          undefined,
        ),
      options.maxBatchBytes,
      false,
    );
  }

  export(items: EncodedSpan[], resultCallback: (result: ExportResult) => void): void {
    // The delegate serializes synchronously, inside export(); its answer
    // comes later, or at once when it sends nothing.
    this.#last.request = undefined;
    let request: Uint8Array | undefined;
    let answered = false;
    this.#delegate.export(items, (result) => {
      answered = true;
      if (request) this.requestBuffers.give(request);
      resultCallback(result);
    });
    request = this.#last.request;
    this.#last.request = undefined;
    if (answered && request) this.requestBuffers.give(request);
  }

  shutdown(): Promise<void> {
    return this.#delegate.shutdown();
  }
}
