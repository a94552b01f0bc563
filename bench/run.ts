/**
 * sonde's benchmark: sonde against an untraced baseline, in the same run,
 * alternating untraced (A) and traced (B) runs.
 *
 *   npm run bench [-- --quick | --smoke] [--out DIR] [--only worst-case,grpc-unary]
 *
 * Prints one table per scenario, writes DIR/bench-<timestamp>.json,
 * DIR/latest.json (every run's raw figures, the medians, the machine) and
 * DIR/latency.svg. Exit code: 0 when every scenario ran (missed targets are
 * results, not failures), 1 when one failed, 2 on bad usage or a missing
 * prerequisite.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { enableBpfStats, restoreBpfStats } from './lib/bpfStats';
import { describeMachine, missingTools } from './lib/machine';
import { MODES, type Mode, type ModeName } from './lib/modes';
import { REPO_ROOT, installCleanupHandlers, killAll } from './lib/proc';
import { Receiver } from './lib/receiver';
import { renderSection, renderTargets, type Section, type TargetCheck } from './lib/report';
import { SONDE_EXTRA_ARGS, sondeOf, sondeUnderTest, useSondeFrom } from './lib/sonde';
import { jsonReplacer } from './lib/stats';
import { latencySvg, type ChartPanel } from './lib/svg';
import { capacity } from './scenarios/capacity';
import { churn } from './scenarios/churn';
import { comparison, type Scenario, type ScenarioContext, type ScenarioOutput } from './scenarios/common';
import { fixedRate } from './scenarios/fixedRate';
import { grpcUnary, protocolsSideBySide } from './scenarios/grpcUnary';
import { idleTax } from './scenarios/idleTax';
import { viewerSoak } from './scenarios/viewerSoak';
import { wholeTraces } from './scenarios/wholeTraces';
import { worstCase, worstCaseHttps } from './scenarios/worstCase';

const SCENARIOS: Array<{ name: string; run: Scenario; tools: string[] }> = [
  { name: 'worst-case', run: worstCase, tools: ['wrk'] },
  { name: 'worst-case-https', run: worstCaseHttps, tools: ['wrk', 'openssl'] },
  { name: 'fixed-rate', run: fixedRate, tools: ['wrk', 'hey', 'h2load', 'nginx', 'openssl', 'python3'] },
  { name: 'capacity', run: capacity, tools: ['hey'] },
  { name: 'idle-tax', run: idleTax, tools: ['cc', 'clang'] },
  { name: 'churn', run: churn, tools: ['hey'] },
  { name: 'viewer-soak', run: viewerSoak, tools: ['hey'] },
  { name: 'grpc-unary', run: grpcUnary, tools: ['h2load'] },
  { name: 'whole-traces', run: wholeTraces, tools: ['nginx', 'python3'] },
];

const USAGE = `usage: node dist/bench/run.js [--quick | --smoke] [--out DIR] [--only SCENARIO,...]
  (default)  full run, about 105 minutes: 5 A/B pairs of 15 s per comparison
  --quick    under 3 minutes: 2 pairs of short runs
  --smoke    seconds, tiny rates: proves the machinery works (used by the tests)
  --out DIR  where to write bench-<timestamp>.json, latest.json and latency.svg (default bench/results)
  --only     comma-separated subset of: ${SCENARIOS.map((s) => s.name).join(', ')}
  --sonde-arg ARG  pass ARG to every sonde started (repeatable), e.g. --sonde-arg=--nice=0
  --sonde-dir DIR  trace with the sonde built in another checkout (an older commit), measured by this benchmark
  --before-dir DIR also trace with the sonde built in DIR, interleaved (A B B'), and end with a before/after table`;

interface Options {
  mode: Mode;
  outDir: string;
  only: string[];
}

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

export function parseArgs(argv: string[]): Options {
  let mode: ModeName = 'full';
  let outDir = path.join(REPO_ROOT, 'bench', 'results');
  let only = SCENARIOS.map((s) => s.name);
  const sondeArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) usageError(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') mode = 'quick';
    else if (a === '--smoke') mode = 'smoke';
    else if (a === '--full') mode = 'full';
    else if (a === '--out') outDir = path.resolve(value());
    else if (a.startsWith('--out=')) outDir = path.resolve(a.slice(6));
    else if (a === '--only' || a.startsWith('--only=')) {
      only = (a === '--only' ? value() : a.slice(7)).split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = only.filter((n) => !SCENARIOS.some((s) => s.name === n));
      if (unknown.length || only.length === 0) usageError(`unknown scenario(s): ${unknown.join(', ') || '(none given)'}`);
    } else if (a === '--sonde-arg' || a.startsWith('--sonde-arg=')) {
      sondeArgs.push(a === '--sonde-arg' ? argv[++i] ?? usageError('--sonde-arg needs a value') : a.slice(12));
    } else if (a === '--sonde-dir' || a.startsWith('--sonde-dir=')) {
      try {
        useSondeFrom(a === '--sonde-dir' ? value() : a.slice(12));
      } catch (error) {
        usageError(error instanceof Error ? error.message : String(error));
      }
    } else if (a === '--before-dir' || a.startsWith('--before-dir=')) {
      const dir = a === '--before-dir' ? value() : a.slice(13);
      try {
        comparison.before = { ...sondeOf(dir), commit: gitCommit(dir) };
      } catch (error) {
        usageError(error instanceof Error ? error.message : String(error));
      }
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else usageError(`unknown option ${a}`);
  }
  SONDE_EXTRA_ARGS.splice(0, SONDE_EXTRA_ARGS.length, ...sondeArgs);
  return { mode: MODES[mode], outDir, only };
}

function preconditions(selected: typeof SCENARIOS): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('sonde loads eBPF programs: run the benchmark as root (sudo npm run bench)');
  if (!fs.existsSync(sondeUnderTest.cli)) problems.push(`${path.relative(REPO_ROOT, sondeUnderTest.cli)} is missing: build sonde first (npm run build, or npm run setup)`);
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'bench', 'countingReceiver.js'))) problems.push('dist/bench/countingReceiver.js is missing: npm run build:ts');
  const tools = [...new Set(selected.flatMap((s) => s.tools))];
  for (const m of missingTools(tools)) problems.push(`missing tool: ${m}`);
  const noBpftool = missingTools(['bpftool']);
  if (noBpftool.length) process.stderr.write(`bench: warning: ${noBpftool[0]}; without it another sonde attached meanwhile cannot be detected\n`);
  return problems;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const selected = SCENARIOS.filter((s) => opts.only.includes(s.name));
  const problems = preconditions(selected);
  if (problems.length) {
    for (const p of problems) process.stderr.write(`bench: ${p}\n`);
    return 2;
  }
  installCleanupHandlers();
  const started = new Date();
  const t0 = performance.now();
  const machine = describeMachine();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  log(`sonde bench (${opts.mode.name}): ${selected.map((s) => s.name).join(', ')} on ${machine.cores} cores, ${machine.cpuModel}, kernel ${machine.kernel}, node ${machine.node}`);
  if (machine.cores > 2) log(`note: ${machine.cores} cores; the scenarios were designed for 2 and use no more`);
  // For the kernel row of "CPU µs per span, by part"; restored at exit.
  if (!enableBpfStats()) log('note: kernel.bpf_stats_enabled could not be set: the kernel part of the CPU per span is not measured');

  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-bench-'));
  const results: Record<string, ScenarioOutput['json'] & { status: 'ok' | 'error'; error?: string; wallSeconds: number }> = {};
  const outputs: Array<{ name: string; out?: ScenarioOutput; error?: string }> = [];
  let receiver: Receiver | undefined;
  try {
    receiver = await Receiver.start();
    const ctx: ScenarioContext = { mode: opts.mode, tmpDir, receiver, gapMs: opts.mode.gapMs, settleMs: opts.mode.settleMs, log };
    for (const s of selected) {
      const st = performance.now();
      log(`\n[${s.name}]`);
      try {
        const out = await s.run(ctx);
        results[s.name] = { status: 'ok', wallSeconds: secs(st), ...out.json };
        outputs.push({ name: s.name, out });
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        log(`[${s.name}] FAILED: ${message}`);
        results[s.name] = { status: 'error', error: message, wallSeconds: secs(st) };
        outputs.push({ name: s.name, error: message });
      }
      log(`[${s.name}] ${secs(st).toFixed(1)} s`);
    }
  } finally {
    await receiver?.close().catch(() => undefined);
    killAll();
    restoreBpfStats();
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }

  const targets: TargetCheck[] = outputs.flatMap((o) => o.out?.targets ?? []);
  // Smoke rates are tiny and runs last a second: the figures prove the machinery works, they judge nothing.
  if (opts.mode.name === 'smoke') {
    for (const t of targets) t.verdict = 'n/a';
    for (const o of outputs) for (const sec of o.out?.sections ?? []) for (const r of sec.rows) if (r.verdict) r.verdict = 'n/a';
  }
  const anomalies: string[] = outputs.flatMap((o) => o.out?.anomalies ?? []);
  const chart: ChartPanel[] = outputs.flatMap((o) => o.out?.chart ?? []);
  const finished = new Date();
  const wallSeconds = secs(t0);
  const report = {
    schema: 'sonde-bench/1',
    mode: opts.mode.name,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    wallSeconds,
    argv: process.argv.slice(2),
    machine,
    config: opts.mode,
    method:
      'Each comparison alternates untraced (A) and traced (B) runs, each pair starting one run further on: A1 B1 B2 A2 A3 B3 ... (with a before build or worst-case\'s floor and capture runs, the same rotation over all of a pair\'s runs). Medians with min–max over runs; ratio = median(B) / median(A). ' +
      'sonde is attached before and detached after the load window; its CPU is utime+stime over the load window (/proc/PID/stat), ' +
      'peak RSS is VmHWM, RSS is also sampled every 500 ms. Spans are counted by a separate receiver process (its CPU is reported apart).',
    scenarios: results,
    targets,
    anomalies,
    beforeAfter: comparison.before ? { beforeCommit: comparison.before.commit, rows: comparison.rows } : undefined,
  };
  fs.mkdirSync(opts.outDir, { recursive: true });
  const stamp = started.toISOString().replace(/:/g, '-');
  const json = `${JSON.stringify(report, jsonReplacer, 2)}\n`;
  const jsonFile = path.join(opts.outDir, `bench-${stamp}.json`);
  fs.writeFileSync(jsonFile, json);
  fs.writeFileSync(path.join(opts.outDir, 'latest.json'), json);
  const svgFile = path.join(opts.outDir, 'latency.svg');
  fs.writeFileSync(svgFile, latencySvg(chart, `${opts.mode.name} run, ${started.toISOString().slice(0, 16)}Z, ${machine.cores} cores ${machine.cpuModel}, kernel ${machine.kernel}`));

  const out: string[] = ['', `sonde benchmark, ${opts.mode.name} run, ${machine.cores} cores (${machine.cpuModel}), kernel ${machine.kernel}, node ${machine.node}, sonde ${machine.sonde.version} ${machine.sonde.commit.slice(0, 10)}${machine.sonde.uncommittedChanges ? '+changes' : ''}`];
  out.push('A = untraced, B = traced by sonde; medians (min–max) over runs; ratio = median(B)/median(A)');
  for (const o of outputs) {
    out.push('');
    if (o.out) out.push(...o.out.sections.map(renderSection).join('\n\n').split('\n'));
    else out.push(`== ${o.name}: FAILED`, ...o.error!.split('\n').slice(0, 6).map((l) => `   ${l}`));
  }
  const sideBySide = protocolsSideBySide(results as Record<string, { status: string; summary?: unknown }>);
  if (sideBySide) out.push('', ...renderSection(sideBySide).split('\n'));
  if (comparison.before && comparison.rows.length) out.push('', ...renderSection(beforeAfterSection(comparison.before.commit, machine.sonde.commit)).split('\n'));
  out.push('', renderTargets(targets));
  if (opts.mode.name === 'smoke') out.push('  (smoke run: rates and durations are too small to judge any target; use --quick or the full run)');
  if (anomalies.length) out.push('', '== noticed during the run', ...anomalies.map((a) => `  - ${a}`));
  out.push('', `wrote ${jsonFile}`, `      ${path.join(opts.outDir, 'latest.json')}`, `      ${svgFile}`, `total wall time ${wallSeconds.toFixed(1)} s`);
  process.stdout.write(`${out.join('\n')}\n`);
  return outputs.some((o) => o.error) ? 1 : 0;
}

function gitCommit(dir: string): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

/** The older build's figures and this one's, from the same run, against the same untraced runs. */
function beforeAfterSection(beforeCommit: string, afterCommit: string): Section {
  const f = (v: number): string => (Number.isFinite(v) ? (Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(3)) : '–');
  return {
    title: `before (${beforeCommit.slice(0, 10)}) and after (${afterCommit.slice(0, 10)}), interleaved in this run: medians of their traced runs`,
    headers: ['figure', 'before', 'after', 'change'],
    rows: comparison.rows.map((r) => {
      const better = r.better === 'higher' ? r.after > r.before : r.after < r.before;
      const percent = ((r.after - r.before) / r.before) * 100;
      const change = r.beforeTracedNothing
        ? 'before traced nothing'
        : !Number.isFinite(percent)
          ? ''
          : Math.abs(percent) < 0.5
            ? 'same'
            : `${percent > 0 ? '+' : ''}${percent.toFixed(0)}% ${better ? '(better)' : '(worse)'}`;
      return { metric: r.what, baseline: f(r.before), traced: f(r.after), ratio: change };
    }),
    notes: ['both builds are measured by this benchmark, against the same untraced runs (A B B\' A B B\' ...)'],
  };
}

function secs(since: number): number {
  return Math.round((performance.now() - since) / 100) / 10;
}

if (require.main === module) {
  main().then(
    (code) => {
      killAll();
      process.exit(code);
    },
    (error: unknown) => {
      process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      killAll();
      process.exit(1);
    },
  );
}
