/**
 * A span the addon encoded on its reader thread (src/native/encodedSpans.ts),
 * as the span sinks see it: its OTLP bytes, which sonde's OTLP exporter
 * sends and the viewer reads back when asked, and the facts the RED metrics
 * read.
 *
 * The pipeline reuses one object for every such span: a sink reads it during
 * the call and keeps nothing of it but copies.
 */
import type { Attributes, HrTime, SpanKind } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';

export interface PreencodedSpan {
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  /** The Span message (no tag, no length), epoch times in place: `bytes[start, start + length)`. */
  readonly bytes: Buffer;
  readonly start: number;
  readonly length: number;
  readonly kind: SpanKind;
  readonly duration: HrTime;
  /**
   * Only the attributes the RED metrics read of an HTTP or gRPC span
   * (RedMetrics' HTTP_*_KEYS and RPC_*_KEYS), one frozen object shared by
   * every span with the same ones; the span's full set is in its bytes.
   */
  readonly attributes: Attributes;
  /** The trace id, as hex. */
  traceId(): string;
  /** Its last 4 bytes as an unsigned number (W3C's random part): what a sampler reads without making the hex string. */
  traceIdTail(): number;
}
