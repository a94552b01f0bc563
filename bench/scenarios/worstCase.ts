/**
 * worst-case: a Node.js hello-world at saturation (wrk, one thread, 50
 * connections). Every request costs sonde the same work while the server's
 * own work is minimal, and the load generator, the server, sonde and the
 * receiver compete for two cores.
 */
import { runWrk } from '../lib/load';
import { measure } from '../lib/measure';
import { startNodeServer } from '../lib/servers';
import { pct, alternate, chartPanel, checkRun, rawSpansNote, ratioRow, standardRows, summarize, type Scenario, noteBeforeAfter } from './common';

export const worstCase: Scenario = async (ctx) => {
  const m = ctx.mode.worstCase;
  const server = await startNodeServer();
  try {
    const load = (durationS: number) => () => runWrk({ url: server.url, threads: m.threads, connections: m.connections, durationS });
    if (ctx.mode.warmupS > 0) await load(ctx.mode.warmupS)();
    const select = ['--pid', server.pids.join(',')];
    const { baseline, traced, before } = await alternate(ctx.mode.pairs, (kind, pair) =>
      measure(ctx, { kind, pair, label: 'node saturation', serverPids: server.pids, select, load: load(m.durationS), warmup: ctx.mode.runWarmupS > 0 ? load(ctx.mode.runWarmupS) : undefined }),
    );
    const summary = summarize(baseline, traced);
    noteBeforeAfter('worst-case, Node at saturation', baseline, traced, before);
    const thr = summary.throughputRps;
    // Spans may exceed wrk's count by the requests in flight when wrk stopped (at most one per connection).
    const allExported = traced.every((r) => r.receiver && r.sonde?.final && r.receiver.spans >= r.load.requests && r.sonde.final.eventsLost === 0 && r.sonde.final.spansDropped === 0);
    const thrOk = Number.isFinite(thr.ratio) ? thr.ratio >= 0.9 : undefined;
    const rows = standardRows(summary, { showP75P90: true });
    rows[0] = ratioRow('throughput (req/s)', thr, 'ratio ≥ 0.90', thrOk);
    const spanRow = rows.find((r) => r.metric === 'spans received / requests')!;
    spanRow.target = '≥ 100%, no loss';
    spanRow.verdict = allExported ? 'met' : 'MISSED';
    const anomalies = [...baseline, ...traced].flatMap((r) => checkRun('worst-case', r, { spareSpans: m.connections }));
    return {
      json: {
        params: { server: 'node', tool: `wrk -t${m.threads} -c${m.connections} -d${m.durationS}s --latency`, pairs: ctx.mode.pairs, durationS: m.durationS },
        runs: { baseline, traced, before },
        summary: { ...summary, allExported },
      },
      sections: [
        {
          title: `worst-case: Node hello-world at saturation (wrk -t${m.threads} -c${m.connections}, ${m.durationS}s x ${ctx.mode.pairs} A/B pairs)`,
          rows,
          notes: [rawSpansNote(traced), `spans may exceed wrk's count by up to ${m.connections}: wrk does not count requests in flight when it stops`],
        },
      ],
      targets: [
        {
          scenario: 'worst-case',
          target: 'throughput ratio ≥ 0.90 with 100% exported',
          value: `ratio ${Number.isFinite(thr.ratio) ? thr.ratio.toFixed(3) : '–'}, spans/requests ${pct(summary.spansPerRequest.min)} (worst run)`,
          verdict: thrOk === undefined ? 'n/a' : thrOk && allExported ? 'met' : 'MISSED',
        },
      ],
      chart: [chartPanel(`worst-case: Node at saturation (wrk -c${m.connections})`, baseline, traced)],
      anomalies,
    };
  } finally {
    await server.stop();
  }
};
