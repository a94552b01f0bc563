/**
 * Child processes that cannot outlive the test that started them.
 *
 * startProcess(t, …) ties the process to `t`: `t.after` stops it whatever
 * the test did, and test/support/watchdog.ts (imported here) kills it if the
 * file hangs, is signalled or exits. Each child leads its own process group,
 * so what it forks (nginx workers, a shell's children, the benchmark's
 * servers) is killed with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { killGroup, trackChild } from './watchdog';

export const REPO_ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'binding.gyp'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no binding.gyp above ${__dirname}: cannot find the repository root`);
    dir = up;
  }
  return dir;
})();

/**
 * Who a process belongs to: a test (stopped in its `t.after`), or 'file' for
 * one shared by the file's tests (stopped in the file-level after hook).
 */
export type Owner = TestContext | 'file';

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** What stop() sends by default, and so what `t.after` sends: SIGTERM unless said otherwise. */
  stopSignal?: NodeJS.Signals;
  /** How long stop() waits after the signal before SIGKILLing the process group (default 15 000 ms). */
  graceMs?: number;
}

export interface RunningProcess {
  readonly child: ChildProcess;
  /** -1 when the spawn failed; `exited` then resolves with 127. */
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /**
   * Resolves with the first match of `pattern` in the stream, searching from
   * character `since` (e.g. `proc.stderr().length` for what comes next);
   * rejects on timeout or when the process exits without printing it.
   */
  waitForOutput(pattern: RegExp, timeoutMs: number, stream?: 'stdout' | 'stderr', since?: number): Promise<RegExpMatchArray>;
  /** Its exit code, 128+n when signal n ended it, 127 when it could not be spawned. */
  readonly exited: Promise<number>;
  /**
   * Sends `signal` to the process (default: its stopSignal), SIGKILLs its
   * process group after `graceMs`, and resolves with the exit code (null if
   * it would not die even then). Idempotent: later calls return the first
   * call's result, whatever signal they name.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

/**
 * Marks every process the suite starts, so that scripts/test.sh can tell
 * what the suite left behind from other people's processes. Not SONDE_*:
 * the benchmark strips those from sonde's environment.
 */
export const RUN_MARKER = 'TEST_SUITE_RUN_ID';

const OUTPUT_KEEP_CHARS = 4_000_000;
const AFTER_SIGKILL_MS = 5_000;

export function startProcess(owner: Owner, command: string, args: string[], options: StartOptions = {}): RunningProcess {
  const ownerName = owner === 'file' ? 'the file' : owner.name;
  const name = [command, ...args].map((a) => (a.length > 80 ? `${a.slice(0, 77)}...` : a)).join(' ');
  if (owner !== 'file' && owner.signal.aborted) {
    // Its after hooks have run (or it timed out): nothing would stop this one.
    throw new Error(`${name}: not started, test "${ownerName}" has already ended`);
  }
  const env = { ...(options.env ?? process.env) };
  if (process.env[RUN_MARKER]) env[RUN_MARKER] = process.env[RUN_MARKER];
  const child = spawn(command, args, { env, cwd: options.cwd ?? REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const stopSignal = options.stopSignal ?? 'SIGTERM';
  const defaultGraceMs = options.graceMs ?? 15_000;

  let out = '';
  let err = '';
  let spawnError: Error | undefined;
  const waiters = new Set<() => void>();
  const notify = (): void => [...waiters].forEach((w) => w());
  const keep = (s: string): string => (s.length > OUTPUT_KEEP_CHARS ? s.slice(s.length - OUTPUT_KEEP_CHARS) : s);
  child.stdout!.on('data', (d: Buffer) => {
    out = keep(out + d.toString());
    notify();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err = keep(err + d.toString());
    notify();
  });

  let exitCode: number | undefined;
  let untrack = (): void => undefined;
  const exited = new Promise<number>((resolve) => {
    const done = (code: number): void => {
      if (exitCode !== undefined) return;
      exitCode = code;
      untrack();
      notify();
      resolve(code);
    };
    child.on('exit', (code, signal) => {
      // Whatever it left in its group (orphaned workers) goes with it. The
      // group id cannot name anyone else yet: a pid is not reused while a
      // group still holds it, and not within moments once it is free.
      if (child.pid !== undefined) killGroup(child.pid);
      done(code ?? 128 + (signal ? osConstants.signals[signal] : 0));
    });
    child.on('error', (e) => {
      spawnError = e;
      if (child.pid === undefined) done(127);
    });
  });

  const tail = (): string => {
    const last = (s: string): string => s.trimEnd().split('\n').slice(-20).join('\n');
    return `--- stdout (end) ---\n${last(out)}\n--- stderr (end) ---\n${last(err)}`;
  };

  let stopping: Promise<number | null> | undefined;
  const proc: RunningProcess = {
    child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput(pattern, timeoutMs, stream = 'stderr', since = 0) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = (stream === 'stdout' ? out : err).slice(since).match(pattern);
          if (m) {
            finish();
            resolve(m);
          } else if (exitCode !== undefined) {
            finish();
            reject(new Error(`${name} exited (${exitCode}${spawnError ? `: ${spawnError.message}` : ''}) before printing ${pattern} on ${stream}\n${tail()}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${name}: ${pattern} not printed on ${stream} within ${timeoutMs} ms\n${tail()}`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    stop(signal = stopSignal, graceMs = defaultGraceMs) {
      stopping ??= (async () => {
        if (exitCode !== undefined || child.pid === undefined) return exitCode ?? null;
        const pid = child.pid;
        try {
          process.kill(pid, signal);
        } catch {
          // Exited meanwhile: `exited` is about to resolve.
        }
        let kill: NodeJS.Timeout | undefined;
        let giveUp: NodeJS.Timeout | undefined;
        const result = await Promise.race([
          exited,
          new Promise<null>((resolve) => {
            kill = setTimeout(() => {
              process.stderr.write(`${name}: still running ${graceMs} ms after ${signal}, SIGKILLing its process group\n`);
              killGroup(pid);
              giveUp = setTimeout(() => resolve(null), AFTER_SIGKILL_MS);
            }, graceMs);
          }),
        ]);
        clearTimeout(kill);
        clearTimeout(giveUp);
        return result;
      })();
      return stopping;
    },
  };

  if (child.pid !== undefined) {
    untrack = trackChild({ name, pid: child.pid, owner: ownerName, startedAt: Date.now(), outputTail: tail, stop: () => proc.stop() });
    if (exitCode !== undefined) untrack();
  }
  if (owner !== 'file') owner.after(() => proc.stop());
  return proc;
}

/**
 * Waits for a state that nothing announces (a file appears, a counter moves)
 * by checking it every `intervalMs`; resolves true once it holds, false when
 * `timeoutMs` passes first, so that the caller's assertion says what failed.
 */
export async function waitUntil(condition: () => boolean, timeoutMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
