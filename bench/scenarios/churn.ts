/**
 * churn: one new TCP connection per request (hey -disable-keepalive) at a
 * fixed rate on the Node server. Per-connection state in sonde must be
 * freed as connections close: its RSS should stay flat and its
 * `connections` counter return to about 0 once the load stops.
 */
import { heyWorkers, runHey } from '../lib/load';
import { measure } from '../lib/measure';
import type { Row } from '../lib/report';
import { startNodeServer } from '../lib/servers';
import { spread } from '../lib/stats';
import { alternate, checkRun, fmt, rawSpansNote, ratioRow, standardRows, summarize, tracedRow, type Scenario } from './common';

/** Allowed RSS growth over the second half of the load window (after the heap reached its working size). */
export const RSS_GROWTH_TARGET_MB = 5;
export const RSS_PEAK_TARGET_MB = 100;
export const CONNECTIONS_LEFT_TARGET = 10;

export const churn: Scenario = async (ctx) => {
  const m = ctx.mode.churn;
  const server = await startNodeServer();
  try {
    const load = (durationS: number) => () => runHey({ url: server.url, targetRps: m.rps, durationS, workers: m.workers, disableKeepalive: true });
    if (ctx.mode.warmupS > 0) await load(ctx.mode.warmupS)();
    const select = ['--pid', server.pids.join(',')];
    const { baseline, traced } = await alternate(ctx.mode.pairs, (kind, pair) =>
      measure(ctx, { kind, pair, label: `churn ${m.rps} conn/s`, serverPids: server.pids, select, load: load(m.durationS), drainMs: ctx.mode.drainMs }),
    );
    const summary = summarize(baseline, traced);
    const t = traced.filter((r) => r.sonde);
    const rss = {
      startMB: spread(t.map((r) => r.sonde!.rss.startMB)),
      peakMB: spread(t.map((r) => r.sonde!.rss.peakMB)),
      endMB: spread(t.map((r) => r.sonde!.rss.endMB)),
      growthMB: spread(t.map((r) => r.sonde!.rss.growthMB)),
      secondHalfGrowthMB: spread(t.map((r) => r.sonde!.rss.secondHalfGrowthMB)),
    };
    const connectionsAfterLoad = spread(t.map((r) => r.sonde!.afterLoad?.connections ?? NaN));
    const connectionsAtExit = spread(t.map((r) => r.sonde!.final?.connections ?? NaN));
    const worstGrowth = rss.secondHalfGrowthMB.max;
    const peak = summary.sonde.peakRssMB.max;
    const worstLeft = connectionsAfterLoad.max;
    const rows: Row[] = [
      ...standardRows(summary).filter((r) => !/peak RSS/.test(r.metric)),
      tracedRow('sonde RSS at load start (MB)', rss.startMB),
      tracedRow('sonde RSS peak, sampled every 500 ms (MB)', rss.peakMB),
      tracedRow('sonde RSS at load end (MB)', rss.endMB),
      tracedRow('sonde RSS growth, end − start (MB)', rss.growthMB),
      tracedRow('sonde RSS growth, 2nd half of the load (MB)', rss.secondHalfGrowthMB, `≤ ${RSS_GROWTH_TARGET_MB} MB (flat)`, Number.isFinite(worstGrowth) ? worstGrowth <= RSS_GROWTH_TARGET_MB : undefined),
      tracedRow('sonde peak RSS (MB, VmHWM)', summary.sonde.peakRssMB, `≤ ${RSS_PEAK_TARGET_MB} MB`, Number.isFinite(peak) ? peak <= RSS_PEAK_TARGET_MB : undefined),
      tracedRow('sonde connections after the load', connectionsAfterLoad, `≈ 0 (≤ ${CONNECTIONS_LEFT_TARGET})`, Number.isFinite(worstLeft) ? worstLeft <= CONNECTIONS_LEFT_TARGET : undefined),
      tracedRow('sonde connections at exit', connectionsAtExit),
    ];
    rows[0] = ratioRow('throughput (req/s = new connections/s)', summary.throughputRps);
    const { workers, perWorker } = heyWorkers(m.rps, m.workers);
    return {
      json: {
        params: { server: 'node', tool: `hey -disable-keepalive -z ${m.durationS}s -c ${workers} -q ${perWorker.toFixed(3)}`, rps: m.rps, durationS: m.durationS, pairs: ctx.mode.pairs },
        runs: { baseline, traced },
        summary: { ...summary, rss, connectionsAfterLoad, connectionsAtExit },
      },
      sections: [
        {
          title: `churn: a new connection per request, ${fmt(m.rps)} req/s on the Node server (hey -disable-keepalive, ${m.durationS}s x ${ctx.mode.pairs} A/B pairs)`,
          rows,
          notes: [rawSpansNote(traced), `RSS samples of the traced runs (MB): ${t.map((r) => `B${r.pair}: ${r.sonde!.rss.samplesMB.join(' ')}`).join(' | ')}`],
        },
      ],
      targets: [
        {
          scenario: 'churn',
          target: `sonde RSS flat under churn (2nd-half growth ≤ ${RSS_GROWTH_TARGET_MB} MB, peak ≤ ${RSS_PEAK_TARGET_MB} MB)`,
          value: `2nd-half growth ${fmt(rss.secondHalfGrowthMB.median)} MB (worst ${fmt(worstGrowth)}), whole window ${fmt(rss.growthMB.median)} MB, peak ${fmt(peak)} MB`,
          verdict: Number.isFinite(worstGrowth) && Number.isFinite(peak) ? (worstGrowth <= RSS_GROWTH_TARGET_MB && peak <= RSS_PEAK_TARGET_MB ? 'met' : 'MISSED') : 'n/a',
        },
        {
          scenario: 'churn',
          target: 'connections counter back to ≈ 0 after the load',
          value: `${fmt(connectionsAfterLoad.median)} after the load (worst ${fmt(worstLeft)}), ${fmt(connectionsAtExit.median)} at exit`,
          verdict: Number.isFinite(worstLeft) ? (worstLeft <= CONNECTIONS_LEFT_TARGET ? 'met' : 'MISSED') : 'n/a',
        },
      ],
      chart: [],
      anomalies: [...baseline, ...traced].flatMap((r) => checkRun('churn', r)),
    };
  } finally {
    await server.stop();
  }
};
