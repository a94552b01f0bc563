/**
 * worst-case: a Node.js hello-world at saturation (wrk, one thread, 50
 * connections). Every request costs sonde the same work while the server's
 * own work is minimal, and the load generator, the server, sonde and the
 * receiver compete for two cores.
 *
 * worst-case-https: the same over HTTPS, traced through the uprobes on the
 * OpenSSL inside node (about 7 hits per request). Reported, with no target
 * of its own: the traps are charged to the service.
 */
import { runWrk } from '../lib/load';
import { measure } from '../lib/measure';
import { startNodeHttpsServer, startNodeServer, type Server } from '../lib/servers';
import { pct, alternate, chartPanel, checkRun, rawSpansNote, ratioRow, standardRows, summarize, type Scenario, type ScenarioContext, type ScenarioOutput, noteBeforeAfter } from './common';

export const worstCase: Scenario = (ctx) => saturate(ctx, { name: 'worst-case', what: 'Node hello-world', start: startNodeServer, throughputTarget: 0.9 });

export const worstCaseHttps: Scenario = (ctx) => saturate(ctx, { name: 'worst-case-https', what: 'Node https hello-world', start: startNodeHttpsServer });

interface Saturated {
  name: string;
  what: string;
  start: () => Promise<Server>;
  /** The traced/untraced throughput ratio to reach; none: reported only. */
  throughputTarget?: number;
}

async function saturate(ctx: ScenarioContext, spec: Saturated): Promise<ScenarioOutput> {
  const m = ctx.mode.worstCase;
  const server = await spec.start();
  try {
    const load = (durationS: number) => () => runWrk({ url: server.url, threads: m.threads, connections: m.connections, durationS });
    if (ctx.mode.warmupS > 0) await load(ctx.mode.warmupS)();
    const select = ['--pid', server.pids.join(',')];
    const { baseline, traced, before } = await alternate(ctx.mode.pairs, (kind, pair) =>
      measure(ctx, { kind, pair, label: `${server.kind} saturation`, serverPids: server.pids, select, load: load(m.durationS), warmup: ctx.mode.runWarmupS > 0 ? load(ctx.mode.runWarmupS) : undefined }),
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
    return {
      json: {
        params: { server: server.kind, tool: `wrk -t${m.threads} -c${m.connections} -d${m.durationS}s --latency`, pairs: ctx.mode.pairs, durationS: m.durationS },
        runs: { baseline, traced, before },
        summary: { ...summary, allExported },
      },
      sections: [
        {
          title: `${spec.name}: ${spec.what} at saturation (wrk -t${m.threads} -c${m.connections}, ${m.durationS}s x ${ctx.mode.pairs} A/B pairs)`,
          rows,
          notes: [rawSpansNote(traced), `spans may exceed wrk's count by up to ${m.connections}: wrk does not count requests in flight when it stops`],
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
