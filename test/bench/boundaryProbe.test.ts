/**
 * tailCost's minimal arm measures sonde's programs against the least a
 * tracer of request and response boundaries does in the kernel. That
 * yardstick is only fair if it sees what it claims to: an event for each
 * message start of the selected server, from its first hooked syscall on,
 * and none from other processes. One that saw nothing would be cheap for
 * the wrong reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { attachBoundaryProbe, buildBoundaryProbe, stopBoundaryProbe } from '../../bench/lib/boundaryProbe';
import { REPO_ROOT, startProcess } from '../support/processes';

const REQUESTS = 10;

function get(url: string, agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url}: no answer in 10 s`)));
  });
}

test(
  'the boundary probe sends one event per message start of the selected server, and none of the client',
  { timeout: 120_000, skip: process.getuid?.() !== 0 ? 'needs root (loads eBPF programs)' : false },
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-boundary-probe-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const server = startProcess(t, process.execPath, [path.join(REPO_ROOT, 'test/e2e/fixtures/hello-server.js')]);
    const port = (await server.waitForOutput(/^(\d+)$/m, 15_000, 'stdout'))[1];
    const probe = await buildBoundaryProbe(dir, [server.pid]);
    // The loader holds its programs until its stdin closes: a pipe, which
    // the suite's own process starter does not give.
    const loader = await attachBoundaryProbe(probe);
    t.after(() => loader.stop('SIGKILL', 2000));

    // One keep-alive connection, made by this process (not selected).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < REQUESTS; i++) await get(`http://127.0.0.1:${port}/r${i}`, agent);
    } finally {
      agent.destroy();
    }
    const { events, exit } = await stopBoundaryProbe(loader);
    assert.deepEqual(exit, { code: 0, killed: false }, loader.stderr());
    assert.ok(Number.isFinite(events), `the loader did not say what it drained:\n${loader.stderr()}`);
    // Each request's read and each response's write flip the direction
    // (the first request finds the connection new): two per request. The
    // probe does not ask which fds are sockets, so the server's event loop
    // may add one or two of its own (one in this test's first runs); this
    // process's 20, the client side, would be far more.
    assert.ok(events >= 2 * REQUESTS && events <= 2 * REQUESTS + 3, `${events} events for ${REQUESTS} requests`);
  },
);
