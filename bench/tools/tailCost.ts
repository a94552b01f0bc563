/**
 * Is a traced server's tail at a fixed rate the CPU added in its own
 * threads, or something else sonde does? Up to five arms, rotated round
 * by round, on one of the bench's servers under `hey` at a fixed rate
 * (`h2load --h1` over HTTPS):
 *   - untraced;
 *   - spin: a BPF program on each syscall tracepoint sonde attaches that,
 *     in the server's processes only, does nothing but count to SPINS (a
 *     register loop that touches no memory), so the server's threads pay a
 *     chosen number of µs per request and nothing else runs;
 *   - minimal: the least a tracer of request and response boundaries does
 *     in the kernel (bench/lib/boundaryProbe.ts: a connection lookup and a
 *     ring-buffer event per message start, on the same tracepoints), so
 *     that sonde's programs are measured against a tracer's floor as well
 *     as against burnt µs; not in the default arms;
 *   - sonde, exporting nothing;
 *   - exported: sonde exporting every span over OTLP to the bench's
 *     counting receiver, a process of its own, as `npm run bench` runs it;
 *   - niced: as exported, with the receiver's threads at nice 19 for the
 *     arm, so that it runs in what the server and hey leave, as a backend
 *     on another machine would take none of their CPU; not a default arm;
 *   - variant: as exported, with sonde given `--variant-args` too, so that
 *     a change to how sonde exports is measured against the default in the
 *     same rounds;
 *   - frozen: sonde with its process stopped (SIGSTOP) through the window
 *     and a ring buffer that holds every event of it, so that only its
 *     programs run: their work in the server's threads (dearer, for the
 *     large ring's fresh pages), none in sonde's.
 * Over nginx-https, spin still burns only at the syscall tracepoints, not
 * at OpenSSL's uprobes, which sonde's arms (frozen too) attach as well.
 * Each round prints p50/p90/p99, the server's CPU per request, and the BPF
 * run time its threads paid per request (`kernel.bpf_stats_enabled`); the
 * end prints each arm's medians. Sonde's arms also print its CPU per
 * request, by thread (JavaScript, reader, V8's and libuv's helpers), and
 * how often its reader drained and it exported per second; with
 * `--by-program`, the BPF time of each program too. If sonde's p99
 * sits above the spin arm's at the same BPF µs, the rest is not the
 * programs' run time; frozen tells what the programs leave in the server's
 * caches from what sonde's threads take, and exported what the export and
 * its receiver add.
 *
 *   node dist/bench/tools/tailCost.js [--server nginx|node|python|nginx-https] [--rate REQ_PER_S]
 *     [--spins N] [--rounds N] [--seconds S] [--arms A,B,...]
 *     [--variant-args 'ARGS...'] [--by-program] [-- SONDE_ARGS...]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { enableBpfStats, programRunNs } from '../lib/bpfStats';
import { buildBoundaryProbe } from '../lib/boundaryProbe';
import { compileProbe, holdProbe, sondeSyscallTracepoints } from '../lib/floorProbe';
import { runAtRate, type LoadResult } from '../lib/load';
import { Receiver } from '../lib/receiver';
import { cpuSecondsOf, installCleanupHandlers, killAll, threadCpuSeconds, which } from '../lib/proc';
import { isHelloServerKind, startHelloServer, type HelloServerKind, type Server } from '../lib/servers';
import { SondeProcess } from '../lib/sonde';
import { median } from '../lib/stats';

type Arm = 'untraced' | 'spin' | 'minimal' | 'sonde' | 'frozen' | 'exported' | 'niced' | 'variant';
const ARMS: readonly Arm[] = ['untraced', 'spin', 'minimal', 'sonde', 'frozen', 'exported', 'niced', 'variant'];
const DEFAULT_ARMS: readonly Arm[] = ['untraced', 'spin', 'sonde', 'frozen', 'exported'];
const EXPORTING_ARMS: readonly Arm[] = ['exported', 'niced', 'variant'];

/** Sets every thread of `pid` to `nice` (setpriority names one thread on Linux). */
function reniceThreads(pid: number, nice: number): void {
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      os.setPriority(Number(tid), nice);
    } catch {
      /* a thread that has just ended */
    }
  }
}

// A frozen sonde's ring must stay below the programs' wake-up threshold (a
// quarter of it) for the whole window, or every event past it asks for a
// wake-up that nobody takes (15 µs a request in one try): the largest ring
// sonde allows holds 256 MiB before that, about 40 s at 13k req/s.
const FROZEN_RING_BYTES = 1 << 30;

interface Options {
  server: HelloServerKind;
  rate: number;
  spins: number;
  rounds: number;
  seconds: number;
  arms: Arm[];
  sondeArgs: string[];
  variantArgs: string[];
  byProgram: boolean;
}

interface RoundResult {
  arm: Arm;
  load: LoadResult;
  serverUsPerRequest: number;
  bpfUsPerRequest: number;
  /** The same, ns a request by program (what `--by-program` prints). */
  bpfNsByProgram: Map<string, number>;
  /** Sonde's arms only: its CPU per request (all threads, then its JavaScript thread, reader and helpers), its reader's drains and its exports per second. */
  sonde?: { usPerRequest: number; mainUs: number; readerUs: number; helpersUs: number; drainsPerS: number; exportsPerS: number };
}

const USAGE = 'usage: tailCost [--server nginx|node|python|nginx-https] [--rate REQ_PER_S] [--spins N] [--rounds N] [--seconds S] [--arms A,B,...] [--variant-args ARGS] [--by-program] [-- SONDE_ARGS...]';

function parseArgs(argv: string[]): Options {
  const dashes = argv.indexOf('--');
  const own = dashes >= 0 ? argv.slice(0, dashes) : argv;
  const options: Options = { server: 'nginx', rate: 13000, spins: 250, rounds: 6, seconds: 15, arms: [...DEFAULT_ARMS], sondeArgs: dashes >= 0 ? argv.slice(dashes + 1) : [], variantArgs: [], byProgram: false };
  for (let i = 0; i < own.length; i++) {
    if (own[i] === '--by-program') {
      options.byProgram = true;
      continue;
    }
    const text = own[i + 1] ?? '';
    const value = Number(text);
    const positive = Number.isInteger(value) && value > 0;
    if (own[i] === '--server' && isHelloServerKind(text)) options.server = text;
    else if (own[i] === '--rate' && positive) options.rate = value;
    else if (own[i] === '--spins' && positive) options.spins = value;
    else if (own[i] === '--rounds' && positive) options.rounds = value;
    else if (own[i] === '--seconds' && positive) options.seconds = value;
    else if (own[i] === '--arms' && text.split(',').every((a) => (ARMS as readonly string[]).includes(a))) options.arms = text.split(',') as Arm[];
    else if (own[i] === '--variant-args' && text.trim()) options.variantArgs = text.trim().split(/\s+/);
    else throw new Error(`${USAGE} (at ${own[i]})`);
    i++;
  }
  return options;
}

/** The spin programs: one per tracepoint, each counting to `spins` in processes `tgids` only. */
function spinProbeSource(tracepoints: readonly string[], tgids: readonly number[], spins: number): string {
  const selected = tgids.map((t) => `tgid == ${t}`).join(' || ');
  const programs = tracepoints.map(
    (tp) => `SEC("tracepoint/syscalls/${tp}")
int spin_${tp}(void *ctx) { return spin(); }`,
  );
  return `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
static long step(__u64 i, void *ctx) { (*(volatile __u64 *)ctx)++; return 0; }
static __always_inline int spin(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 n = 0;
	if (${selected})
		bpf_loop(${spins}, step, &n, 0);
	return 0;
}
${programs.join('\n')}
char LICENSE[] SEC("license") = "GPL";
`;
}

async function buildSpinProbe(dir: string, tgids: readonly number[], spins: number): Promise<{ object: string; loader: string; programs: number }> {
  const tracepoints = sondeSyscallTracepoints();
  const { object, loader } = await compileProbe(dir, 'spin', spinProbeSource(tracepoints, tgids, spins));
  return { object, loader, programs: tracepoints.length };
}

function sondeText(r: RoundResult): string {
  if (!r.sonde) return '';
  const t = r.sonde;
  return `  sonde ${t.usPerRequest.toFixed(2)} µs/req (JS ${t.mainUs.toFixed(2)}, reader ${t.readerUs.toFixed(2)}, helpers ${t.helpersUs.toFixed(2)}), ${t.drainsPerS.toFixed(1)} drains/s, ${t.exportsPerS.toFixed(1)} exports/s`;
}

/** ns a request of each program that ran, the arm's prefix dropped, dearest first. */
function byProgramText(byProgram: Map<string, number>): string {
  return [...byProgram]
    .filter(([, ns]) => ns >= 1)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ns]) => `${name.replace(/^[a-z]+_(tp_)?/, '')} ${ns.toFixed(0)}`)
    .join(', ');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const bpftool = which('bpftool');
  if (!bpftool || !which('hey')) throw new Error('bpftool and hey are needed: run scripts/setup.sh');
  if (!enableBpfStats()) throw new Error('cannot turn on kernel.bpf_stats_enabled: run as root');
  installCleanupHandlers();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-tail-cost-'));
  let server: Server | undefined;
  let receiver: Receiver | undefined;
  try {
    if (options.arms.includes('variant') && options.variantArgs.length === 0) throw new Error('the variant arm needs --variant-args');
    if (options.arms.some((a) => EXPORTING_ARMS.includes(a))) receiver = await Receiver.start();
    server = await startHelloServer(options.server);
    const probe = await buildSpinProbe(dir, server.pids, options.spins);
    const minimal = options.arms.includes('minimal') ? await buildBoundaryProbe(dir, server.pids) : undefined;
    const results: RoundResult[] = [];
    const measure = async (arm: Arm, sonde?: SondeProcess): Promise<void> => {
      const target = server as Server;
      // Every process's hits: sonde's programs run in hey's too (about 0.5
      // µs a request, for the selection check), the spin programs return there.
      const names = arm === 'spin' ? /^spin_/ : arm === 'minimal' ? /^minimal_/ : /^sonde_/;
      await runAtRate({ url: target.url, targetRps: options.rate, durationS: 5 });
      const cpu0 = cpuSecondsOf(target.pids);
      const bpf0 = programRunNs(names, bpftool);
      const sonde0 = sonde && { cpu: sonde.cpuSeconds(), threads: threadCpuSeconds(sonde.pid, 'sonde-reader'), counters: await sonde.countersNow(), exports: (await receiver?.count())?.requests ?? 0 };
      const load = await runAtRate({ url: target.url, targetRps: options.rate, durationS: options.seconds });
      const cpu1 = cpuSecondsOf(target.pids);
      const bpf1 = programRunNs(names, bpftool);
      const sonde1 = sonde && { cpu: sonde.cpuSeconds(), threads: threadCpuSeconds(sonde.pid, 'sonde-reader'), counters: await sonde.countersNow(), exports: (await receiver?.count())?.requests ?? 0 };
      const requests = Math.max(load.requests, 1);
      const bpfNsByProgram = new Map([...bpf1].map(([name, ns]) => [name, (ns - (bpf0.get(name) ?? 0)) / requests]));
      const r: RoundResult = {
        arm,
        load,
        serverUsPerRequest: ((cpu1 - cpu0) * 1e6) / requests,
        bpfUsPerRequest: arm === 'untraced' ? 0 : [...bpfNsByProgram.values()].reduce((a, b) => a + b, 0) / 1e3,
        bpfNsByProgram,
      };
      if (sonde0 && sonde1) {
        const threadUs = (part: 'main' | 'reader' | 'helpers'): number => (((sonde1.threads?.[part] ?? NaN) - (sonde0.threads?.[part] ?? NaN)) * 1e6) / requests;
        r.sonde = {
          usPerRequest: ((sonde1.cpu - sonde0.cpu) * 1e6) / requests,
          mainUs: threadUs('main'),
          readerUs: threadUs('reader'),
          helpersUs: threadUs('helpers'),
          drainsPerS: ((sonde1.counters?.readerPolls ?? NaN) - (sonde0.counters?.readerPolls ?? NaN)) / options.seconds,
          exportsPerS: (sonde1.exports - sonde0.exports) / options.seconds,
        };
      }
      results.push(r);
      const l = load.latencyMs;
      console.log(
        `${arm.padEnd(8)} ${load.rps.toFixed(0)} req/s  p50 ${l.p50} p90 ${l.p90} p99 ${l.p99} ms  server ${r.serverUsPerRequest.toFixed(1)} µs/req  BPF ${r.bpfUsPerRequest.toFixed(2)} µs/req (all hooked processes)${sondeText(r)}`,
      );
      if (options.byProgram && arm !== 'untraced') console.log(`         BPF ns/req by program: ${byProgramText(bpfNsByProgram)}`);
    };
    const arms = options.arms;
    for (let round = 0; round < options.rounds; round++) {
      for (let i = 0; i < arms.length; i++) {
        const arm = arms[(round + i) % arms.length];
        if (arm === 'untraced') {
          await measure(arm);
        } else if (arm === 'spin' || arm === 'minimal') {
          const held = arm === 'spin' ? probe : (minimal as NonNullable<typeof minimal>);
          const proc = await holdProbe(`${arm}-probe`, held, held.programs);
          try {
            await measure(arm);
          } finally {
            await proc.stop('SIGTERM', 5000);
          }
        } else {
          const ring = arm === 'frozen' ? ['--ring-buffer-bytes', String(FROZEN_RING_BYTES)] : [];
          const variant = arm === 'variant' ? options.variantArgs : [];
          const sonde = await SondeProcess.start({
            select: ['--pid', server.pids.join(',')],
            otlpEndpoint: EXPORTING_ARMS.includes(arm) ? receiver?.url : undefined,
            extraArgs: ['--no-ui', ...ring, ...options.sondeArgs, ...variant],
          });
          try {
            if (arm === 'frozen') process.kill(sonde.pid, 'SIGSTOP');
            if (arm === 'niced' && receiver) reniceThreads(receiver.pid, 19);
            await measure(arm, arm === 'frozen' ? undefined : sonde);
          } finally {
            if (arm === 'niced' && receiver) reniceThreads(receiver.pid, 0);
            if (arm === 'frozen') process.kill(sonde.pid, 'SIGCONT');
            await sonde.stop(0).catch(() => undefined);
          }
        }
      }
    }
    if (options.variantArgs.length) console.log(`\nvariant: ${options.variantArgs.join(' ')}`);
    console.log(`\nmedians over ${options.rounds} rounds, ${options.server} at ${options.rate} req/s, spin ${options.spins}:`);
    for (const arm of arms) {
      const of = results.filter((r) => r.arm === arm);
      const m = (f: (r: RoundResult) => number) => median(of.map(f));
      console.log(
        `  ${arm.padEnd(8)} p50 ${m((r) => r.load.latencyMs.p50).toFixed(2)} p99 ${m((r) => r.load.latencyMs.p99).toFixed(2)} ms  server ${m((r) => r.serverUsPerRequest).toFixed(1)} µs/req  BPF ${m((r) => r.bpfUsPerRequest).toFixed(2)} µs/req${
          of[0]?.sonde
            ? `  sonde ${m((r) => r.sonde?.usPerRequest ?? NaN).toFixed(2)} µs/req (JS ${m((r) => r.sonde?.mainUs ?? NaN).toFixed(2)}, reader ${m((r) => r.sonde?.readerUs ?? NaN).toFixed(2)}, helpers ${m((r) => r.sonde?.helpersUs ?? NaN).toFixed(2)})`
            : ''
        }`,
      );
      if (options.byProgram && arm !== 'untraced') {
        const names = new Set(of.flatMap((r) => [...r.bpfNsByProgram.keys()]));
        console.log(`           BPF ns/req by program: ${byProgramText(new Map([...names].map((name) => [name, m((r) => r.bpfNsByProgram.get(name) ?? 0)])))}`);
      }
    }
  } finally {
    await server?.stop();
    await receiver?.close();
    killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : String(error));
  killAll();
  process.exit(1);
});
