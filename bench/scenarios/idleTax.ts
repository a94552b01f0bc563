/**
 * idle-tax: what sonde costs processes it does NOT trace. A C program times
 * getppid() (no sonde hook) and read(2) of one byte from /dev/zero (sonde
 * hooks read's tracepoints, but the process is not selected, so the probe
 * only looks the pid up and returns) with and without sonde attached. sonde
 * selects a sleeping child meanwhile.
 *
 * A third run per pair attaches a program that does nothing to the same
 * tracepoint (bench/lib/floorProbe.ts): what a read pays then is the floor
 * of any probe there, and sonde's figure above it is the work of its own
 * check.
 */
import * as path from 'node:path';
import { withoutBpfStats } from '../lib/bpfStats';
import { attachFloorProbe, buildFloorProbe } from '../lib/floorProbe';
import { loadedSondePrograms } from '../lib/measure';
import { REPO_ROOT, round, runCommand, sleep, spawnTracked, tool, type Tracked } from '../lib/proc';
import type { Row } from '../lib/report';
import { SondeProcess, withSonde } from '../lib/sonde';
import { compare, spread } from '../lib/stats';
import { comparison, fmt, type Scenario } from './common';

interface IdleRun {
  kind: 'baseline' | 'traced' | 'floor';
  pair: number;
  getppidNs: number;
  getppidMinNs: number;
  readNs: number;
  readMinNs: number;
  wallS: number;
  foreignSondePrograms: number;
  /** A run traced by the older build (bench --before-dir). */
  before?: boolean;
  /** sonde attached, selecting only a sleeping process: its CPU is its fixed cost. */
  sonde?: { attachMs: number; cpuSeconds: number; idleCores: number; exitCode: number };
}

export function parseIdleTax(stdout: string): { getppid: [number, number]; read: [number, number] } {
  const g = stdout.match(/^getppid_ns ([\d.]+) ([\d.]+)$/m);
  const r = stdout.match(/^read_ns ([\d.]+) ([\d.]+)$/m);
  if (!g || !r) throw new Error(`cannot parse idle-tax output:\n${stdout}`);
  return { getppid: [Number(g[1]), Number(g[2])], read: [Number(r[1]), Number(r[2])] };
}

const RUN_LETTER: Record<IdleRun['kind'], string> = { baseline: 'A', traced: 'B', floor: 'F' };

export const idleTax: Scenario = (ctx) => withoutBpfStats(() => measureIdleTax(ctx));

const measureIdleTax: Scenario = async (ctx) => {
  const m = ctx.mode.idleTax;
  const source = path.join(REPO_ROOT, 'bench', 'fixtures', 'idle-tax.c');
  const binary = path.join(ctx.tmpDir, 'idle-tax');
  const cc = await runCommand('cc', tool('cc'), ['-O2', '-Wall', '-o', binary, source], 60_000);
  if (cc.code !== 0) throw new Error(`cc -O2 ${source} failed:\n${cc.stderr}`);
  const floorProbe = await buildFloorProbe(ctx.tmpDir, 'floor-read', ['sys_exit_read']);
  const sleeper = spawnTracked('sleep', tool('sleep'), ['3600']);
  const runs: IdleRun[] = [];
  const timeoutMs = Math.max(30_000, m.iterations * m.rounds * 2 * 20e-6 * 1000);
  const once = async (kind: IdleRun['kind'], pair: number, before = false): Promise<IdleRun> => {
    await sleep(ctx.gapMs);
    let sonde: SondeProcess | undefined;
    let floor: Tracked | undefined;
    try {
      if (kind === 'floor') floor = await attachFloorProbe(floorProbe);
      if (kind === 'traced') {
        sonde = await SondeProcess.start({ select: ['--pid', String(sleeper.pid)], otlpEndpoint: ctx.receiver.url });
        await sleep(ctx.settleMs);
      }
      const foreign = loadedSondePrograms() - (sonde?.programs ?? 0);
      const c0 = sonde ? sonde.cpuSeconds() : 0;
      const r = await runCommand('idle-tax', binary, [String(m.iterations), String(m.rounds)], timeoutMs);
      if (r.code !== 0 || r.timedOut) throw new Error(`idle-tax exited ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr}`);
      const cpu = sonde ? sonde.cpuSeconds() - c0 : 0;
      const parsed = parseIdleTax(r.stdout);
      const run: IdleRun = {
        kind,
        pair,
        getppidNs: parsed.getppid[0],
        getppidMinNs: parsed.getppid[1],
        readNs: parsed.read[0],
        readMinNs: parsed.read[1],
        wallS: round(r.wallMs / 1000),
        foreignSondePrograms: foreign,
      };
      if (sonde) {
        const stop = await sonde.stop(c0);
        run.sonde = { attachMs: sonde.attachMs, cpuSeconds: round(cpu), idleCores: round(cpu / (r.wallMs / 1000), 4), exitCode: stop.exitCode };
        sonde = undefined;
      }
      ctx.log(`  ${RUN_LETTER[kind]}${before ? "'" : ''}${pair} idle-tax: getppid ${run.getppidNs} ns, read ${run.readNs} ns`);
      return run;
    } finally {
      if (sonde) await sonde.kill();
      if (floor) await floor.stop('SIGTERM', 2000);
    }
  };
  try {
    const older = comparison.before;
    for (let pair = 1; pair <= ctx.mode.pairs; pair++) {
      runs.push(await once('baseline', pair));
      runs.push(await once('traced', pair));
      runs.push(await once('floor', pair));
      if (older) runs.push({ ...(await withSonde(older, () => once('traced', pair, true))), before: true });
    }
  } finally {
    await sleeper.stop('SIGKILL', 1000);
  }
  const base = runs.filter((r) => r.kind === 'baseline');
  const floorRuns = runs.filter((r) => r.kind === 'floor');
  const traced = runs.filter((r) => r.kind === 'traced' && !r.before);
  const tracedBefore = runs.filter((r) => r.before);
  // One figure of some runs against the same figure of the untraced ones,
  // and the ns those runs added to the call.
  const against = (some: IdleRun[], figure: 'readNs' | 'getppidNs') =>
    compare(
      base.map((r) => r[figure]),
      some.map((r) => r[figure]),
    );
  const added = (c: ReturnType<typeof compare>): number => c.traced.median - c.baseline.median;
  if (tracedBefore.length) {
    comparison.rows.push({
      what: 'idle tax: ns added to a read() of a process sonde does not trace',
      before: added(against(tracedBefore, 'readNs')),
      after: added(against(traced, 'readNs')),
      better: 'lower',
    });
  }
  const getppid = against(traced, 'getppidNs');
  const read = against(traced, 'readNs');
  const floorGetppid = against(floorRuns, 'getppidNs');
  const floorRead = against(floorRuns, 'readNs');
  const idleCores = spread(traced.map((r) => r.sonde?.idleCores ?? NaN));
  const deltaGetppid = added(getppid);
  const deltaRead = added(read);
  const floorDeltaGetppid = added(floorGetppid);
  const floorDeltaRead = added(floorRead);
  const signed = (ns: number): string => `${ns >= 0 ? '+' : ''}${fmt(ns)}`;
  const rows: Row[] = [
    { metric: 'getppid() ns/call (not hooked)', baseline: getppid.baseline, traced: getppid.traced, ratio: getppid.ratio, target: 'informational' },
    { metric: '  delta ns/call', traced: signed(deltaGetppid) },
    { metric: '  delta with an empty program on sys_exit_read instead (the floor)', traced: signed(floorDeltaGetppid) },
    { metric: 'read(/dev/zero, 1) ns/call (hooked, pid not selected)', baseline: read.baseline, traced: read.traced, ratio: read.ratio, target: 'informational' },
    { metric: '  delta ns/call', traced: signed(deltaRead) },
    { metric: '  delta with an empty program on sys_exit_read instead (the floor)', traced: signed(floorDeltaRead) },
    { metric: '  sonde above the floor', traced: signed(deltaRead - floorDeltaRead) },
    { metric: 'sonde CPU meanwhile (cores; its fixed cost)', traced: idleCores },
  ];
  const anomalies: string[] = [];
  for (const r of runs) {
    if (r.foreignSondePrograms > 0) anomalies.push(`idle-tax ${RUN_LETTER[r.kind]}${r.pair}: another sonde had ${r.foreignSondePrograms} programs loaded during the run`);
    if (r.sonde && r.sonde.exitCode !== 0) anomalies.push(`idle-tax B${r.pair}: sonde exited with code ${r.sonde.exitCode}`);
  }
  return {
    json: {
      params: { iterations: m.iterations, rounds: m.rounds, pairs: ctx.mode.pairs, selectedPid: 'a sleeping child (sleep 3600)' },
      runs,
      summary: {
        getppidNs: getppid,
        readNs: read,
        deltaGetppidNs: round(deltaGetppid, 2),
        deltaReadNs: round(deltaRead, 2),
        floor: { getppidNs: floorGetppid.traced, readNs: floorRead.traced, deltaGetppidNs: round(floorDeltaGetppid, 2), deltaReadNs: round(floorDeltaRead, 2) },
        sondeIdleCores: idleCores,
      },
    },
    sections: [
      {
        title: `idle-tax: syscall cost in a process sonde does not trace (${fmt(m.iterations)} calls x ${m.rounds} rounds per run, ${ctx.mode.pairs} A/B pairs)`,
        rows,
        notes: ['each run prints the median of its rounds; the table shows the median (min–max) over runs', 'the floor: a BPF program that only returns, attached to sys_exit_read alone (bench/lib/floorProbe.ts), in a run of its own in each pair'],
      },
    ],
    targets: [],
    chart: [],
    anomalies,
  };
};
