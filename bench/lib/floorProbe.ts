/**
 * Floor probes: BPF programs that only return, attached where sonde's own
 * programs attach. What a process pays with them attached is what any
 * tracer hooking those tracepoints (and those OpenSSL functions) costs
 * before its programs do any work; sonde's figure above it is its
 * programs' work.
 *
 * The programs are generated from the tracepoints bpf/sock_trace.bpf.c
 * declares, and the OpenSSL sites are the tracer's own plan
 * (native/src/core/TlsProbePlan.h), so that the floor follows sonde's hooks
 * when they change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadNativeModule } from '../../src/native/binding';
import { executableOf, openSslLibrariesOf } from '../../src/discovery/tlsLibraries';
import { REPO_ROOT, runCommand, spawnTracked, tool, type Tracked } from './proc';

const SONDE_BPF_SOURCE = path.join(REPO_ROOT, 'bpf', 'sock_trace.bpf.c');

/** The syscall tracepoints sonde's BPF object attaches to (sys_enter_write, sys_exit_read, …). */
export function sondeSyscallTracepoints(source = fs.readFileSync(SONDE_BPF_SOURCE, 'utf8')): string[] {
  return [...source.matchAll(/SEC\("tracepoint\/syscalls\/(sys_(?:enter|exit)_\w+)"\)/g)].map((m) => m[1]);
}

/** A user-space site of a floor probe: an entry, or the return of the call entered there. */
export interface UprobeFloorSite {
  kind: 'uprobe' | 'uretprobe';
  /** The function the tracer probes there (maybe through the internal function it wraps). */
  symbol: string;
  path: string;
  fileOffset: number;
  /** The one process it is attached for, as sonde attaches its own (-1: every process that maps `path`). */
  pid: number;
}

/**
 * Where sonde's OpenSSL programs go in the ELF file at `libraryPath`, for
 * process `pid`: each placement the tracer attaches, and its return where
 * it probes one. A placement the tracer leaves to libbpf by name (no site
 * found) has none, nor has a file without OpenSSL.
 */
export function tlsFloorSites(libraryPath: string, pid: number): UprobeFloorSite[] {
  const plan = loadNativeModule().tlsProbePlan(libraryPath);
  if (!plan.some((p) => p.required && p.fileOffset !== null)) return [];
  const sites: UprobeFloorSite[] = [];
  // A placement is covered only by a found one before it, which the tracer attaches.
  for (const p of plan) {
    if (p.fileOffset === null || p.coveredByPrevious) continue;
    sites.push({ kind: 'uprobe', symbol: p.symbol, path: libraryPath, fileOffset: p.fileOffset, pid });
    if (p.withReturn) sites.push({ kind: 'uretprobe', symbol: p.symbol, path: libraryPath, fileOffset: p.fileOffset, pid });
  }
  return sites;
}

/**
 * The floor sites of processes `pids` traced by `--pid`, as sonde attaches
 * its OpenSSL probes to each: in the libssl it maps, else in its
 * executable when that links OpenSSL (node).
 */
export function tlsFloorSitesOf(pids: readonly number[]): UprobeFloorSite[] {
  return pids.flatMap((pid) => {
    const libraries = openSslLibrariesOf(pid);
    if (libraries.length > 0) return libraries.flatMap((lib) => tlsFloorSites(lib.reachablePath, pid));
    const exe = executableOf(pid);
    return exe ? tlsFloorSites(exe.reachablePath, pid) : [];
  });
}

/** C source of one empty program per tracepoint, and an empty entry and return program for user-space sites. */
export function floorProbeSource(tracepoints: readonly string[], withUprobes = false): string {
  const empty = (section: string, name: string): string => `SEC("${section}")\nint ${name}(void *ctx)\n{\n\treturn 0;\n}\n`;
  const programs = tracepoints.map((tp) => empty(`tracepoint/syscalls/${tp}`, `floor_${tp}`));
  if (withUprobes) programs.push(empty('uprobe', 'floor_uprobe'), empty('uretprobe', 'floor_uretprobe'));
  return ['#include "vmlinux.h"', '#include <bpf/bpf_helpers.h>', '', 'char LICENSE[] SEC("license") = "Dual BSD/GPL";', '', ...programs].join('\n');
}

export interface FloorProbe {
  tracepoints: readonly string[];
  uprobeSites: readonly UprobeFloorSite[];
  object: string;
  loader: string;
}

/** What a floor probe hooks, for labels: "18 syscall tracepoints and OpenSSL's 4 sites in 2 processes" (returns not counted). */
export function describeFloorProbe(probe: FloorProbe): string {
  if (probe.uprobeSites.length === 0) return `${probe.tracepoints.length} syscall tracepoints`;
  const entries = probe.uprobeSites.filter((s) => s.kind === 'uprobe');
  const processes = new Set(entries.map((s) => s.pid)).size;
  const perProcess = entries.length / processes;
  return `${probe.tracepoints.length} syscall tracepoints and OpenSSL's ${perProcess} sites in ${processes} process${processes === 1 ? '' : 'es'}`;
}

/** Compiles BPF program `source` as `name` in `dir`, and the loader that holds any such object's programs attached. */
export async function compileProbe(dir: string, name: string, source: string): Promise<{ object: string; loader: string }> {
  const sourcePath = path.join(dir, `${name}.bpf.c`);
  const object = path.join(dir, `${name}.bpf.o`);
  const loader = path.join(dir, 'floor-probe-loader');
  fs.writeFileSync(sourcePath, source);
  const bpfCc = await runCommand('clang', tool('clang'), ['-O2', '-g', '-target', 'bpf', `-D__TARGET_ARCH_${process.arch === 'arm64' ? 'arm64' : 'x86'}`, '-I', path.join(REPO_ROOT, 'bpf', '.output'), '-c', sourcePath, '-o', object], 60_000);
  if (bpfCc.code !== 0) throw new Error(`clang -target bpf ${sourcePath} failed (bpf/.output/vmlinux.h comes from npm run build):\n${bpfCc.stderr}`);
  if (!fs.existsSync(loader)) {
    const loaderCc = await runCommand('cc', tool('cc'), ['-O2', '-Wall', '-o', loader, path.join(REPO_ROOT, 'bench', 'fixtures', 'floor-probe-loader.c'), '-lbpf'], 60_000);
    if (loaderCc.code !== 0) throw new Error(`cc floor-probe-loader.c -lbpf failed:\n${loaderCc.stderr}`);
  }
  return { object, loader };
}

/** Compiles the floor programs for `tracepoints` (and `uprobeSites`) and the loader that holds them attached, into `dir`. */
export async function buildFloorProbe(dir: string, name: string, tracepoints: readonly string[], uprobeSites: readonly UprobeFloorSite[] = []): Promise<FloorProbe> {
  if (tracepoints.length === 0) throw new Error(`floor probe ${name}: no tracepoints`);
  const { object, loader } = await compileProbe(dir, name, floorProbeSource(tracepoints, uprobeSites.length > 0));
  return { tracepoints, uprobeSites, object, loader };
}

/**
 * Starts `loader` holding the programs of `object` (at `sites` for its
 * uprobes) and resolves once it has made `links` links; they stay until
 * the returned process is stopped.
 */
export async function holdProbe(name: string, compiled: { object: string; loader: string }, links: number, sites: readonly string[] = []): Promise<Tracked> {
  const proc = spawnTracked(name, compiled.loader, [compiled.object, ...sites], { stdin: 'pipe' });
  try {
    await proc.waitFor(new RegExp(`^attached ${links}$`, 'm'), 30_000, 'stdout');
  } catch (error) {
    await proc.stop('SIGKILL', 1000);
    throw error;
  }
  return proc;
}

/** Attaches the floor programs; they stay until the returned process is stopped. */
export async function attachFloorProbe(probe: FloorProbe): Promise<Tracked> {
  const sites = probe.uprobeSites.map((s) => `${s.kind}:${s.fileOffset.toString(16)}:${s.pid}:${s.path}`);
  return holdProbe('floor-probe', probe, probe.tracepoints.length + sites.length, sites);
}
