/**
 * Floor probes: BPF programs that only return, attached where sonde's own
 * programs attach. What a process pays with them attached is what any
 * tracer hooking those tracepoints costs before its programs do any work;
 * sonde's figure above it is its programs' work.
 *
 * The programs are generated from the tracepoints bpf/sock_trace.bpf.c
 * declares, so that the floor follows sonde's hooks when they change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, runCommand, spawnTracked, tool, type Tracked } from './proc';

const SONDE_BPF_SOURCE = path.join(REPO_ROOT, 'bpf', 'sock_trace.bpf.c');

/** The syscall tracepoints sonde's BPF object attaches to (sys_enter_write, sys_exit_read, …). */
export function sondeSyscallTracepoints(source = fs.readFileSync(SONDE_BPF_SOURCE, 'utf8')): string[] {
  return [...source.matchAll(/SEC\("tracepoint\/syscalls\/(sys_(?:enter|exit)_\w+)"\)/g)].map((m) => m[1]);
}

/** C source of one empty program per tracepoint. */
export function floorProbeSource(tracepoints: readonly string[]): string {
  const programs = tracepoints.map((tp) => `SEC("tracepoint/syscalls/${tp}")\nint floor_${tp}(void *ctx)\n{\n\treturn 0;\n}\n`);
  return ['#include "vmlinux.h"', '#include <bpf/bpf_helpers.h>', '', 'char LICENSE[] SEC("license") = "Dual BSD/GPL";', '', ...programs].join('\n');
}

export interface FloorProbe {
  tracepoints: readonly string[];
  object: string;
  loader: string;
}

/** Compiles the floor programs for `tracepoints` and the loader that holds them attached, into `dir`. */
export async function buildFloorProbe(dir: string, name: string, tracepoints: readonly string[]): Promise<FloorProbe> {
  if (tracepoints.length === 0) throw new Error(`floor probe ${name}: no tracepoints`);
  const source = path.join(dir, `${name}.bpf.c`);
  const object = path.join(dir, `${name}.bpf.o`);
  const loader = path.join(dir, 'floor-probe-loader');
  fs.writeFileSync(source, floorProbeSource(tracepoints));
  const bpfCc = await runCommand('clang', tool('clang'), ['-O2', '-g', '-target', 'bpf', '-I', path.join(REPO_ROOT, 'bpf', '.output'), '-c', source, '-o', object], 60_000);
  if (bpfCc.code !== 0) throw new Error(`clang -target bpf ${source} failed (bpf/.output/vmlinux.h comes from npm run build):\n${bpfCc.stderr}`);
  if (!fs.existsSync(loader)) {
    const loaderCc = await runCommand('cc', tool('cc'), ['-O2', '-Wall', '-o', loader, path.join(REPO_ROOT, 'bench', 'fixtures', 'floor-probe-loader.c'), '-lbpf'], 60_000);
    if (loaderCc.code !== 0) throw new Error(`cc floor-probe-loader.c -lbpf failed:\n${loaderCc.stderr}`);
  }
  return { tracepoints, object, loader };
}

/** Attaches the floor programs; they stay until the returned process is stopped. */
export async function attachFloorProbe(probe: FloorProbe): Promise<Tracked> {
  const proc = spawnTracked('floor-probe', probe.loader, [probe.object], { stdin: 'pipe' });
  try {
    await proc.waitFor(new RegExp(`^attached ${probe.tracepoints.length}$`, 'm'), 30_000, 'stdout');
  } catch (error) {
    await proc.stop('SIGKILL', 1000);
    throw error;
  }
  return proc;
}
