import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type Link, type SpanContext, type SpanStatus } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

/**
 * A finished span reconstructed from the wire: every id and time is known
 * up front, so it is built directly instead of going through a Tracer,
 * whose context machinery would only be overhead here.
 */
export class WireSpan implements ReadableSpan {
  readonly links: Link[] = [];
  readonly events: TimedEvent[] = [];
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  readonly parentSpanContext?: SpanContext;
  readonly #context: SpanContext;

  constructor(
    readonly name: string,
    readonly kind: SpanKind,
    context: { traceId: string; spanId: string; traceFlags: number },
    parentSpanId: string,
    readonly startTime: HrTime,
    readonly endTime: HrTime,
    readonly duration: HrTime,
    readonly status: SpanStatus,
    readonly attributes: Attributes,
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope,
  ) {
    this.#context = { traceId: context.traceId, spanId: context.spanId, traceFlags: context.traceFlags & TraceFlags.SAMPLED, isRemote: false };
    if (parentSpanId) {
      this.parentSpanContext = { traceId: context.traceId, spanId: parentSpanId, traceFlags: this.#context.traceFlags, isRemote: true };
    }
  }

  spanContext(): SpanContext {
    return this.#context;
  }
}

export { SpanKind, SpanStatusCode };
