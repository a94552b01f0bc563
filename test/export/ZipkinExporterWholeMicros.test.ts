import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roundToMicros } from '../../src/export/ZipkinExporterWholeMicros';

test('start times are rounded to whole microseconds, carrying into the seconds', () => {
  assert.deepEqual(roundToMicros([1700000000, 123456789]), [1700000000, 123457000]);
  assert.deepEqual(roundToMicros([1700000000, 123456499]), [1700000000, 123456000]);
  assert.deepEqual(roundToMicros([1700000000, 999999600]), [1700000001, 0]);
  assert.deepEqual(roundToMicros([5, 0]), [5, 0]);
});
