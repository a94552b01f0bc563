/**
 * Checks what the kernel side needs before anything is loaded, so that a
 * missing privilege or kernel feature is one clear paragraph naming the fix
 * instead of an errno from deep inside libbpf.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { execFileSync } from 'node:child_process';

export class PreflightError extends Error {
  constructor(message: string, readonly exitCode = 3) {
    super(message);
    this.name = 'PreflightError';
  }
}

// include/uapi/linux/capability.h
const CAP_SYS_ADMIN = 21;
const CAP_SYS_PTRACE = 19;
const CAP_DAC_READ_SEARCH = 2;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

export function effectiveCapabilities(statusText: string): bigint {
  const line = statusText.split('\n').find((l) => l.startsWith('CapEff:'));
  return line ? BigInt(`0x${line.slice(7).trim()}`) : 0n;
}

export function missingCapabilities(capEff: bigint): string[] {
  const has = (cap: number): boolean => (capEff & (1n << BigInt(cap))) !== 0n;
  const missing: string[] = [];
  if (!has(CAP_SYS_ADMIN) && !(has(CAP_BPF) && has(CAP_PERFMON))) missing.push('CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load and attach eBPF programs');
  if (!has(CAP_SYS_PTRACE) && !has(CAP_DAC_READ_SEARCH)) missing.push("CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH to read traced processes' /proc entries");
  return missing;
}

/** bpf_loop (5.17) and bpf_task_pt_regs (5.15) are the newest helpers the programs call. */
export const MINIMUM_KERNEL: readonly [number, number] = [5, 17];

/** "6.18.44-fc-v782" → [6, 18]; undefined when the release does not start with major.minor. */
export function kernelVersion(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export interface PreflightReport {
  tracefs: string;
  mountedTracefs: boolean;
}

export function preflight(options: { procSelfStatus?: string; btfPath?: string; kernelRelease?: string } = {}): PreflightReport {
  const status = options.procSelfStatus ?? fs.readFileSync('/proc/self/status', 'utf8');
  const missing = missingCapabilities(effectiveCapabilities(status));
  if (missing.length > 0) {
    const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
    const fix =
      uid === 0
        ? 'Its capabilities were taken away (a container or service manager): give them back (privileged: true and pid: host in a container, CapabilityBoundingSet/AmbientCapabilities in a systemd unit), or run it from a shell that has them (sudo sonde ...).'
        : 'Run it as root (sudo sonde ...), or in a container with privileged: true and pid: host.';
    throw new PreflightError(
      `sonde cannot trace: it runs as uid ${uid}${uid === 0 ? ' (root)' : ''} without ${missing.join('; and without ')}. Nothing was attached. ${fix}`,
      77,
    );
  }
  const release = options.kernelRelease ?? os.release();
  const version = kernelVersion(release);
  if (version && (version[0] < MINIMUM_KERNEL[0] || (version[0] === MINIMUM_KERNEL[0] && version[1] < MINIMUM_KERNEL[1]))) {
    throw new PreflightError(
      `sonde cannot trace: kernel ${release} is older than ${MINIMUM_KERNEL.join('.')}, whose eBPF helpers (bpf_loop, bpf_task_pt_regs) its programs call. Nothing was attached. Run it on kernel ${MINIMUM_KERNEL.join('.')} or newer (Debian 12 backports, Ubuntu 22.04 HWE, RHEL 9).`,
    );
  }
  const btf = options.btfPath ?? '/sys/kernel/btf/vmlinux';
  if (!fs.existsSync(btf)) {
    throw new PreflightError(
      `sonde cannot trace: this kernel exposes no BTF type information (${btf} is missing), which its CO-RE eBPF programs need. ` +
        'Use a kernel built with CONFIG_DEBUG_INFO_BTF=y (the default on Debian 11+, Ubuntu 20.10+, RHEL 8.2+), kernel 5.17 or newer.',
    );
  }
  for (const dir of ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']) {
    if (fs.existsSync(`${dir}/events/syscalls`)) return { tracefs: dir, mountedTracefs: false };
  }
  // libbpf finds tracepoint ids through tracefs; as root we can mount it.
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'pipe' });
  } catch (error) {
    const detail = error instanceof Error && 'stderr' in error ? String((error as { stderr: unknown }).stderr).trim() : String(error);
    throw new PreflightError(
      `sonde cannot trace: tracefs is not mounted, and mounting it failed (${detail}). ` +
        'Mount it with "mount -t tracefs nodev /sys/kernel/tracing" (in a container, mount the host\'s /sys/kernel/tracing), and check that the kernel has CONFIG_FTRACE_SYSCALLS=y.',
    );
  }
  if (!fs.existsSync('/sys/kernel/tracing/events/syscalls')) {
    throw new PreflightError('sonde cannot trace: tracefs has no syscall tracepoints (/sys/kernel/tracing/events/syscalls is missing); the kernel needs CONFIG_FTRACE_SYSCALLS=y.');
  }
  return { tracefs: '/sys/kernel/tracing', mountedTracefs: true };
}
