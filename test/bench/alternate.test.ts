/**
 * The order of a comparison's runs: each pair starts one run further on,
 * so that a VM's drift over a run is shared by every kind of run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunKind, RunRecord } from '../../bench/lib/measure';
import { sondeUnderTest } from '../../bench/lib/sonde';
import { alternate, comparison } from '../../bench/scenarios/common';

/** Runs that only log their letter and pair, as `A1`, `B2`, ... (B' for the before build). */
function recorder(order: string[]): (kind: RunKind, pair: number) => Promise<RunRecord> {
  return async (kind, pair) => {
    const letter = kind === 'baseline' ? 'A' : sondeUnderTest.cli === 'older' ? "B'" : 'B';
    order.push(`${letter}${pair}`);
    return { kind, pair } as unknown as RunRecord;
  };
}

test('alternate: untraced and traced swap places from one pair to the next, and each list keeps pair order', async () => {
  const order: string[] = [];
  const { baseline, traced, before } = await alternate(3, recorder(order));
  assert.deepEqual(order, ['A1', 'B1', 'B2', 'A2', 'A3', 'B3']);
  assert.deepEqual(baseline.map((r) => r.pair), [1, 2, 3]);
  assert.deepEqual(traced.map((r) => r.pair), [1, 2, 3]);
  assert.deepEqual(before, []);
});

test('alternate: extra runs and a before build rotate with the pair', async () => {
  const order: string[] = [];
  const more = ['F', 'C'].map((letter) => async (pair: number) => void order.push(`${letter}${pair}`));
  comparison.before = { cli: 'older', answersSigusr2: true, commit: 'abc1234' };
  try {
    const { before } = await alternate(3, recorder(order), more);
    assert.deepEqual(order, ['A1', 'B1', "B'1", 'F1', 'C1', 'B2', "B'2", 'F2', 'C2', 'A2', "B'3", 'F3', 'C3', 'A3', 'B3']);
    assert.deepEqual(before.map((r) => r.pair), [1, 2, 3]);
  } finally {
    comparison.before = undefined;
  }
  assert.notEqual(sondeUnderTest.cli, 'older', 'the before build is the one under test only during its runs');
});
