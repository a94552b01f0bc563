/**
 * --open-port finds services listening in another network namespace (a
 * container's), which sonde's own /proc/net/tcp does not list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { ProcessWatcher } from '../../src/discovery';

function canUnshareNet(): boolean {
  try {
    execFileSync('unshare', ['--net', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('a listener in its own network namespace is found by port', { skip: canUnshareNet() ? false : 'unshare --net is not permitted here (needs root)' }, async (t) => {
  // Port 0 would be fine too, but a fixed port that sonde's own namespace
  // does not use proves the match came from the other namespace.
  const port = 40000 + (process.pid % 20000);
  const child = spawn('unshare', ['--net', process.execPath, '-e', `require('http').createServer().listen(${port}, '127.0.0.1', () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('up') && resolve());
    child.on('exit', (code) => reject(new Error(`listener exited ${code}`)));
  });
  // unshare execs node: same pid.
  const watcher = new ProcessWatcher({ selection: { pids: [], exes: [], openPorts: [port] }, ownPid: process.pid });
  watcher.scanNow();
  const found = watcher.current();
  assert.deepEqual(found.map((p) => p.pid), [child.pid]);
  assert.equal(found[0].matchedBy, `--open-port ${port}`);
});
