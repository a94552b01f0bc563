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
