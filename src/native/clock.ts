/**
 * The one conversion from the kernel's CLOCK_MONOTONIC nanoseconds to
 * wall-clock time. The offset between the two clocks is sampled back to back
 * and refreshed, so that NTP slewing of the wall clock is followed.
 */
import type { HrTime } from '@opentelemetry/api';

export type ClockPair = () => [realtimeNs: bigint, monotonicNs: bigint];

const NS_PER_SEC = 1_000_000_000n;

export class MonotonicClock {
  #readPair: ClockPair;
  #offsetNs = 0n;
  #refreshedAtMs = -Infinity;
  #refreshEveryMs: number;
  #nowMs: () => number;

  constructor(readPair: ClockPair, options: { refreshEveryMs?: number; nowMs?: () => number } = {}) {
    this.#readPair = readPair;
    this.#refreshEveryMs = options.refreshEveryMs ?? 10_000;
    this.#nowMs = options.nowMs ?? Date.now;
    this.refresh();
  }

  refresh(): void {
    const [real, mono] = this.#readPair();
    this.#offsetNs = real - mono;
    this.#refreshedAtMs = this.#nowMs();
  }

  /** Epoch nanoseconds of a monotonic timestamp. */
  toEpochNs(monotonicNs: bigint): bigint {
    if (this.#nowMs() - this.#refreshedAtMs > this.#refreshEveryMs) this.refresh();
    return monotonicNs + this.#offsetNs;
  }

  toHrTime(monotonicNs: bigint): HrTime {
    const epoch = this.toEpochNs(monotonicNs);
    return [Number(epoch / NS_PER_SEC), Number(epoch % NS_PER_SEC)];
  }
}

export function hrTimeDuration(startNs: bigint, endNs: bigint): HrTime {
  const d = endNs > startNs ? endNs - startNs : 0n;
  return [Number(d / NS_PER_SEC), Number(d % NS_PER_SEC)];
}
