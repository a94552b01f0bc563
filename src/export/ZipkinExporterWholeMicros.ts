/**
 * Zipkin's v2 API takes span timestamps as whole microseconds (an int64),
 * but @opentelemetry/exporter-zipkin 2.x sends the fraction too
 * (1700000000123456.8), which a strict Zipkin server rejects. This wrapper
 * rounds each span's start to the microsecond before handing it over.
 */
import type { HrTime } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

export function roundToMicros(t: HrTime): HrTime {
  const micros = Math.round(t[1] / 1000);
  return micros >= 1_000_000 ? [t[0] + 1, 0] : [t[0], micros * 1000];
}

function withWholeMicros(span: ReadableSpan): ReadableSpan {
  const context = span.spanContext();
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => context,
    parentSpanContext: span.parentSpanContext,
    startTime: roundToMicros(span.startTime),
    endTime: span.endTime,
    status: span.status,
    attributes: span.attributes,
    links: span.links,
    events: span.events,
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

export class ZipkinExporterWholeMicros implements SpanExporter {
  readonly #inner: ZipkinExporter;

  constructor(url: string) {
    this.#inner = new ZipkinExporter({ url });
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.#inner.export(spans.map(withWholeMicros), resultCallback);
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush();
  }
}
