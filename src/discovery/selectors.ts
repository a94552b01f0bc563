import * as path from 'node:path';
import { isInterpreter } from './interpreters';
import type { ProcessInfo } from './procfs';

export interface Selection {
  /** Each with its descendants, those running and those it forks later. */
  pids: number[];
  /** Names or path globs: "node", "python3", "/usr/bin/*", "*nginx*". */
  exes: string[];
  openPorts: number[];
}

export function selectsEverything(selection: Selection): boolean {
  return selection.pids.length === 0 && selection.exes.length === 0 && selection.openPorts.length === 0;
}

/**
 * Whole-string glob match with '*' (any run of characters, '/' included, so
 * "/opt/*" selects everything installed under /opt) and '?' (one character).
 * Only the latest '*' is ever revisited, which bounds the work at
 * pattern length × text length, unlike a naive recursive matcher.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starAt = -1;
  let textAtStar = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '?' || (c !== undefined && c !== '*' && c === text[t])) {
      p++;
      t++;
    } else if (c === '*') {
      starAt = p++;
      textAtStar = t;
    } else if (starAt !== -1) {
      p = starAt + 1;
      t = ++textAtStar;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * A pattern with a '/' is about where the binary lives, so it is matched
 * against the full exe path; otherwise against the exe name, and for
 * interpreters also against argv[0], because "python3" is then usually a
 * symlink to "python3.11" and users type what they typed to start it.
 */
export function matchesExe(pattern: string, info: ProcessInfo): boolean {
  if (pattern.includes('/')) {
    return info.exePath !== undefined && globMatch(pattern, info.exePath);
  }
  if (globMatch(pattern, info.exeName)) return true;
  const argv0 = info.cmdline[0];
  if (argv0 === undefined || !isInterpreter(info.exeName)) return false;
  const argv0Name = path.posix.basename(argv0);
  return argv0Name !== '' && globMatch(pattern, argv0Name);
}
