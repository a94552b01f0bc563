/**
 * The queue of batches between the addon's reader thread and JavaScript
 * holds 64. Past that the reader waits for the JavaScript thread
 * (batchQueueWaitMs) before it drops a batch, and what it drops is counted:
 * every exchange of the traced server is either handed over or counted as
 * dropped.
 *
 * The JavaScript thread is held busy, as a long task would hold it, while a
 * client in another process makes its requests; batches of a millisecond's
 * records pile up behind it, and the drains after the wait, of everything
 * the ring buffer took meanwhile, are cut into batches as they are read.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_NATIVE_OPTIONS, loadNativeModule, validateNativeOptions } from '../../src/native/binding';
import { REPO_ROOT, startProcess, waitUntil } from '../support/processes';

const REQUESTS = 1500;

// Keep-alive requests, one after the other; "done" is written once all are answered.
const CLIENT = `
import http.client, sys
conn = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]))
for i in range(int(sys.argv[2])):
    conn.request('GET', '/q%d' % i)
    conn.getresponse().read()
open(sys.argv[3], 'w').write('done')
`;

/** Blocks this thread until `file` exists, as a long synchronous task would; false past `limitMs`. */
function busyUntilExists(file: string, limitMs: number): boolean {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const until = Date.now() + limitMs;
  while (!fs.existsSync(file)) {
    if (Date.now() > until) return false;
    Atomics.wait(nap, 0, 0, 5);
  }
  return true;
}

async function tracedRun(t: TestContext, batchQueueWaitMs: number) {
  const server = startProcess(t, process.execPath, [path.join(REPO_ROOT, 'test/e2e/fixtures/hello-server.js')]);
  const port = (await server.waitForOutput(/^(\d+)$/m, 15_000, 'stdout'))[1];
  const native = loadNativeModule();
  const tracer = new native.Tracer(
    validateNativeOptions({
      ...DEFAULT_NATIVE_OPTIONS,
      selfPid: process.pid,
      traceAllPids: false,
      // A batch every millisecond, of a few records: 64 of them are soon queued.
      pollIntervalMs: 1,
      maxBatchBytes: 4096,
      batchQueueWaitMs,
    }),
  );
  let handedOver = 0;
  let largestBatch = 0;
  tracer.start((_batch, exchanges, recordsBytes) => {
    handedOver += exchanges;
    largestBatch = Math.max(largestBatch, recordsBytes);
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-queue-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    tracer.setPidSelected(server.pid, true);
    const done = path.join(dir, 'done');
    const client = startProcess(t, 'python3', ['-c', CLIENT, port, String(REQUESTS), done]);
    assert.ok(busyUntilExists(done, 60_000), `the client did not finish: ${client.stderr()}`);
    await client.exited;
    // Now the queue drains; everything is either handed over or dropped.
    const settled = await waitUntil(() => {
      const c = tracer.counters();
      return handedOver + c.exchangesDropped >= REQUESTS;
    }, 20_000);
    const c = tracer.counters();
    assert.ok(settled, `${handedOver} handed over and ${c.exchangesDropped} dropped of ${REQUESTS}`);
    assert.equal(handedOver + c.exchangesDropped, REQUESTS, 'every exchange handed over or counted as dropped, once');
    // The drains after the wait are long: cut into batches as they are read.
    assert.ok(largestBatch > 0 && largestBatch <= 4096, `a batch of ${largestBatch} bytes of records`);
    return { handedOver, counters: c };
  } finally {
    tracer.stop();
  }
}

test('a JavaScript thread held up past 64 batches is waited for: nothing is dropped', { timeout: 120_000 }, async (t) => {
  const { handedOver, counters } = await tracedRun(t, 60_000);
  assert.ok(counters.batchesWaited > 0, 'the queue was full at least once');
  assert.equal(counters.batchesDropped, 0);
  assert.equal(handedOver, REQUESTS);
});

test('with no wait, the batches that find the queue full are dropped, and counted', { timeout: 120_000 }, async (t) => {
  const { handedOver, counters } = await tracedRun(t, 0);
  assert.equal(counters.batchesWaited, 0, 'nothing waited');
  assert.ok(counters.batchesDropped > 0);
  assert.ok(counters.exchangesDropped > 0 && handedOver < REQUESTS, `${counters.exchangesDropped} dropped`);
});

test('once a wait has run out, the batches after it are dropped at once, not each after a wait of its own', { timeout: 120_000 }, async (t) => {
  const { counters } = await tracedRun(t, 20);
  assert.ok(counters.batchesDropped > 0, 'the JavaScript thread was held up longer than the wait');
  assert.ok(counters.batchesWaited > 0 && counters.batchesWaited < counters.batchesDropped, `${counters.batchesWaited} batches waited, ${counters.batchesDropped} dropped`);
});
