/**
 * --pid of a process that serves through its children: a wrapper shell that
 * starts the node server. The children running when sonde starts are traced
 * and named in its log; a child started later is selected by the kernel at
 * fork, so its first requests are traced before any /proc scan sees it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpGrpcReceiver, type ReceivedSpan } from '../support/receivers';
import { REPO_ROOT, request, startProcess, startSonde, type RunningProcess } from './support';

const HELLO = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'hello-server.js');
// `& … wait` keeps the shell as the parent: a lone command would be exec'd by the shell itself.
// The server stays in the shell's process group, so stopping the shell ends it too.
const START_SERVER = `"$0" "$1" & echo "child $!"; wait`;

/** The server the shell started, and the port it listens on. */
async function childAndPort(shell: RunningProcess): Promise<{ childPid: number; port: number }> {
  const child = await shell.waitForOutput(/^child (\d+)$/m, 10_000, 'stdout');
  const port = await shell.waitForOutput(/^(\d+)$/m, 10_000, 'stdout');
  return { childPid: Number(child[1]), port: Number(port[1]) };
}

function serverSpansUnder(spans: ReceivedSpan[], prefix: string): ReceivedSpan[] {
  return spans.filter((s) => s.kind === 'SERVER' && String(s.attributes['url.path']).startsWith(prefix));
}

function assertServedBy(spans: ReceivedSpan[], childPid: number): void {
  for (const s of spans) {
    assert.equal(s.resource['process.pid'], childPid, 'the node child served it, not the shell');
    assert.equal(s.resource['service.name'], 'hello-server', 'the child is named as itself');
  }
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('--pid of a wrapper shell traces the node server it already started, and says so', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const shell = startProcess(t, 'sh', ['-c', START_SERVER, process.execPath, HELLO]);
  const { childPid, port } = await childAndPort(shell);
  const shellPid = shell.child.pid!;

  const sonde = await startSonde(t, ['--pid', String(shellPid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  assert.match(sonde.stderr(), new RegExp(`tracing process\\s+pid=${shellPid} exe=\\S+ service=\\S+ matchedBy=--pid ${shellPid}$`, 'm'));
  assert.match(
    sonde.stderr(),
    new RegExp(`tracing process\\s+pid=${childPid} exe=node service=hello-server matchedBy=${escape(`--pid ${shellPid} (descendant)`)}$`, 'm'),
  );

  for (let i = 0; i < 3; i++) assert.equal((await request(`http://127.0.0.1:${port}/present/${i}`)).status, 200);
  const spans = serverSpansUnder(await otlp.waitFor((s) => serverSpansUnder(s, '/present/').length >= 3, 20_000), '/present/');
  assert.equal(await sonde.stop(), 0);
  assert.deepEqual(spans.map((s) => s.attributes['url.path']).sort(), ['/present/0', '/present/1', '/present/2']);
  assertServedBy(spans, childPid);
});

test('--pid of a shell traces a server the shell starts after sonde attached, from its first request', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-pidtree-'));
  const go = path.join(dir, 'go');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const shell = startProcess(t, 'sh', ['-c', `while [ ! -e "$2" ]; do sleep 0.1; done; ${START_SERVER}`, process.execPath, HELLO, go]);
  const shellPid = shell.child.pid!;

  // Scans far apart: the requests below come before the next one, so only
  // the kernel, following the shell's forks, can have selected the server.
  const sonde = await startSonde(t, ['--pid', String(shellPid), '--discovery-interval-ms', '5000'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  assert.match(sonde.stderr(), new RegExp(`tracing process\\s+pid=${shellPid} .*matchedBy=--pid ${shellPid}$`, 'm'));
  fs.writeFileSync(go, '');
  const { childPid, port } = await childAndPort(shell);

  for (let i = 0; i < 3; i++) assert.equal((await request(`http://127.0.0.1:${port}/future/${i}`)).status, 200);
  const spans = serverSpansUnder(await otlp.waitFor((s) => serverSpansUnder(s, '/future/').length >= 3, 20_000), '/future/');
  assert.deepEqual(spans.map((s) => s.attributes['url.path']).sort(), ['/future/0', '/future/1', '/future/2']);
  assertServedBy(spans, childPid);

  // The next scan reports it like the processes found at start.
  await sonde.waitForOutput(
    new RegExp(`tracing process\\s+pid=${childPid} exe=node service=hello-server matchedBy=${escape(`--pid ${shellPid} (descendant)`)}$`, 'm'),
    15_000,
  );
  assert.equal(await sonde.stop(), 0);
});
