import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Readers of /proc. Every function takes the proc root as a parameter so tests
 * can point them at a fake tree; none of the per-process readers throws,
 * because a process may exit between any two reads.
 */

export const DEFAULT_PROC_ROOT = '/proc';

export interface ProcessInfo {
  pid: number;
  /** Field 22 of /proc/PID/stat: with the pid, it names one process across pid reuse. */
  startTimeTicks: number;
  /** Target of /proc/PID/exe; undefined for kernel threads or when unreadable. */
  exePath: string | undefined;
  /** Basename of exePath, else /proc/PID/comm. */
  exeName: string;
  cmdline: string[];
  /** Target of /proc/PID/cwd, used to resolve relative script paths when naming. */
  cwd?: string;
}

export function listPids(procRoot: string = DEFAULT_PROC_ROOT): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync(procRoot)) {
    if (/^[1-9]\d*$/.test(name)) pids.push(Number(name));
  }
  return pids.sort((a, b) => a - b);
}

export interface ProcessStat {
  /** Field 4: the parent now, which is the nearest subreaper or init once the original parent has exited. */
  ppid: number;
  /** Field 22, in clock ticks since boot. */
  startTimeTicks: number;
}

/** Parses fields 4 and 22 of a stat line; the comm field may itself contain spaces and ')'. */
export function parseStat(statText: string): ProcessStat | undefined {
  const close = statText.lastIndexOf(')');
  if (close === -1) return undefined;
  const fieldsFromState = statText.slice(close + 1).trim().split(/\s+/);
  // fieldsFromState[0] is field 3 (state), so field 4 sits at index 1 and field 22 at index 19.
  const ppid = fieldsFromState[1];
  const start = fieldsFromState[19];
  if (ppid === undefined || !/^\d+$/.test(ppid) || start === undefined || !/^\d+$/.test(start)) return undefined;
  return { ppid: Number(ppid), startTimeTicks: Number(start) };
}

export function parseStartTimeTicks(statText: string): number | undefined {
  return parseStat(statText)?.startTimeTicks;
}

export function readStat(pid: number, procRoot: string = DEFAULT_PROC_ROOT): ProcessStat | undefined {
  const text = readText(path.join(procRoot, String(pid), 'stat'));
  return text === undefined ? undefined : parseStat(text);
}

export function readStartTimeTicks(pid: number, procRoot: string = DEFAULT_PROC_ROOT): number | undefined {
  return readStat(pid, procRoot)?.startTimeTicks;
}

export function readExePath(pid: number, procRoot: string = DEFAULT_PROC_ROOT): string | undefined {
  const target = readLink(path.join(procRoot, String(pid), 'exe'));
  // A binary replaced on disk (package upgrade) still runs; its name is what matters.
  return target?.replace(/ \(deleted\)$/, '');
}

export function readProcessInfo(pid: number, procRoot: string = DEFAULT_PROC_ROOT): ProcessInfo | undefined {
  const dir = path.join(procRoot, String(pid));
  const startTimeTicks = readStartTimeTicks(pid, procRoot);
  if (startTimeTicks === undefined) return undefined;
  const cmdlineText = readText(path.join(dir, 'cmdline'));
  if (cmdlineText === undefined) return undefined;
  const exePath = readExePath(pid, procRoot);
  let exeName = exePath === undefined ? '' : path.posix.basename(exePath);
  if (exeName === '') {
    const comm = readText(path.join(dir, 'comm'));
    if (comm === undefined) return undefined;
    exeName = comm.replace(/\n$/, '');
  }
  const info: ProcessInfo = { pid, startTimeTicks, exePath, exeName, cmdline: splitNul(cmdlineText) };
  const cwd = readLink(path.join(dir, 'cwd'));
  if (cwd !== undefined) info.cwd = cwd.replace(/ \(deleted\)$/, '');
  return info;
}

export function readEnviron(pid: number, procRoot: string = DEFAULT_PROC_ROOT): Map<string, string> {
  const environ = new Map<string, string>();
  const text = readText(path.join(procRoot, String(pid), 'environ'));
  if (text === undefined) return environ;
  for (const entry of splitNul(text)) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    // The C runtime's getenv returns the first match, so the first one is what the process sees.
    if (!environ.has(key)) environ.set(key, entry.slice(eq + 1));
  }
  return environ;
}

const TCP_STATE_LISTEN = '0A';

/** Socket inode to port for the LISTEN rows of one /proc/net/tcp or tcp6 file. */
export function parseListeningTcp(text: string): Map<number, number> {
  const listening = new Map<number, number>();
  for (const line of text.split('\n')) {
    const columns = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    if (columns.length < 10 || !columns[0]!.endsWith(':')) continue;
    if (columns[3] !== TCP_STATE_LISTEN) continue;
    const localAddress = columns[1]!;
    const portHex = localAddress.slice(localAddress.lastIndexOf(':') + 1);
    const inodeText = columns[9]!;
    if (!/^[0-9A-Fa-f]{1,4}$/.test(portHex) || !/^\d+$/.test(inodeText)) continue;
    const inode = Number(inodeText);
    // Inode 0 means the socket is gone from every file table, so no process can be matched by it.
    if (inode === 0) continue;
    listening.set(inode, parseInt(portHex, 16));
  }
  return listening;
}

/**
 * Listening TCP sockets of sonde's own network namespace. Services in another
 * namespace (most containers) do not appear here.
 */
export function listeningTcpPorts(procRoot: string = DEFAULT_PROC_ROOT): Map<number, number> {
  const listening = new Map<number, number>();
  for (const file of ['tcp', 'tcp6']) {
    const text = readText(path.join(procRoot, 'net', file));
    if (text === undefined) continue;
    for (const [inode, port] of parseListeningTcp(text)) listening.set(inode, port);
  }
  return listening;
}

/**
 * The TCP listeners (socket inode → port) of one network namespace: sonde's
 * own when `pid` is undefined, else that process's.
 */
export type ListeningTcpReader = (pid: number | undefined) => Map<number, number>;

/** Reads listeners from /proc/net/tcp and tcp6, or /proc/PID/net/… for another namespace. */
export function procfsListeningReader(procRoot: string = DEFAULT_PROC_ROOT): ListeningTcpReader {
  return (pid) => listeningTcpPorts(pid === undefined ? procRoot : path.join(procRoot, String(pid)));
}

/**
 * Listening sockets of every network namespace on the host, not only
 * sonde's own: services in containers listen in theirs. Each namespace is
 * read once, through the first process found in it; socket inodes are
 * unique host-wide, so the union is unambiguous.
 */
export function listeningTcpPortsAllNamespaces(
  pids: readonly number[],
  procRoot: string = DEFAULT_PROC_ROOT,
  readNamespace: ListeningTcpReader = procfsListeningReader(procRoot),
): Map<number, number> {
  const listening = readNamespace(undefined);
  const ownNs = readLink(path.join(procRoot, 'self', 'ns', 'net'));
  const seen = new Set<string>(ownNs === undefined ? [] : [ownNs]);
  for (const pid of pids) {
    const ns = readLink(path.join(procRoot, String(pid), 'ns', 'net'));
    if (ns === undefined || seen.has(ns)) continue;
    seen.add(ns);
    for (const [inode, port] of readNamespace(pid)) listening.set(inode, port);
  }
  return listening;
}

const SOCKET_LINK = /^socket:\[(\d+)\]$/;

export function socketInodesOf(pid: number, procRoot: string = DEFAULT_PROC_ROOT): Set<number> {
  const inodes = new Set<number>();
  const fdDir = path.join(procRoot, String(pid), 'fd');
  let fds: string[];
  try {
    fds = fs.readdirSync(fdDir);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    const match = SOCKET_LINK.exec(readLink(path.join(fdDir, fd)) ?? '');
    if (match) inodes.add(Number(match[1]));
  }
  return inodes;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function readLink(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

function splitNul(text: string): string[] {
  const parts = text.split('\0');
  // A process that shortens its title leaves NUL padding behind its new argv[0].
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}
