/**
 * The counts discovery relies on to skip work: execs (--exe need not read
 * the exe link of processes it rejected) and processes that start, exec
 * or end (a --pid or --exe scan of /proc is skipped while none did), both
 * counted by the kernel from attach to stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { DEFAULT_NATIVE_OPTIONS, loadNativeModule, validateNativeOptions } from '../../src/native/binding';

function newTracer() {
  const native = loadNativeModule();
  return new native.Tracer(validateNativeOptions({ ...DEFAULT_NATIVE_OPTIONS, selfPid: process.pid, traceAllPids: false }));
}

test('the kernel counts every exec on the host from attach to stop', { timeout: 60_000 }, () => {
  const tracer = newTracer();
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

test('the kernel counts processes forked, exec\'d and ended, not threads', { timeout: 60_000 }, () => {
  const tracer = newTracer();
  assert.equal(tracer.processChangeCount(), undefined, 'nothing counts before attach');
  tracer.start(() => {});
  try {
    const before = tracer.processChangeCount();
    assert.equal(typeof before, 'number');
    // Each: a fork, an exec and an exit, all before execFileSync returns.
    for (let i = 0; i < 3; i++) execFileSync('/bin/true');
    const afterProcesses = tracer.processChangeCount() ?? NaN;
    assert.ok(afterProcesses >= before! + 9, `${afterProcesses} changes counted after three processes more than ${before}`);
    // One process of 2000 threads: were threads counted, that alone would be thousands.
    execFileSync('python3', ['-c', 'import threading\nfor _ in range(2000):\n    t = threading.Thread(target=lambda: None); t.start(); t.join()']);
    const afterThreads = tracer.processChangeCount() ?? NaN;
    // Other tests may start processes meanwhile: a bound far below the threads, not an exact count.
    assert.ok(afterThreads - afterProcesses < 500, `${afterThreads - afterProcesses} changes counted for one process of 2000 threads`);
  } finally {
    tracer.stop();
  }
  assert.equal(tracer.processChangeCount(), undefined, 'nothing counts after stop');
});
