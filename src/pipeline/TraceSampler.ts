/**
 * Which traces reach the exporters (OTEL_TRACES_SAMPLER and its argument,
 * the OpenTelemetry names). sonde sees every request whatever this says:
 * the RED metrics and the viewer count them all; only export is spared.
 *
 * A decision is a function of the trace, never of the span: the trace id's
 * lower 8 bytes against the ratio, as the Go and Python SDKs' ratio
 * samplers compare them (to 2^-32: src/spans/traceIdTail.ts,
 * traceIdRatioBits), and for the parent-based samplers the
 * sampled flag of the traceparent the trace came in with. The native
 * linker hands that origin down to every span it links under such a
 * request (TRACE_FLAG_FROM_TRACEPARENT), so each of a trace's spans gets
 * the same answer and a trace is exported whole or not at all.
 */
import type { SamplerConfig } from '../config/config';
import { TRACE_ID_TAIL_RANGE } from '../spans/traceIdTail';

/** W3C trace flags: sampled. */
const TRACE_FLAG_SAMPLED = 0x01;
/**
 * sonde's own bit in a record's trace flags (native/src/core/Traceparent.h):
 * the trace's context came from a traceparent header. Never exported.
 */
export const TRACE_FLAG_FROM_TRACEPARENT = 0x80;

export class TraceSampler {
  readonly #parentBased: boolean;
  /** Traces whose traceIdRatioBits are below this are kept by the root sampler. */
  readonly #threshold: number;

  constructor(readonly config: SamplerConfig) {
    this.#parentBased = config.name.startsWith('parentbased_');
    const root = this.#parentBased ? config.name.slice('parentbased_'.length) : config.name;
    const ratio = root === 'always_on' ? 1 : root === 'always_off' ? 0 : config.ratio;
    this.#threshold = Math.round(ratio * TRACE_ID_TAIL_RANGE);
  }

  /** Every trace is kept whatever its flags: the pipeline can skip asking. */
  get keepsEverything(): boolean {
    return !this.#parentBased && this.#threshold >= TRACE_ID_TAIL_RANGE;
  }

  /**
   * `ratioBits`: the trace id's bytes 8-11 as an unsigned number
   * (traceIdRatioBits); `traceFlags`: the record's trace flags, sonde's own
   * bit included.
   */
  keeps(ratioBits: number, traceFlags: number): boolean {
    if (this.#parentBased && (traceFlags & TRACE_FLAG_FROM_TRACEPARENT) !== 0) return (traceFlags & TRACE_FLAG_SAMPLED) !== 0;
    return ratioBits < this.#threshold;
  }
}
