/**
 * What each of sonde's BPF programs costs a saturated service, per
 * request: the bench's Node hello-world under `wrk -t1 -c50`, traced by
 * sonde with `--exporter none`, and the kernel's per-program run time
 * (`kernel.bpf_stats_enabled`, restored at exit) over each round's window.
 * Not a scenario: a tool for comparing two builds of the programs, run
 * alternately, e.g. one with a program cut short at some point.
 *
 *   node dist/bench/tools/saturationBpfCost.js [--rounds N] [--seconds S] [-- SONDE_ARGS...]
 *
 * These VMs change speed by tens of per cent between runs, and every
 * program's time moves with it: compare a changed program's time relative
 * to one the change does not touch (docs/design-notes.md, "Kernel").
 */
import { enableBpfStats, sondeProgramRunTimes } from '../lib/bpfStats';
import { runWrk } from '../lib/load';
import { installCleanupHandlers, killAll, which } from '../lib/proc';
import { startNodeServer } from '../lib/servers';
import { SondeProcess } from '../lib/sonde';

interface ProgramTime {
  ns: number;
  runs: number;
}

function parseArgs(argv: string[]): { rounds: number; seconds: number; sondeArgs: string[] } {
  const dashes = argv.indexOf('--');
  const own = dashes >= 0 ? argv.slice(0, dashes) : argv;
  const sondeArgs = dashes >= 0 ? argv.slice(dashes + 1) : [];
  let rounds = 2;
  let seconds = 8;
  for (let i = 0; i < own.length; i++) {
    const value = Number(own[i + 1]);
    if (own[i] === '--rounds' && Number.isInteger(value) && value > 0) rounds = value;
    else if (own[i] === '--seconds' && Number.isInteger(value) && value > 0) seconds = value;
    else throw new Error(`usage: saturationBpfCost [--rounds N] [--seconds S] [-- SONDE_ARGS...] (at ${own[i]})`);
    i++;
  }
  return { rounds, seconds, sondeArgs };
}

async function main(): Promise<void> {
  const { rounds, seconds, sondeArgs } = parseArgs(process.argv.slice(2));
  const bpftool = which('bpftool');
  if (!bpftool || !which('wrk')) throw new Error('bpftool and wrk are needed: run scripts/setup.sh');
  if (!enableBpfStats()) throw new Error('cannot turn on kernel.bpf_stats_enabled: run as root');
  installCleanupHandlers();
  const server = await startNodeServer();
  let sonde: SondeProcess | undefined;
  try {
    sonde = await SondeProcess.start({ select: ['--pid', server.pids.join(',')], otlpEndpoint: undefined, extraArgs: ['--no-ui', ...sondeArgs] });
    const load = (durationS: number) => runWrk({ url: server.url, threads: 1, connections: 50, durationS });
    await load(2);
    const spent = new Map<string, ProgramTime>();
    let requests = 0;
    for (let round = 0; round < rounds; round++) {
      const before = sondeProgramRunTimes(bpftool);
      const result = await load(seconds);
      const after = sondeProgramRunTimes(bpftool);
      requests += result.requests;
      for (const [name, t] of after) {
        const was = before.get(name) ?? { ns: 0, runs: 0 };
        const sum = spent.get(name) ?? { ns: 0, runs: 0 };
        spent.set(name, { ns: sum.ns + t.ns - was.ns, runs: sum.runs + t.runs - was.runs });
      }
    }
    const rows = [...spent].filter(([, t]) => t.runs > 0).sort((a, b) => b[1].ns - a[1].ns);
    const total = rows.reduce((sum, [, t]) => sum + t.ns, 0);
    console.log(`${requests} requests in ${rounds} x ${seconds} s (${Math.round(requests / rounds / seconds)} req/s); all sonde programs ${(total / requests).toFixed(0)} ns a request`);
    for (const [name, t] of rows) {
      console.log(`  ${name.padEnd(36)} ${(t.ns / requests).toFixed(0).padStart(6)} ns a request  ${(t.runs / requests).toFixed(2)} hits of ${(t.ns / t.runs).toFixed(0)} ns`);
    }
  } finally {
    await sonde?.stop(0).catch(() => undefined);
    await server.stop();
    killAll();
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : String(error));
  killAll();
  process.exit(1);
});
