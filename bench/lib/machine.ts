/** What the numbers were measured on, and whether the tools are there. */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, tool, which } from './proc';
import { sondeUnderTest } from './sonde';

export interface MachineDescription {
  cores: number;
  cpuModel: string;
  kernel: string;
  /** /proc/cmdline: VMs of one kernel release have differed in what makes a trap or a syscall dear (pti, mitigations). */
  kernelCommandLine: string;
  node: string;
  totalMemoryMB: number;
  loadAverageAtStart: number[];
  tools: Record<string, string>;
  sonde: { version: string; commit: string; uncommittedChanges: boolean };
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? 'unknown';
}

function dpkgVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

function readCommandLine(): string {
  try {
    return fs.readFileSync('/proc/cmdline', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export function describeMachine(): MachineDescription {
  const cpus = os.cpus();
  const tools: Record<string, string> = {};
  if (which('wrk')) tools.wrk = firstLine(tool('wrk'), ['-v']).replace(/\s*\[.*$/, '');
  if (which('hey')) tools.hey = `hey ${dpkgVersion('hey')} (Debian package)`;
  if (which('h2load')) tools.h2load = firstLine(tool('h2load'), ['--version']);
  if (which('nginx')) tools.nginx = firstLine(tool('nginx'), ['-v']).replace(/^nginx version:\s*/, '');
  if (which('python3')) tools.python3 = firstLine(tool('python3'), ['--version']);
  if (which('cc')) tools.cc = firstLine(tool('cc'), ['--version']);
  let commit = 'unknown';
  let dirty = false;
  // The checkout whose sonde is measured (bench --sonde-dir may name another).
  const checkout = path.resolve(path.dirname(sondeUnderTest.cli), '..', '..', '..');
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: checkout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: checkout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().length > 0;
  } catch {
    /* not a git checkout */
  }
  let version = 'unknown';
  try {
    version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    /* keep unknown */
  }
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    kernel: os.release(),
    kernelCommandLine: readCommandLine(),
    node: process.version,
    totalMemoryMB: Math.round(os.totalmem() / 1024 / 1024),
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    tools,
    sonde: { version, commit, uncommittedChanges: dirty },
  };
}

const INSTALL: Record<string, string> = {
  wrk: 'apt-get install -y wrk',
  hey: 'apt-get install -y hey',
  nginx: 'apt-get install -y nginx-light',
  python3: 'apt-get install -y python3',
  cc: 'apt-get install -y gcc',
  h2load: 'apt-get install -y nghttp2-client',
  bpftool: 'apt-get install -y bpftool',
};

/** Tools missing from PATH, each with how to install it. */
export function missingTools(tools: string[]): string[] {
  return tools.filter((t) => !which(t)).map((t) => `${t} (install with: ${INSTALL[t] ?? `apt-get install -y ${t}`}, or run: npm run setup)`);
}
