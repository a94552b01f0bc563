/**
 * Time limits for a test file and for each of its tests, and the register of
 * the child processes it started, so that a hang ends with the name of what
 * hung instead of a runner that waits for ever, and no child outlives the
 * file.
 *
 * Importing this module arms it, once per process (test/support/processes.ts
 * imports it, so every file that starts a process has it). When a limit
 * passes, it prints the test that was running and every child still alive
 * with the end of its output, SIGKILLs their process groups and exits the
 * file non-zero: `node --test` reports the file as failed, with that text,
 * and goes on with the next file. A SIGINT, SIGTERM or SIGHUP of the file
 * does the same. Children still alive when the file's tests are done are
 * stopped by a file-level after() hook and, as a last resort, SIGKILLed from
 * a process 'exit' handler.
 *
 * The limits: SONDE_TEST_TIMEOUT_MS for each test (default 180 000) and
 * SONDE_TEST_FILE_TIMEOUT_MS for the file (default 300 000), or
 * setTimeLimits() at the top of a file whose tests legitimately take longer.
 * Keep them under `--test-timeout` in scripts/test.sh: node 20 applies that
 * flag to each file as a whole too, and when it fires the runner SIGTERMs
 * the file and no longer shows what the file prints.
 */
import { after, afterEach, beforeEach } from 'node:test';
import { constants as osConstants } from 'node:os';

export interface TrackedChild {
  /** What it is, for people: the command line, shortened. */
  readonly name: string;
  readonly pid: number;
  /** The test that started it, or "the file" for a file-wide process. */
  readonly owner: string;
  readonly startedAt: number;
  /** The last lines it printed, stdout and stderr. */
  outputTail(): string;
  /** Graceful stop, bounded: resolves once it has exited or been killed. */
  stop(): Promise<unknown>;
}

interface RunningTest {
  name: string;
  startedAt: number;
  timer: NodeJS.Timeout;
  phase: 'running' | 'after hooks';
}

const DEFAULT_TEST_MS = 180_000;
const DEFAULT_FILE_MS = 300_000;

const children = new Set<TrackedChild>();
const running = new Map<object, RunningTest>();
const fileStartedAt = Date.now();
let limits = { testMs: envMs('SONDE_TEST_TIMEOUT_MS', DEFAULT_TEST_MS), fileMs: envMs('SONDE_TEST_FILE_TIMEOUT_MS', DEFAULT_FILE_MS) };
let fileTimer: NodeJS.Timeout | undefined;
let lastTestName: string | undefined;

function envMs(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms <= 0) throw new Error(`${name} must be a positive integer of milliseconds (got "${raw}")`);
  return ms;
}

/** Registers a child until `untrack` is called (on its exit). */
export function trackChild(child: TrackedChild): () => void {
  children.add(child);
  return () => children.delete(child);
}

/** Replaces the defaults (or the environment's values) for this file; call it before the tests. */
export function setTimeLimits(next: { testMs?: number; fileMs?: number }): void {
  limits = { ...limits, ...next };
  armFileTimer();
}

/** SIGKILLs every registered child's process group. Synchronous: safe in an 'exit' handler. */
export function killAllChildren(): TrackedChild[] {
  const killed = [...children];
  for (const child of killed) {
    killGroup(child.pid);
    children.delete(child);
  }
  return killed;
}

/**
 * SIGKILL to the process group `pid` leads: every child is started as a
 * group leader. Never to `pid` alone, which may already name someone else.
 */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The whole group is gone already.
  }
}

function describeChildren(list: TrackedChild[]): string[] {
  if (list.length === 0) return ['  no child process was alive'];
  const now = Date.now();
  const lines: string[] = [];
  for (const c of list) {
    lines.push(`  pid ${c.pid}: ${c.name} (started by "${c.owner}", ${Math.round((now - c.startedAt) / 1000)} s ago)`);
    const tail = c.outputTail().trimEnd();
    if (tail) lines.push(...tail.split('\n').map((l) => `    | ${l}`));
  }
  return lines;
}

function describeRunning(): string {
  const tests = [...running.values()];
  if (tests.length === 0) return lastTestName ? `no test was running; the last one to start was "${lastTestName}"` : 'no test had started';
  const now = Date.now();
  return tests.map((t) => `"${t.name}" (${t.phase}, for ${Math.round((now - t.startedAt) / 1000)} s)`).join(' > ');
}

/** Says what hung and what was alive, kills it all and ends the file. */
function abortFile(reason: string, exitCode: number): never {
  const alive = [...children];
  const text = [
    '',
    `✖ watchdog (${process.argv[1] ?? 'test file'}): ${reason}`,
    `  running: ${describeRunning()}`,
    '  child processes still alive, now SIGKILLed:',
    ...describeChildren(alive),
    '',
  ].join('\n');
  process.stderr.write(text);
  killAllChildren();
  process.exit(exitCode);
}

function armFileTimer(): void {
  if (fileTimer) clearTimeout(fileTimer);
  const remaining = Math.max(0, fileStartedAt + limits.fileMs - Date.now());
  // Unref'd: the timer alone must not keep a finished file alive. A hang
  // that matters holds the loop (a live child's pipes do), so it still fires.
  fileTimer = setTimeout(() => abortFile(`the file has run longer than its limit of ${limits.fileMs} ms`, 1), remaining);
  fileTimer.unref();
}

let armed = false;
function arm(): void {
  if (armed) return;
  armed = true;
  armFileTimer();

  beforeEach((t) => {
    lastTestName = t.name;
    const entry: RunningTest = {
      name: t.name,
      startedAt: Date.now(),
      phase: 'running',
      timer: setTimeout(() => abortFile(`test "${t.name}" has run longer than its limit of ${limits.testMs} ms`, 1), limits.testMs),
    };
    entry.timer.unref();
    running.set(t, entry);
    // The test's signal aborts once its after hooks are done (or when it
    // times out): only then is it no longer running.
    t.signal.addEventListener('abort', () => running.delete(t), { once: true });
  });
  // afterEach runs before the test's own t.after hooks: what remains of the
  // test is its cleanup, bounded by the file's limit.
  afterEach((t) => {
    const entry = running.get(t);
    if (!entry) return;
    clearTimeout(entry.timer);
    entry.phase = 'after hooks';
  });

  after(async () => {
    const left = [...children];
    if (left.length === 0) return;
    const leaked = left.filter((c) => c.owner !== 'the file');
    if (leaked.length > 0) {
      process.stderr.write(['', 'watchdog: still alive after their tests ended, now stopped:', ...describeChildren(leaked), ''].join('\n'));
    }
    await Promise.all(left.map((c) => c.stop()));
  });

  process.on('exit', () => {
    const killed = killAllChildren();
    if (killed.length > 0) process.stderr.write(['', 'watchdog: still alive when the file exited, SIGKILLed:', ...describeChildren(killed), ''].join('\n'));
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // SIGTERM is also how the runner ends a file past --test-timeout.
    process.on(signal, () => abortFile(`received ${signal}`, 128 + osConstants.signals[signal]));
  }
}

arm();
