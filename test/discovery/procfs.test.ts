import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  listeningTcpPorts,
  listPids,
  parseListeningTcp,
  parseStartTimeTicks,
  parseStat,
  readEnviron,
  readProcessInfo,
  socketInodesOf,
} from '../../src/discovery/procfs';
import { FakeProc } from './fakeProc';

const TCP_FIXTURE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 40001 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 40002 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:9C40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0
`;

const TCP6_FIXTURE = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 52000 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:01BB 0000000000000000FFFF00000100007F:C350 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
   2: 00000000000000000000000001000000:1F91 00000000000000000000000001000000:E0A4 01 00000000:00000000 00:00000000 00000000  1000        0 52001 1 0000000000000000 20 4 0 10 -1
`;

test('parseListeningTcp: IPv4 LISTEN rows only, port decoded from hex', () => {
  assert.deepEqual(
    [...parseListeningTcp(TCP_FIXTURE)],
    [
      [31337, 8080],
      [40001, 3306],
    ],
  );
});

test('parseListeningTcp: IPv6 LISTEN rows only', () => {
  assert.deepEqual([...parseListeningTcp(TCP6_FIXTURE)], [[52000, 443]]);
});

test('parseListeningTcp: empty and header-only text', () => {
  assert.equal(parseListeningTcp('').size, 0);
  assert.equal(parseListeningTcp(TCP_FIXTURE.split('\n')[0]!).size, 0);
});

test('listeningTcpPorts merges tcp and tcp6, and tolerates a missing tcp6', () => {
  const fake = new FakeProc();
  try {
    fs.writeFileSync(path.join(fake.root, 'net', 'tcp'), TCP_FIXTURE);
    fs.writeFileSync(path.join(fake.root, 'net', 'tcp6'), TCP6_FIXTURE);
    assert.deepEqual(
      listeningTcpPorts(fake.root),
      new Map([
        [31337, 8080],
        [40001, 3306],
        [52000, 443],
      ]),
    );
    fs.rmSync(path.join(fake.root, 'net', 'tcp6'));
    assert.equal(listeningTcpPorts(fake.root).size, 2);
  } finally {
    fake.cleanup();
  }
});

test('parseStartTimeTicks reads field 22 even when comm holds spaces and parentheses', () => {
  const stat = '77 (evil) name (x) S 1 77 77 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 123456 100 10 1\n';
  assert.equal(parseStartTimeTicks(stat), 123456);
  assert.equal(parseStartTimeTicks('77 (short) S 1 2'), undefined);
  assert.equal(parseStartTimeTicks('garbage'), undefined);
});

test('parseStat reads the parent pid (field 4) beside the start time', () => {
  const stat = '77 (sh -c (x)) S 42 77 77 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 123456 100 10 1\n';
  assert.deepEqual(parseStat(stat), { ppid: 42, startTimeTicks: 123456 });
  assert.deepEqual(parseStat('1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 5 100 10 1'), { ppid: 0, startTimeTicks: 5 });
  assert.equal(parseStat('77 (x) S ? 77 77 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 123456 100 10 1'), undefined);
});

test('readers against a fake /proc tree', () => {
  const fake = new FakeProc();
  try {
    fake.add({
      pid: 310,
      startTimeTicks: 5000,
      comm: 'node',
      exe: '/usr/local/bin/node (deleted)',
      cwd: '/srv/orders',
      cmdline: ['node', '--inspect', 'index.js', ''],
      environ: { OTEL_SERVICE_NAME: 'orders', EMPTY: '', WITH_EQ: 'a=b' },
      socketInodes: [12345, 777],
    });
    fake.add({ pid: 2, startTimeTicks: 1, comm: 'kthreadd', cmdline: [] });
    fs.mkdirSync(path.join(fake.root, 'self'));
    fs.mkdirSync(path.join(fake.root, 'sys'));

    assert.deepEqual(listPids(fake.root), [2, 310]);
    assert.deepEqual(readProcessInfo(310, fake.root), {
      pid: 310,
      startTimeTicks: 5000,
      exePath: '/usr/local/bin/node',
      exeName: 'node',
      cmdline: ['node', '--inspect', 'index.js'],
      cwd: '/srv/orders',
    });
    assert.deepEqual(readProcessInfo(2, fake.root), {
      pid: 2,
      startTimeTicks: 1,
      exePath: undefined,
      exeName: 'kthreadd',
      cmdline: [],
    });
    assert.equal(readProcessInfo(999, fake.root), undefined);

    assert.deepEqual(
      readEnviron(310, fake.root),
      new Map([
        ['OTEL_SERVICE_NAME', 'orders'],
        ['EMPTY', ''],
        ['WITH_EQ', 'a=b'],
      ]),
    );
    assert.equal(readEnviron(999, fake.root).size, 0);

    assert.deepEqual(socketInodesOf(310, fake.root), new Set([12345, 777]));
    assert.equal(socketInodesOf(2, fake.root).size, 0);
    assert.equal(socketInodesOf(999, fake.root).size, 0);
  } finally {
    fake.cleanup();
  }
});
