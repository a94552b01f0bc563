/**
 * Plain processes for end-to-end tests: sonde itself (the real CLI, as a
 * user starts it) and the services it traces.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

export const REPO_ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'binding.gyp'))) dir = path.dirname(dir);
  return dir;
})();

export interface RunningProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  waitForOutput(pattern: RegExp, timeoutMs: number, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
  /** Sends SIGINT (or `signal`) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export function startProcess(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): RunningProcess {
  const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd ?? REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  const notify = (): void => waiters.splice(0).forEach((w) => w());
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    notify();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    notify();
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => {
    exitCode = code ?? (signal ? 128 : null);
    notify();
    resolve(exitCode);
  }));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForOutput(pattern, timeoutMs, stream = 'stderr') {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in ${command} ${stream}\nstdout:\n${out}\nstderr:\n${err}`)), timeoutMs);
        const check = (): void => {
          const m = (stream === 'stdout' ? out : err).match(pattern);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          } else if (exitCode !== undefined) {
            clearTimeout(timer);
            reject(new Error(`${command} exited (${exitCode}) before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    async stop(signal = 'SIGINT', timeoutMs = 15_000) {
      if (exitCode !== undefined) return exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** sonde as a user runs it; resolves once its probes are attached. */
export async function startSonde(args: string[], env: NodeJS.ProcessEnv): Promise<RunningProcess> {
  const sonde = startProcess(process.execPath, [path.join(REPO_ROOT, 'bin', 'sonde'), '--stats-interval-ms', '1000', ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
  await sonde.waitForOutput(/attached eBPF programs/, 30_000);
  return sonde;
}

/** A service that prints its port on stdout once listening: alone on a line, or as "listening on http://host:PORT". */
export async function startService(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ proc: RunningProcess; port: number }> {
  const proc = startProcess(command, args, { env: { ...process.env, ...env } });
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

const epochNs = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

export function request(url: string, options: { agent?: http.Agent; headers?: Record<string, string>; method?: string; body?: string } = {}): Promise<ObservedRequest> {
  return new Promise((resolve, reject) => {
    const startNs = epochNs();
    const req = http.request(url, { agent: options.agent, headers: options.headers, method: options.method ?? 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, startNs, endNs: epochNs() }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export function sondeProgramsLoaded(): string[] {
  const out = execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => /sonde_tp_/.test(l));
}

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
