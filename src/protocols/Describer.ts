/**
 * The one contract between a protocol and span building: a describer says
 * what an exchange means (span name, kind, attributes, status, where it
 * ends); src/spans/ turns that into an OpenTelemetry span (ids, parent,
 * clock conversion, resource, scope), the same for every protocol.
 */
import type { Attributes, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { Exchange } from '../native/exchangeDecoder';
import type { RouteMatcher } from '../spans/routes';

/** What a describer may use beyond the exchange itself. */
export interface DescribeContext {
  /** The user's route templates; protocols without paths ignore them. */
  routes: RouteMatcher;
}

/** The protocol's reading of one exchange. */
export interface Description {
  ok: true;
  name: string;
  kind: SpanKind;
  /** Owned by the span from here on: a fresh object per exchange. */
  attributes: Attributes;
  status: SpanStatus;
  /**
   * CLOCK_MONOTONIC ns at which the span ends; it starts at the exchange's
   * `requestStartNs`. Usually {@link lastSeenNs}.
   */
  endNs: number;
}

/**
 * An exchange that gives no span. `reason` is counted by the pipeline under
 * that name, so it must be one of the describer's `failures`.
 */
export interface DescribeFailure<Reason extends string = string> {
  ok: false;
  reason: Reason;
}

export interface ProtocolDescriber<Reason extends string = string> {
  /**
   * Every reason `describe` can fail with, so that the counters show each
   * one from the start, at zero, rather than only once it has happened.
   */
  readonly failures: readonly Reason[];
  /**
   * Runs once per exchange the host serves or makes: parse in place, set
   * only what the conventions ask for, and never throw on captured bytes.
   */
  describe(x: Exchange, ctx: DescribeContext): Description | DescribeFailure<Reason>;
}

/**
 * The last moment the capture saw of the exchange: the end of the response,
 * else its start, else the end of the request (no response at all).
 */
export function lastSeenNs(x: Exchange): number {
  return x.responseEndNs !== 0 ? x.responseEndNs : x.responseStartNs !== 0 ? x.responseStartNs : x.requestEndNs;
}
