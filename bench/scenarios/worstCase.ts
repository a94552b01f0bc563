/**
 * worst-case: a Node.js hello-world at saturation (wrk, one thread, 50
 * connections). Every request costs sonde the same work while the server's
 * own work is minimal, and the load generator, the server, sonde and the
 * receiver compete for two cores.
 *
 * Each pair of worst-case has three more runs, untraced but with something
 * beside the server, that split what tracing costs it: empty BPF programs
 * on every syscall tracepoint sonde attaches (F: the floor of any tracer
 * hooking those syscalls), the least a tracer of message boundaries does
 * on them (M: a connection lookup and a ring-buffer event per message
 * start, drained every 100 ms; bench/lib/boundaryProbe.ts), and sonde
 * capturing with nothing exported (C: `--exporter none`; its BPF programs,
 * reader and span building, not the encoding, the transport or the
 * receiver).
 *
 * worst-case-https: the same over HTTPS, traced through the uprobes on the
 * OpenSSL inside node (about 7 hits per request). Reported, with no target
 * of its own: the traps are charged to the service; no M, which has no
 * uprobes. Its F has empty
 * programs on OpenSSL's sites too, where sonde's plan puts them, so that
 * the traps any such tracer takes are told from sonde's work.
 */
import { attachBoundaryProbe, buildBoundaryProbe, stopBoundaryProbe, type BoundaryProbe } from '../lib/boundaryProbe';
import { buildFloorProbe, describeFloorProbe, sondeSyscallTracepoints, tlsFloorSitesOf } from '../lib/floorProbe';
import { runWrk } from '../lib/load';
import { measure, type MeasureOptions, type RunRecord } from '../lib/measure';
import { sleep } from '../lib/proc';
import { SondeProcess } from '../lib/sonde';
import { startNodeHttpsServer, startNodeServer, type Server } from '../lib/servers';
import { spread } from '../lib/stats';
import { pct, alternate, chartPanel, checkRun, measureFloor, rawSpansNote, ratioRow, standardRows, summarize, tracedRow, type Scenario, type ScenarioContext, type ScenarioOutput, noteBeforeAfter } from './common';

export const worstCase: Scenario = (ctx) => saturate(ctx, { name: 'worst-case', what: 'Node hello-world', start: startNodeServer, throughputTarget: 0.9, decompose: true, boundary: true });

export const worstCaseHttps: Scenario = (ctx) => saturate(ctx, { name: 'worst-case-https', what: 'Node https hello-world', start: startNodeHttpsServer, decompose: true });

interface Saturated {
  name: string;
  what: string;
  start: () => Promise<Server>;
  /** The traced/untraced throughput ratio to reach; none: reported only. */
  throughputTarget?: number;
  /** Add the floor (F) and capture (C) runs to each pair. */
  decompose?: boolean;
  /** Add the boundary tracer's run (M) to each pair too (plain HTTP: it has no uprobes). */
  boundary?: boolean;
}

/**
 * The untraced run of `base` with the boundary tracer beside it;
 * `boundaryEvents` is what its loader drained over the whole run, at
 * least two a request when it sees what it should.
 */
async function measureBoundary(ctx: ScenarioContext, probe: BoundaryProbe, base: MeasureOptions): Promise<RunRecord & { boundaryEvents: number }> {
  const loader = await attachBoundaryProbe(probe);
  try {
    const record = await measure(ctx, { ...base, kind: 'baseline', beside: 'boundary', label: `${base.label}, a connection lookup and a ring-buffer event per message start on sonde's ${probe.programs} syscall tracepoints` });
    return { ...record, boundaryEvents: (await stopBoundaryProbe(loader)).events };
  } finally {
    await loader.stop('SIGKILL', 2000);
  }
}

/**
 * The untraced run of `base` with sonde capturing beside it and exporting
 * nothing; `sondeRequests` is what sonde counted, so that a capture run
 * that saw nothing cannot pass for a cheap one.
 */
async function measureCapture(ctx: ScenarioContext, base: MeasureOptions): Promise<RunRecord & { sondeRequests: number }> {
  const sonde = await SondeProcess.start({ select: base.select, otlpEndpoint: undefined });
  let stopped = false;
  try {
    await sleep(ctx.settleMs);
    const record = await measure(ctx, { ...base, kind: 'baseline', beside: 'capture', besidePrograms: sonde.programs, besideCpuSeconds: () => sonde.cpuSeconds(), label: `${base.label}, sonde --exporter none` });
    const stop = await sonde.stop(sonde.cpuSeconds());
    stopped = true;
    return { ...record, sondeRequests: stop.final?.requests ?? NaN };
  } finally {
    if (!stopped) await sonde.kill();
  }
}

async function saturate(ctx: ScenarioContext, spec: Saturated): Promise<ScenarioOutput> {
  const m = ctx.mode.worstCase;
  const server = await spec.start();
  try {
    const load = (durationS: number) => () => runWrk({ url: server.url, threads: m.threads, connections: m.connections, durationS });
    if (ctx.mode.warmupS > 0) await load(ctx.mode.warmupS)();
    const select = ['--pid', server.pids.join(',')];
    const options = (kind: MeasureOptions['kind'], pair: number): MeasureOptions => ({ kind, pair, label: `${server.kind} saturation`, serverPids: server.pids, select, load: load(m.durationS), warmup: ctx.mode.runWarmupS > 0 ? load(ctx.mode.runWarmupS) : undefined });
    // Where sonde hooks this server: its syscall tracepoints, and OpenSSL's
    // sites in node (hit only over HTTPS).
    const probe = spec.decompose ? await buildFloorProbe(ctx.tmpDir, `floor-${spec.name}`, sondeSyscallTracepoints(), tlsFloorSitesOf(server.pids)) : undefined;
    const boundaryProbe = spec.boundary ? await buildBoundaryProbe(ctx.tmpDir, server.pids) : undefined;
    const floor: RunRecord[] = [];
    const boundary: (RunRecord & { boundaryEvents: number })[] = [];
    const capture: (RunRecord & { sondeRequests: number })[] = [];
    const { baseline, traced, before } = await alternate(
      ctx.mode.pairs,
      (kind, pair) => measure(ctx, options(kind, pair)),
      probe
        ? [
            async (pair) => void floor.push(await measureFloor(ctx, probe, options('baseline', pair))),
            ...(boundaryProbe ? [async (pair: number) => void boundary.push(await measureBoundary(ctx, boundaryProbe, options('baseline', pair)))] : []),
            async (pair) => void capture.push(await measureCapture(ctx, options('baseline', pair))),
          ]
        : [],
    );
    const summary = summarize(baseline, traced);
    noteBeforeAfter(`${spec.name}, ${spec.what} at saturation`, baseline, traced, before);
    const thr = summary.throughputRps;
    // Spans may exceed wrk's count by the requests in flight when wrk stopped (at most one per connection).
    const allExported = traced.every((r) => r.receiver && r.sonde?.final && r.receiver.spans >= r.load.requests && r.sonde.final.eventsLost === 0 && r.sonde.final.spansDropped === 0);
    const goal = spec.throughputTarget;
    const thrOk = goal !== undefined && Number.isFinite(thr.ratio) ? thr.ratio >= goal : undefined;
    const rows = standardRows(summary, { showP75P90: true });
    rows[0] = ratioRow('throughput (req/s)', thr, goal === undefined ? undefined : `ratio ≥ ${goal.toFixed(2)}`, thrOk);
    const spanRow = rows.find((r) => r.metric === 'spans received / requests')!;
    spanRow.target = '≥ 100%, no loss';
    spanRow.verdict = allExported ? 'met' : 'MISSED';
    const anomalies = [...baseline, ...traced].flatMap((r) => checkRun(spec.name, r, { spareSpans: m.connections }));
    const notes = [rawSpansNote(traced), `spans may exceed wrk's count by up to ${m.connections}: wrk does not count requests in flight when it stops`];
    let decomposition: Record<string, unknown> | undefined;
    if (probe) {
      const against = (runs: RunRecord[]) => {
        const { throughputRps, serverCoresPer10kRps, serverCores, serverRunQueueMsPerS } = summarize(baseline, runs);
        return { throughputRps, serverCoresPer10kRps, serverCores, serverRunQueueMsPerS };
      };
      const f = against(floor);
      const c = against(capture);
      // sonde's own CPU when it exports nothing: against the traced runs', what the export costs it.
      const captureSonde = spread(capture.map((r) => r.besideCpu?.coresPer10kRps ?? NaN));
      const b = boundaryProbe ? against(boundary) : undefined;
      decomposition = { tracepoints: probe.tracepoints, uprobeSites: probe.uprobeSites, floor: f, ...(b ? { boundary: b } : {}), capture: { ...c, sondeCoresPer10kRps: captureSonde } };
      rows.push(
        ratioRow(`F: empty programs on sonde's ${describeFloorProbe(probe)}: throughput`, f.throughputRps),
        ratioRow('F: server cores per 10k req/s', f.serverCoresPer10kRps),
        ratioRow('F: server CPU received (cores)', f.serverCores),
        ratioRow('F: server waiting for a CPU (ms per s)', f.serverRunQueueMsPerS),
        ...(b
          ? [
              ratioRow('M: the least a boundary tracer does on them: throughput', b.throughputRps),
              ratioRow('M: server cores per 10k req/s', b.serverCoresPer10kRps),
              ratioRow('M: server CPU received (cores)', b.serverCores),
              ratioRow('M: server waiting for a CPU (ms per s)', b.serverRunQueueMsPerS),
            ]
          : []),
        ratioRow('C: sonde capturing, exporting nothing: throughput', c.throughputRps),
        ratioRow('C: server cores per 10k req/s', c.serverCoresPer10kRps),
        ratioRow('C: server CPU received (cores)', c.serverCores),
        ratioRow('C: server waiting for a CPU (ms per s)', c.serverRunQueueMsPerS),
        tracedRow('C: sonde cores per 10k req/s (the traced runs\' is above)', captureSonde),
      );
      notes.push(
        'throughput = server CPU received / server CPU per request, so the throughput ratio is the product of the two rows\' ratios (received, and the inverse of cores per 10k req/s): the first is what other processes\' CPU on the same cores costs the server, the second what the hooks and programs add to each request',
        'F and C are untraced runs of each pair with something beside the server: F empty BPF programs where sonde hooks, every syscall tracepoint and OpenSSL\'s sites in node (the floor of any tracer hooking them; not sonde\'s two event-loop marks in node, hit once per loop turn that runs timers), C sonde with --exporter none (its BPF programs, reader and span building; no encoding, transport or receiver). Their ratios are against the same untraced runs as the traced one',
      );
      if (b) notes.push("M is an untraced run with the least a tracer of request and response boundaries does on the same syscall tracepoints, in the server only: a connection lookup and, where the direction flips, a 64-byte ring-buffer event, drained every 100 ms (bench/lib/boundaryProbe.ts); C's BPF programs above M's are what sonde does beyond finding boundaries");
      for (const r of capture) if (!(r.sondeRequests >= r.load.requests)) anomalies.push(`${spec.name} C${r.pair}: sonde counted ${r.sondeRequests} requests of ${r.load.requests}`);
      for (const r of boundary) if (!(r.boundaryEvents >= 2 * r.load.requests)) anomalies.push(`${spec.name} M${r.pair}: the boundary tracer drained ${r.boundaryEvents} events for ${r.load.requests} requests`);
      for (const r of [...floor, ...boundary, ...capture]) if (r.foreignSondePrograms > 0) anomalies.push(`${spec.name} ${r.beside === 'floor' ? 'F' : r.beside === 'boundary' ? 'M' : 'C'}${r.pair}: another sonde was attached (${r.foreignSondePrograms} programs)`);
    }
    return {
      json: {
        params: { server: server.kind, tool: `wrk -t${m.threads} -c${m.connections} -d${m.durationS}s --latency`, pairs: ctx.mode.pairs, durationS: m.durationS },
        runs: { baseline, traced, before, ...(probe ? { floor, capture } : {}), ...(boundaryProbe ? { boundary } : {}) },
        summary: { ...summary, allExported, ...(decomposition ? { decomposition } : {}) },
      },
      sections: [
        {
          title: `${spec.name}: ${spec.what} at saturation (wrk -t${m.threads} -c${m.connections}, ${m.durationS}s x ${ctx.mode.pairs} A/B pairs)`,
          rows,
          notes,
        },
      ],
      targets: [
        {
          scenario: spec.name,
          target: goal === undefined ? '100% exported' : `throughput ratio ≥ ${goal.toFixed(2)} with 100% exported`,
          value: `ratio ${Number.isFinite(thr.ratio) ? thr.ratio.toFixed(3) : '–'}, spans/requests ${pct(summary.spansPerRequest.min)} (worst run)`,
          verdict: goal === undefined ? (allExported ? 'met' : 'MISSED') : thrOk === undefined ? 'n/a' : thrOk && allExported ? 'met' : 'MISSED',
        },
      ],
      chart: [chartPanel(`${spec.name}: ${spec.what} at saturation (wrk -c${m.connections})`, baseline, traced)],
      anomalies,
    };
  } finally {
    await server.stop();
  }
}
