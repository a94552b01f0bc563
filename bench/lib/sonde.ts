/**
 * sonde as users run it (the real CLI, JSON logs), with what the benchmark
 * needs from it: the moment probes are attached, its counters lines, its CPU
 * and memory from /proc, and a clean SIGINT stop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, cpuSeconds, memoryMB, round, sleep, spawnTracked, type Tracked } from './proc';

/** Arguments added to every sonde started by this run (bench --sonde-arg), e.g. to compare hook sets. */
export const SONDE_EXTRA_ARGS: string[] = [];

export const SONDE_CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/**
 * The sonde the traced runs start: this checkout's, or another built one
 * (bench --sonde-dir, to measure an older commit with this benchmark).
 * Builds older than SIGUSR2 counters lines are not asked for them (the
 * signal would end them): their runs have no CPU parts.
 */
export const sondeUnderTest = { cli: SONDE_CLI, answersSigusr2: true };

export function sondeOf(checkout: string): { cli: string; answersSigusr2: boolean } {
  const cli = path.join(path.resolve(checkout), 'dist', 'src', 'cli', 'main.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: build that checkout first (npm ci && npm run build)`);
  return { cli, answersSigusr2: fs.readFileSync(cli, 'utf8').includes('SIGUSR2') };
}

export function useSondeFrom(checkout: string): void {
  Object.assign(sondeUnderTest, sondeOf(checkout));
}

/**
 * How a user starts that build: its bin/sonde, which sets up the
 * environment node reads at startup (bin/sonde says what); node on the CLI
 * for a checkout without one.
 */
export function commandOf(cli: string): { file: string; args: string[] } {
  const launcher = path.resolve(path.dirname(cli), '..', '..', '..', 'bin', 'sonde');
  return fs.existsSync(launcher) ? { file: launcher, args: [] } : { file: process.execPath, args: [cli] };
}

/** Runs `fn` with another build as the sonde under test. */
export async function withSonde<T>(sonde: { cli: string; answersSigusr2: boolean }, fn: () => Promise<T>): Promise<T> {
  const saved = { ...sondeUnderTest };
  Object.assign(sondeUnderTest, sonde);
  try {
    return await fn();
  } finally {
    Object.assign(sondeUnderTest, saved);
  }
}

export interface SondeCounters {
  requests: number;
  server: number;
  client: number;
  exported: number;
  eventsLost: number;
  spansDropped: number;
  /** Spans a --sampler left out (0 from a sonde without one). */
  spansSampledOut: number;
  /** Where the dropped spans were lost, "cause:count,…" (absent while none were, and from a sonde that does not say). */
  spansDroppedBy?: string;
  unparsed: number;
  connections: number;
  /** Outgoing calls left roots because several requests could have made them. */
  linksAmbiguous: number;
  /** Cumulative ms of sonde's JavaScript thread: records to spans, and spans to the exporters. */
  jsBuildMs: number;
  jsExportMs: number;
  /** Times the reader drained the ring buffer (NaN from a sonde that does not log it). */
  readerPolls: number;
  /** pino's timestamp of the line, epoch ms. */
  time: number;
}

const COUNTER_KEYS = ['requests', 'server', 'client', 'exported', 'eventsLost', 'spansDropped', 'unparsed', 'connections', 'linksAmbiguous', 'jsBuildMs', 'jsExportMs', 'readerPolls'] as const;

/** "spansDropped=N", with where they were lost when sonde said. */
export function spansDroppedText(c: SondeCounters): string {
  return `spansDropped=${c.spansDropped}${c.spansDroppedBy ? ` (${c.spansDroppedBy})` : ''}`;
}

/** Counters lines in sonde's JSON log, in order. */
export function parseCountersLines(stderr: string): SondeCounters[] {
  const lines: SondeCounters[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.includes('"msg":"counters"')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      const c = { time: Number(o.time) } as SondeCounters;
      for (const k of COUNTER_KEYS) c[k] = Number(o[k]);
      c.spansSampledOut = Number(o.spansSampledOut ?? 0);
      if (typeof o.spansDroppedBy === 'string') c.spansDroppedBy = o.spansDroppedBy;
      lines.push(c);
    } catch {
      /* a torn line: ignore */
    }
  }
  return lines;
}

export interface SondeStopResult {
  exitCode: number;
  killed: boolean;
  stopMs: number;
  /** The counters line sonde logs once more at shutdown, after flushing. */
  final: SondeCounters | undefined;
  /** CPU seconds from the start of the load window to the last sample before exit (includes flush and detach). */
  cpuSecondsAtExit: number | undefined;
  /** Lines at warn level or above, for the report's notes. */
  warnings: string[];
}

export interface SondeOptions {
  /** Selection flags, e.g. ['--pid', '123,456'] or ['--open-port', '8080']. */
  select: string[];
  /** OTLP endpoint, or undefined for --exporter none. */
  otlpEndpoint: string | undefined;
  extraArgs?: string[];
  attachTimeoutMs?: number;
}

export class SondeProcess {
  readonly startedAt = Date.now();
  attachMs = 0;
  /** How many eBPF programs sonde said it attached. */
  programs = 0;
  private constructor(private readonly proc: Tracked) {}

  static async start(o: SondeOptions): Promise<SondeProcess> {
    if (!fs.existsSync(sondeUnderTest.cli)) throw new Error(`${sondeUnderTest.cli} is missing: build sonde first (npm run build)`);
    // A clean environment: stray SONDE_* / OTEL_* variables of the caller must not change what is measured.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(SONDE_|OTEL_)/.test(k)) env[k] = v;
    const command = commandOf(sondeUnderTest.cli);
    // Counters lines come when asked for (SIGUSR2), and otherwise at sonde's
    // default interval, as a user runs it: a line a second cost sonde 3 % of
    // its CPU at 1.5k req/s. A build that does not answer the signal logs
    // one a second, for waitForDrain.
    const interval = sondeUnderTest.answersSigusr2 ? [] : ['--stats-interval-ms', '1000'];
    const args = [...command.args, ...o.select, '--log-format', 'json', ...interval, ...(o.extraArgs ?? []), ...SONDE_EXTRA_ARGS];
    // bin/sonde runs the first node on PATH: this one, which the addon was built for.
    env.PATH = `${path.dirname(process.execPath)}:${env.PATH ?? ''}`;
    if (o.otlpEndpoint) env.OTEL_EXPORTER_OTLP_ENDPOINT = o.otlpEndpoint;
    else args.push('--exporter', 'none');
    const proc = spawnTracked('sonde', command.file, args, { env });
    const s = new SondeProcess(proc);
    try {
      const m = await proc.waitFor(/^.*"msg":"attached eBPF programs".*$/m, o.attachTimeoutMs ?? 30_000);
      s.programs = Number(m[0].match(/"programs":(\d+)/)?.[1] ?? NaN);
    } catch (error) {
      await proc.stop('SIGKILL', 1000);
      throw error;
    }
    s.attachMs = Date.now() - s.startedAt;
    return s;
  }

  get pid(): number {
    return this.proc.pid;
  }

  cpuSeconds(): number {
    return cpuSeconds(this.proc.pid) ?? NaN;
  }

  /** VmHWM: the peak resident set since sonde started, MB. */
  peakRssMB(): number {
    return memoryMB(this.proc.pid)?.hwmMB ?? NaN;
  }

  counters(): SondeCounters[] {
    return parseCountersLines(this.proc.stderr());
  }

  /** Asks for a counters line now (SIGUSR2) and returns it; undefined if none comes within `timeoutMs`. */
  async countersNow(timeoutMs = 3000): Promise<SondeCounters | undefined> {
    if (!sondeUnderTest.answersSigusr2) return undefined;
    const seen = this.counters().length;
    try {
      process.kill(this.proc.pid, 'SIGUSR2');
    } catch {
      return undefined;
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.counters();
      if (lines.length > seen) return lines[seen];
      if (Date.now() > deadline || this.proc.hasExited()) return undefined;
      await sleep(5);
    }
  }

  /**
   * Waits (at most `timeoutMs`) until a counters line logged after `sinceMs`
   * shows everything seen so far exported and nothing new arriving; returns
   * that line, or the latest one.
   */
  async waitForDrain(sinceMs: number, timeoutMs: number): Promise<SondeCounters | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.countersNow();
      const lines = this.counters().filter((c) => c.time > sinceMs);
      const last = lines[lines.length - 1];
      const prev = lines[lines.length - 2];
      // The reader drains once a second: two lines that agree on requests
      // say nothing is left only if the reader drained between them.
      const drainedBetween = Number.isNaN(last?.readerPolls) || (last && prev && last.readerPolls > prev.readerPolls);
      if (last && prev && drainedBetween && last.requests === prev.requests && last.exported + last.spansDropped + last.spansSampledOut >= last.server + last.client) return last;
      if (Date.now() > deadline || this.proc.hasExited()) return last ?? this.counters().pop();
      await sleep(250);
    }
  }

  /** SIGINT (sonde flushes and exits 0); SIGKILL if it takes longer than `timeoutMs`. */
  async stop(cpuAtWindowStart: number, timeoutMs = 20_000): Promise<SondeStopResult> {
    const t0 = Date.now();
    let lastCpu = this.cpuSeconds();
    const poll = setInterval(() => {
      const c = cpuSeconds(this.proc.pid);
      if (c !== undefined) lastCpu = c;
    }, 20);
    const { code, killed } = await this.proc.stop('SIGINT', timeoutMs);
    clearInterval(poll);
    const stderr = this.proc.stderr();
    const stopIdx = stderr.lastIndexOf('"msg":"stopping');
    const afterStop = stopIdx >= 0 ? parseCountersLines(stderr.slice(stderr.lastIndexOf('\n', stopIdx) + 1)) : [];
    const warnings = stderr
      .split('\n')
      .filter((l) => /"level":(40|50|60)/.test(l) || (l.trim() && !l.trim().startsWith('{')))
      .slice(0, 20);
    return {
      exitCode: code,
      killed,
      stopMs: Date.now() - t0,
      final: afterStop[afterStop.length - 1],
      cpuSecondsAtExit: Number.isFinite(lastCpu) ? round(lastCpu - cpuAtWindowStart, 3) : undefined,
      warnings,
    };
  }

  /** For failures: kill without ceremony. */
  async kill(): Promise<void> {
    await this.proc.stop('SIGKILL', 1000);
  }

  stderrTail(lines = 20): string {
    return this.proc.stderr().split('\n').slice(-lines).join('\n');
  }
}
