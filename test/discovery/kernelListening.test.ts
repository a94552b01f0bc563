/**
 * --open-port's listeners asked of the kernel over netlink (inet_diag)
 * instead of read from /proc/net/tcp: the same sockets, in sonde's own
 * network namespace and in another, and /proc when the kernel cannot say.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { kernelListeningReader, ProcessWatcher } from '../../src/discovery';
import { listeningTcpPorts, procfsListeningReader, socketInodesOf } from '../../src/discovery/procfs';
import { loadNativeModule } from '../../src/native/binding';
import { canUnshareNet } from '../support/netns';
import { startProcess } from '../support/processes';

const native = loadNativeModule();
const askKernel = (netnsPath?: string): number[] => native.listeningTcpSockets(netnsPath);

async function listen(t: { after: (fn: () => void | Promise<void>) => void }, host: string): Promise<{ port: number; inode: number }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const procfs = listeningTcpPorts();
  const inode = [...procfs].find(([, p]) => p === port)?.[0];
  assert.ok(inode !== undefined, `port ${port} is not in /proc/net/tcp`);
  return { port, inode };
}

test('the kernel lists the same listeners as /proc/net/tcp and tcp6, IPv4 and IPv6', async (t) => {
  const v4 = await listen(t, '127.0.0.1');
  const v6 = await listen(t, '::1');
  // A connected socket is not a listener.
  const client = net.connect(v4.port, '127.0.0.1');
  let fromKernel: Map<number, number>;
  let fromProc: Map<number, number>;
  try {
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    fromKernel = kernelListeningReader(askKernel)(undefined);
    fromProc = procfsListeningReader()(undefined);
  } finally {
    // Before the servers close: a server's close waits for its connections.
    client.destroy();
  }
  assert.equal(fromKernel.get(v4.inode), v4.port);
  assert.equal(fromKernel.get(v6.inode), v6.port);
  for (const inode of socketInodesOf(process.pid)) {
    if (inode === v4.inode || inode === v6.inode) continue;
    assert.equal(fromKernel.has(inode), false, `socket ${inode} of this process is not a listener`);
  }
  // Other processes may open and close listeners between the two reads: compare what both saw of this one.
  assert.deepEqual(
    [...fromKernel].filter(([inode]) => inode === v4.inode || inode === v6.inode).sort(),
    [...fromProc].filter(([inode]) => inode === v4.inode || inode === v6.inode).sort(),
  );
});

test('a listener in another network namespace is asked of that namespace, and found by port', { skip: canUnshareNet() ? false : 'unshare --net is not permitted here (needs root)' }, async (t) => {
  const port = 40000 + ((process.pid + 7) % 20000);
  const child = startProcess(t, 'unshare', ['--net', process.execPath, '-e', `require('http').createServer().listen(${port}, '127.0.0.1', () => console.log('up'))`]);
  await child.waitForOutput(/up/, 10_000, 'stdout');
  const asked: (string | undefined)[] = [];
  const readListening = kernelListeningReader((netnsPath) => {
    asked.push(netnsPath);
    return askKernel(netnsPath);
  });
  const inode = [...readListening(child.pid)].find(([, p]) => p === port)?.[0];
  assert.ok(inode !== undefined, `port ${port} is not listed in the child's namespace`);
  assert.ok(socketInodesOf(child.pid).has(inode), 'the listed socket is the child’s');
  assert.equal(readListening(undefined).has(inode), false, 'not a listener of sonde’s own namespace');
  const watcher = new ProcessWatcher({ selection: { pids: [], exes: [], openPorts: [port] }, ownPid: process.pid, readListening });
  watcher.scanNow();
  assert.deepEqual(watcher.current().map((p) => p.pid), [child.pid]);
  assert.ok(asked.includes(`/proc/${child.pid}/ns/net`), 'the child’s namespace was asked through its ns file');
});

test('when the kernel cannot answer for sonde’s own namespace, /proc is read from then on and the reason is said once', async (t) => {
  const { port, inode } = await listen(t, '127.0.0.1');
  let asks = 0;
  const fallbacks: unknown[] = [];
  const readListening = kernelListeningReader(
    () => {
      asks++;
      throw new Error('inet_diag: Protocol not supported');
    },
    { onFallback: (error) => fallbacks.push(error) },
  );
  assert.equal(readListening(undefined).get(inode), port);
  assert.equal(readListening(undefined).get(inode), port);
  assert.equal(asks, 1);
  assert.equal(fallbacks.length, 1);
  assert.match(String(fallbacks[0]), /Protocol not supported/);
});

test('when the kernel cannot answer for another namespace, that one is read from /proc and the kernel is still asked for the rest', async (t) => {
  const { port, inode } = await listen(t, '127.0.0.1');
  const fallbacks: unknown[] = [];
  const readListening = kernelListeningReader(
    (netnsPath) => {
      if (netnsPath !== undefined) throw new Error(`enter ${netnsPath}: Operation not permitted`);
      return [inode, port];
    },
    { onFallback: (error) => fallbacks.push(error) },
  );
  // This process's /proc/PID/net/tcp shows sonde's own namespace: the fallback read finds the listener there.
  assert.equal(readListening(process.pid).get(inode), port);
  assert.deepEqual([...readListening(undefined)], [[inode, port]]);
  assert.equal(fallbacks.length, 0);
});

test('the addon says why when a namespace file cannot be opened', () => {
  assert.throws(() => native.listeningTcpSockets('/proc/0/ns/net'), /open \/proc\/0\/ns\/net: No such file or directory/);
});
