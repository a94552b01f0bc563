/** What the scenarios share: their context, the A/B alternation, and the rows and checks most of them report. */
import { attachFloorProbe, describeFloorProbe, type FloorProbe } from '../lib/floorProbe';
import { measure, type MeasureContext, type MeasureOptions, type RunKind, type RunRecord } from '../lib/measure';
import type { Mode } from '../lib/modes';
import { fmt, type Row, type Section, type TargetCheck } from '../lib/report';
import { compare, spread, type Comparison, type Spread } from '../lib/stats';
import { spansDroppedText, withSonde } from '../lib/sonde';
import type { ChartPanel } from '../lib/svg';

export interface ScenarioContext extends MeasureContext {
  mode: Mode;
  /** A private temporary directory for this bench run. */
  tmpDir: string;
}

export interface ScenarioOutput {
  /** Raw runs, derived medians and parameters: goes into the JSON file as is. */
  json: Record<string, unknown>;
  sections: Section[];
  targets: TargetCheck[];
  chart: ChartPanel[];
  /** Things that looked wrong (sonde counters, errors, another sonde attached...). */
  anomalies: string[];
}

export type Scenario = (ctx: ScenarioContext) => Promise<ScenarioOutput>;

/**
 * An older build to compare with in the same run (bench --before-dir): its
 * traced runs are interleaved with the others, A B B' A B B' ..., and the
 * scenarios that report the issue's figures add them to `beforeAfter`.
 */
export const comparison: { before?: { cli: string; answersSigusr2: boolean; commit: string }; rows: BeforeAfterRow[] } = { rows: [] };

export interface BeforeAfterRow {
  what: string;
  before: number;
  after: number;
  /** Which way is better. */
  better: 'higher' | 'lower';
  /**
   * The older build exported no span in any of its runs (the build before
   * TLS support, on an HTTPS server): its figures are an untraced
   * service's, and no change against them is a better or a worse.
   */
  beforeTracedNothing?: boolean;
}

/**
 * `pairs` untraced (A) and traced (B) runs, interleaved so that drift of a
 * noisy machine hits both sides: A B, B A, A B, ... With an older build to
 * compare with (B', its runs in `before`) and `more` steps, the same
 * rotation over all of a pair's runs: A B B' F C, B B' F C A, ...
 */
export async function alternate(
  pairs: number,
  run: (kind: RunKind, pair: number) => Promise<RunRecord>,
  /** More runs of each pair besides its untraced and traced ones (worst-case's floor and capture runs). */
  more: ReadonlyArray<(pair: number) => Promise<void>> = [],
): Promise<{ baseline: RunRecord[]; traced: RunRecord[]; before: RunRecord[] }> {
  const baseline: RunRecord[] = [];
  const traced: RunRecord[] = [];
  const before: RunRecord[] = [];
  const older = comparison.before;
  for (let pair = 1; pair <= pairs; pair++) {
    const steps: Array<() => Promise<unknown>> = [
      async () => baseline.push(await run('baseline', pair)),
      async () => traced.push(await run('traced', pair)),
      ...(older ? [async () => before.push(await withSonde(older, () => run('traced', pair)))] : []),
      ...more.map((step) => () => step(pair)),
    ];
    // Each pair starts one step further on (A B F C, then B F C A, ...):
    // these VMs speed up and slow down by tens of per cent over minutes,
    // and a fixed order would hand each kind of run its own share of that.
    for (let i = 0; i < steps.length; i++) await steps[(i + pair - 1) % steps.length]();
  }
  return { baseline, traced, before };
}

/** The untraced run of `base` with empty programs where sonde's attach (its syscall tracepoints; OpenSSL's sites when the probe has them). */
export async function measureFloor(ctx: ScenarioContext, probe: FloorProbe, base: MeasureOptions): Promise<RunRecord> {
  const floor = await attachFloorProbe(probe);
  try {
    return await measure(ctx, { ...base, kind: 'baseline', beside: 'floor', label: `${base.label}, empty programs on ${describeFloorProbe(probe)}` });
  } finally {
    await floor.stop('SIGTERM', 2000);
  }
}

/** The figures of the performance issue's table, for the older build and this one, measured against the same untraced runs. */
export function noteBeforeAfter(label: string, baseline: RunRecord[], traced: RunRecord[], before: RunRecord[]): void {
  if (before.length === 0) return;
  const after = summarize(baseline, traced);
  const old = summarize(baseline, before);
  const minSpans = (runs: RunRecord[]): number => Math.min(...runs.map((r) => (r.receiver ? r.receiver.spans / r.load.requests : NaN)));
  const beforeTracedNothing = before.every((r) => r.receiver !== undefined && r.receiver.spans === 0);
  const rows: BeforeAfterRow[] = [
    { what: `${label}: throughput, traced / untraced`, before: old.throughputRps.ratio, after: after.throughputRps.ratio, better: 'higher' },
    { what: `${label}: spans received / requests (worst run)`, before: minSpans(before), after: minSpans(traced), better: 'higher' },
    { what: `${label}: p99 latency, traced / untraced`, before: old.latencyMs.p99.ratio, after: after.latencyMs.p99.ratio, better: 'lower' },
    { what: `${label}: sonde cores per 10k req/s`, before: old.sonde.coresPer10kRps.median, after: after.sonde.coresPer10kRps.median, better: 'lower' },
    { what: `${label}: sonde peak RSS (MB)`, before: old.sonde.peakRssMB.median, after: after.sonde.peakRssMB.median, better: 'lower' },
  ];
  comparison.rows.push(...rows.map((row) => (beforeTracedNothing ? { ...row, beforeTracedNothing } : row)));
}

export const PERCENTILES = ['p50', 'p75', 'p90', 'p99'] as const;

const PART_KEYS = ['kernelUs', 'nativeUs', 'jsBuildUs', 'jsExportUs', 'jsOtherUs', 'helpersUs', 'sondeUs'] as const;
type PartKey = (typeof PART_KEYS)[number];
const PART_LABELS: Record<PartKey, string> = {
  kernelUs: '  kernel: BPF run time (the probed processes pay it)',
  nativeUs: '  sonde native reader thread',
  jsBuildUs: '  sonde JS thread: records -> spans',
  jsExportUs: '  sonde JS thread: spans -> exporters (encode)',
  jsOtherUs: '  sonde JS thread: other (transport, timers, GC)',
  helpersUs: '  sonde V8 / libuv helper threads',
  sondeUs: '  sonde, all threads',
};

const lat = (runs: RunRecord[], p: string): number[] => runs.map((r) => r.load.latencyMs[p] ?? NaN);

/** Medians, spreads and ratios of everything measured on both sides, plus sonde-only figures. */
export function summarize(baseline: RunRecord[], traced: RunRecord[]) {
  const latencyMs: Record<string, Comparison> = {};
  for (const p of PERCENTILES) latencyMs[p] = compare(lat(baseline, p), lat(traced, p));
  const t = traced.filter((r) => r.sonde && r.receiver);
  return {
    throughputRps: compare(
      baseline.map((r) => r.load.rps),
      traced.map((r) => r.load.rps),
    ),
    requests: compare(
      baseline.map((r) => r.load.requests),
      traced.map((r) => r.load.requests),
    ),
    latencyMs,
    serverCoresPer10kRps: compare(
      baseline.map((r) => r.server.coresPer10kRps),
      traced.map((r) => r.server.coresPer10kRps),
    ),
    /** CPU the server got per second of the window: at saturation, throughput follows it over CPU per request. */
    serverCores: compare(
      baseline.map((r) => r.server.cores ?? NaN),
      traced.map((r) => r.server.cores ?? NaN),
    ),
    /** ms per second the server's threads were runnable and waited for a CPU. */
    serverRunQueueMsPerS: compare(
      baseline.map((r) => r.server.runQueueMsPerS ?? NaN),
      traced.map((r) => r.server.runQueueMsPerS ?? NaN),
    ),
    sonde: {
      cores: spread(t.map((r) => r.sonde!.cores)),
      coresPer10kRps: spread(t.map((r) => r.sonde!.coresPer10kRps)),
      /** The same over the warm-up before the window, while V8 compiles sonde's hot paths. */
      warmupCoresPer10kRps: spread(t.map((r) => r.sonde!.warmup?.coresPer10kRps ?? NaN)),
      warmupS: spread(t.map((r) => r.sonde!.warmup?.seconds ?? NaN)),
      peakRssMB: spread(t.map((r) => r.sonde!.peakRssMB)),
      attachMs: spread(t.map((r) => r.sonde!.attachMs)),
    },
    /** µs per span by part (CostParts in lib/measure.ts). */
    parts: Object.fromEntries(PART_KEYS.map((k) => [k, spread(t.map((r) => r.sonde!.parts?.[k] ?? NaN))])) as Record<PartKey, Spread>,
    receiverCores: spread(t.map((r) => r.receiver!.cores)),
    spansReceived: spread(t.map((r) => r.receiver!.spans)),
    /** Spans received / requests the load generator completed, per traced run. */
    spansPerRequest: spread(t.map((r) => r.receiver!.spans / r.load.requests)),
    counters: {
      eventsLost: t.reduce((a, r) => a + (r.sonde!.final?.eventsLost ?? NaN), 0),
      spansDropped: t.reduce((a, r) => a + (r.sonde!.final?.spansDropped ?? NaN), 0),
      unparsed: t.reduce((a, r) => a + (r.sonde!.final?.unparsed ?? NaN), 0),
    },
  };
}

export type Summary = ReturnType<typeof summarize>;

export function ratioRow(metric: string, c: Comparison, target?: string, ok?: boolean): Row {
  return { metric, baseline: c.baseline, traced: c.traced, ratio: c.ratio, target, verdict: target ? (ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED') : '' };
}

export function tracedRow(metric: string, s: Spread, target?: string, ok?: boolean): Row {
  return { metric, traced: s, target, verdict: target ? (ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED') : '' };
}

/** The rows every load scenario prints. `p99` and `cpu` add targets to those rows. */
export function standardRows(s: Summary, o: { p99Target?: number; cpuTarget?: number; showP75P90?: boolean } = {}): Row[] {
  const rows: Row[] = [ratioRow('throughput (req/s)', s.throughputRps), ratioRow('requests completed', s.requests)];
  for (const p of PERCENTILES) {
    if (!o.showP75P90 && (p === 'p75' || p === 'p90')) continue;
    const c = s.latencyMs[p];
    if (p === 'p99' && o.p99Target !== undefined) rows.push(ratioRow(`latency ${p} (ms)`, c, `ratio ≤ ${o.p99Target}`, Number.isFinite(c.ratio) ? c.ratio <= o.p99Target : undefined));
    else rows.push(ratioRow(`latency ${p} (ms)`, c));
  }
  rows.push(ratioRow('server CPU (cores per 10k req/s)', s.serverCoresPer10kRps));
  rows.push(ratioRow('server CPU received (cores)', s.serverCores));
  rows.push(ratioRow('server waiting for a CPU (ms per s)', s.serverRunQueueMsPerS));
  const cpu = s.sonde.coresPer10kRps;
  rows.push(
    o.cpuTarget !== undefined
      ? tracedRow('sonde CPU (cores per 10k req/s)', cpu, `≤ ${o.cpuTarget}`, Number.isFinite(cpu.median) ? cpu.median <= o.cpuTarget : undefined)
      : tracedRow('sonde CPU (cores per 10k req/s)', cpu),
  );
  if (Number.isFinite(s.sonde.warmupS.median)) rows.push(tracedRow(`  same, in the ${Math.round(s.sonde.warmupS.median)} s of load before the window (V8 compiling)`, s.sonde.warmupCoresPer10kRps));
  rows.push(tracedRow('sonde CPU (cores)', s.sonde.cores));
  rows.push(tracedRow('sonde peak RSS (MB, VmHWM)', s.sonde.peakRssMB));
  rows.push({ metric: 'CPU µs per span, by part:' });
  for (const k of PART_KEYS) rows.push(tracedRow(PART_LABELS[k], s.parts[k]));
  rows.push(tracedRow('receiver CPU (cores; not sonde)', s.receiverCores));
  rows.push(tracedRow('spans received / requests', s.spansPerRequest));
  rows.push({ metric: 'sonde eventsLost / spansDropped / unparsed', traced: `${s.counters.eventsLost} / ${s.counters.spansDropped} / ${s.counters.unparsed}` });
  return rows;
}

/** Per-run raw numbers a reader wants to see next to the medians. */
export function rawSpansNote(traced: RunRecord[]): string {
  return `raw spans received / requests completed per traced run: ${traced.map((r) => `${r.receiver?.spans ?? '?'}/${r.load.requests}`).join(', ')}`;
}

/** Everything about a run that looks wrong, as sentences. */
export function checkRun(where: string, r: RunRecord, o: { spareSpans?: number } = {}): string[] {
  const out: string[] = [];
  const name = `${where} ${r.kind === 'baseline' ? 'A' : 'B'}${r.pair}`;
  if (r.foreignSondePrograms > 0) out.push(`${name}: ${r.foreignSondePrograms} sonde programs from another sonde were loaded during the run: its figures are suspect`);
  if (r.load.errors > 0) out.push(`${name}: the load generator saw ${r.load.errors} errors`);
  if (r.load.non2xx > 0) out.push(`${name}: ${r.load.non2xx} responses were not 2xx/3xx`);
  if (r.kind !== 'traced' || !r.sonde || !r.receiver) return out;
  const s = r.sonde;
  if (s.exitCode !== 0 || s.killed) out.push(`${name}: sonde exited with code ${s.exitCode}${s.killed ? ' (killed after not stopping on SIGINT)' : ''}`);
  for (const w of s.warnings.slice(0, 3)) out.push(`${name}: sonde logged: ${w.slice(0, 300)}`);
  const f = s.final;
  if (!f) {
    out.push(`${name}: sonde logged no counters line at shutdown`);
    return out;
  }
  if (f.eventsLost > 0) out.push(`${name}: sonde eventsLost=${f.eventsLost}`);
  if (f.spansDropped > 0) out.push(`${name}: sonde ${spansDroppedText(f)}`);
  if (f.unparsed > 0) out.push(`${name}: sonde unparsed=${f.unparsed}`);
  if (f.client > 0) out.push(`${name}: sonde made ${f.client} client spans, but the server makes no outgoing calls`);
  if (f.requests !== f.server + f.client) out.push(`${name}: counters disagree: requests=${f.requests} but server+client=${f.server + f.client}`);
  if (f.exported + f.spansDropped + f.spansSampledOut < f.server + f.client) out.push(`${name}: sonde exported ${f.exported} (+${f.spansDropped} dropped, +${f.spansSampledOut} sampled out) of ${f.server + f.client} spans it made`);
  // A run given a sampler (--sonde-arg --sampler ...) exports a share by design.
  if (f.spansSampledOut > 0) out.push(`${name}: sonde's sampler left ${f.spansSampledOut} spans out: spans per request measure the sampler here, not loss`);
  // The receiver counts from the end of the warm-up on.
  const exportedInWindow = f.exported - (s.exportedBeforeWindow ?? 0);
  if (r.receiver.spans !== exportedInWindow) out.push(`${name}: sonde says it exported ${exportedInWindow} spans after the warm-up, the receiver got ${r.receiver.spans}`);
  const spare = o.spareSpans ?? 0;
  if (f.spansSampledOut === 0 && r.receiver.spans < r.load.requests) out.push(`${name}: ${r.load.requests - r.receiver.spans} requests completed by the client have no span (${r.receiver.spans} spans for ${r.load.requests} requests)`);
  else if (r.receiver.spans > r.load.requests + spare) out.push(`${name}: more spans (${r.receiver.spans}) than requests completed (${r.load.requests}) beyond the ${spare} in flight at the end`);
  return out;
}

export function chartPanel(title: string, baseline: RunRecord[], traced: RunRecord[]): ChartPanel {
  const s = summarize(baseline, traced);
  return { title, bars: PERCENTILES.map((p) => ({ percentile: p, baseline: s.latencyMs[p].baseline.median, traced: s.latencyMs[p].traced.median })) };
}

export function pct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(x >= 0.9995 && x < 1 ? 2 : 1)}%` : '–';
}

export { fmt };
