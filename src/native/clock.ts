/**
 * The one conversion from the kernel's CLOCK_MONOTONIC nanoseconds to
 * wall-clock time. The offset between the two clocks is sampled back to back
 * and refreshed, so that NTP slewing of the wall clock is followed.
 *
 * Monotonic times arrive as doubles (exact below 2^53 ns, 104 days of
 * uptime); the offset is kept as whole seconds plus nanoseconds so that the
 * epoch time, which needs 61 bits, is never held in one double.
 */
import type { HrTime } from '@opentelemetry/api';

export type ClockPair = () => [realtimeNs: bigint, monotonicNs: bigint];

const NS_PER_SEC = 1_000_000_000;
const NS_PER_SEC_BIG = 1_000_000_000n;

export class MonotonicClock {
  #readPair: ClockPair;
  #offsetNs = 0n;
  #offsetSec = 0;
  #offsetNsec = 0;
  #refreshedAtMs = -Infinity;
  #refreshEveryMs: number;
  #nowMs: () => number;

  constructor(readPair: ClockPair, options: { refreshEveryMs?: number; nowMs?: () => number } = {}) {
    this.#readPair = readPair;
    // NTP slews the wall clock by up to 500 ppm: refreshed each second,
    // exported times stay within half a millisecond of it.
    this.#refreshEveryMs = options.refreshEveryMs ?? 1000;
    this.#nowMs = options.nowMs ?? Date.now;
    this.refresh();
  }

  refresh(): void {
    const [real, mono] = this.#readPair();
    this.#offsetNs = real - mono;
    let sec = this.#offsetNs / NS_PER_SEC_BIG;
    let nsec = this.#offsetNs % NS_PER_SEC_BIG;
    if (nsec < 0n) {
      nsec += NS_PER_SEC_BIG;
      sec -= 1n;
    }
    this.#offsetSec = Number(sec);
    this.#offsetNsec = Number(nsec);
    this.#refreshedAtMs = this.#nowMs();
  }

  #maybeRefresh(): void {
    if (this.#nowMs() - this.#refreshedAtMs > this.#refreshEveryMs) this.refresh();
  }

  /** Epoch nanoseconds of a monotonic timestamp, exactly (for tests and diagnostics). */
  toEpochNs(monotonicNs: bigint | number): bigint {
    this.#maybeRefresh();
    return BigInt(monotonicNs) + this.#offsetNs;
  }

  toHrTime(monotonicNs: number): HrTime {
    this.#maybeRefresh();
    const monoSec = Math.floor(monotonicNs / NS_PER_SEC);
    let sec = monoSec + this.#offsetSec;
    let nsec = monotonicNs - monoSec * NS_PER_SEC + this.#offsetNsec;
    if (nsec >= NS_PER_SEC) {
      nsec -= NS_PER_SEC;
      sec += 1;
    }
    return [sec, nsec];
  }
}

export function hrTimeDuration(startNs: number, endNs: number): HrTime {
  const d = endNs > startNs ? endNs - startNs : 0;
  const sec = Math.floor(d / NS_PER_SEC);
  return [sec, d - sec * NS_PER_SEC];
}
