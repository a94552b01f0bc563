/**
 * The order of a comparison's runs: each pair starts one run further on,
 * so that a VM's drift over a run is shared by every kind of run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunKind, RunRecord } from '../../bench/lib/measure';
import { sondeUnderTest } from '../../bench/lib/sonde';
import { alternate, comparison, noteBeforeAfter } from '../../bench/scenarios/common';

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

/** A run with just the figures the before/after table reads. */
function figures(kind: RunKind, rps: number, spans: number): RunRecord {
  return {
    kind,
    pair: 1,
    load: { rps, requests: rps * 10, latencyMs: { p50: 1, p75: 1, p90: 1, p99: 2 } },
    server: { pids: [], cpuSeconds: 1, coresPer10kRps: 1 },
    ...(kind === 'traced' ? { sonde: { cores: 0.1, coresPer10kRps: 0.05, peakRssMB: 90 }, receiver: { spans, exportCalls: 1, cpuSeconds: 0, cores: 0 } } : {}),
  } as unknown as RunRecord;
}

test('noteBeforeAfter: an older build that exported nothing (HTTPS before TLS support) is not called better or worse', () => {
  comparison.rows.length = 0;
  try {
    const baseline = [figures('baseline', 1000, 0)];
    noteBeforeAfter('https', baseline, [figures('traced', 800, 8000)], [figures('traced', 990, 0), figures('traced', 980, 0)]);
    noteBeforeAfter('http', baseline, [figures('traced', 900, 9000)], [figures('traced', 700, 7000)]);
    const https = comparison.rows.filter((r) => r.what.startsWith('https:'));
    const http = comparison.rows.filter((r) => r.what.startsWith('http:'));
    assert.equal(https.length, 5);
    assert.ok(https.every((r) => r.beforeTracedNothing === true));
    assert.ok(http.every((r) => r.beforeTracedNothing === undefined));
    assert.equal(http[0].before, 0.7);
    assert.equal(http[0].after, 0.9);
  } finally {
    comparison.rows.length = 0;
  }
});
