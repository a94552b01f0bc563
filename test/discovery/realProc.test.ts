import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessWatcher } from '../../src/discovery/ProcessWatcher';
import { startProcess } from '../support/processes';

const LISTENER = "require('http').createServer().listen(0,'127.0.0.1',function(){console.log(this.address().port)})";

test('real /proc: --open-port finds exactly the child listening on it', async (t) => {
  const child = startProcess(t, process.execPath, ['-e', LISTENER]);
  const firstLine = (await child.waitForOutput(/^(.*)\n/, 10_000, 'stdout'))[1];
  const port = Number(firstLine);
  assert.ok(Number.isInteger(port) && port > 0, `bad port line: ${firstLine}`);

  const errors: unknown[] = [];
  const watcher = new ProcessWatcher({
    selection: { pids: [], exes: [], openPorts: [port] },
    onError: (error) => errors.push(error),
  });
  watcher.scanNow();

  const found = watcher.current();
  assert.deepEqual(
    found.map((proc) => proc.pid),
    [child.pid],
  );
  const [proc] = found;
  assert.equal(proc!.matchedBy, `--open-port ${port}`);
  assert.equal(proc!.info.exePath, process.execPath);
  // `node -e` has no script to name the service after.
  assert.equal(proc!.serviceName, `unknown_service:${proc!.info.exeName}`);
  assert.equal(proc!.resource['process.pid'], child.pid);
  assert.deepEqual(errors, []);
});

test('real /proc: --pid of a shell picks the node process it started, by its parent link', async (t) => {
  // The child stays in the shell's process group: stopping the shell ends both.
  const shell = startProcess(t, 'sh', ['-c', `"$0" -e "$1" & echo "child $!"; wait`, process.execPath, LISTENER]);
  const childPid = Number((await shell.waitForOutput(/^child (\d+)$/m, 10_000, 'stdout'))[1]);
  const port = Number((await shell.waitForOutput(/^(\d+)$/m, 10_000, 'stdout'))[1]);
  assert.ok(childPid > 0 && port > 0, 'the shell printed its child and the child its port');

  const watcher = new ProcessWatcher({ selection: { pids: [shell.pid], exes: [], openPorts: [] } });
  watcher.scanNow();
  assert.deepEqual(
    watcher.current().map((proc) => [proc.pid, proc.matchedBy, proc.withDescendants]),
    [
      [shell.pid, `--pid ${shell.pid}`, true],
      [childPid, `--pid ${shell.pid} (descendant)`, true],
    ],
  );
});
