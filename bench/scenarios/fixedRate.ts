/**
 * fixed-rate: what a service that is not saturated pays. For each of a Node,
 * a Python (ThreadingHTTPServer), an nginx and an nginx HTTPS server: find its untraced
 * maximum with hey (unthrottled; h2load --h1 for HTTPS), then hold 25% and 50% of it
 * with the same client, alternating untraced and traced runs.
 *
 * At 50 % each pair has a third run (F), untraced with empty BPF programs on
 * every syscall tracepoint sonde attaches, as worst-case's: a server that
 * pays more CPU per request runs closer to its limit at the same rate, and
 * its tail latency grows with that. F's p99 is what any tracer on those
 * hooks costs the tail before its programs do any work.
 */
import { atRateCommand, atRateConnections, clientFor, runAtMax, runAtRate, runWrk } from '../lib/load';
import { buildFloorProbe, describeFloorProbe, sondeSyscallTracepoints, tlsFloorSitesOf, type FloorProbe } from '../lib/floorProbe';
import { measure, type MeasureOptions, type RunRecord } from '../lib/measure';
import type { Row, Section, TargetCheck } from '../lib/report';
import { startNginx, startNginxHttps, startNodeServer, startPythonServer, type Server } from '../lib/servers';
import type { ChartPanel } from '../lib/svg';
import { alternate, chartPanel, checkRun, fmt, measureFloor, noteBeforeAfter, ratioRow, rawSpansNote, standardRows, summarize, type Scenario, type Summary } from './common';

// Each is loaded by lib/load.ts's client for its URL (clientFor): hey, and
// h2load over HTTP/1.1 for HTTPS.
const SERVERS: Array<{ kind: string; start: () => Promise<Server> }> = [
  { kind: 'node', start: startNodeServer },
  { kind: 'python', start: startPythonServer },
  { kind: 'nginx', start: startNginx },
  // HTTPS through OpenSSL's uprobes: each SSL_read/SSL_write is a uprobe hit.
  { kind: 'nginx-https', start: startNginxHttps },
];

export const P99_TARGET = 1.05;
export const CPU_TARGET = 0.1;

interface RateResult {
  load: number;
  targetRps: number;
  hey: string;
  runs: { baseline: RunRecord[]; traced: RunRecord[]; before: RunRecord[]; floor?: RunRecord[] };
  summary: Summary;
  /** At 50 %: the floor runs against the same untraced ones. */
  floor?: Pick<Summary, 'latencyMs' | 'serverCoresPer10kRps'>;
  /** At 50 %: where the floor runs' empty programs were attached. */
  floorHooks?: Pick<FloorProbe, 'tracepoints' | 'uprobeSites'>;
}

export const fixedRate: Scenario = async (ctx) => {
  const m = ctx.mode.fixedRate;
  const json: Record<string, unknown> = {};
  const sections: Section[] = [];
  const targets: TargetCheck[] = [];
  const chart: ChartPanel[] = [];
  const anomalies: string[] = [];
  const only = process.env.SONDE_BENCH_SERVERS?.split(',').map((k) => k.trim());
  for (const s of SERVERS) {
    if (only && !only.includes(s.kind)) continue;
    const server = await s.start();
    let probe: FloorProbe | undefined;
    try {
      const client = clientFor(server.url);
      if (m.warmupS > 0) await runWrk({ url: server.url, threads: 1, connections: 50, durationS: m.warmupS });
      const maxRun = await runAtMax({ url: server.url, workers: 50, durationS: m.maxDurationS });
      const maxRps = Math.min(maxRun.rps, m.maxCapRps ?? Infinity);
      ctx.log(`  ${s.kind}: untraced max ${Math.round(maxRun.rps)} req/s (${client} -c 50, ${m.maxDurationS}s)${m.maxCapRps ? `, capped at ${m.maxCapRps} for smoke` : ''}`);
      const rates: Record<string, RateResult> = {};
      const select = ['--pid', server.pids.join(',')];
      for (const fraction of m.loads) {
        const targetRps = Math.max(1, Math.round(maxRps * fraction));
        const loadAt = (durationS: number) => () => runAtRate({ url: server.url, targetRps, durationS, workers: m.workers });
        const label = `${s.kind} @${Math.round(fraction * 100)}%`;
        const atHalf = Math.abs(fraction - 0.5) < 1e-9;
        const options = (kind: MeasureOptions['kind'], pair: number): MeasureOptions => {
          const warmupS = kind === 'baseline' ? ctx.mode.runWarmupS : m.tracedWarmupS;
          return {
            kind,
            pair,
            label: `${label} (${targetRps} req/s)`,
            serverPids: server.pids,
            select,
            load: loadAt(m.durationS),
            warmup: warmupS > 0 ? loadAt(warmupS) : undefined,
          };
        };
        // Where sonde attaches for this server: its syscall tracepoints, and
        // OpenSSL's sites in each of the server's processes that map it
        // (nginx links libssl even for plain HTTP; only HTTPS calls it).
        if (atHalf && !probe) probe = await buildFloorProbe(ctx.tmpDir, `floor-${s.kind}`, sondeSyscallTracepoints(), tlsFloorSitesOf(server.pids));
        const floorProbe = atHalf ? probe : undefined;
        const floorRuns: RunRecord[] = [];
        const { baseline, traced, before } = await alternate(
          ctx.mode.pairs,
          (kind, pair) => measure(ctx, options(kind, pair)),
          floorProbe ? [async (pair) => void floorRuns.push(await measureFloor(ctx, floorProbe, options('baseline', pair)))] : [],
        );
        const summary = summarize(baseline, traced);
        noteBeforeAfter(`${s.kind} at ${Math.round(fraction * 100)}% load`, baseline, traced, before);
        const key = `${Math.round(fraction * 100)}%`;
        const command = atRateCommand({ url: server.url, targetRps, durationS: m.durationS, workers: m.workers });
        const floor = floorProbe ? summarize(baseline, floorRuns) : undefined;
        rates[key] = {
          load: fraction,
          targetRps,
          hey: command,
          runs: { baseline, traced, before, ...(floorProbe ? { floor: floorRuns } : {}) },
          summary,
          ...(floor && floorProbe
            ? { floor: { latencyMs: floor.latencyMs, serverCoresPer10kRps: floor.serverCoresPer10kRps }, floorHooks: { tracepoints: floorProbe.tracepoints, uprobeSites: floorProbe.uprobeSites } }
            : {}),
        };
        const rows: Row[] = standardRows(summary, { p99Target: atHalf ? P99_TARGET : undefined, cpuTarget: CPU_TARGET });
        const notes = [rawSpansNote(traced), ...(client === 'h2load' ? [] : ['hey prints latencies with 0.1 ms resolution: sub-millisecond ratios move in steps of 0.1 ms'])];
        if (floor && floorProbe) {
          rows.push(
            ratioRow(`F: empty programs on sonde's ${describeFloorProbe(floorProbe)}: latency p50 (ms)`, floor.latencyMs.p50),
            ratioRow('F: latency p99 (ms)', floor.latencyMs.p99),
            ratioRow('F: server cores per 10k req/s', floor.serverCoresPer10kRps),
          );
          notes.push(
            `F is an untraced run of each pair with empty BPF programs where sonde attaches: every syscall tracepoint${floorProbe.uprobeSites.length > 0 ? ', and the OpenSSL sites of the tracer\'s plan (an entry and its return per call: the traps any OpenSSL uprobe tracer takes)' : ''}; its ratios are against the same untraced runs as the traced one`,
          );
          anomalies.push(...floorRuns.filter((r) => r.foreignSondePrograms > 0).map((r) => `fixed-rate ${label} F${r.pair}: another sonde was attached (${r.foreignSondePrograms} programs)`));
        }
        sections.push({
          title: `fixed-rate: ${s.kind} at ${key} of its untraced max = ${fmt(targetRps)} req/s (${client === 'h2load' ? 'h2load --h1' : 'hey'} -c ${atRateConnections({ url: server.url, targetRps, workers: m.workers })}, ${m.durationS}s x ${ctx.mode.pairs} A/B pairs)`,
          rows,
          notes,
        });
        const p99 = summary.latencyMs.p99;
        if (atHalf) {
          const floorP99 = floor?.latencyMs.p99.ratio;
          targets.push({
            scenario: `fixed-rate ${s.kind} 50%`,
            target: `p99 latency ratio ≤ ${P99_TARGET}`,
            value: `${Number.isFinite(p99.ratio) ? p99.ratio.toFixed(3) : '–'} (${fmt(p99.baseline.median)} → ${fmt(p99.traced.median)} ms)${floorP99 !== undefined ? `; F ${Number.isFinite(floorP99) ? floorP99.toFixed(3) : '–'}` : ''}`,
            verdict: Number.isFinite(p99.ratio) ? (p99.ratio <= P99_TARGET ? 'met' : 'MISSED') : 'n/a',
          });
          chart.push(chartPanel(`fixed-rate 50%: ${s.kind} (${fmt(targetRps)} req/s asked)`, baseline, traced));
        }
        const cpu = summary.sonde.coresPer10kRps.median;
        targets.push({
          scenario: `fixed-rate ${s.kind} ${key}`,
          target: `sonde CPU ≤ ${CPU_TARGET} cores per 10k req/s`,
          value: `${fmt(cpu)} cores per 10k req/s`,
          verdict: Number.isFinite(cpu) ? (cpu <= CPU_TARGET ? 'met' : 'MISSED') : 'n/a',
        });
        // h2load's clients each have a request in flight at the window's
        // edges; the server, and so sonde, may count it where h2load does not.
        anomalies.push(...[...baseline, ...traced].flatMap((r) => checkRun(`fixed-rate ${label}`, r, { spareSpans: client === 'h2load' ? m.workers : 0 })));
        for (const r of [...baseline, ...traced, ...floorRuns]) {
          if (r.load.rps < 0.9 * targetRps) anomalies.push(`fixed-rate ${label} ${r.beside === 'floor' ? 'F' : r.kind === 'baseline' ? 'A' : 'B'}${r.pair}: achieved ${Math.round(r.load.rps)} of ${targetRps} req/s asked`);
        }
      }
      json[s.kind] = { pids: server.pids, max: { rps: maxRun.rps, usedRps: maxRps, run: maxRun }, rates };
    } finally {
      await server.stop();
    }
  }
  return {
    json: { params: { pairs: ctx.mode.pairs, durationS: m.durationS, loads: m.loads, workers: m.workers }, servers: json },
    sections,
    targets,
    chart,
    anomalies,
  };
};
