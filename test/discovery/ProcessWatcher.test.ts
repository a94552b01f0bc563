import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProcessWatcher, type ProcessWatcherOptions, type TracedProcess } from '../../src/discovery/ProcessWatcher';
import type { Selection } from '../../src/discovery/selectors';
import { FakeProc, tcpRow, type FakeProcess } from './fakeProc';

const OWN_PID = 1;

const ordersNode: FakeProcess = {
  pid: 100,
  startTimeTicks: 500,
  comm: 'node',
  exe: '/usr/local/bin/node',
  cmdline: ['node', '/srv/orders/index.js'],
  environ: { PATH: '/usr/bin' },
};
const pythonServer: FakeProcess = {
  pid: 200,
  startTimeTicks: 600,
  comm: 'python3',
  exe: '/usr/bin/python3.11',
  cmdline: ['python3', '-m', 'http.server', '8000'],
};
const nginx: FakeProcess = {
  pid: 300,
  startTimeTicks: 700,
  comm: 'nginx',
  exe: '/usr/sbin/nginx',
  cmdline: ['nginx: master process /usr/sbin/nginx'],
  socketInodes: [12345],
};
const client: FakeProcess = {
  pid: 301,
  startTimeTicks: 710,
  comm: 'curl',
  exe: '/usr/bin/curl',
  cmdline: ['curl', 'http://127.0.0.1:8080/'],
  socketInodes: [40002],
};

const LISTEN_8080 = tcpRow(0, '00000000:1F90', '00000000:0000', '0A', 12345);
const ESTABLISHED_TO_8080 = tcpRow(1, '0100007F:D2F0', '0100007F:1F90', '01', 40002);
const LISTEN_9090_V6 = tcpRow(0, '00000000000000000000000000000000:2382', '00000000000000000000000000000000:0000', '0A', 23456);

type Event = [kind: 'start' | 'exit', pid: number, startTimeTicks: number, matchedBy: string];

function harness(selection: Partial<Selection>, extra: Partial<ProcessWatcherOptions> = {}) {
  const fake = new FakeProc();
  const events: Event[] = [];
  const errors: unknown[] = [];
  const record = (kind: Event[0]) => (proc: TracedProcess) =>
    events.push([kind, proc.pid, proc.startTimeTicks, proc.matchedBy]);
  const watcher = new ProcessWatcher({
    selection: { pids: [], exes: [], openPorts: [], ...selection },
    ownPid: OWN_PID,
    procRoot: fake.root,
    onStart: record('start'),
    onExit: record('exit'),
    onError: (error) => errors.push(error),
    ...extra,
  });
  const takeEvents = (): Event[] => events.splice(0);
  return { fake, watcher, takeEvents, errors };
}

test('--pid: starts, stays quiet while alive, exits when gone', () => {
  const { fake, watcher, takeEvents, errors } = harness({ pids: [100] });
  try {
    fake.add(ordersNode);
    fake.add(pythonServer);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 100, 500, '--pid 100']]);
    const [orders] = watcher.current();
    assert.equal(orders?.serviceName, 'orders');
    assert.equal(orders?.resource['process.pid'], 100);
    assert.equal(orders?.info.exePath, '/usr/local/bin/node');

    watcher.scanNow();
    assert.deepEqual(takeEvents(), []);

    fake.remove(100);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['exit', 100, 500, '--pid 100']]);
    assert.deepEqual(watcher.current(), []);
    assert.deepEqual(errors, []);
  } finally {
    fake.cleanup();
  }
});

test('--pid: a reused pid is a different process and is not traced', () => {
  const { fake, watcher, takeEvents } = harness({ pids: [100] });
  try {
    fake.add(ordersNode);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 100, 500, '--pid 100']]);

    fake.remove(100);
    watcher.scanNow();
    fake.add({ ...ordersNode, startTimeTicks: 900, cmdline: ['node', '/srv/other/index.js'] });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['exit', 100, 500, '--pid 100']]);
    assert.deepEqual(watcher.current(), []);
  } finally {
    fake.cleanup();
  }
});

// A wrapper shell that started a node server, which forked a worker.
const wrapper: FakeProcess = {
  pid: 400,
  startTimeTicks: 800,
  comm: 'sh',
  exe: '/usr/bin/dash',
  cmdline: ['sh', '-c', 'node /srv/orders/index.js'],
};
const wrappedServer: FakeProcess = { ...ordersNode, pid: 410, ppid: 400, startTimeTicks: 810 };
const wrappedWorker: FakeProcess = {
  pid: 420,
  ppid: 410,
  startTimeTicks: 820,
  comm: 'node',
  exe: '/usr/local/bin/node',
  cmdline: ['node', '/srv/orders/worker.js'],
  environ: { OTEL_SERVICE_NAME: 'orders-worker' },
};

const traced = (watcher: ProcessWatcher): Array<[pid: number, serviceName: string, withDescendants: boolean]> =>
  watcher
    .current()
    .map((proc): [number, string, boolean] => [proc.pid, proc.serviceName, proc.withDescendants])
    .sort((a, b) => a[0] - b[0]);

test('between re-reads of every stat, a new pid is read at once and a known one keeps what was read of it', () => {
  const { fake, watcher, takeEvents } = harness({ pids: [400], exes: ['node'] }, { restatEveryScans: 3 });
  try {
    fake.add(wrapper);
    watcher.scanNow(); // re-reads every stat
    assert.deepEqual(takeEvents(), [['start', 400, 800, '--pid 400']]);

    // A child new since the last scan is read and picked by the next one.
    fake.add(wrappedServer);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 410, 810, '--pid 400 (descendant)']]);

    // A pid reused by another process between two scans (which takes the
    // pid space wrapping in between) goes unseen until every stat is read
    // again: here the fourth scan (scans 1, 4, 7, ... read them all).
    fake.add({ ...wrappedServer, ppid: 1, startTimeTicks: 900, cmdline: ['node', '/srv/billing/server.js'] });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), []);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['exit', 410, 810, '--pid 400 (descendant)'],
      ['start', 410, 900, '--exe node'],
    ]);
  } finally {
    fake.cleanup();
  }
});

test('--pid: descendants running at start are picked, each named as itself; others are not', () => {
  const { fake, watcher, takeEvents, errors } = harness({ pids: [400] });
  try {
    fake.add(wrapper);
    fake.add(wrappedServer);
    fake.add(wrappedWorker);
    fake.add(pythonServer);
    fake.add({ ...pythonServer, pid: 430, ppid: 200, startTimeTicks: 830 });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['start', 400, 800, '--pid 400'],
      ['start', 410, 810, '--pid 400 (descendant)'],
      ['start', 420, 820, '--pid 400 (descendant)'],
    ]);
    assert.deepEqual(traced(watcher), [
      [400, 'dash', true],
      [410, 'orders', true],
      [420, 'orders-worker', true],
    ]);
    assert.equal(watcher.describe(410)?.resource['process.pid'], 410);
    assert.deepEqual(errors, []);
  } finally {
    fake.cleanup();
  }
});

test('--pid: a child and a grandchild that appear later are picked by the next scan, and exit alone', () => {
  const { fake, watcher, takeEvents } = harness({ pids: [400] });
  try {
    fake.add(wrapper);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 400, 800, '--pid 400']]);

    fake.add(wrappedServer);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 410, 810, '--pid 400 (descendant)']]);

    fake.add(wrappedWorker);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 420, 820, '--pid 400 (descendant)']]);

    fake.remove(420);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['exit', 420, 820, '--pid 400 (descendant)']]);
    assert.deepEqual(
      watcher.current().map((proc) => proc.pid),
      [400, 410],
    );
  } finally {
    fake.cleanup();
  }
});

test('--pid: a child and its own child, both new in one scan, are picked whatever their pid order', () => {
  const { fake, watcher, takeEvents } = harness({ pids: [400] });
  try {
    fake.add(wrapper);
    watcher.scanNow();
    takeEvents();
    // Pids wrap around: the grandchild may get a lower pid than its parent.
    fake.add({ ...wrappedServer, pid: 450 });
    fake.add({ ...wrappedWorker, pid: 405, ppid: 450 });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['start', 405, 820, '--pid 400 (descendant)'],
      ['start', 450, 810, '--pid 400 (descendant)'],
    ]);
  } finally {
    fake.cleanup();
  }
});

test('--pid: descendants stay picked, and keep being followed, after the selected process exits', () => {
  const { fake, watcher, takeEvents } = harness({ pids: [400] });
  try {
    fake.add(wrapper);
    fake.add(wrappedServer);
    watcher.scanNow();
    takeEvents();

    // The shell exits; its child is re-parented to init but stays the same process.
    fake.remove(400);
    fake.add({ ...wrappedServer, ppid: 1 });
    fake.add(wrappedWorker);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['exit', 400, 800, '--pid 400'],
      ['start', 420, 820, '--pid 400 (descendant)'],
    ]);
  } finally {
    fake.cleanup();
  }
});

test('--pid: sonde, its descendants and the processes that started it are never picked', () => {
  const sondePid = 440;
  // sonde's own pid given too, by mistake: still nothing of sonde's is picked.
  const { fake, watcher, takeEvents } = harness({ pids: [400, sondePid] }, { ownPid: sondePid });
  try {
    fake.add(wrapper);
    fake.add(wrappedServer);
    // sudo sonde --pid 400, typed in the selected shell.
    fake.add({ pid: 435, ppid: 400, startTimeTicks: 835, comm: 'sudo', exe: '/usr/bin/sudo', cmdline: ['sudo', 'sonde', '--pid', '400'] });
    fake.add({ ...ordersNode, pid: sondePid, ppid: 435, startTimeTicks: 840, cmdline: ['node', '/opt/sonde/bin/sonde'] });
    fake.add({ ...wrappedWorker, pid: 445, ppid: sondePid, startTimeTicks: 845 });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['start', 400, 800, '--pid 400'],
      ['start', 410, 810, '--pid 400 (descendant)'],
    ]);
    assert.equal(watcher.describe(sondePid), undefined);
    assert.equal(watcher.describe(445), undefined);
    assert.equal(watcher.describe(435), undefined);
  } finally {
    fake.cleanup();
  }
});

test('--pid: a reused pid is no parent, whether it is the selected pid or a descendant\'s', () => {
  const { fake, watcher, takeEvents } = harness({ pids: [400] }, { restatEveryScans: 1 });
  try {
    fake.add(wrapper);
    fake.add(wrappedServer);
    watcher.scanNow();
    takeEvents();

    // A process older than pid 410's current holder cannot be its child: 410 was reused between the reads.
    fake.add({ ...pythonServer, pid: 460, ppid: 410, startTimeTicks: 805 });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), []);

    // The shell and its child exit; unrelated processes take both pids and start children of their own.
    fake.remove(460);
    fake.add({ ...wrapper, startTimeTicks: 900, cmdline: ['sh', '-c', 'other'] });
    fake.add({ ...pythonServer, pid: 410, ppid: 1, startTimeTicks: 905 });
    fake.add({ ...pythonServer, pid: 470, ppid: 400, startTimeTicks: 910 });
    fake.add({ ...pythonServer, pid: 480, ppid: 410, startTimeTicks: 915 });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['exit', 400, 800, '--pid 400'],
      ['exit', 410, 810, '--pid 400 (descendant)'],
    ]);
    assert.deepEqual(watcher.current(), []);
    assert.equal(watcher.describe(470), undefined);
    assert.equal(watcher.describe(480), undefined);
  } finally {
    fake.cleanup();
  }
});

test('--pid: a descendant is labelled by --pid even when --exe also matches it, so its forks are followed', () => {
  const { fake, watcher, takeEvents } = harness({ pids: [400], exes: ['node'] });
  try {
    fake.add(wrapper);
    fake.add(wrappedServer);
    fake.add(pythonServer);
    fake.add({ ...ordersNode, pid: 500, startTimeTicks: 900 });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['start', 400, 800, '--pid 400'],
      ['start', 410, 810, '--pid 400 (descendant)'],
      ['start', 500, 900, '--exe node'],
    ]);
    assert.equal(watcher.describe(500)?.withDescendants, false);
  } finally {
    fake.cleanup();
  }
});

test('describe: a descendant the kernel selected at fork is named before any scan has seen it', () => {
  const { fake, watcher, takeEvents } = harness({ pids: [400] });
  try {
    fake.add(wrapper);
    watcher.scanNow();
    takeEvents();
    fake.add(wrappedServer);
    fake.add(wrappedWorker);

    const worker = watcher.describe(420, 820);
    assert.equal(worker?.serviceName, 'orders-worker');
    assert.equal(worker?.matchedBy, '--pid 400 (descendant)');
    assert.equal(worker?.withDescendants, true);
    assert.equal(watcher.describe(420, 819), undefined);
    assert.deepEqual(takeEvents(), [], 'the scan, not describe, reports processes');

    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['start', 410, 810, '--pid 400 (descendant)'],
      ['start', 420, 820, '--pid 400 (descendant)'],
    ]);
  } finally {
    fake.cleanup();
  }
});

test('--exe: by name, by argv[0] of an interpreter, by path glob; own pid excluded', () => {
  const { fake, watcher, takeEvents } = harness({ exes: ['node', 'python3', '/usr/sbin/*'] });
  try {
    fake.add(ordersNode);
    fake.add(pythonServer);
    fake.add(nginx);
    fake.add(client);
    fake.add({ ...ordersNode, pid: OWN_PID, startTimeTicks: 1, cmdline: ['node', '/opt/sonde/bin/sonde'] });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['start', 100, 500, '--exe node'],
      ['start', 200, 600, '--exe python3'],
      ['start', 300, 700, '--exe /usr/sbin/*'],
    ]);
    assert.deepEqual(
      watcher.current().map((proc) => [proc.pid, proc.serviceName]),
      [
        [100, 'orders'],
        [200, 'http.server'],
        [300, 'nginx'],
      ],
    );
  } finally {
    fake.cleanup();
  }
});

test('--exe: pid reuse by another matching process is an exit then a start', () => {
  const { fake, watcher, takeEvents } = harness({ exes: ['node'] }, { restatEveryScans: 1 });
  try {
    fake.add(ordersNode);
    watcher.scanNow();
    takeEvents();
    fake.add({ ...ordersNode, startTimeTicks: 800, cmdline: ['node', '/srv/billing/server.js'] });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [
      ['exit', 100, 500, '--exe node'],
      ['start', 100, 800, '--exe node'],
    ]);
    assert.equal(watcher.current()[0]?.serviceName, 'billing');
  } finally {
    fake.cleanup();
  }
});

test('--exe: a rejected process that execs into a match is picked up', () => {
  const { fake, watcher, takeEvents } = harness({ exes: ['node'] });
  try {
    const shell: FakeProcess = { pid: 400, startTimeTicks: 650, comm: 'sh', exe: '/bin/sh', cmdline: ['sh', '-c', 'exec node a.js'] };
    fake.add(shell);
    watcher.scanNow();
    watcher.scanNow();
    assert.deepEqual(takeEvents(), []);
    fake.add({ ...shell, comm: 'node', exe: '/usr/local/bin/node', cmdline: ['node', 'a.js'] });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 400, 650, '--exe node']]);
  } finally {
    fake.cleanup();
  }
});

test('--exe: while the kernel counts no exec, a rejected process is not read again; an exec makes the next scan read it', () => {
  let execs: number | undefined;
  const { fake, watcher, takeEvents } = harness({ exes: ['node'] }, { execCount: () => execs });
  try {
    const shell: FakeProcess = { pid: 400, startTimeTicks: 650, comm: 'sh', exe: '/bin/sh', cmdline: ['sh', '-c', 'exec node a.js'] };
    const asNode: FakeProcess = { ...shell, comm: 'node', exe: '/usr/local/bin/node', cmdline: ['node', 'a.js'] };
    fake.add(shell);
    watcher.scanNow(); // before attach: no count
    execs = 7;
    watcher.scanNow(); // the first count is compared with none: read again
    assert.deepEqual(takeEvents(), []);
    // The fake /proc changes under an unchanged count: only a scan that
    // skipped the exe link can still reject it, which shows it skipped.
    fake.add(asNode);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), []);
    execs = 8;
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 400, 650, '--exe node']]);
  } finally {
    fake.cleanup();
  }
});

test('--pid: while the kernel counts no process change, scans are skipped; the next change makes a scan see what came and went', () => {
  let changes: number | undefined;
  const { fake, watcher, takeEvents } = harness({ pids: [100] }, { processChangeCount: () => changes });
  try {
    fake.add(ordersNode);
    watcher.scanNow(); // before attach: no count
    assert.deepEqual(takeEvents(), [['start', 100, 500, '--pid 100']]);
    changes = 5;
    watcher.scanNow(); // the first count is compared with none: scanned
    assert.equal(watcher.scansSkipped, 0);
    // The fake /proc changes under an unchanged count: only a skipped scan misses it.
    const worker: FakeProcess = { ...pythonServer, pid: 101, ppid: 100, startTimeTicks: 900 };
    fake.add(worker);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), []);
    assert.equal(watcher.scansSkipped, 1);
    changes = 6;
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 101, 900, '--pid 100 (descendant)']]);
    fake.remove(101);
    changes = 8;
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['exit', 101, 900, '--pid 100 (descendant)']]);
    assert.equal(watcher.scansSkipped, 1);
  } finally {
    fake.cleanup();
  }
});

test('--open-port: every scan reads the listeners, whatever the count of process changes', () => {
  const { fake, watcher, takeEvents } = harness({ openPorts: [8080] }, { processChangeCount: () => 5 });
  try {
    fake.add({ ...nginx, socketInodes: [] });
    watcher.scanNow();
    watcher.scanNow();
    assert.deepEqual(takeEvents(), []);
    // A running process starts to listen: no fork, exec or exit tells of it.
    fake.add(nginx);
    fake.setTcp(LISTEN_8080, '');
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 300, 700, '--open-port 8080']]);
    assert.equal(watcher.scansSkipped, 0);
  } finally {
    fake.cleanup();
  }
});

test('--exe: an exec between two scans that no count reports (before attach) is still seen', () => {
  let execs: number | undefined;
  const { fake, watcher, takeEvents } = harness({ exes: ['node'] }, { execCount: () => execs });
  try {
    const shell: FakeProcess = { pid: 400, startTimeTicks: 650, comm: 'sh', exe: '/bin/sh', cmdline: ['sh', '-c', 'exec node a.js'] };
    fake.add(shell);
    watcher.scanNow();
    fake.add({ ...shell, comm: 'node', exe: '/usr/local/bin/node', cmdline: ['node', 'a.js'] });
    execs = 0; // attached after the exec: the kernel counted none
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 400, 650, '--exe node']]);
  } finally {
    fake.cleanup();
  }
});

test('--open-port: the listener holder matches, a client of the port does not', () => {
  const { fake, watcher, takeEvents } = harness({ openPorts: [8080, 9090] });
  try {
    fake.add(nginx);
    fake.add(client);
    fake.add(ordersNode);
    fake.setTcp(LISTEN_8080 + ESTABLISHED_TO_8080, '');
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 300, 700, '--open-port 8080']]);

    // A worker forked later inherits the listener without changing the set of listening sockets.
    fake.add({ ...nginx, pid: 302, startTimeTicks: 720, cmdline: ['nginx: worker process'] });
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 302, 720, '--open-port 8080']]);

    // An already-running process that starts listening on an IPv6 socket.
    fake.add({ ...ordersNode, socketInodes: [23456] });
    fake.setTcp(LISTEN_8080 + ESTABLISHED_TO_8080, LISTEN_9090_V6);
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 100, 500, '--open-port 9090']]);

    // Picked once, kept for life: closing the listener does not drop the process.
    fake.setTcp(LISTEN_8080, '');
    watcher.scanNow();
    assert.deepEqual(takeEvents(), []);
    assert.deepEqual(
      watcher.current().map((proc) => proc.pid).sort((a, b) => a - b),
      [100, 300, 302],
    );
  } finally {
    fake.cleanup();
  }
});

test('--pid wins the matchedBy label over --exe and --open-port', () => {
  const { fake, watcher, takeEvents } = harness({ pids: [300], exes: ['nginx'], openPorts: [8080] });
  try {
    fake.add(nginx);
    fake.setTcp(LISTEN_8080, '');
    watcher.scanNow();
    assert.deepEqual(takeEvents(), [['start', 300, 700, '--pid 300']]);
  } finally {
    fake.cleanup();
  }
});

test('an unreadable process does not stop the scan, and a throwing callback is reported', () => {
  const { fake, watcher, takeEvents, errors } = harness(
    { exes: ['*'] },
    {
      onStart: (proc) => {
        if (proc.pid === 100) throw new Error('consumer failed');
      },
    },
  );
  try {
    fake.add(ordersNode);
    fake.add(pythonServer);
    fs.mkdirSync(path.join(fake.root, '150'));
    fs.writeFileSync(path.join(fake.root, '150', 'stat'), 'truncated');
    watcher.scanNow();
    assert.deepEqual(
      watcher.current().map((proc) => proc.pid),
      [100, 200],
    );
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /consumer failed/);
  } finally {
    fake.cleanup();
  }
});

test('describe: select-everything resolves any pid on demand and caches per process', () => {
  const { fake, watcher } = harness({});
  try {
    fake.add(ordersNode);
    fake.add({ ...ordersNode, pid: OWN_PID, startTimeTicks: 1 });
    watcher.scanNow();
    assert.deepEqual(watcher.current(), []);

    const first = watcher.describe(100);
    assert.equal(first?.serviceName, 'orders');
    assert.equal(first?.matchedBy, 'all processes');
    assert.equal(watcher.describe(100), first);
    assert.equal(watcher.describe(100, 500), first);

    fake.add({ ...ordersNode, startTimeTicks: 501, cmdline: ['node', '/srv/billing/index.js'] });
    assert.equal(watcher.describe(100)?.serviceName, 'billing');
    assert.equal(watcher.describe(100, 500), first);

    assert.equal(watcher.describe(OWN_PID), undefined);
    assert.equal(watcher.describe(999), undefined);
  } finally {
    fake.cleanup();
  }
});

test('describe: with a selection, only tracked processes resolve', () => {
  const { fake, watcher } = harness({ pids: [100] });
  try {
    fake.add(ordersNode);
    fake.add(pythonServer);
    watcher.scanNow();
    assert.equal(watcher.describe(100)?.pid, 100);
    assert.equal(watcher.describe(100, 12), undefined);
    assert.equal(watcher.describe(200), undefined);
  } finally {
    fake.cleanup();
  }
});

test('start() scans at once and then polls; stop() ends polling', async () => {
  const { fake, watcher, takeEvents } = harness({ exes: ['python*'] }, { pollIntervalMs: 10 });
  try {
    fake.add(pythonServer);
    watcher.start();
    assert.deepEqual(takeEvents(), [['start', 200, 600, '--exe python*']]);
    fake.add({ ...pythonServer, pid: 201, startTimeTicks: 610 });
    const deadline = Date.now() + 2000;
    while (watcher.current().length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.deepEqual(takeEvents(), [['start', 201, 610, '--exe python*']]);
    watcher.stop();
    fake.remove(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(takeEvents(), []);
  } finally {
    watcher.stop();
    fake.cleanup();
  }
});

test('scanNow throws when the proc root itself is missing; polling reports it instead', () => {
  const { fake, watcher, errors } = harness({ exes: ['node'] });
  fake.cleanup();
  assert.throws(() => watcher.scanNow(), /ENOENT/);
  watcher.start();
  watcher.stop();
  assert.equal(errors.length, 1);
});
