/**
 * --open-port finds services listening in another network namespace (a
 * container's), which sonde's own /proc/net/tcp does not list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessWatcher } from '../../src/discovery';
import { canUnshareNet } from '../support/netns';
import { startProcess } from '../support/processes';

test('a listener in its own network namespace is found by port', { skip: canUnshareNet() ? false : 'unshare --net is not permitted here (needs root)' }, async (t) => {
  // Port 0 would be fine too, but a fixed port that sonde's own namespace
  // does not use proves the match came from the other namespace.
  const port = 40000 + (process.pid % 20000);
  const child = startProcess(t, 'unshare', ['--net', process.execPath, '-e', `require('http').createServer().listen(${port}, '127.0.0.1', () => console.log('up'))`]);
  await child.waitForOutput(/up/, 10_000, 'stdout');
  // unshare execs node: same pid.
  const watcher = new ProcessWatcher({ selection: { pids: [], exes: [], openPorts: [port] }, ownPid: process.pid });
  watcher.scanNow();
  const found = watcher.current();
  assert.deepEqual(found.map((p) => p.pid), [child.pid]);
  assert.equal(found[0].matchedBy, `--open-port ${port}`);
});
