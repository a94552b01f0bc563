/**
 * The count of execs discovery's --exe relies on to skip re-reading the exe
 * link of processes it rejected: counted by the kernel from attach to stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { DEFAULT_NATIVE_OPTIONS, loadNativeModule, validateNativeOptions } from '../../src/native/binding';

test('the kernel counts every exec on the host from attach to stop', { timeout: 60_000 }, () => {
  const native = loadNativeModule();
  const tracer = new native.Tracer(validateNativeOptions({ ...DEFAULT_NATIVE_OPTIONS, selfPid: process.pid, traceAllPids: false }));
  assert.equal(tracer.execCount(), undefined, 'nothing counts before attach');
  tracer.start(() => {});
  try {
    const before = tracer.execCount();
    assert.equal(typeof before, 'number');
    for (let i = 0; i < 3; i++) execFileSync('/bin/true');
    const after = tracer.execCount() ?? NaN;
    assert.ok(after >= before! + 3, `${after} execs counted after three more than ${before}`);
  } finally {
    tracer.stop();
  }
  assert.equal(tracer.execCount(), undefined, 'nothing counts after stop');
});
