/**
 * The one conversion from the kernel's CLOCK_MONOTONIC nanoseconds to
 * wall-clock time. NTP slews both clocks alike, so their offset changes only
 * when the wall clock is stepped (settimeofday, a large NTP correction). It
 * is sampled again every second, and adopted only when it moved by more than
 * sampling can err: moving it by a few µs of noise would shift the spans
 * converted after against those converted before, and a server span could
 * stick out of the client span it hangs from.
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
  #stepThresholdNs: bigint;
  #nowMs: () => number;
  #sampled = false;
  /** The offset as the two halves of a 64-bit integer, for {@link writeEpochNs}. */
  #offsetLow = 0;
  #offsetHigh = 0;

  constructor(readPair: ClockPair, options: { refreshEveryMs?: number; stepThresholdNs?: number; nowMs?: () => number } = {}) {
    this.#readPair = readPair;
    this.#refreshEveryMs = options.refreshEveryMs ?? 1000;
    // A pair read on a busy VM can be off by tens of µs (the native reader
    // takes the tightest of several brackets, which is usually within 1 µs);
    // wall-clock steps worth following are milliseconds and more.
    this.#stepThresholdNs = BigInt(options.stepThresholdNs ?? 100_000);
    this.#nowMs = options.nowMs ?? Date.now;
    this.refresh();
  }

  /** Samples the offset again; adopts it if this is the first sample or the wall clock was stepped. */
  refresh(): void {
    const [real, mono] = this.#readPair();
    this.#refreshedAtMs = this.#nowMs();
    const offsetNs = real - mono;
    const moved = offsetNs > this.#offsetNs ? offsetNs - this.#offsetNs : this.#offsetNs - offsetNs;
    if (this.#sampled && moved <= this.#stepThresholdNs) return;
    this.#sampled = true;
    this.#offsetNs = offsetNs;
    let sec = this.#offsetNs / NS_PER_SEC_BIG;
    let nsec = this.#offsetNs % NS_PER_SEC_BIG;
    if (nsec < 0n) {
      nsec += NS_PER_SEC_BIG;
      sec -= 1n;
    }
    this.#offsetSec = Number(sec);
    this.#offsetNsec = Number(nsec);
    const wrapped = BigInt.asUintN(64, this.#offsetNs);
    this.#offsetLow = Number(wrapped & 0xffffffffn);
    this.#offsetHigh = Number(wrapped >> 32n);
  }

  /** Samples the offset again when the last sample is older than `refreshEveryMs`. */
  refreshIfDue(): void {
    if (this.#nowMs() - this.#refreshedAtMs > this.#refreshEveryMs) this.refresh();
  }

  /** Epoch nanoseconds of a monotonic timestamp, exactly (for tests and diagnostics). */
  toEpochNs(monotonicNs: bigint | number): bigint {
    this.refreshIfDue();
    return BigInt(monotonicNs) + this.#offsetNs;
  }

  /**
   * Turns the little-endian 64-bit CLOCK_MONOTONIC ns at `startAt` and
   * `endAt` of `view` into epoch ns, in place, for the times of a span the addon
   * encoded: the instants toHrTime gives, exactly while monotonic times are
   * below 2^53 ns (104 days of uptime); past that toHrTime's are rounded to
   * a double's precision (a few ns) and these are not. It uses the offset as it
   * is: a batch of them is preceded by one {@link refreshIfDue}.
   */
  writeEpochNs(view: DataView, startAt: number, endAt: number): void {
    this.#addOffset(view, startAt);
    this.#addOffset(view, endAt);
  }

  // A DataView rather than the Buffer: its getters and setters are inlined,
  // where Buffer's check their arguments on every call (it runs twice a span).
  #addOffset(view: DataView, at: number): void {
    const low = view.getUint32(at, true) + this.#offsetLow;
    const carry = low >= 0x1_0000_0000 ? 1 : 0;
    view.setUint32(at, low - carry * 0x1_0000_0000, true);
    view.setUint32(at + 4, (view.getUint32(at + 4, true) + this.#offsetHigh + carry) % 0x1_0000_0000, true);
  }

  toHrTime(monotonicNs: number): HrTime {
    this.refreshIfDue();
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
