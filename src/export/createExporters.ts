import { Metadata } from '@grpc/grpc-js';
import { OTLPTraceExporter as OtlpGrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ExporterConfig } from '../config/config';
import { ConsoleLineExporter } from './ConsoleLineExporter';
import { ZipkinExporterWholeMicros } from './ZipkinExporterWholeMicros';

export interface NamedExporter {
  /** For logs and counters: "otlp grpc http://host:4317". */
  name: string;
  exporter: SpanExporter;
}

export function createExporter(config: ExporterConfig, exportTimeoutMs: number): NamedExporter {
  switch (config.kind) {
    case 'console':
      return { name: 'console', exporter: new ConsoleLineExporter() };
    case 'zipkin':
      return { name: `zipkin ${config.endpoint}`, exporter: new ZipkinExporterWholeMicros(config.endpoint) };
    case 'otlp':
      if (config.protocol === 'grpc') {
        const metadata = new Metadata();
        for (const [k, v] of Object.entries(config.headers)) metadata.set(k, v);
        return {
          name: `otlp grpc ${config.endpoint}`,
          exporter: new OtlpGrpcExporter({ url: config.endpoint, metadata, timeoutMillis: exportTimeoutMs }),
        };
      }
      return {
        name: `otlp http/protobuf ${config.endpoint}`,
        exporter: new OtlpProtoExporter({ url: config.endpoint, headers: config.headers, timeoutMillis: exportTimeoutMs }),
      };
  }
}
