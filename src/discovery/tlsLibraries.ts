/**
 * Where a process's OpenSSL lives: the shared libssl it maps (nginx, curl,
 * Python, Ruby, PHP). Found in /proc/PID/maps, and named by device and
 * inode, so that one library reached through several paths (a container's
 * root, a symlink) is attached once.
 */
import * as fs from 'node:fs';
import { DEFAULT_PROC_ROOT } from './procfs';

export interface TlsLibrary {
  /** The path as the process maps it. */
  mappedPath: string;
  /** A path that reaches the file from here, whatever mount namespace the process is in. */
  reachablePath: string;
  /** "dev:inode" of the file. */
  identity: string;
}

const LIBSSL = /\/libssl\.so(\.\d+)*$/;

/** The distinct libssl paths mapped in a /proc/PID/maps text. */
export function parseOpenSslLibraries(mapsText: string): string[] {
  const found = new Set<string>();
  for (const line of mapsText.split('\n')) {
    // address perms offset dev inode path; the path may contain spaces.
    const m = /^\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+(\/.*)$/.exec(line);
    if (!m) continue;
    const mapped = m[1].replace(/ \(deleted\)$/, '');
    if (LIBSSL.test(mapped)) found.add(mapped);
  }
  return [...found];
}

/** The OpenSSL libraries process `pid` maps now; empty when it maps none or has exited. */
export function openSslLibrariesOf(pid: number, procRoot: string = DEFAULT_PROC_ROOT): TlsLibrary[] {
  let maps: string;
  try {
    maps = fs.readFileSync(`${procRoot}/${pid}/maps`, 'utf8');
  } catch {
    return [];
  }
  const out: TlsLibrary[] = [];
  for (const mappedPath of parseOpenSslLibraries(maps)) {
    const reachablePath = `${procRoot}/${pid}/root${mappedPath}`;
    try {
      const st = fs.statSync(reachablePath);
      out.push({ mappedPath, reachablePath, identity: `${st.dev}:${st.ino}` });
    } catch {
      // gone, or replaced since it was mapped
    }
  }
  return out;
}

const LIBRARY_DIRS = ['/lib', '/usr/lib', '/lib64', '/usr/lib64', '/usr/local/lib'];
const MULTIARCH: Partial<Record<NodeJS.Architecture, string>> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
const LIBSSL_NAMES = ['libssl.so.3', 'libssl.so.1.1'];

/**
 * The libssl a dynamically linked program started later would load: the
 * ones in the system's library directories. A process selected by name at
 * exec (curl) can be done before a scan of /proc finds what it maps, so
 * these are attached up front when the selection can take in processes
 * that start later.
 */
export function systemOpenSslLibraries(arch: NodeJS.Architecture = process.arch): TlsLibrary[] {
  const multiarch = MULTIARCH[arch];
  const dirs = multiarch ? LIBRARY_DIRS.flatMap((d) => [`${d}/${multiarch}`, d]) : LIBRARY_DIRS;
  const seen = new Set<string>();
  const out: TlsLibrary[] = [];
  for (const dir of dirs) {
    for (const name of LIBSSL_NAMES) {
      const candidate = `${dir}/${name}`;
      try {
        const st = fs.statSync(candidate);
        const identity = `${st.dev}:${st.ino}`;
        if (seen.has(identity)) continue;
        seen.add(identity);
        out.push({ mappedPath: fs.realpathSync(candidate), reachablePath: candidate, identity });
      } catch {
        // not here
      }
    }
  }
  return out;
}

/**
 * Process `pid`'s executable, named like a library: node links OpenSSL
 * into it, exported, instead of mapping libssl.
 */
export function executableOf(pid: number, procRoot: string = DEFAULT_PROC_ROOT): TlsLibrary | undefined {
  const reachablePath = `${procRoot}/${pid}/exe`;
  try {
    const st = fs.statSync(reachablePath);
    return { mappedPath: fs.readlinkSync(reachablePath), reachablePath, identity: `${st.dev}:${st.ino}` };
  } catch {
    return undefined;
  }
}
