/**
 * whole-traces: fidelity under load, next to the overhead figures. The
 * topology of test/e2e/eventLoopLinks.test.ts (nginx -> a Node service with
 * two awaited calls and a Promise.all pair -> Python), driven with a fixed
 * concurrency, and the share of front-door requests that came out as one
 * whole, correctly linked trace. Every hop is judged against the span it
 * must hang from (test/support/wholeTraces.ts): a call linked to another
 * request counts as a wrong parent, the worst outcome; one left a root is
 * what sonde does when the syscalls cannot tell.
 *
 * Beside the main topology (quick and full runs): undici's fetch behind
 * nginx connecting per request, Python thread per request, a Node agent
 * at maxSockets=2 and calls from a Node timer and a setImmediate, the patterns that still
 * break, so that a change in them shows.
 */
import { SondeProcess } from '../lib/sonde';
import { spawnTracked, sleep } from '../lib/proc';
import type { Row } from '../lib/report';
import { driveFanout, spansPerRequest, startFanoutTopology, type FanoutOptions, type Launch } from '../../test/support/fanoutTopology';
import { startOtlpGrpcReceiver } from '../../test/support/receivers';
import { wholeTraceFigures, type WholeTraceFigures } from '../../test/support/wholeTraces';
import { pct, type Scenario } from './common';

interface Pattern {
  name: string;
  options: FanoutOptions;
  /** Share of whole traces it must reach; undefined: none, only no wrong parent. */
  wholeTarget?: number;
}

const PATTERNS: Pattern[] = [
  { name: 'nginx keepalive -> node (await x2, Promise.all) -> python', options: { nginx: 'keepalive' }, wholeTarget: 0.99 },
  { name: 'nginx per-request connect -> node fetch (undici) -> python', options: { nginx: 'no-keepalive', serviceEnv: { CLIENT: 'fetch' } }, wholeTarget: 0.99 },
  { name: 'python thread per request -> python', options: { nginx: 'none', service: 'python-threads' }, wholeTarget: 0.99 },
  { name: 'node agent at maxSockets=2 -> python', options: { nginx: 'none', serviceEnv: { MAX_SOCKETS: '2' } } },
  { name: 'node, a call from a setTimeout and one from a setImmediate -> python', options: { nginx: 'none', serviceEnv: { TIMER_CALL: '1', IMMEDIATE_CALL: '1' } } },
];

const launch: Launch = (name, command, args, env) => {
  const p = spawnTracked(name, command, args, { env });
  return {
    pid: p.pid,
    waitForStdout: (pattern, timeoutMs) => p.waitFor(pattern, timeoutMs, 'stdout'),
    hasExited: () => p.hasExited(),
    stderr: () => p.stderr(),
    stop: () => p.stop(),
  };
};

interface PatternResult {
  pattern: string;
  spansExpected: number;
  spansReceived: number;
  figures: WholeTraceFigures;
  wrongParents: number;
  roots: number;
  missing: number;
  sondeLinksAmbiguous: number | undefined;
}

function totals(f: WholeTraceFigures): { wrong: number; roots: number; missing: number } {
  const hops = Object.values(f.hops);
  return {
    wrong: hops.reduce((n, h) => n + h.wrong, 0),
    roots: hops.reduce((n, h) => n + h.root, 0),
    missing: hops.reduce((n, h) => n + h.missing, 0),
  };
}

export const wholeTraces: Scenario = async (ctx) => {
  const m = ctx.mode.wholeTraces;
  const patterns = PATTERNS.slice(0, m.patterns);
  const results: PatternResult[] = [];
  for (const [i, p] of patterns.entries()) {
    await sleep(ctx.gapMs);
    ctx.log(`  ${p.name}: ${m.requests} requests, ${m.concurrency} at a time`);
    // A receiver that keeps spans whole (the counting one only counts), one per pattern.
    const otlp = await startOtlpGrpcReceiver();
    try {
      const topology = await startFanoutTopology(launch, p.options);
      try {
        const sonde = await SondeProcess.start({ select: topology.ports.flatMap((port) => ['--open-port', String(port)]), otlpEndpoint: otlp.url });
        await sleep(ctx.settleMs);
        const since = Date.now();
        const ids = await driveFanout(topology.frontPort, m.requests, m.concurrency, `p${i}`);
        const expected = m.requests * spansPerRequest(topology, p.options.nginx !== 'none');
        await otlp.waitFor((s) => s.length >= expected, ctx.mode.drainMs + 10_000).catch(() => undefined);
        await sonde.waitForDrain(since, ctx.mode.drainMs);
        const stopped = await sonde.stop(0);
        const figures = wholeTraceFigures(otlp.spans, ids, { nginx: p.options.nginx !== 'none', calls: topology.calls });
        const t = totals(figures);
        results.push({
          pattern: p.name,
          spansExpected: expected,
          spansReceived: otlp.spans.length,
          figures,
          wrongParents: t.wrong,
          roots: t.roots,
          missing: t.missing,
          sondeLinksAmbiguous: stopped.final?.linksAmbiguous,
        });
      } finally {
        await topology.stop();
      }
    } finally {
      await otlp.close();
    }
  }

  const rows: Row[] = results.map((r, i) => {
    const target = patterns[i].wholeTarget;
    const share = r.figures.wholeTraces / r.figures.requests;
    const ok = r.wrongParents === 0 && r.missing === 0 && (target === undefined || share >= target);
    return {
      metric: r.pattern,
      baseline: String(r.figures.requests),
      traced: `${pct(share)} (${r.figures.wholeTraces})`,
      ratio: `${r.roots} / ${r.wrongParents}`,
      target: target === undefined ? 'no wrong parent' : `≥ ${pct(target)} whole, no wrong parent`,
      verdict: ok ? 'met' : 'MISSED',
    };
  });
  const anomalies = results.flatMap((r) => [
    ...(r.spansReceived !== r.spansExpected ? [`whole-traces: ${r.pattern}: ${r.spansReceived} spans received, ${r.spansExpected} expected`] : []),
    ...(r.sondeLinksAmbiguous !== undefined && r.sondeLinksAmbiguous < r.roots - (r.figures.hops['nginx call']?.root ?? 0)
      ? [`whole-traces: ${r.pattern}: ${r.roots} calls left roots, but sonde counted only ${r.sondeLinksAmbiguous} as ambiguous`]
      : []),
  ]);
  const main = results[0];
  return {
    json: {
      params: { requests: m.requests, concurrency: m.concurrency, patterns: patterns.map((p) => ({ name: p.name, options: p.options })) },
      runs: results,
      summary: { wholeTraceShare: main ? main.figures.wholeTraces / main.figures.requests : NaN },
    },
    sections: [
      {
        title: `whole-traces: ${m.requests} front-door requests, ${m.concurrency} at a time, every hop judged against its expected parent`,
        headers: ['pattern', 'requests', 'whole traces', 'hops left roots / wrong parents', 'target', 'verdict'],
        rows,
        notes: [
          'a whole trace: every span of the request present, each hanging from the span it must (test/support/wholeTraces.ts)',
          'a root: sonde could not tell which request made the call (counted in linksAmbiguous); a wrong parent: linked to another request',
        ],
      },
    ],
    targets: main
      ? [
          {
            scenario: 'whole-traces',
            target: '≥ 99 % whole traces on nginx -> node -> python, no wrong parent in any pattern',
            value: `${pct(main.figures.wholeTraces / main.figures.requests)}; wrong parents: ${results.reduce((n, r) => n + r.wrongParents, 0)}`,
            verdict: rows.every((r) => r.verdict === 'met') ? 'met' : 'MISSED',
          },
        ]
      : [],
    chart: [],
    anomalies,
  };
};
