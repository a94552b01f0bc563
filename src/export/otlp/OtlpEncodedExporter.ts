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

// The package exports this entry point as a subpath, which this project's
// module resolution cannot type; the runtime require resolves it the same.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createOtlpHttpExportDelegate, convertLegacyHttpOptions }: typeof import('@opentelemetry/otlp-exporter-base/build/src/index-node-http') = require('@opentelemetry/otlp-exporter-base/node-http');

const GRPC_SERVICE = 'TraceExportService';
const GRPC_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

function serializerFor(encoder: OtlpRequestEncoder, handOff: (request: Uint8Array) => Uint8Array = (request) => request): ISerializer<EncodedSpan[], IExportTraceServiceResponse> {
  return {
    serializeRequest: (spans) => handOff(encoder.encode(spans)),
    // Responses (partial success) are read as the OTel exporter reads them.
    deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
  };
}

/**
 * The gRPC transport starts with `Buffer.from(data)`, which copies a
 * Buffer or Uint8Array into a fresh zero-filled one (megabytes per export
 * at saturation: 5 % of the JavaScript thread in a profile) but wraps an
 * ArrayBuffer as it is. The request is a buffer of its own, exactly its
 * size (OtlpRequestEncoder), so its ArrayBuffer is the same bytes; grpc-js
 * then copies them once, into its framed message, as it does for every
 * exporter.
 */
function asWholeArrayBuffer(request: Uint8Array): Uint8Array {
  if (request.byteOffset !== 0 || request.byteLength !== request.buffer.byteLength) return request;
  return request.buffer as unknown as Uint8Array;
}

const spanCounter: IExporterMetricsHelper<EncodedSpan[]> = { name: 'span', countItems: (spans) => spans.length };

export class OtlpEncodedExporter implements BatchExporter<EncodedSpan> {
  readonly #delegate: IOtlpExportDelegate<EncodedSpan[]>;

  private constructor(delegate: IOtlpExportDelegate<EncodedSpan[]>) {
    this.#delegate = delegate;
  }

  static grpc(options: { url: string; metadata: Metadata; timeoutMillis: number }): OtlpEncodedExporter {
    return new OtlpEncodedExporter(
      createOtlpGrpcExportDelegate(
        convertLegacyOtlpGrpcOptions(options, 'TRACES'),
        serializerFor(new OtlpRequestEncoder(), asWholeArrayBuffer),
        'otlp_grpc_span_exporter',
        spanCounter,
        undefined,
        GRPC_SERVICE,
        GRPC_PATH,
      ),
    );
  }

  static httpProtobuf(options: { url: string; headers: Record<string, string>; timeoutMillis: number }): OtlpEncodedExporter {
    return new OtlpEncodedExporter(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions(options, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
        serializerFor(new OtlpRequestEncoder()),
        'otlp_http_span_exporter',
        spanCounter,
        undefined,
      ),
    );
  }

  export(items: EncodedSpan[], resultCallback: (result: ExportResult) => void): void {
    this.#delegate.export(items, resultCallback);
  }

  shutdown(): Promise<void> {
    return this.#delegate.shutdown();
  }
}
