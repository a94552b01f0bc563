/**
 * bin/sonde, the launcher every documented command goes through: it must
 * find the CLI from wherever it is linked and hand node the environment
 * glibc reads at startup and the flags V8 reads only then. A stand-in `node` on PATH prints what it was given.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../support/processes';

const LAUNCHER = path.join(REPO_ROOT, 'bin', 'sonde');

function withFakeNode(t: { after(fn: () => void): void }): { dir: string; run(launcher: string, args: string[], env?: NodeJS.ProcessEnv): { argv: string[]; arenaMax: string } } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-launcher-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'node'), '#!/bin/sh\nprintf "%s\\n" "MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX-unset}" "$@"\n', { mode: 0o755 });
  return {
    dir,
    run(launcher, args, env = {}) {
      const out = execFileSync(launcher, args, { env: { PATH: `${dir}:/usr/bin:/bin`, ...env }, encoding: 'utf8', timeout: 10_000 });
      const [arena, ...argv] = out.trimEnd().split('\n');
      return { arenaMax: arena.slice('MALLOC_ARENA_MAX='.length), argv };
    },
  };
}

test("bin/sonde runs the built CLI with its arguments, one malloc arena and V8's young generation capped", (t) => {
  const fake = withFakeNode(t);
  const { argv, arenaMax } = fake.run(LAUNCHER, ['--open-port', '8080', 'a b']);
  assert.deepEqual(argv, ['--max-semi-space-size=1', path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'), '--open-port', '8080', 'a b']);
  assert.equal(arenaMax, '1');
});

test('bin/sonde leaves a MALLOC_ARENA_MAX already set alone', (t) => {
  const fake = withFakeNode(t);
  assert.equal(fake.run(LAUNCHER, [], { MALLOC_ARENA_MAX: '4' }).arenaMax, '4');
});

test('bin/sonde finds the CLI through a symlink, as npm links it', (t) => {
  const fake = withFakeNode(t);
  const link = path.join(fake.dir, 'sonde');
  fs.symlinkSync(LAUNCHER, link);
  assert.equal(fake.run(link, []).argv.at(-1), path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'));
});
