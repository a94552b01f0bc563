import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSslLibrariesOf, parseOpenSslLibraries, systemOpenSslLibraries } from '../../src/discovery/tlsLibraries';

const MAPS = [
  '55d1c0a00000-55d1c0a2e000 r--p 00000000 08:01 1311 /usr/sbin/nginx',
  '7f3f1a3f0000-7f3f1a44d000 r--p 00000000 08:01 2621 /usr/lib/x86_64-linux-gnu/libssl.so.3',
  '7f3f1a44d000-7f3f1a4a4000 r-xp 0005d000 08:01 2621 /usr/lib/x86_64-linux-gnu/libssl.so.3',
  '7f3f1a600000-7f3f1a900000 r--p 00000000 08:01 2620 /usr/lib/x86_64-linux-gnu/libcrypto.so.3',
  '7f3f1b000000-7f3f1b100000 r-xp 00000000 08:01 9999 /opt/app dir/lib/libssl.so.1.1 (deleted)',
  '7f3f1c000000-7f3f1c100000 r-xp 00000000 08:01 9998 /opt/lib/libssl3.so',
  '7f3f1d000000-7f3f1d021000 rw-p 00000000 00:00 0 [heap]',
  '7f3f1e000000-7f3f1e001000 rw-p 00000000 00:00 0',
].join('\n');

test('parseOpenSslLibraries: each libssl.so[.N] once, paths with spaces and deleted files included, NSS and libcrypto not', () => {
  assert.deepEqual(parseOpenSslLibraries(MAPS), ['/usr/lib/x86_64-linux-gnu/libssl.so.3', '/opt/app dir/lib/libssl.so.1.1']);
  assert.deepEqual(parseOpenSslLibraries(''), []);
});

test('openSslLibrariesOf reaches the file through the process root and names it by device and inode', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-fakeproc-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const lib = path.join(root, '42', 'root', 'usr', 'lib', 'x86_64-linux-gnu', 'libssl.so.3');
  fs.mkdirSync(path.dirname(lib), { recursive: true });
  fs.writeFileSync(lib, 'not really ELF');
  fs.writeFileSync(path.join(root, '42', 'maps'), MAPS);
  const st = fs.statSync(lib);
  assert.deepEqual(openSslLibrariesOf(42, root), [
    { mappedPath: '/usr/lib/x86_64-linux-gnu/libssl.so.3', reachablePath: lib, identity: `${st.dev}:${st.ino}` },
  ]);
  assert.deepEqual(openSslLibrariesOf(43, root), [], 'a process that is gone maps nothing');
});

test('systemOpenSslLibraries: the libssl of this machine, once however many paths reach it', () => {
  const found = systemOpenSslLibraries();
  assert.equal(new Set(found.map((l) => l.identity)).size, found.length);
  if (fs.existsSync('/usr/lib/x86_64-linux-gnu/libssl.so.3') && process.arch === 'x64') {
    assert.ok(found.some((l) => l.mappedPath === fs.realpathSync('/usr/lib/x86_64-linux-gnu/libssl.so.3')), JSON.stringify(found));
  }
});
