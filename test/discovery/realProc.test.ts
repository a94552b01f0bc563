import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as readline from 'node:readline';
import { ProcessWatcher } from '../../src/discovery/ProcessWatcher';

const LISTENER = "require('http').createServer().listen(0,'127.0.0.1',function(){console.log(this.address().port)})";

test('real /proc: --open-port finds exactly the child listening on it', async () => {
  const child = spawn(process.execPath, ['-e', LISTENER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = readline.createInterface({ input: child.stdout! });
    const [firstLine] = (await Promise.race([
      once(lines, 'line'),
      once(child, 'exit').then(([code]) => {
        throw new Error(`listener exited early with ${code}`);
      }),
    ])) as [string];
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
  } finally {
    child.kill('SIGKILL');
  }
});

test('real /proc: --pid of a shell picks the node process it started, by its parent link', async () => {
  // Own process group, so that the shell and its child are killed together.
  const shell = spawn('sh', ['-c', `"$0" -e "$1" & echo "child $!"; wait`, process.execPath, LISTENER], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  try {
    const lines = readline.createInterface({ input: shell.stdout! });
    let childPid: number | undefined;
    let port: number | undefined;
    for await (const line of lines) {
      const child = /^child (\d+)$/.exec(line);
      if (child) childPid = Number(child[1]);
      else if (/^\d+$/.test(line)) port = Number(line);
      if (childPid !== undefined && port !== undefined) break;
    }
    assert.ok(childPid !== undefined && port !== undefined, 'the shell printed its child and the child its port');

    const watcher = new ProcessWatcher({ selection: { pids: [shell.pid!], exes: [], openPorts: [] } });
    watcher.scanNow();
    assert.deepEqual(
      watcher.current().map((proc) => [proc.pid, proc.matchedBy, proc.withDescendants]),
      [
        [shell.pid, `--pid ${shell.pid}`, true],
        [childPid, `--pid ${shell.pid} (descendant)`, true],
      ],
    );
  } finally {
    process.kill(-shell.pid!, 'SIGKILL');
  }
});
