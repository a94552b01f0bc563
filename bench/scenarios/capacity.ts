/**
 * capacity: raise a fixed request rate on the Node server, traced, until
 * sonde loses something (events lost in the kernel ring buffer, spans
 * dropped, or fewer spans received than requests completed), or until the
 * client cannot reach the rate. When the traced run misses the rate, an
 * untraced run at the same rate tells whether the machine or sonde is the limit.
 */
import { heyWorkers, runHey } from '../lib/load';
import { measure, type RunRecord } from '../lib/measure';
import type { Row, TargetCheck } from '../lib/report';
import { startNodeServer } from '../lib/servers';
import { spansDroppedText } from '../lib/sonde';
import { checkRun, fmt, type Scenario } from './common';

export const RATE_TARGET = 20_000;
export const RSS_TARGET_MB = 100;
const REACHED = 0.9;

interface Step {
  targetRps: number;
  hey: string;
  traced: RunRecord;
  /** Run only when the traced run missed the rate. */
  baseline?: RunRecord;
  /** Counters that show a loss, e.g. ["eventsLost=12", "spans<requests by 30"]. */
  losses: string[];
  reached: boolean;
  verdict: 'no loss' | 'loss' | 'client/machine limit' | 'sonde slowed the server' | 'loss + rate not reached';
}

export function lossesOf(r: RunRecord): string[] {
  const out: string[] = [];
  const f = r.sonde?.final;
  if (!f) return ['no final counters line'];
  if (f.eventsLost > 0) out.push(`eventsLost=${f.eventsLost}`);
  if (f.spansDropped > 0) out.push(spansDroppedText(f));
  const spans = r.receiver?.spans ?? 0;
  if (spans < r.load.requests) out.push(`receiver spans < requests by ${r.load.requests - spans}`);
  return out;
}

export const capacity: Scenario = async (ctx) => {
  const m = ctx.mode.capacity;
  const server = await startNodeServer();
  const steps: Step[] = [];
  let stoppedBecause = 'every step passed';
  try {
    if (ctx.mode.warmupS > 0) await runHey({ url: server.url, targetRps: m.stepsRps[0], durationS: ctx.mode.warmupS });
    const select = ['--pid', server.pids.join(',')];
    for (const targetRps of m.stepsRps) {
      const { workers, perWorker } = heyWorkers(targetRps);
      const load = () => runHey({ url: server.url, targetRps, durationS: m.durationS });
      const traced = await measure(ctx, { kind: 'traced', pair: 1, label: `capacity ${fmt(targetRps)} req/s`, serverPids: server.pids, select, load });
      const losses = lossesOf(traced);
      const reached = traced.load.rps >= REACHED * targetRps;
      const step: Step = { targetRps, hey: `hey -z ${m.durationS}s -c ${workers} -q ${perWorker.toFixed(3)}`, traced, losses, reached, verdict: 'no loss' };
      steps.push(step);
      if (!reached) {
        step.baseline = await measure(ctx, { kind: 'baseline', pair: 1, label: `capacity ${fmt(targetRps)} req/s untraced`, serverPids: server.pids, select, load });
        const baselineReached = step.baseline.load.rps >= REACHED * targetRps;
        step.verdict = losses.length ? 'loss + rate not reached' : baselineReached ? 'sonde slowed the server' : 'client/machine limit';
        stoppedBecause = baselineReached
          ? `at ${fmt(targetRps)} req/s the traced server reached only ${fmt(traced.load.rps)} req/s while the untraced one reached ${fmt(step.baseline.load.rps)}: sonde's overhead is the limit`
          : `at ${fmt(targetRps)} req/s the client reached only ${fmt(traced.load.rps)} (traced) and ${fmt(step.baseline.load.rps)} (untraced) req/s: the client/machine, not sonde, is the limit`;
        if (losses.length) stoppedBecause += `; sonde also lost data: ${losses.join(', ')}`;
        break;
      }
      if (losses.length) {
        step.verdict = 'loss';
        stoppedBecause = `at ${fmt(targetRps)} req/s sonde lost data: ${losses.join(', ')}`;
        break;
      }
    }
  } finally {
    await server.stop();
  }
  const clean = steps.filter((s) => s.verdict === 'no loss');
  const highestZeroLossRps = clean.length ? Math.max(...clean.map((s) => s.targetRps)) : 0;
  const lossStep = steps.find((s) => s.losses.length > 0);
  const brokeFirst = lossStep ? lossStep.losses[0].split(/[=<\s]/)[0] : undefined;
  const limitedByClient = steps.some((s) => s.verdict === 'client/machine limit');
  const at20k = steps.find((s) => s.targetRps === RATE_TARGET && s.reached);

  const rows: Row[] = steps.map((s) => {
    const t = s.traced;
    const f = t.sonde?.final;
    return {
      metric: `${fmt(s.targetRps)} req/s`,
      baseline: s.baseline ? `${fmt(s.baseline.load.rps)} req/s achieved` : '',
      traced: `${fmt(t.load.rps)} req/s, ${t.receiver?.spans ?? '?'}/${t.load.requests} spans, lost ${f?.eventsLost ?? '?'}, dropped ${f?.spansDropped ?? '?'}, ${fmt(t.sonde?.peakRssMB)} MB, ${fmt(t.sonde?.coresPer10kRps)} c/10k`,
      target: 'zero loss at the rate',
      verdict: s.verdict === 'no loss' ? 'met' : s.verdict === 'client/machine limit' ? 'n/a' : 'MISSED',
    };
  });
  rows.forEach((r, i) => (r.ratio = steps[i].verdict));
  // Below 20k: a step that already broke the RSS budget, or where sonde's overhead kept the server from the rate, decides the target.
  const reachedBelow = steps.filter((s) => s.targetRps <= RATE_TARGET && s.traced.sonde);
  const fatBelow = reachedBelow.find((s) => (s.traced.sonde?.peakRssMB ?? 0) > RSS_TARGET_MB);
  const slowedBelow = steps.find((s) => s.targetRps <= RATE_TARGET && s.verdict === 'sonde slowed the server');
  const lossBelow = lossStep && lossStep.targetRps <= RATE_TARGET;
  const rateVerdict = highestZeroLossRps >= RATE_TARGET ? 'met' : lossBelow || slowedBelow ? 'MISSED' : 'n/a';
  const targets: TargetCheck[] = [
    {
      scenario: 'capacity',
      target: `zero loss up to ≥ ${fmt(RATE_TARGET)} req/s`,
      value:
        `highest zero-loss rate ${fmt(highestZeroLossRps)} req/s` +
        (brokeFirst ? `; broke first: ${brokeFirst} at ${fmt(lossStep!.targetRps)} req/s` : '') +
        (slowedBelow ? `; traced server held only ${fmt(slowedBelow.traced.load.rps)} of ${fmt(slowedBelow.targetRps)} req/s (untraced ${fmt(slowedBelow.baseline?.load.rps)})` : '') +
        (limitedByClient ? '; the client/machine could not go higher' : ''),
      verdict: rateVerdict,
    },
    {
      scenario: 'capacity',
      target: `sonde peak RSS ≤ ${RSS_TARGET_MB} MB at ${fmt(RATE_TARGET)} req/s`,
      value: at20k
        ? `${fmt(at20k.traced.sonde?.peakRssMB)} MB at ${fmt(at20k.traced.load.rps)} req/s`
        : fatBelow
          ? `already ${fmt(fatBelow.traced.sonde?.peakRssMB)} MB at ${fmt(fatBelow.traced.load.rps)} req/s (20k not reached)`
          : `20k req/s not reached; peak ${fmt(Math.max(...steps.map((s) => s.traced.sonde?.peakRssMB ?? NaN)))} MB at the highest rate run`,
      verdict: at20k ? ((at20k.traced.sonde?.peakRssMB ?? Infinity) <= RSS_TARGET_MB ? 'met' : 'MISSED') : fatBelow ? 'MISSED' : 'n/a',
    },
  ];
  const anomalies = steps.flatMap((s) => [...checkRun(`capacity ${fmt(s.targetRps)}`, s.traced), ...(s.baseline ? checkRun(`capacity ${fmt(s.targetRps)}`, s.baseline) : [])]);
  return {
    json: {
      params: { server: 'node', stepsRps: m.stepsRps, durationS: m.durationS, reachedFraction: REACHED },
      steps,
      summary: { highestZeroLossRps, brokeFirst: brokeFirst ?? null, limitedByClient, stoppedBecause, peakRssMBAt20k: at20k?.traced.sonde?.peakRssMB ?? null },
    },
    sections: [
      {
        title: `capacity: Node server, traced, hey at rising fixed rates (${m.durationS}s per step)`,
        headers: ['rate asked', 'untraced (run if missed)', 'traced: achieved, spans/requests, eventsLost, spansDropped, peak RSS, sonde CPU', 'step', 'target', 'verdict'],
        rows,
        notes: [`highest rate with zero loss: ${fmt(highestZeroLossRps)} req/s; stopped: ${stoppedBecause}`, 'c/10k = sonde cores per 10k req/s; an untraced run is made only when the traced one misses the rate by more than 10%'],
      },
    ],
    targets,
    chart: [],
    anomalies,
  };
};
