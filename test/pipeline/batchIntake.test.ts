import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchIntake } from '../../src/pipeline/BatchIntake';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** An intake whose batches each take `costMs` of a fake clock; records what it processed. */
function intakeWithCost(costMs: number, options: { maxPendingBytes?: number; sliceMs?: number } = {}) {
  let nowMs = 0;
  const processed: string[] = [];
  const intake = new BatchIntake(
    (records) => {
      processed.push(records.toString());
      nowMs += costMs;
    },
    { maxPendingBytes: options.maxPendingBytes ?? 1 << 20, sliceMs: options.sliceMs ?? 10, now: () => nowMs },
  );
  return { intake, processed };
}

test('batches are turned into spans after push returns, in order', async () => {
  const { intake, processed } = intakeWithCost(1);
  intake.push(Buffer.from('a'), 1);
  intake.push(Buffer.from('b'), 1);
  assert.deepEqual(processed, [], 'the addon callback only queues');
  await nextTurn();
  assert.deepEqual(processed, ['a', 'b']);
  assert.deepEqual(intake.counters, { batchesDropped: 0, exchangesDropped: 0, pendingBatches: 0, pendingBytes: 0 });
});

test('a backlog is worked off one slice per turn of the event loop, so I/O runs between slices', async () => {
  const { intake, processed } = intakeWithCost(6, { sliceMs: 10 });
  for (const name of ['a', 'b', 'c', 'd', 'e']) intake.push(Buffer.from(name), 1);
  // What an exporter's socket callback would see: how far the backlog got
  // each time the loop came round to it.
  const seen: number[] = [];
  const probe = (): void => {
    seen.push(processed.length);
    if (processed.length < 5) setImmediate(probe);
  };
  setImmediate(probe);
  while (processed.length < 5) await nextTurn();
  assert.deepEqual(processed, ['a', 'b', 'c', 'd', 'e']);
  // 6 ms each against a 10 ms slice: two per slice (the second passes it), so three slices.
  assert.deepEqual(seen, [2, 4, 5]);
});

test('a batch slower than the whole slice still goes, one per turn', async () => {
  const { intake, processed } = intakeWithCost(50, { sliceMs: 10 });
  intake.push(Buffer.from('a'), 1);
  intake.push(Buffer.from('b'), 1);
  await nextTurn();
  assert.deepEqual(processed, ['a']);
  await nextTurn();
  assert.deepEqual(processed, ['a', 'b']);
});

test('past maxPendingBytes a batch is dropped and its exchanges counted; one batch is always taken', async () => {
  const { intake, processed } = intakeWithCost(0, { maxPendingBytes: 10 });
  intake.push(Buffer.alloc(12, 'x'), 3); // larger than the bound, but nothing is waiting
  intake.push(Buffer.from('y'), 2);
  intake.push(Buffer.from('z'), 4);
  assert.deepEqual(intake.counters, { batchesDropped: 2, exchangesDropped: 6, pendingBatches: 1, pendingBytes: 12 });
  await nextTurn();
  assert.deepEqual(processed, ['x'.repeat(12)]);
  intake.push(Buffer.from('after'), 1);
  await nextTurn();
  assert.deepEqual(processed, ['x'.repeat(12), 'after'], 'room again once the backlog is worked off');
  assert.equal(intake.counters.exchangesDropped, 6);
});

test('drain works off everything at once (at stop), and nothing runs twice', async () => {
  const { intake, processed } = intakeWithCost(100, { sliceMs: 10 });
  for (const name of ['a', 'b', 'c']) intake.push(Buffer.from(name), 1);
  intake.drain();
  assert.deepEqual(processed, ['a', 'b', 'c']);
  await nextTurn();
  await nextTurn();
  assert.deepEqual(processed, ['a', 'b', 'c']);
  assert.equal(intake.counters.pendingBytes, 0);
});

test('empty batches are ignored', async () => {
  const { intake, processed } = intakeWithCost(1);
  intake.push(Buffer.alloc(0), 0);
  await nextTurn();
  assert.deepEqual(processed, []);
  assert.equal(intake.counters.pendingBatches, 0);
});

test('a batch is released once its buffers are no longer read: after processing (even a failed one), when dropped, when empty', async () => {
  const released: string[] = [];
  const release = (name: string) => () => released.push(name);
  const seenAtProcess: string[][] = [];
  const intake = new BatchIntake(
    (records) => {
      seenAtProcess.push([...released]);
      if (records.toString() === 'bad') throw new Error('broken batch');
    },
    { maxPendingBytes: 4, sliceMs: 10, now: () => 0 },
  );
  intake.push(Buffer.from('abc'), 1, undefined, release('abc'));
  intake.push(Buffer.from('toolong'), 1, undefined, release('toolong'));
  intake.push(Buffer.alloc(0), 0, undefined, release('empty'));
  assert.deepEqual(released, ['toolong', 'empty'], 'a dropped or empty batch is released at once');
  await nextTurn();
  assert.deepEqual(seenAtProcess, [['toolong', 'empty']], 'not released before it is processed');
  assert.deepEqual(released, ['toolong', 'empty', 'abc']);
  intake.push(Buffer.from('bad'), 1, undefined, release('bad'));
  assert.throws(() => intake.drain(), /broken batch/);
  assert.deepEqual(released, ['toolong', 'empty', 'abc', 'bad'], 'released even when processing throws');
});

test('after close() a batch is dropped and counted, and its buffer given back; what was queued before still drains', async () => {
  const { intake, processed } = intakeWithCost(0);
  intake.push(Buffer.from('a'), 1);
  intake.close();
  let released = 0;
  intake.push(Buffer.from('late'), 4, undefined, () => released++);
  intake.drain();
  assert.deepEqual(processed, ['a']);
  assert.equal(released, 1);
  assert.deepEqual(intake.counters, { batchesDropped: 1, exchangesDropped: 4, pendingBatches: 0, pendingBytes: 0 });
});
