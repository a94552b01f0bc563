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
import { listPids, readStat } from '../../src/discovery/procfs';
import { startOtlpGrpcReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/receivers';
import { REPO_ROOT, request, startProcess, startSonde, type RunningProcess } from './support';

const HELLO = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'hello-server.js');
// `& … wait` keeps the shell as the parent: a lone command would be exec'd by the shell itself.
const START_SERVER = `"$0" "$1" & echo "child $!"; wait`;

function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of listPids()) {
    const stat = readStat(pid);
    if (stat === undefined) continue;
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(pid);
    children.set(stat.ppid, siblings);
  }
  const found: number[] = [];
  const queue = [...(children.get(root) ?? [])];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    found.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

interface KnownProcess {
  pid: number;
  startTimeTicks: number | undefined;
}

const known = (pid: number): KnownProcess => ({ pid, startTimeTicks: readStat(pid)?.startTimeTicks });

/**
 * The shell is stopped first so that it forks nothing while its children
 * are killed. Children it no longer parents (it died first) are killed by
 * pid, if that pid still names the same process.
 */
async function stopShellAndChildren(shell: RunningProcess, children: readonly KnownProcess[]): Promise<void> {
  const pid = shell.child.pid;
  const running = pid !== undefined && shell.child.exitCode === null && shell.child.signalCode === null;
  if (running) shell.child.kill('SIGSTOP');
  const doomed = new Set(running ? descendantsOf(pid) : []);
  for (const child of children) {
    if (child.startTimeTicks !== undefined && readStat(child.pid)?.startTimeTicks === child.startTimeTicks) doomed.add(child.pid);
  }
  for (const child of doomed) {
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await shell.stop('SIGKILL');
}

/** Every cleanup step runs even when an earlier one throws. */
function cleanUp(steps: Array<() => Promise<unknown> | unknown>): () => Promise<void> {
  return async () => {
    const failures: unknown[] = [];
    for (const step of steps) {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, 'cleanup failed');
  };
}

/** The server the shell started: recorded in `children` as soon as the shell names it, for the cleanup. */
async function childAndPort(shell: RunningProcess, children: KnownProcess[]): Promise<{ childPid: number; port: number }> {
  const child = await shell.waitForOutput(/^child (\d+)$/m, 10_000, 'stdout');
  const childPid = Number(child[1]);
  children.push(known(childPid));
  const port = await shell.waitForOutput(/^(\d+)$/m, 10_000, 'stdout');
  return { childPid, port: Number(port[1]) };
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
  let otlp: OtlpReceiver | undefined;
  let sonde: RunningProcess | undefined;
  const children: KnownProcess[] = [];
  const shell = startProcess('sh', ['-c', START_SERVER, process.execPath, HELLO]);
  t.after(cleanUp([() => sonde?.stop(), () => stopShellAndChildren(shell, children), () => otlp?.close()]));
  otlp = await startOtlpGrpcReceiver();
  const { childPid, port } = await childAndPort(shell, children);
  const shellPid = shell.child.pid!;

  sonde = await startSonde(['--pid', String(shellPid)], { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
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
  let otlp: OtlpReceiver | undefined;
  let sonde: RunningProcess | undefined;
  const children: KnownProcess[] = [];
  const shell = startProcess('sh', ['-c', `while [ ! -e "$2" ]; do sleep 0.1; done; ${START_SERVER}`, process.execPath, HELLO, go]);
  t.after(
    cleanUp([
      () => sonde?.stop(),
      () => stopShellAndChildren(shell, children),
      () => otlp?.close(),
      () => fs.rmSync(dir, { recursive: true, force: true }),
    ]),
  );
  otlp = await startOtlpGrpcReceiver();
  const shellPid = shell.child.pid!;

  // Scans far apart: the requests below come before the next one, so only
  // the kernel, following the shell's forks, can have selected the server.
  sonde = await startSonde(['--pid', String(shellPid), '--discovery-interval-ms', '5000'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  assert.match(sonde.stderr(), new RegExp(`tracing process\\s+pid=${shellPid} .*matchedBy=--pid ${shellPid}$`, 'm'));
  fs.writeFileSync(go, '');
  const { childPid, port } = await childAndPort(shell, children);

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
