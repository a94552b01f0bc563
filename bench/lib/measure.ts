/**
 * One measured run, untraced (A) or traced (B), and the figures every
 * scenario wants from it. For a traced run sonde is started and attached
 * before the load window and stopped after it: attach and detach are not
 * measured; sonde's CPU, the server's and the receiver's are deltas over the
 * load window only.
 */
import { execFileSync } from 'node:child_process';
import type { LoadResult } from './load';
import { sondeBpfRunNs } from './bpfStats';
import { RssSampler, cpuSeconds, cpuSecondsOf, round, runQueueSecondsOf, sleep, threadCpuSeconds, tool } from './proc';
import type { Receiver } from './receiver';
import { SONDE_CLI, SondeProcess, sondeUnderTest, type SondeCounters } from './sonde';

export type RunKind = 'baseline' | 'traced';

export interface SondeFigures {
  /** Which build traced the run: this checkout's main.js, or another's (bench --sonde-dir, --before-dir). */
  cli: string;
  attachMs: number;
  /** sonde_tp_ programs sonde reported attaching. */
  programs: number;
  /** utime+stime over the load window. */
  cpuSeconds: number;
  cores: number;
  /** cpu_seconds / window_seconds / (rps / 10000) */
  coresPer10kRps: number;
  /**
   * The unmeasured load before the window: how long, and what sonde spent
   * on it (V8 compiles sonde's hot paths then). Absent without a warm-up.
   */
  warmup?: { seconds: number; requests: number; cpuSeconds: number; coresPer10kRps: number };
  /** From the start of the window until sonde exited: includes the final flush and detach. */
  cpuSecondsToExit: number | undefined;
  /** VmHWM at the end of the window (peak since sonde started). */
  peakRssMB: number;
  rss: {
    intervalMs: number;
    startMB: number;
    peakMB: number;
    endMB: number;
    /** end − start: includes the heap growing to its working size at the start of the load. */
    growthMB: number;
    /** end − the sample at mid-window: growth once warmed up, what a leak shows as. */
    secondHalfGrowthMB: number;
    samplesMB: number[];
  };
  /** Spans sonde had exported when the receiver's count for the window began (those of the warm-up). */
  exportedBeforeWindow: number | undefined;
  /** Where the CPU went, per span sonde built during the window (undefined parts could not be measured). */
  parts: CostParts | undefined;
  /** Last periodic counters line after the load (after draining when asked). */
  afterLoad: SondeCounters | undefined;
  /** The counters line logged at shutdown. */
  final: SondeCounters | undefined;
  exitCode: number;
  killed: boolean;
  stopMs: number;
  warnings: string[];
}

/**
 * Microseconds per span, by part, over the load window. `kernel` is BPF run
 * time (kernel.bpf_stats_enabled), paid by the processes whose syscalls hit
 * the probes, not by sonde; the others are sonde's own threads.
 */
export interface CostParts {
  spans: number;
  kernelUs: number | undefined;
  /** The native reader thread: ring buffer, connection table, stitching, linking, records. */
  nativeUs: number;
  /** The JavaScript thread, records to spans (decode, describe, build). */
  jsBuildUs: number;
  /** The JavaScript thread, spans to exporters (OTLP encoding, batching, hand-off). */
  jsExportUs: number;
  /** The rest of the JavaScript thread: the transport's I/O, timers, discovery, GC pauses. */
  jsOtherUs: number;
  /** V8's compiler and GC threads, libuv's pool. */
  helpersUs: number;
  /** All of sonde's threads. */
  sondeUs: number;
}

/**
 * What ran beside the server in an untraced run that splits a traced run's
 * cost: empty programs on sonde's tracepoints (`floor`), the least a tracer
 * of message boundaries does on them (`boundary`, bench/lib/boundaryProbe.ts),
 * or sonde capturing without exporting (`capture`).
 */
export type Beside = 'floor' | 'boundary' | 'capture';

export interface RunRecord {
  kind: RunKind;
  /** Set on an untraced run that had something beside the server. */
  beside?: Beside;
  pair: number;
  label: string;
  startedAt: string;
  /** The load window as the runner timed it, seconds. */
  windowS: number;
  load: LoadResult;
  /**
   * The server's CPU over the window; `cores`, the CPU it got per second,
   * and its wait for a CPU while runnable (runQueueSecondsOf), in ms per
   * second: a traced server's throughput ratio at saturation is its cores'
   * ratio divided by its CPU per request's. Absent from runs before
   * 2026-12-05.
   */
  server: { pids: number[]; cpuSeconds: number; coresPer10kRps: number; cores?: number; runQueueMsPerS?: number };
  /** sonde_tp_ programs loaded by something other than this run's sonde (another sonde on the host would skew the run). */
  foreignSondePrograms: number;
  /** CPU of what ran beside the server, over the window, when the caller could tell (capture: its sonde). */
  besideCpu?: { cpuSeconds: number; coresPer10kRps: number };
  sonde?: SondeFigures;
  receiver?: { spans: number; exportCalls: number; cpuSeconds: number; cores: number };
}

export interface MeasureContext {
  receiver: Receiver;
  gapMs: number;
  settleMs: number;
  log(line: string): void;
}

export interface MeasureOptions {
  kind: RunKind;
  /** An untraced run's tag for what the caller started beside the server (it is started and stopped by the caller). */
  beside?: Beside;
  /** sonde_tp_ programs of the caller's own sonde beside the server (capture): not another sonde's. */
  besidePrograms?: number;
  /** CPU seconds used so far by what runs beside the server, read around the window. */
  besideCpuSeconds?: () => number;
  pair: number;
  label: string;
  serverPids: number[];
  /** sonde's selection flags (traced runs). */
  select: string[];
  load: () => Promise<LoadResult>;
  /**
   * Load before the window, unmeasured, on both sides: in a traced run sonde
   * has then compiled its hot paths (V8's JIT), as a sonde that has been
   * running for a while has. Without it a short window measures the compiler.
   * fixed-rate gives a traced run a longer one (ModeConfig's tracedWarmupS).
   */
  warmup?: () => Promise<LoadResult>;
  /** Wait (bounded) for sonde to export what it saw before stopping it: makes afterLoad.connections meaningful. */
  drainMs?: number;
}

/** sonde_tp_ programs currently loaded in the kernel (NaN without bpftool). */
export function loadedSondePrograms(): number {
  try {
    const out = execFileSync(tool('bpftool'), ['prog', 'show'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return out.split('\n').filter((l) => /\bname sonde_/.test(l)).length;
  } catch {
    return NaN;
  }
}

const per10k = (cpu: number, windowS: number, rps: number): number => (windowS > 0 && rps > 0 ? cpu / windowS / (rps / 10_000) : NaN);

function serverFigures(pids: number[], cpuSeconds: number, runQueueSeconds: number, windowS: number, rps: number): RunRecord['server'] {
  return {
    pids,
    cpuSeconds: round(cpuSeconds),
    coresPer10kRps: round(per10k(cpuSeconds, windowS, rps), 4),
    cores: round(windowS > 0 ? cpuSeconds / windowS : NaN, 4),
    runQueueMsPerS: round(windowS > 0 ? (runQueueSeconds * 1000) / windowS : NaN, 2),
  };
}

export async function measure(ctx: MeasureContext, o: MeasureOptions): Promise<RunRecord> {
  await sleep(ctx.gapMs);
  const startedAt = new Date().toISOString();
  if (o.kind === 'baseline') {
    const foreign = loadedSondePrograms() - (o.besidePrograms ?? 0);
    await o.warmup?.();
    const srv0 = cpuSecondsOf(o.serverPids);
    const q0 = runQueueSecondsOf(o.serverPids);
    const beside0 = o.besideCpuSeconds?.() ?? NaN;
    const t0 = performance.now();
    const load = await o.load();
    const windowS = (performance.now() - t0) / 1000;
    const srvCpu = cpuSecondsOf(o.serverPids) - srv0;
    const srvWait = runQueueSecondsOf(o.serverPids) - q0;
    const besideCpu = (o.besideCpuSeconds?.() ?? NaN) - beside0;
    const record: RunRecord = {
      kind: 'baseline',
      ...(o.beside ? { beside: o.beside } : {}),
      pair: o.pair,
      label: o.label,
      startedAt,
      windowS: round(windowS),
      load,
      server: serverFigures(o.serverPids, srvCpu, srvWait, windowS, load.rps),
      foreignSondePrograms: foreign,
      ...(o.besideCpuSeconds ? { besideCpu: { cpuSeconds: round(besideCpu), coresPer10kRps: round(per10k(besideCpu, windowS, load.rps), 4) } } : {}),
    };
    ctx.log(describeRun(record));
    return record;
  }

  let before = await ctx.receiver.count();
  const sonde = await SondeProcess.start({ select: o.select, otlpEndpoint: ctx.receiver.url });
  let stopped = false;
  try {
    await sleep(ctx.settleMs);
    const foreign = loadedSondePrograms() - sonde.programs;
    let exportedBeforeWindow: number | undefined = 0;
    let warmup: SondeFigures['warmup'];
    if (o.warmup) {
      const w0 = sonde.cpuSeconds();
      const tw0 = performance.now();
      const warmupLoad = await o.warmup();
      const seconds = (performance.now() - tw0) / 1000;
      const cpuSeconds = sonde.cpuSeconds() - w0;
      warmup = { seconds: round(seconds), requests: warmupLoad.requests, cpuSeconds: round(cpuSeconds), coresPer10kRps: round(per10k(cpuSeconds, seconds, warmupLoad.rps), 4) };
      // The window's spans are counted from here: the warm-up's must be out first.
      exportedBeforeWindow = (await sonde.waitForDrain(Date.now(), 10_000))?.exported;
      before = await ctx.receiver.count();
    }
    const c0 = await sonde.countersNow();
    const k0 = sondeBpfRunNs();
    const th0 = threadCpuSeconds(sonde.pid, 'sonde-reader');
    const s0 = sonde.cpuSeconds();
    const srv0 = cpuSecondsOf(o.serverPids);
    const q0 = runQueueSecondsOf(o.serverPids);
    const r0 = cpuSeconds(ctx.receiver.pid) ?? NaN;
    const rss = new RssSampler(sonde.pid, 500);
    const t0 = performance.now();
    const tEpoch1 = { value: 0 };
    let load: LoadResult;
    try {
      load = await o.load();
    } finally {
      tEpoch1.value = Date.now();
    }
    const windowS = (performance.now() - t0) / 1000;
    const s1 = sonde.cpuSeconds();
    const th1 = threadCpuSeconds(sonde.pid, 'sonde-reader');
    const k1 = sondeBpfRunNs();
    const c1 = await sonde.countersNow();
    const parts = costParts(c0, c1, th0, th1, k0, k1);
    const srvCpu = cpuSecondsOf(o.serverPids) - srv0;
    const srvWait = runQueueSecondsOf(o.serverPids) - q0;
    const samples = rss.stop();
    const peakRssMB = sonde.peakRssMB();
    const afterLoad = o.drainMs ? await sonde.waitForDrain(tEpoch1.value, o.drainMs) : (c1 ?? sonde.counters().pop());
    const stop = await sonde.stop(s0);
    stopped = true;
    const after = await ctx.receiver.count();
    const rCpu = (cpuSeconds(ctx.receiver.pid) ?? NaN) - r0;
    const cpu = s1 - s0;
    const startMB = samples[0] ?? NaN;
    const endMB = samples[samples.length - 1] ?? NaN;
    const record: RunRecord = {
      kind: 'traced',
      pair: o.pair,
      label: o.label,
      startedAt,
      windowS: round(windowS),
      load,
      server: serverFigures(o.serverPids, srvCpu, srvWait, windowS, load.rps),
      foreignSondePrograms: foreign,
      sonde: {
        cli: sondeUnderTest.cli,
        attachMs: sonde.attachMs,
        programs: sonde.programs,
        cpuSeconds: round(cpu),
        cores: round(cpu / windowS, 4),
        coresPer10kRps: round(per10k(cpu, windowS, load.rps), 4),
        cpuSecondsToExit: stop.cpuSecondsAtExit,
        peakRssMB: round(peakRssMB, 1),
        rss: {
          intervalMs: 500,
          startMB,
          peakMB: samples.length ? Math.max(...samples) : NaN,
          endMB,
          growthMB: round(endMB - startMB, 2),
          secondHalfGrowthMB: round(endMB - (samples[Math.floor(samples.length / 2)] ?? NaN), 2),
          samplesMB: samples,
        },
        exportedBeforeWindow,
        warmup,
        parts,
        afterLoad,
        final: stop.final,
        exitCode: stop.exitCode,
        killed: stop.killed,
        stopMs: stop.stopMs,
        warnings: stop.warnings,
      },
      receiver: {
        spans: after.spans - before.spans,
        exportCalls: after.requests - before.requests,
        cpuSeconds: round(rCpu),
        cores: round(rCpu / windowS, 4),
      },
    };
    ctx.log(describeRun(record));
    return record;
  } finally {
    if (!stopped) await sonde.kill();
  }
}

type ThreadCpu = ReturnType<typeof threadCpuSeconds>;

function costParts(c0: SondeCounters | undefined, c1: SondeCounters | undefined, th0: ThreadCpu, th1: ThreadCpu, k0: number | undefined, k1: number | undefined): CostParts | undefined {
  if (!c0 || !c1 || !th0 || !th1) return undefined;
  const spans = c1.requests - c0.requests;
  if (!(spans > 0)) return undefined;
  const us = (seconds: number): number => round((seconds * 1e6) / spans, 2);
  const main = th1.main - th0.main;
  const buildS = (c1.jsBuildMs - c0.jsBuildMs) / 1000;
  const exportS = (c1.jsExportMs - c0.jsExportMs) / 1000;
  return {
    spans,
    kernelUs: k0 !== undefined && k1 !== undefined ? round((k1 - k0) / 1000 / spans, 2) : undefined,
    nativeUs: us(th1.reader - th0.reader),
    jsBuildUs: us(buildS),
    jsExportUs: us(exportS),
    // Thread CPU is counted in 10 ms ticks, the parts to the microsecond: over a short window this can come out below 0.
    jsOtherUs: us(main - buildS - exportS),
    helpersUs: us(th1.helpers - th0.helpers),
    sondeUs: us(th1.main + th1.reader + th1.helpers - th0.main - th0.reader - th0.helpers),
  };
}

const BESIDE_LETTER: Record<Beside, string> = { floor: 'F', boundary: 'M', capture: 'C' };

function describeRun(r: RunRecord): string {
  const lat = r.load.latencyMs;
  // B' marks a run of the older build (bench --before-dir).
  const side = r.beside ? BESIDE_LETTER[r.beside] : r.kind === 'baseline' ? 'A' : r.sonde?.cli === SONDE_CLI ? 'B' : "B'";
  let s = `  ${side}${r.pair} ${r.label}: ${Math.round(r.load.rps)} req/s, ${r.load.requests} requests, p50 ${lat.p50} ms, p99 ${lat.p99} ms`;
  if (r.sonde && r.receiver) {
    s += `; sonde ${r.sonde.cores.toFixed(3)} cores, peak ${r.sonde.peakRssMB} MB, spans ${r.receiver.spans}`;
    const f = r.sonde.final;
    if (f) s += `, lost ${f.eventsLost}, dropped ${f.spansDropped}, unparsed ${f.unparsed}`;
  }
  if (r.besideCpu) s += `; beside it ${(r.besideCpu.cpuSeconds / r.windowS).toFixed(3)} cores`;
  if (r.foreignSondePrograms > 0) s += ` [another sonde was attached: ${r.foreignSondePrograms} programs]`;
  return s;
}
