/**
 * Child processes for the benchmark, and what /proc says about them.
 *
 * Every process the benchmark starts goes through `spawnTracked`, and every
 * extra pid it learns about (nginx workers) through `trackPid`, so that
 * `killAll` can end them all: at the end of a run, on failure, on SIGINT, and
 * from a process 'exit' handler as a last resort.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export const REPO_ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'binding.gyp'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no binding.gyp above ${__dirname}: cannot find the repository root`);
    dir = up;
  }
  return dir;
})();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const liveChildren = new Set<ChildProcess>();
const extraPids = new Set<number>();

/** Remembers a pid that the benchmark did not spawn itself but must kill (nginx workers). */
export function trackPid(pid: number): void {
  extraPids.add(pid);
}
export function untrackPid(pid: number): void {
  extraPids.delete(pid);
}

/** SIGKILLs everything still alive. Synchronous, so it is safe in an 'exit' handler. */
export function killAll(): void {
  for (const child of liveChildren) {
    try {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const pid of extraPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  liveChildren.clear();
  extraPids.clear();
}

let handlersInstalled = false;
/** Kill children on normal exit, on uncaught errors, and on SIGINT/SIGTERM/SIGHUP of the runner. */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}: stopping every child process\n`);
      killAll();
      process.exit(130);
    });
  }
}

export interface Tracked {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern`, rejects on timeout or exit. */
  waitFor(pattern: RegExp, timeoutMs: number, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
  /** Resolves when the process has exited: its exit code, or 128+n for a signal. */
  readonly exited: Promise<number>;
  hasExited(): boolean;
  /** Sends `signal`, then SIGKILL after `timeoutMs`; resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number; killed: boolean }>;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

export function spawnTracked(
  name: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: 'pipe' | 'ignore'; keepOutputChars?: number } = {},
): Tracked {
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd ?? REPO_ROOT,
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  // Without a pid the spawn failed (ENOENT...): the 'error' event says why.
  let spawnError: Error | undefined;
  child.on('error', (e) => (spawnError = e));
  liveChildren.add(child);
  const keep = options.keepOutputChars ?? 4_000_000;
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const notify = (): void => [...waiters].forEach((w) => w());
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.length > keep) out = out.slice(out.length - keep);
    notify();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > keep) err = err.slice(err.length - keep);
    notify();
  });
  let exitCode: number | undefined;
  const exited = new Promise<number>((resolve) => {
    const done = (code: number): void => {
      if (exitCode !== undefined) return;
      exitCode = code;
      liveChildren.delete(child);
      notify();
      resolve(code);
    };
    child.on('exit', (code, signal) => done(code ?? 128 + (signal ? SIGNAL_NUMBERS[signal] ?? 0 : 0)));
    child.on('error', () => {
      if (child.pid === undefined) done(127);
    });
  });
  const tracked: Tracked = {
    name,
    child,
    get pid(): number {
      return child.pid ?? -1;
    },
    stdout: () => out,
    stderr: () => err,
    exited,
    hasExited: () => exitCode !== undefined,
    waitFor(pattern, timeoutMs, stream = 'stderr') {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = (stream === 'stdout' ? out : err).match(pattern);
          if (m) {
            finish();
            resolve(m);
          } else if (exitCode !== undefined) {
            finish();
            reject(new Error(`${name} exited (code ${exitCode}${spawnError ? `, ${spawnError.message}` : ''}) before printing ${pattern}\n${tail(out, err)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${name}: timed out after ${timeoutMs} ms waiting for ${pattern}\n${tail(out, err)}`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (exitCode !== undefined) return { code: exitCode, killed: false };
      try {
        child.kill(signal);
      } catch {
        /* gone */
      }
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        try {
          child.kill('SIGKILL');
        } catch {
          /* gone */
        }
      }, timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return { code, killed };
    },
  };
  return tracked;
}

function tail(out: string, err: string): string {
  const last = (s: string): string => s.split('\n').slice(-15).join('\n');
  return `--- stdout (end) ---\n${last(out)}\n--- stderr (end) ---\n${last(err)}`;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  wallMs: number;
}

/** Runs a command to completion, killing it if it outlives `timeoutMs`. */
export async function runCommand(name: string, command: string, args: string[], timeoutMs: number, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  const started = Date.now();
  const p = spawnTracked(name, command, args, options);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void p.stop('SIGKILL', 1000);
  }, timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr(), timedOut, wallMs: Date.now() - started };
}

// ---------------------------------------------------------------------------
// /proc

export const CLK_TCK = (() => {
  try {
    const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(v) && v > 0 ? v : 100;
  } catch {
    return 100;
  }
})();

/** utime+stime of a process (all its threads), in seconds; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return statCpuSeconds(stat);
}

/** utime+stime of a /proc/.../stat line (a process's or a thread's), in seconds. */
function statCpuSeconds(stat: string): number {
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  return (Number(rest[14 - 3]) + Number(rest[15 - 3])) / CLK_TCK;
}

/** Sum of cpuSeconds over several pids (missing ones count as 0). */
export function cpuSecondsOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
}

/**
 * Seconds the threads of these processes spent runnable but waiting for a
 * CPU (the second field of each /proc/PID/task/TID/schedstat), summed:
 * on a host whose cores the load generator and the server already fill,
 * what another process's CPU costs the server shows here as time it was
 * ready to run and did not. Threads that end meanwhile drop out of the
 * sum; missing processes count as 0.
 */
export function runQueueSecondsOf(pids: number[]): number {
  let ns = 0;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return ns / 1e9;
}

/** VmRSS and VmHWM (peak RSS) in MB, from /proc/PID/status. */
export function memoryMB(pid: number): { rssMB: number; hwmMB: number } | undefined {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string): number => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 };
}

/** Direct children of a process, from /proc/PID/task/TID/children. */
export function childrenOf(pid: number): number[] {
  const pids: number[] = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) pids.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return pids;
}

/** Samples VmRSS of a process every `intervalMs` (the first sample is taken at once). */
export class RssSampler {
  readonly samplesMB: number[] = [];
  #timer: NodeJS.Timeout;
  constructor(
    private readonly pid: number,
    readonly intervalMs = 500,
  ) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }
  #sample(): void {
    const m = memoryMB(this.pid);
    if (m && Number.isFinite(m.rssMB)) this.samplesMB.push(round(m.rssMB, 2));
  }
  stop(): number[] {
    clearInterval(this.#timer);
    this.#sample();
    return this.samplesMB;
  }
}

export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for servers that cannot listen on port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The absolute path of an executable on PATH, or undefined. */
export function which(tool: string): string | undefined {
  if (tool.includes('/')) return isExecutable(tool) ? tool : undefined;
  // sbin directories too: nginx and bpftool live there, and sudo's PATH may lack them.
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/local/sbin', '/usr/sbin', '/sbin'])) {
    if (!dir) continue;
    const candidate = path.join(dir, tool);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The path to spawn for a tool: its absolute path when found, else the bare name (the spawn error then names it). */
export function tool(name: string): string {
  return which(name) ?? name;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * CPU seconds of a process's threads, in three groups: its main thread
 * (JavaScript), the threads named `readerName` (sonde's native ring-buffer
 * reader), and the rest (V8's compiler and GC helpers, libuv's pool).
 */
export function threadCpuSeconds(pid: number, readerName: string): { main: number; reader: number; helpers: number } | undefined {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const out = { main: 0, reader: 0, helpers: 0 };
  for (const tid of tids) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const seconds = statCpuSeconds(stat);
    if (Number(tid) === pid) out.main += seconds;
    else if (name === readerName) out.reader += seconds;
    else out.helpers += seconds;
  }
  return out;
}
