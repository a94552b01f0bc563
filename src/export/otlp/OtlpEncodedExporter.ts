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

function serializerFor(encoder: OtlpRequestEncoder): ISerializer<EncodedSpan[], IExportTraceServiceResponse> {
  return {
    serializeRequest: (spans) => encoder.encode(spans),
    // Responses (partial success) are read as the OTel exporter reads them.
    deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
  };
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
        serializerFor(new OtlpRequestEncoder()),
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
