/**
 * Plain processes for end-to-end tests: sonde itself (the real CLI, as a
 * user starts it) and the services it traces.
 *
 * Every helper that starts a process takes the test's context first and
 * ties the process to it, so no process outlives its test, whatever the
 * test asserts or throws:
 *
 *   startSonde(t, args, env)           sonde with --stats-interval-ms 1000 and a
 *                                      clean environment (PATH, HOME, `env`);
 *                                      resolves once it is running: startup
 *                                      logged and its first counters line out.
 *   startService(t, cmd, args, env?)   a service that prints its port on stdout;
 *                                      resolves with { proc, port }.
 *   startProcess(t, cmd, args, opts?)  anything else; opts: env, cwd,
 *                                      stopSignal (default SIGTERM), graceMs.
 *
 * Each returns a RunningProcess: stdout(), stderr(), waitForOutput(pattern,
 * timeoutMs, stream = 'stderr', since = 0), exited, and stop(signal?) which
 * is idempotent and SIGKILLs the process group after the grace period.
 * `t.after` calls stop() for you; call it yourself where the test asserts
 * on the exit code or on what the process prints while stopping (sonde's
 * final counters). Pass 'file' instead of `t` for a process shared by the
 * file's tests: the file-level after hook stops it.
 *
 * Waiting: wait for a line (waitForOutput), for spans (the receivers'
 * waitFor), for sonde's next counters line (nextCounters) or for them to
 * stop moving (settledCounters), or for a state (waitUntil); never sleep a
 * fixed time and then read.
 *
 * Client fixtures that print a JSON summary line when done (grpc-client.js,
 * grpc_client.py, http2-client.js): clientSummary(proc) resolves with it once
 * the client exited 0, and throws with its output otherwise, so a broken
 * fixture never passes for missing spans. listeningPortOf(pid) finds the
 * port of a server that does not print it (nghttpd on port 0);
 * pythonWithGrpc() the interpreter python3-grpcio installed for.
 *
 * Synchronous commands (execFileSync: curl, wrk, sonde's refusals) block the
 * event loop, so no timer can end them: always pass SYNC_LIMIT or a timeout.
 *
 * The file's and each test's time limit: test/support/watchdog.ts.
 */
import { execFileSync } from 'node:child_process';
import { listeningTcpPorts, socketInodesOf } from '../../src/discovery/procfs';
import { loadNativeModule } from '../../src/native/binding';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Launch } from '../support/fanoutTopology';
import { REPO_ROOT, startProcess, type Owner, type RunningProcess } from '../support/processes';

export { REPO_ROOT, startProcess, waitUntil, type Owner, type RunningProcess, type StartOptions } from '../support/processes';

/** For execFileSync: a hung command is killed and throws instead of blocking the file for ever. */
export const SYNC_LIMIT = { timeout: 30_000, killSignal: 'SIGKILL' } as const;

/** One line of sonde's periodic counters, in either log format. */
export const COUNTERS_LINE = /(?:INFO\s+counters\s|"msg":"counters")/;

/**
 * sonde as a user runs it. Resolves once its first counters line is out:
 * 'exporting spans' is the last line of its startup, and the counters line
 * comes from a timer, so by then startup has returned and sonde's SIGINT and
 * SIGTERM handlers are installed (a stop is a clean one). A test must not
 * turn the counters off (--stats-interval-ms 0).
 */
/**
 * PATH for bin/sonde, which runs the first `node` on it: the node running
 * the tests first, so that sonde runs on the node its addon was built for.
 */
export const PATH_WITH_THIS_NODE = `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`;

export async function startSonde(t: Owner, args: string[], env: NodeJS.ProcessEnv): Promise<RunningProcess> {
  const sonde = startProcess(t, path.join(REPO_ROOT, 'bin', 'sonde'), ['--stats-interval-ms', '1000', ...args], {
    env: { PATH: PATH_WITH_THIS_NODE, HOME: process.env.HOME, SONDE_TEST_POISON_LENT_BATCHES: '1', ...env },
    // sonde flushes on SIGINT and SIGTERM alike; SIGINT is what a user sends.
    stopSignal: 'SIGINT',
  });
  await sonde.waitForOutput(/exporting spans/, 30_000);
  await sonde.waitForOutput(COUNTERS_LINE, 30_000);
  return sonde;
}

/** Resolves at sonde's next counters line: one more turn of its stats timer, after whatever the test just did. */
export function nextCounters(sonde: RunningProcess, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  return sonde.waitForOutput(COUNTERS_LINE, timeoutMs, 'stderr', sonde.stderr().length);
}

export interface CountersLine {
  requests: number;
  exported: number;
  eventsLost: number;
  spansDropped: number;
  linksAmbiguous: number;
  /** Spans the addon encoded (plain HTTP/1 requests, gRPC calls). */
  encodedByAddon: number;
  /** Batches that found no buffer lent to the addon free. */
  batchesUnlent: number;
  /** Times the reader thread drained the ring buffer. */
  readerPolls: number;
}

/** The last counters line sonde printed, in either log format. */
export function lastCounters(sonde: RunningProcess): CountersLine | undefined {
  const line = sonde
    .stderr()
    .split('\n')
    .filter((l) => COUNTERS_LINE.test(l))
    .pop();
  if (line === undefined) return undefined;
  const field = (name: string): number => Number(new RegExp(`"?${name}"?[=:](\\d+)`).exec(line)?.[1] ?? NaN);
  return {
    requests: field('requests'),
    exported: field('exported'),
    eventsLost: field('eventsLost'),
    spansDropped: field('spansDropped'),
    linksAmbiguous: field('linksAmbiguous'),
    encodedByAddon: field('encodedByAddon'),
    batchesUnlent: field('batchesUnlent'),
    readerPolls: field('readerPolls'),
  };
}

/**
 * Resolves once two successive counters lines agree on requests and
 * exported: sonde has taken in everything the kernel handed over and has
 * nothing left to send.
 */
export async function settledCounters(sonde: RunningProcess, timeoutMs = 30_000): Promise<CountersLine> {
  const deadline = Date.now() + timeoutMs;
  let previous = lastCounters(sonde);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`sonde's counters did not settle within ${timeoutMs} ms; last: ${JSON.stringify(previous)}\n${sonde.stderr().split('\n').slice(-10).join('\n')}`);
    await nextCounters(sonde, left);
    const now = lastCounters(sonde)!;
    if (previous && now.requests === previous.requests && now.exported === previous.exported) return now;
    previous = now;
  }
}

/** Starts processes for test/support/fanoutTopology.ts, each tied to `t` like startProcess's. */
export function launchFor(t: Owner): Launch {
  return (_name, command, args, env) => {
    const p = startProcess(t, command, args, { env });
    let exited = false;
    void p.exited.then(() => (exited = true));
    return {
      pid: p.pid,
      waitForStdout: (pattern, timeoutMs) => p.waitForOutput(pattern, timeoutMs, 'stdout'),
      hasExited: () => exited,
      stderr: () => p.stderr(),
      stop: () => p.stop(),
    };
  };
}

/** A service that prints its port on stdout once listening: alone on a line, or as "listening on http://host:PORT". */
export async function startService(t: Owner, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ proc: RunningProcess; port: number }> {
  const proc = startProcess(t, command, args, { env: { ...process.env, ...env } });
  const m = await proc.waitForOutput(/^(?:\d+|.*listening on http:\/\/[^\s]+:(\d+))\s*$/m, 10_000, 'stdout');
  return { proc, port: Number(m[1] ?? m[0]) };
}

export interface ObservedRequest {
  status: number;
  body: string;
  /** Wall-clock bounds of the request as this client saw them, in epoch ns. */
  startNs: bigint;
  endNs: bigint;
}

/**
 * The wall clock now, in ns, read from CLOCK_REALTIME itself: sonde's
 * exported times follow it (steps included), and so must a test's idea of
 * when a request started. performance.timeOrigin does not: it is fixed when
 * the test process starts, and the wall clock may be stepped after.
 */
export const epochNs = (): bigint => loadNativeModule().clock()[0];

export function request(url: string, options: { agent?: http.Agent; headers?: Record<string, string>; method?: string; body?: string; timeoutMs?: number } = {}): Promise<ObservedRequest> {
  return new Promise((resolve, reject) => {
    const startNs = epochNs();
    const req = http.request(url, { agent: options.agent, headers: options.headers, method: options.method ?? 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, startNs, endNs: epochNs() }));
    });
    req.setTimeout(options.timeoutMs ?? 20_000, () => req.destroy(new Error(`${options.method ?? 'GET'} ${url}: no response within ${options.timeoutMs ?? 20_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Every loaded BPF program of sonde's (tracepoints and raw tracepoints alike: all are named sonde_*). */
export function sondeProgramsLoaded(): string[] {
  const out = execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8', ...SYNC_LIMIT });
  return out.split('\n').filter((l) => /^\d+: .* name sonde_/.test(l));
}

/**
 * A pause that is part of what a test does (pacing the pieces of a request),
 * never a wait for a result: wait for that with the helpers above.
 */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore', ...SYNC_LIMIT });
    return true;
  } catch {
    return false;
  }
}

/**
 * The TCP port `pid` listens on, for a service that does not print it
 * (nghttpd on port 0): its socket inodes matched against /proc/net/tcp{,6}.
 * undefined while it does not listen yet; wait for it with waitUntil.
 */
export function listeningPortOf(pid: number): number | undefined {
  const listening = listeningTcpPorts();
  for (const inode of socketInodesOf(pid)) {
    const port = listening.get(inode);
    if (port !== undefined) return port;
  }
  return undefined;
}

let grpcPython: string | null | undefined;
/**
 * A Python interpreter that can `import grpc`, or undefined: `python3` on
 * PATH first, then Debian's /usr/bin/python3, where python3-grpcio installs
 * it (a pyenv `python3` earlier on PATH does not see Debian's packages).
 */
export function pythonWithGrpc(): string | undefined {
  if (grpcPython === undefined) {
    grpcPython = null;
    for (const candidate of ['python3', '/usr/bin/python3']) {
      try {
        execFileSync(candidate, ['-c', 'import grpc'], { stdio: 'ignore', ...SYNC_LIMIT });
        grpcPython = candidate;
        break;
      } catch {
        // Not this one.
      }
    }
  }
  return grpcPython ?? undefined;
}

/**
 * The JSON summary line a client fixture prints when done (grpc-client.js,
 * grpc_client.py, http2-client.js), once it has exited 0; throws with its
 * output otherwise, so that a broken fixture is not mistaken for missing spans.
 */
export async function clientSummary<T>(client: RunningProcess, timeoutMs = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([client.exited, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)))]);
  clearTimeout(timer);
  const out = client.stdout().trimEnd();
  if (code !== 0) throw new Error(`client ${code === 'timeout' ? `still running after ${timeoutMs} ms` : `exited ${code}`}\nstdout:\n${out}\nstderr:\n${client.stderr()}`);
  return JSON.parse(out.slice(out.lastIndexOf('\n') + 1)) as T;
}

/** A port on `host` that something else holds until the test ends: for the errors sonde gives when its own address is taken. */
export async function takenPort(t: { after(fn: () => void): void }, host: string): Promise<number> {
  const holder = http.createServer();
  await new Promise<void>((resolve) => holder.listen(0, host, resolve));
  t.after(() => holder.close());
  return (holder.address() as { port: number }).port;
}
