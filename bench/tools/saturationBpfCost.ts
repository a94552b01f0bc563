/**
 * What each of sonde's BPF programs costs a service, per request: the
 * bench's Node (or Python, or nginx, or nginx over HTTPS) hello-world under
 * `wrk -t1 -c50` (saturation) or `hey` at a fixed rate (`h2load --h1` over
 * HTTPS), traced by sonde with `--exporter none`, and the kernel's
 * per-program run time (`kernel.bpf_stats_enabled`, restored
 * at exit) over each round's window. Not a scenario: a tool for comparing
 * two builds of the programs, run alternately, e.g. one with a program cut
 * short at some point. At a fixed rate of a few thousand a second every
 * hit is cold, as in most services; at saturation most are warm.
 *
 *   node dist/bench/tools/saturationBpfCost.js [--rounds N] [--seconds S]
 *     [--server node|python|nginx|nginx-https] [--rate REQ_PER_S] [-- SONDE_ARGS...]
 *
 * These VMs change speed by tens of per cent between runs, and every
 * program's time moves with it: compare a changed program's time relative
 * to one the change does not touch (docs/design-notes.md, "Kernel").
 */
import { enableBpfStats, sondeProgramRunTimes } from '../lib/bpfStats';
import { runAtRate, runWrk } from '../lib/load';
import { installCleanupHandlers, killAll, which } from '../lib/proc';
import { isHelloServerKind, startHelloServer, type HelloServerKind } from '../lib/servers';
import { SondeProcess } from '../lib/sonde';

interface ProgramTime {
  ns: number;
  runs: number;
}

interface Options {
  rounds: number;
  seconds: number;
  server: HelloServerKind;
  /** Requests a second asked of hey; 0: wrk at saturation. */
  rate: number;
  sondeArgs: string[];
}

const USAGE = 'usage: saturationBpfCost [--rounds N] [--seconds S] [--server node|python|nginx|nginx-https] [--rate REQ_PER_S] [-- SONDE_ARGS...]';

function parseArgs(argv: string[]): Options {
  const dashes = argv.indexOf('--');
  const own = dashes >= 0 ? argv.slice(0, dashes) : argv;
  const options: Options = { rounds: 2, seconds: 8, server: 'node', rate: 0, sondeArgs: dashes >= 0 ? argv.slice(dashes + 1) : [] };
  for (let i = 0; i < own.length; i++) {
    const text = own[i + 1];
    const value = Number(text);
    const positive = Number.isInteger(value) && value > 0;
    if (own[i] === '--rounds' && positive) options.rounds = value;
    else if (own[i] === '--seconds' && positive) options.seconds = value;
    else if (own[i] === '--rate' && positive) options.rate = value;
    else if (own[i] === '--server' && isHelloServerKind(text)) options.server = text;
    else throw new Error(`${USAGE} (at ${own[i]})`);
    i++;
  }
  return options;
}

async function main(): Promise<void> {
  const { rounds, seconds, server: serverKind, rate, sondeArgs } = parseArgs(process.argv.slice(2));
  const bpftool = which('bpftool');
  if (!bpftool || !which('wrk') || !which('hey')) throw new Error('bpftool, wrk and hey are needed: run scripts/setup.sh');
  if (!enableBpfStats()) throw new Error('cannot turn on kernel.bpf_stats_enabled: run as root');
  installCleanupHandlers();
  const server = await startHelloServer(serverKind);
  let sonde: SondeProcess | undefined;
  try {
    sonde = await SondeProcess.start({ select: ['--pid', server.pids.join(',')], otlpEndpoint: undefined, extraArgs: ['--no-ui', ...sondeArgs] });
    const load = (durationS: number) =>
      rate > 0
        ? runAtRate({ url: server.url, targetRps: rate, durationS })
        : runWrk({ url: server.url, threads: 1, connections: 50, durationS });
    await load(rate > 0 ? 3 : 2);
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
