/**
 * Load generators (wrk for saturation, hey for fixed rates, h2load for
 * HTTP/2 and gRPC) and parsers for their text output. Parsers are pure
 * functions so they can be checked on captured output.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCommand, round, tool } from './proc';

export interface LoadResult {
  tool: 'wrk' | 'hey' | 'h2load';
  /** Completed requests: wrk's "N requests in", hey's sum of status codes, h2load's "done". */
  requests: number;
  /** Achieved requests per second. */
  rps: number;
  /** The tool's own measured duration, seconds. */
  durationS: number;
  /** Latency percentiles in milliseconds, keys like p50, p99. */
  latencyMs: Record<string, number>;
  /** Socket errors (wrk) or error-distribution total (hey). */
  errors: number;
  /** Responses that were not 2xx/3xx. */
  non2xx: number;
  /** hey only: the rate that was asked for (workers x per-worker rate). */
  targetRps?: number;
  statusCounts?: Record<string, number>;
  command: string;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(value: string, unit: string): number {
  const factor = UNIT_MS[unit];
  if (factor === undefined) throw new Error(`unknown time unit "${unit}"`);
  return Number(value) * factor;
}

/** Parses `wrk --latency` output. */
export function parseWrk(text: string): Omit<LoadResult, 'command'> {
  const m = text.match(/(\d+) requests in ([\d.]+)(us|ms|s|m|h),/);
  if (!m) throw new Error(`cannot parse wrk output:\n${text}`);
  const requests = Number(m[1]);
  const durationS = toMs(m[2], m[3]) / 1000;
  const rpsMatch = text.match(/Requests\/sec:\s+([\d.]+)/);
  const latencyMs: Record<string, number> = {};
  const dist = text.split(/Latency Distribution/)[1];
  if (dist) {
    for (const line of dist.split('\n')) {
      const p = line.match(/^\s+(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$/);
      if (p) latencyMs[`p${p[1]}`] = round(toMs(p[2], p[3]), 4);
    }
  }
  const sock = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const errors = sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0;
  const non2xx = Number(text.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  return { tool: 'wrk', requests, durationS, rps: rpsMatch ? Number(rpsMatch[1]) : requests / durationS, latencyMs, errors, non2xx };
}

/** Parses hey's default summary output. Latencies are printed in seconds with 4 decimals (0.1 ms resolution). */
export function parseHey(text: string): Omit<LoadResult, 'command'> {
  const total = text.match(/Total:\s+([\d.]+) secs/);
  if (!total) throw new Error(`cannot parse hey output:\n${text}`);
  const durationS = Number(total[1]);
  const latencyMs: Record<string, number> = {};
  const dist = text.split(/Latency distribution:/)[1]?.split(/\n\s*\n/)[0] ?? '';
  for (const line of dist.split('\n')) {
    const p = line.match(/^\s+(\d+)% in ([\d.]+) secs/);
    if (p) latencyMs[`p${p[1]}`] = round(Number(p[2]) * 1000, 4);
  }
  const statusCounts: Record<string, number> = {};
  const statusSection = text.split(/Status code distribution:/)[1]?.split(/\n\s*\n/)[0] ?? '';
  for (const line of statusSection.split('\n')) {
    const s = line.match(/^\s+\[(\d+)\]\s+(\d+) responses/);
    if (s) statusCounts[s[1]] = (statusCounts[s[1]] ?? 0) + Number(s[2]);
  }
  let errors = 0;
  const errorSection = text.split(/Error distribution:/)[1] ?? '';
  for (const line of errorSection.split('\n')) {
    const e = line.match(/^\s+\[(\d+)\]\s+/);
    if (e) errors += Number(e[1]);
  }
  const requests = Object.values(statusCounts).reduce((a, b) => a + b, 0);
  const non2xx = Object.entries(statusCounts)
    .filter(([code]) => !/^[23]/.test(code))
    .reduce((a, [, n]) => a + n, 0);
  // hey's own Requests/sec counts errors too; completed responses over the run is what matters here.
  return { tool: 'hey', requests, durationS, rps: durationS > 0 ? requests / durationS : 0, latencyMs, errors, non2xx, statusCounts };
}

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  durationS: number;
}

export async function runWrk(o: WrkOptions): Promise<LoadResult> {
  const args = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.durationS}s`, '--latency', o.url];
  const r = await runCommand('wrk', tool('wrk'), args, (o.durationS + 20) * 1000);
  const command = `wrk ${args.join(' ')}`;
  if (r.timedOut) throw new Error(`${command} did not finish in time`);
  if (r.code !== 0) throw new Error(`${command} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return { ...parseWrk(r.stdout), command };
}

export interface HeyOptions {
  url: string;
  /** Total requests per second asked for. */
  targetRps: number;
  durationS: number;
  /** At least this many workers (default 20, fewer for tiny rates); more when a worker would exceed 400 req/s. */
  workers?: number;
  disableKeepalive?: boolean;
}

/**
 * hey's -q is per worker, and each worker is closed-loop (it waits for its
 * response before its next tick, and skips ticks it missed): a worker above
 * a few hundred req/s cannot keep its rate once latency grows. This picks
 * the workers and the per-worker rate for a total target rate.
 */
export function heyWorkers(targetRps: number, atLeast?: number): { workers: number; perWorker: number } {
  const workers = Math.max(atLeast ?? Math.min(20, Math.ceil(targetRps / 5)), Math.ceil(targetRps / 400), 1);
  return { workers, perWorker: targetRps / workers };
}

export async function runHey(o: HeyOptions): Promise<LoadResult> {
  const { workers, perWorker } = heyWorkers(o.targetRps, o.workers);
  const args = ['-z', `${o.durationS}s`, '-c', String(workers), '-q', perWorker.toFixed(3)];
  if (o.disableKeepalive) args.push('-disable-keepalive');
  args.push(o.url);
  const r = await runCommand('hey', tool('hey'), args, (o.durationS + 40) * 1000);
  const command = `hey ${args.join(' ')}`;
  if (r.timedOut) throw new Error(`${command} did not finish in time`);
  if (r.code !== 0) throw new Error(`${command} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return { ...parseHey(r.stdout), targetRps: round(workers * perWorker, 1), command };
}

/**
 * hey without a rate limit: the most this client gets out of the server.
 * Fixed rates are fractions of this, not of wrk's maximum: hey needs far
 * more CPU per request than wrk, so on two cores "50% of wrk's maximum" is
 * already more than hey can send.
 */
export async function runHeyMax(o: { url: string; durationS: number; workers: number }): Promise<LoadResult> {
  const args = ['-z', `${o.durationS}s`, '-c', String(o.workers), o.url];
  const r = await runCommand('hey', tool('hey'), args, (o.durationS + 40) * 1000);
  const command = `hey ${args.join(' ')}`;
  if (r.timedOut) throw new Error(`${command} did not finish in time`);
  if (r.code !== 0) throw new Error(`${command} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return { ...parseHey(r.stdout), command };
}

/**
 * Parses h2load's summary, and its --log-file (one line per finished
 * request: start in µs since the epoch, HTTP status, duration in µs) for
 * the latency percentiles its summary lacks (min, max, mean and sd only).
 */
export function parseH2load(text: string, log: string): Omit<LoadResult, 'command'> {
  const finished = text.match(/finished in ([\d.]+)(us|ms|s|m|h), ([\d.]+) req\/s/);
  const counts = text.match(/requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/);
  if (!finished || !counts) throw new Error(`cannot parse h2load output:\n${text}`);
  const durationS = toMs(finished[1], finished[2]) / 1000;
  const requests = Number(counts[3]);
  const statusCounts: Record<string, number> = {};
  const durationsMs: number[] = [];
  for (const line of log.split('\n')) {
    const [, status, us] = line.split('\t');
    if (us === undefined) continue;
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    durationsMs.push(Number(us) / 1000);
  }
  durationsMs.sort((a, b) => a - b);
  const latencyMs: Record<string, number> = {};
  if (durationsMs.length > 0) {
    for (const p of [50, 75, 90, 99]) latencyMs[`p${p}`] = round(durationsMs[Math.min(durationsMs.length - 1, Math.ceil((p / 100) * durationsMs.length) - 1)], 4);
  }
  const non2xx = Object.entries(statusCounts)
    .filter(([code]) => !/^[23]/.test(code))
    .reduce((a, [, n]) => a + n, 0);
  return { tool: 'h2load', requests, durationS, rps: Number(finished[3]), latencyMs, errors: Number(counts[5]) + Number(counts[6]) + Number(counts[7]), non2xx, statusCounts };
}

export interface H2loadOptions {
  url: string;
  /** Connections (h2load -c). */
  clients: number;
  /** Concurrent streams per connection (h2load -m). */
  streams: number;
  durationS: number;
  /** Request body, sent as DATA with every request (h2load -d): makes it a POST. */
  dataFile?: string;
  headers?: string[];
  /** Where h2load writes its per-request log; read and removed once parsed. */
  logFile: string;
  /** HTTP/1.1 instead of h2 (h2load --h1): one request at a time per connection, kept alive. */
  h1?: boolean;
  /** Requests per second per connection (h2load --rps); unthrottled when absent. */
  rpsPerClient?: number;
}

/** h2load for `durationS` seconds, one thread, `clients` connections of `streams` streams each. */
export async function runH2load(o: H2loadOptions): Promise<LoadResult> {
  const args = ['-D', String(o.durationS), '-t', '1', '-c', String(o.clients), '-m', String(o.streams), `--log-file=${o.logFile}`];
  if (o.h1) args.push('--h1');
  if (o.rpsPerClient !== undefined) args.push(`--rps=${o.rpsPerClient.toFixed(3)}`);
  for (const h of o.headers ?? []) args.push('-H', h);
  if (o.dataFile) args.push('-d', o.dataFile);
  args.push(o.url);
  const r = await runCommand('h2load', tool('h2load'), args, (o.durationS + 20) * 1000);
  const command = `h2load ${args.join(' ')}`;
  if (r.timedOut) throw new Error(`${command} did not finish in time`);
  if (r.code !== 0) throw new Error(`${command} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  let log = '';
  try {
    log = fs.readFileSync(o.logFile, 'utf8');
  } finally {
    fs.rmSync(o.logFile, { force: true });
  }
  return { ...parseH2load(r.stdout, log), command };
}

/**
 * The client that loads one of the bench's hello-world servers: hey over
 * plain HTTP; h2load over HTTP/1.1 for HTTPS, since hey's Go client over
 * TLS keeps opening new connections (a handshake each) whenever the
 * machine slows down, so a slower arm pays for handshakes the others do
 * not (at 20k requests it opened 8.4k connections here, nstat).
 */
export function clientFor(url: string): 'hey' | 'h2load' {
  return url.startsWith('https:') ? 'h2load' : 'hey';
}

/** The connections {@link runAtRate} opens: h2load's clients, or hey's workers. */
export function atRateConnections(o: { url: string; targetRps: number; workers?: number }): number {
  return clientFor(o.url) === 'h2load' ? (o.workers ?? H2LOAD_CLIENTS) : heyWorkers(o.targetRps, o.workers).workers;
}

/** The command line {@link runAtRate} runs, for a report. */
export function atRateCommand(o: { url: string; targetRps: number; durationS: number; workers?: number }): string {
  const connections = atRateConnections(o);
  const perConnection = (o.targetRps / connections).toFixed(3);
  return clientFor(o.url) === 'h2load'
    ? `h2load --h1 -D ${o.durationS} -c ${connections} --rps=${perConnection}`
    : `hey -z ${o.durationS}s -c ${connections} -q ${perConnection}`;
}

/** h2load's connections when the caller names none. */
const H2LOAD_CLIENTS = 20;

/** A fixed rate against one of the bench's hello-world servers, by {@link clientFor}'s client. */
export function runAtRate(o: { url: string; targetRps: number; durationS: number; workers?: number }): Promise<LoadResult> {
  if (clientFor(o.url) === 'hey') return runHey(o);
  const clients = atRateConnections(o);
  return runH2load({ url: o.url, clients, streams: 1, durationS: o.durationS, logFile: h2loadLogFile(), h1: true, rpsPerClient: o.targetRps / clients });
}

/** As fast as `workers` connections go, by {@link clientFor}'s client. */
export function runAtMax(o: { url: string; durationS: number; workers: number }): Promise<LoadResult> {
  if (clientFor(o.url) === 'hey') return runHeyMax(o);
  return runH2load({ url: o.url, clients: o.workers, streams: 1, durationS: o.durationS, logFile: h2loadLogFile(), h1: true });
}

/** A log file of h2load's own; runH2load removes it once read. */
function h2loadLogFile(): string {
  return path.join(os.tmpdir(), `sonde-h2load-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.log`);
}
