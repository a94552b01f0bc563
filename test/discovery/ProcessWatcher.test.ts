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
  const { fake, watcher, takeEvents } = harness({ exes: ['node'] });
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
