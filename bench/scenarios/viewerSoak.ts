/**
 * viewer-soak: sonde as it runs by default, the trace viewer's store
 * included, left traced under a steady keep-alive load (hey at a fixed
 * rate on the Node server) for minutes. Above its rate bound the store
 * holds a sample of traces, so it fills in a minute or two and evicts
 * from then on: sonde's RSS must stay flat over the second half.
 * One traced run, no baseline: the figure is sonde's own memory.
 */
import { OPTION_SPECS } from '../../src/config/options';
import { heyWorkers, runHey } from '../lib/load';
import { measure } from '../lib/measure';
import type { Row } from '../lib/report';
import { startNodeServer } from '../lib/servers';
import { spread } from '../lib/stats';
import { RSS_GROWTH_TARGET_MB } from './churn';
import { checkRun, fmt, rawSpansNote, tracedRow, type Scenario } from './common';

/** One of sonde's option defaults, as its CLI documents it: the viewer's bounds, said in the title. */
function defaultOf(key: string): number {
  const value = Number(OPTION_SPECS.find((o) => o.key === key)?.default);
  if (!Number.isFinite(value)) throw new Error(`sonde has no numeric default for ${key}`);
  return value;
}
const UI_MAX_SPANS = defaultOf('uiMaxSpans');
const UI_MAX_SPANS_PER_SECOND = defaultOf('uiMaxSpansPerSecond');

export const viewerSoak: Scenario = async (ctx) => {
  const m = ctx.mode.viewerSoak;
  const server = await startNodeServer();
  try {
    const load = () => runHey({ url: server.url, targetRps: m.rps, durationS: m.durationS, workers: m.workers });
    // A port of its own: another sonde's viewer may hold the default one.
    const select = ['--pid', server.pids.join(','), '--ui-address', '127.0.0.1:0', '--ui-max-spans', String(UI_MAX_SPANS)];
    const run = await measure(ctx, { kind: 'traced', pair: 1, label: `viewer soak ${m.rps} req/s`, serverPids: server.pids, select, load, drainMs: ctx.mode.drainMs });
    const rss = run.sonde?.rss;
    const growth = rss?.secondHalfGrowthMB ?? NaN;
    // One span per request (the server side is traced), of which the store
    // holds at most its rate bound: how many times the store filled.
    const held = (Math.min(m.rps, UI_MAX_SPANS_PER_SECOND) * m.durationS) / UI_MAX_SPANS;
    const rows: Row[] = [
      tracedRow('requests/s reached', spread([run.load.rps])),
      tracedRow('sonde RSS at load start (MB)', spread([rss?.startMB ?? NaN])),
      tracedRow('sonde RSS peak, sampled every 500 ms (MB)', spread([rss?.peakMB ?? NaN])),
      tracedRow('sonde RSS at load end (MB)', spread([rss?.endMB ?? NaN])),
      tracedRow('sonde RSS growth, 2nd half of the load (MB)', spread([growth]), `≤ ${RSS_GROWTH_TARGET_MB} MB (flat)`, Number.isFinite(growth) ? growth <= RSS_GROWTH_TARGET_MB : undefined),
    ];
    const { workers, perWorker } = heyWorkers(m.rps, m.workers);
    return {
      json: {
        params: { server: 'node', tool: `hey -z ${m.durationS}s -c ${workers} -q ${perWorker.toFixed(3)}`, rps: m.rps, durationS: m.durationS, uiMaxSpans: UI_MAX_SPANS },
        runs: { traced: [run] },
        summary: { rss: rss ?? null, storeTurnovers: held },
      },
      sections: [
        {
          title: `viewer-soak: sonde with its trace viewer (${fmt(UI_MAX_SPANS)} spans held), ${fmt(m.rps)} req/s on the Node server for ${m.durationS}s: the store turns over ${fmt(held)} times`,
          rows,
          notes: [rawSpansNote([run]), `RSS samples (MB): ${rss?.samplesMB.join(' ') ?? 'none'}`],
        },
      ],
      targets: [
        {
          scenario: 'viewer-soak',
          target: `sonde RSS flat with the viewer's store full (2nd-half growth ≤ ${RSS_GROWTH_TARGET_MB} MB)`,
          value: `2nd-half growth ${fmt(growth)} MB, peak ${fmt(rss?.peakMB ?? NaN)} MB`,
          verdict: Number.isFinite(growth) ? (growth <= RSS_GROWTH_TARGET_MB ? 'met' : 'MISSED') : 'n/a',
        },
      ],
      chart: [],
      anomalies: checkRun('viewer-soak', run),
    };
  } finally {
    await server.stop();
  }
};
