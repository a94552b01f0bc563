/**
 * The reader hands a poll's records to JavaScript in batches of at most
 * maxBatchBytes, cut at record boundaries (batchEnd, native/src/core/RecordWriter.h).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeModule } from '../../src/native/binding';
import { RECORD_HEADER_BYTES, RECORD_OFFSETS } from '../../src/native/exchangeDecoder';

const native = loadNativeModule();

/** Records of the given total sizes, back to back; only record_bytes is read by the cut. */
function records(...sizes: number[]): Buffer {
  const out = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
  let at = 0;
  for (const size of sizes) {
    out.writeUInt32LE(size, at + RECORD_OFFSETS.record_bytes);
    at += size;
  }
  return out;
}

const R = RECORD_HEADER_BYTES;

test('records are cut into batches of at most maxBytes, whole records only', () => {
  // 3 records of R+100: two fit 2R+200 exactly, the third starts the next batch.
  assert.deepEqual(native.batchBounds(records(R + 100, R + 100, R + 100), 2 * R + 200), [2 * R + 200, 2, 3 * R + 300, 1]);
  // One byte short: one record per batch.
  assert.deepEqual(native.batchBounds(records(R + 100, R + 100), 2 * R + 199), [R + 100, 1, 2 * R + 200, 1]);
  // Everything fits: one batch.
  assert.deepEqual(native.batchBounds(records(R, R, R), 1 << 20), [3 * R, 3]);
});

test('a record larger than maxBytes goes alone, whole', () => {
  assert.deepEqual(native.batchBounds(records(R, 10 * R, R), 2 * R), [R, 1, 11 * R, 1, 12 * R, 1]);
});

test('bytes that are no record end the batch with them, for the decoder to report', () => {
  const good = records(R, R);
  // A record_bytes past the end, then a tail shorter than a record header.
  const bad = records(R);
  bad.writeUInt32LE(5 * R, RECORD_OFFSETS.record_bytes);
  assert.deepEqual(native.batchBounds(Buffer.concat([good, bad]), 1 << 20), [3 * R, 3]);
  assert.deepEqual(native.batchBounds(Buffer.concat([good, Buffer.alloc(7)]), 2 * R), [2 * R + 7, 3]);
  // A zero record_bytes must not loop forever.
  assert.deepEqual(native.batchBounds(Buffer.concat([good, Buffer.alloc(R)]), 1 << 20), [3 * R, 3]);
});
