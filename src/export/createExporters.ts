import { Metadata } from '@grpc/grpc-js';
import type { ExporterConfig } from '../config/config';
import { ConsoleLineExporter } from './ConsoleLineExporter';
import { ExportChannel, type ExportChannelOptions, type QueuedForm } from './ExportChannel';
import { OtlpSpanEncoder, type EncodedSpan } from './otlp/encodeTraces';
import { OtlpEncodedExporter } from './otlp/OtlpEncodedExporter';
import { ZipkinExporterWholeMicros } from './ZipkinExporterWholeMicros';

/** What a channel adds per queued OTLP span beyond its bytes: the small object that points at them. */
const ENCODED_SPAN_OVERHEAD_BYTES = 64;

/**
 * One export channel per configured exporter. OTLP spans are encoded by
 * sonde as they are queued (./otlp/, proven equal to the OTel serializer's
 * output by test/export/otlpEncoder.test.ts) and sent through the OTel
 * exporters' own transport; console and Zipkin take the SDK span objects.
 */
export function createExportChannel(config: ExporterConfig, options: ExportChannelOptions, onError: (name: string, message: string) => void): ExportChannel<unknown> {
  const timeoutMillis = options.exportTimeoutMs;
  switch (config.kind) {
    case 'console': {
      const name = 'console';
      return new ExportChannel(name, new ConsoleLineExporter(), options, (m) => onError(name, m)) as ExportChannel<unknown>;
    }
    case 'zipkin': {
      const name = `zipkin ${config.endpoint}`;
      return new ExportChannel(name, new ZipkinExporterWholeMicros(config.endpoint), options, (m) => onError(name, m)) as ExportChannel<unknown>;
    }
    case 'otlp': {
      let name: string;
      let exporter: OtlpEncodedExporter;
      if (config.protocol === 'grpc') {
        const metadata = new Metadata();
        for (const [k, v] of Object.entries(config.headers)) metadata.set(k, v);
        name = `otlp grpc ${config.endpoint}`;
        exporter = OtlpEncodedExporter.grpc({ url: config.endpoint, metadata, timeoutMillis, maxBatchBytes: options.maxExportBatchBytes });
      } else {
        name = `otlp http/protobuf ${config.endpoint}`;
        exporter = OtlpEncodedExporter.httpProtobuf({ url: config.endpoint, headers: config.headers, timeoutMillis, maxBatchBytes: options.maxExportBatchBytes });
      }
      return new ExportChannel<EncodedSpan>(name, exporter, options, (m) => onError(name, m), otlpQueuedForm()) as ExportChannel<unknown>;
    }
  }
}

/** What an OTLP channel queues: each span's Span message, in slabs of its own encoder. */
export function otlpQueuedForm(encoder = new OtlpSpanEncoder()): QueuedForm<EncodedSpan> {
  return {
    prepare: (span) => encoder.encode(span),
    fromPreencoded: (span) => encoder.copy(span),
    bytesOf: (encoded) => encoded.length + ENCODED_SPAN_OVERHEAD_BYTES,
    release: (encoded) => encoder.release(encoded),
  };
}
