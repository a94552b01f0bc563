import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hrTimeDuration, MonotonicClock, type ClockPair } from '../../src/native/clock';

/** A clock pair that returns the given pairs in turn (the last one forever) and counts reads. */
function pairs(...values: Array<[bigint, bigint]>): ClockPair & { reads: number } {
  const f = Object.assign(
    (): [bigint, bigint] => {
      const v = values[Math.min(f.reads, values.length - 1)];
      f.reads++;
      return v;
    },
    { reads: 0 },
  );
  return f;
}

function fakeNow(start = 0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

test('toEpochNs adds the realtime - monotonic offset exactly', () => {
  const clock = new MonotonicClock(pairs([1_700_000_000_123_456_789n, 1_000_000_000n]), { nowMs: () => 0 });
  assert.equal(clock.toEpochNs(1_000_000_000n), 1_700_000_000_123_456_789n);
  assert.equal(clock.toEpochNs(0n), 1_699_999_999_123_456_789n);
  assert.equal(clock.toEpochNs(1_000_000_001n), 1_700_000_000_123_456_790n);
  // Numbers (as the decoder delivers them) give the same exact bigint.
  assert.equal(clock.toEpochNs(1_000_000_001), 1_700_000_000_123_456_790n);
  assert.equal(clock.toEpochNs(0), 1_699_999_999_123_456_789n);
  assert.equal(clock.toEpochNs(Number.MAX_SAFE_INTEGER), 1_699_999_999_123_456_789n + 9_007_199_254_740_991n);
});

test('toHrTime is exact to the nanosecond where a float would not be', () => {
  const clock = new MonotonicClock(pairs([1_700_000_000_123_456_789n, 1_000_000_000n]), { nowMs: () => 0 });
  // 1_700_000_000_123_456_789 is not representable as a double; the HrTime must still be exact.
  assert.notEqual(BigInt(Number(1_700_000_000_123_456_789n)), 1_700_000_000_123_456_789n);
  assert.deepEqual(clock.toHrTime(1_000_000_000), [1_700_000_000, 123_456_789]);
  assert.deepEqual(clock.toHrTime(1_000_000_001), [1_700_000_000, 123_456_790]);
  // Carry into the seconds.
  assert.deepEqual(clock.toHrTime(1_876_543_211), [1_700_000_001, 0]);
  assert.deepEqual(clock.toHrTime(1_876_543_210), [1_700_000_000, 999_999_999]);
  // Every nanosecond across a second boundary, checked against exact bigint arithmetic.
  for (let mono = 1_876_543_200; mono <= 1_876_543_220; mono++) {
    const [s, ns] = clock.toHrTime(mono);
    assert.equal(BigInt(s) * 1_000_000_000n + BigInt(ns), clock.toEpochNs(BigInt(mono)), String(mono));
  }
});

test('toHrTime with the largest exact monotonic values (2^53 - 1 ns, 104 days of uptime)', () => {
  const identity = new MonotonicClock(pairs([0n, 0n]), { nowMs: () => 0 });
  assert.deepEqual(identity.toHrTime(9_007_199_254_740_991), [9_007_199, 254_740_991]);
  assert.deepEqual(identity.toHrTime(9_007_199_254_740_990), [9_007_199, 254_740_990]);
  assert.deepEqual(identity.toHrTime(4_503_599_627_370_497), [4_503_599, 627_370_497]);
  assert.deepEqual(identity.toHrTime(0), [0, 0]);
  assert.deepEqual(identity.toHrTime(999_999_999), [0, 999_999_999]);
  assert.deepEqual(identity.toHrTime(1_000_000_000), [1, 0]);
  // Year-2100 epoch with a monotonic clock of 100 days' uptime: the epoch
  // time (61 bits) is far beyond a double, the HrTime is still exact.
  const far = new MonotonicClock(pairs([4_102_444_800_000_000_001n, 8_640_000_000_000_000n]), { nowMs: () => 0 });
  assert.deepEqual(far.toHrTime(8_640_000_999_999_999), [4_102_444_801, 0]);
  assert.deepEqual(far.toHrTime(9_007_199_254_740_991), [4_102_811_999, 254_740_992]);
  assert.equal(far.toEpochNs(9_007_199_254_740_991), 4_102_811_999_254_740_992n);
  for (const [s, ns] of [identity.toHrTime(9_007_199_254_740_991), far.toHrTime(8_640_000_999_999_999), far.toHrTime(9_007_199_254_740_991)]) {
    assert.ok(Number.isSafeInteger(s) && Number.isSafeInteger(ns) && ns >= 0 && ns < 1e9);
  }
});

test('a wall clock behind the monotonic clock (negative offset) still gives exact, normalized HrTimes', () => {
  // realtime - monotonic = -1_000_000_001 ns
  const clock = new MonotonicClock(pairs([999_999_999n, 2_000_000_000n]), { nowMs: () => 0 });
  assert.equal(clock.toEpochNs(5_000_000_000), 3_999_999_999n);
  assert.deepEqual(clock.toHrTime(5_000_000_000), [3, 999_999_999]);
  assert.deepEqual(clock.toHrTime(5_000_000_001), [4, 0]);
  assert.deepEqual(clock.toHrTime(2_000_000_000), [0, 999_999_999]);
});

test('the clock pair is read once at construction and not again within refreshEveryMs', () => {
  const read = pairs([1_000n, 0n], [2_000n, 0n]);
  const t = fakeNow(1_000);
  const clock = new MonotonicClock(read, { refreshEveryMs: 100, nowMs: t.now });
  assert.equal(read.reads, 1);
  assert.equal(clock.toEpochNs(5n), 1_005n);
  t.advance(50);
  assert.equal(clock.toEpochNs(5n), 1_005n);
  t.advance(50); // exactly refreshEveryMs: not yet stale
  assert.equal(clock.toEpochNs(5n), 1_005n);
  assert.equal(read.reads, 1);
});

test('a step of the wall clock is adopted once refreshEveryMs has passed, then held again', () => {
  const read = pairs([1_000n, 0n], [2_000n, 0n], [3_000n, 0n]);
  const t = fakeNow(1_000);
  const clock = new MonotonicClock(read, { refreshEveryMs: 100, stepThresholdNs: 500, nowMs: t.now });
  t.advance(101);
  assert.equal(clock.toEpochNs(5n), 2_005n, 'the wall clock was stepped by 1000 ns');
  assert.equal(read.reads, 2);
  t.advance(100);
  assert.equal(clock.toEpochNs(5n), 2_005n);
  assert.equal(read.reads, 2);
  t.advance(1);
  assert.deepEqual(clock.toHrTime(5), [0, 3_005]);
  assert.equal(read.reads, 3);
});

test('a re-sampled offset within the step threshold is noise: spans converted before and after stay aligned', () => {
  // A pair read while the VM lost the core for 40 µs, then an exact one.
  const read = pairs([1_000_000_000n, 0n], [1_000_040_000n, 0n], [999_990_000n, 0n]);
  const t = fakeNow(0);
  const clock = new MonotonicClock(read, { refreshEveryMs: 100, nowMs: t.now });
  const before = clock.toEpochNs(7n);
  t.advance(101);
  assert.equal(clock.toEpochNs(7n), before);
  t.advance(101);
  assert.deepEqual(clock.toHrTime(7), [1, 7]);
  assert.equal(read.reads, 3, 'the offset was sampled each period all the same');
});

test('refresh() re-reads the pair at once and adopts a step beyond the default threshold (100 µs)', () => {
  const read = pairs([10n, 0n], [100_011n, 1n], [200_100n, 0n]);
  const clock = new MonotonicClock(read, { refreshEveryMs: 1e9, nowMs: () => 0 });
  assert.equal(clock.toEpochNs(0n), 10n);
  clock.refresh();
  assert.equal(read.reads, 2);
  assert.equal(clock.toEpochNs(0n), 10n, 'moved by exactly 100 µs: not a step');
  clock.refresh();
  assert.equal(clock.toEpochNs(0n), 200_100n);
});

test('the default refresh period is 1 s: a wall-clock step shows in exported times within a second', () => {
  const read = pairs([0n, 0n], [5_000_000n, 0n]);
  const t = fakeNow(0);
  const clock = new MonotonicClock(read, { nowMs: t.now });
  t.advance(1000);
  clock.toEpochNs(0n);
  assert.equal(read.reads, 1);
  t.advance(1);
  assert.equal(clock.toEpochNs(0n), 5_000_000n);
  assert.equal(read.reads, 2);
});

test('hrTimeDuration: exact, and never negative', () => {
  assert.deepEqual(hrTimeDuration(1, 1), [0, 0]);
  assert.deepEqual(hrTimeDuration(5, 4), [0, 0]);
  assert.deepEqual(hrTimeDuration(0, 999_999_999), [0, 999_999_999]);
  assert.deepEqual(hrTimeDuration(1, 1_000_000_001), [1, 0]);
  assert.deepEqual(hrTimeDuration(1_000_000_000_000_000, 1_000_123_456_789_012), [123, 456_789_012]);
  assert.deepEqual(hrTimeDuration(9_007_000_000_000_000, 9_007_199_254_740_991), [199, 254_740_991]);
  assert.deepEqual(hrTimeDuration(1, 9_007_199_254_740_991), [9_007_199, 254_740_990]);
  assert.deepEqual(hrTimeDuration(9_007_199_254_740_991, 1), [0, 0]);
});
