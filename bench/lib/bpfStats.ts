/**
 * BPF run time of sonde's programs, from the kernel's own accounting
 * (`kernel.bpf_stats_enabled`): the in-kernel part of what sonde costs, which
 * the traced services (and every process whose syscalls hit a probe) pay.
 * Turning the accounting on adds two clock reads to every program run, a
 * bias against sonde in the traced runs; it is restored at exit.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
let previous: string | undefined;

/** Turns the accounting on for this bench run; false when the kernel does not allow it. */
export function enableBpfStats(): boolean {
  try {
    previous ??= fs.readFileSync(SYSCTL, 'utf8').trim();
    fs.writeFileSync(SYSCTL, '1');
    process.once('exit', restoreBpfStats);
    return true;
  } catch {
    return false;
  }
}

export function restoreBpfStats(): void {
  if (previous === undefined) return;
  try {
    fs.writeFileSync(SYSCTL, previous);
  } catch {
    /* nothing more to do */
  }
}

/**
 * Runs `fn` with the accounting off: the idle-tax scenario measures the
 * per-hit cost of the probes themselves, which the accounting's clock reads
 * would inflate (+180 ns per read() with it, +113 without, in one quick run).
 */
export async function withoutBpfStats<T>(fn: () => Promise<T>): Promise<T> {
  let was: string | undefined;
  try {
    was = fs.readFileSync(SYSCTL, 'utf8').trim();
    fs.writeFileSync(SYSCTL, '0');
  } catch {
    was = undefined;
  }
  try {
    return await fn();
  } finally {
    if (was !== undefined) {
      try {
        fs.writeFileSync(SYSCTL, was);
      } catch {
        /* restored at exit anyway */
      }
    }
  }
}

function loadedPrograms(bpftool: string): Array<{ name?: string; run_time_ns?: number; run_cnt?: number }> {
  return JSON.parse(execFileSync(bpftool, ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as Array<{ name?: string; run_time_ns?: number; run_cnt?: number }>;
}

/** Each loaded sonde program's run time and run count so far (bpftool prog show); throws without bpftool. */
export function sondeProgramRunTimes(bpftool = 'bpftool'): Map<string, { ns: number; runs: number }> {
  const times = new Map<string, { ns: number; runs: number }>();
  for (const p of loadedPrograms(bpftool)) if (p.name?.startsWith('sonde_')) times.set(p.name, { ns: p.run_time_ns ?? 0, runs: p.run_cnt ?? 0 });
  return times;
}

/**
 * Run time so far of each loaded program whose name (as the kernel keeps
 * it: 15 characters) matches, programs of the same name summed; throws
 * without bpftool.
 */
export function programRunNs(namePattern: RegExp, bpftool = 'bpftool'): Map<string, number> {
  const byName = new Map<string, number>();
  for (const p of loadedPrograms(bpftool)) if (p.name !== undefined && namePattern.test(p.name)) byName.set(p.name, (byName.get(p.name) ?? 0) + (p.run_time_ns ?? 0));
  return byName;
}

/** Nanoseconds all loaded sonde programs have run, in total; undefined without bpftool or accounting. */
export function sondeBpfRunNs(): number | undefined {
  try {
    if (fs.readFileSync(SYSCTL, 'utf8').trim() !== '1') return undefined;
    let total = 0;
    for (const t of sondeProgramRunTimes().values()) total += t.ns;
    return total;
  } catch {
    return undefined;
  }
}
