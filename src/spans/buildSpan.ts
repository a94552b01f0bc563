/**
 * Turns one exchange seen on the wire into an OpenTelemetry span. What the
 * exchange means (name, kind, attributes, status, end) is its protocol's to
 * say, through the describer registered for the record's protocol id; what
 * every span shares (ids, parent, times on the epoch clock, resource, scope)
 * is built here, the same way for all of them.
 */
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { Exchange } from '../native/exchangeDecoder';
import type { MonotonicClock } from '../native/clock';
import { hrTimeDuration } from '../native/clock';
import { describers, type DescribeContext, type DescriberRegistry } from '../protocols';
import { WireSpan } from './WireSpan';

export interface SpanBuildContext extends DescribeContext {
  clock: MonotonicClock;
  resource: Resource;
  scope: InstrumentationScope;
  /** Which describer reads which protocol id; the built-in registry by default. */
  protocols?: DescriberRegistry;
}

/**
 * Why an exchange gives no span: a reason its protocol's describer gave
 * (each lists its own in `failures`), or `unknown-protocol` for a record
 * whose protocol id has no describer.
 */
export type BuildFailure = string;
export const UNKNOWN_PROTOCOL = 'unknown-protocol';
export type BuildResult = { ok: true; span: WireSpan } | { ok: false; reason: BuildFailure };

const UNKNOWN: BuildResult = Object.freeze({ ok: false, reason: UNKNOWN_PROTOCOL });

export function buildSpan(x: Exchange, ctx: SpanBuildContext): BuildResult {
  const describer = (ctx.protocols ?? describers).get(x.protocol);
  if (describer === undefined) return UNKNOWN;
  const d = describer.describe(x, ctx);
  if (!d.ok) return d;
  const span = new WireSpan(
    d.name,
    d.kind,
    { traceId: x.traceId, spanId: x.spanId, traceFlags: x.traceFlags },
    x.parentSpanId,
    ctx.clock.toHrTime(x.requestStartNs),
    ctx.clock.toHrTime(d.endNs),
    hrTimeDuration(x.requestStartNs, d.endNs),
    d.status,
    d.attributes,
    ctx.resource,
    ctx.scope,
  );
  return { ok: true, span };
}
