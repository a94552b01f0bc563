import { LRUCache } from 'lru-cache';
import {
  DEFAULT_PROC_ROOT,
  listeningTcpPortsAllNamespaces,
  listPids,
  readEnviron,
  readExePath,
  readProcessInfo,
  readStartTimeTicks,
  socketInodesOf,
  type ProcessInfo,
} from './procfs';
import { matchesExe, selectsEverything, type Selection } from './selectors';
import { resourceAttributesFor, serviceNameFor, type ResourceAttributes } from './serviceName';

export interface TracedProcess {
  pid: number;
  startTimeTicks: number;
  info: ProcessInfo;
  serviceName: string;
  resource: ResourceAttributes;
  /** The selector that picked this process, as the user wrote it: "--open-port 8080". */
  matchedBy: string;
}

export interface ProcessWatcherOptions {
  selection: Selection;
  /** Never traced, whatever the selection says. */
  ownPid?: number;
  pollIntervalMs?: number;
  procRoot?: string;
  onStart?: (proc: TracedProcess) => void;
  onExit?: (proc: TracedProcess) => void;
  /** Failures of a whole scan or of a callback; defaults to a process warning. */
  onError?: (error: unknown) => void;
}

export const DEFAULT_POLL_INTERVAL_MS = 1000;
const DESCRIBE_CACHE_MAX = 4096;
const EVERYTHING = 'all processes';

/**
 * Polls /proc for the processes a Selection picks and reports when they start
 * and exit. A process is a (pid, start time) pair, so a reused pid is an exit
 * followed by a start. Once picked, a process stays picked until it exits: a
 * service that briefly closes its listener is not dropped and re-added.
 */
export class ProcessWatcher {
  readonly #selection: Selection;
  readonly #everything: boolean;
  readonly #pids: ReadonlySet<number>;
  readonly #ports: ReadonlySet<number>;
  readonly #ownPid: number;
  readonly #pollIntervalMs: number;
  readonly #procRoot: string;
  readonly #onStart: (proc: TracedProcess) => void;
  readonly #onExit: (proc: TracedProcess) => void;
  readonly #onError: (error: unknown) => void;

  #timer: NodeJS.Timeout | undefined;
  #tracked = new Map<number, TracedProcess>();
  /** A --pid names the process that had it when first seen, not whatever reuses the pid later. */
  readonly #pinnedStartTicks = new Map<number, number>();
  /** pid → "startTicks exePath" of processes no --exe pattern matched; unchanged means still no match. */
  #exeRejected = new Map<number, string>();
  /** Start times of every process the previous scan looked at. */
  #previouslySeen = new Map<number, number>();
  #previousListeningKey: string | undefined;
  readonly #described = new LRUCache<string, TracedProcess>({ max: DESCRIBE_CACHE_MAX });

  constructor(options: ProcessWatcherOptions) {
    this.#selection = {
      pids: [...options.selection.pids],
      exes: [...options.selection.exes],
      openPorts: [...options.selection.openPorts],
    };
    this.#everything = selectsEverything(this.#selection);
    this.#pids = new Set(this.#selection.pids);
    this.#ports = new Set(this.#selection.openPorts);
    this.#ownPid = options.ownPid ?? process.pid;
    this.#pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.#procRoot = options.procRoot ?? DEFAULT_PROC_ROOT;
    this.#onStart = options.onStart ?? (() => {});
    this.#onExit = options.onExit ?? (() => {});
    this.#onError = options.onError ?? ((error) => process.emitWarning(asError(error), 'SondeDiscoveryWarning'));
  }

  /**
   * Scans now, then every pollIntervalMs. With an empty selection there is
   * nothing to poll for: processes are resolved on demand by describe().
   */
  start(): void {
    if (this.#timer !== undefined || this.#everything) return;
    this.#scanReportingErrors();
    this.#timer = setInterval(() => this.#scanReportingErrors(), this.#pollIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  current(): TracedProcess[] {
    return [...this.#tracked.values()];
  }

  /**
   * The traced process behind a pid seen in an event. In select-everything
   * mode any pid but sonde's own resolves; otherwise only tracked ones do.
   * Passing the start time, in clock ticks since boot as /proc/PID/stat has it
   * (a kernel event's start_time in ns divided by 1e9 / CLK_TCK), saves a
   * read of /proc/PID/stat on every call.
   */
  describe(pid: number, startTimeTicks?: number): TracedProcess | undefined {
    if (pid === this.#ownPid) return undefined;
    const tracked = this.#tracked.get(pid);
    if (tracked !== undefined && (startTimeTicks === undefined || tracked.startTimeTicks === startTimeTicks)) {
      return tracked;
    }
    if (!this.#everything) return undefined;
    const ticks = startTimeTicks ?? readStartTimeTicks(pid, this.#procRoot);
    if (ticks === undefined) return undefined;
    const key = `${pid}:${ticks}`;
    const cached = this.#described.get(key);
    if (cached !== undefined) return cached;
    const described = this.#resolve(pid, ticks, EVERYTHING);
    if (described !== undefined) this.#described.set(key, described);
    return described;
  }

  /** One synchronous scan; throws only when the proc root itself cannot be listed. */
  scanNow(): void {
    if (this.#everything) return;
    const pids = listPids(this.#procRoot);
    const selectedListening = this.#selectedListeningSockets(pids);
    const listeningKey = [...selectedListening.keys()].sort((a, b) => a - b).join(',');
    // Listening sockets are inherited at fork, so while the set is unchanged only
    // processes new since the last scan can have gained one.
    const scanAllFds = listeningKey !== this.#previousListeningKey;
    const mustStatEveryPid = this.#selection.exes.length > 0 || selectedListening.size > 0;

    const tracked = new Map<number, TracedProcess>();
    const started: TracedProcess[] = [];
    const seen = new Map<number, number>();
    const exeRejected = new Map<number, string>();

    for (const pid of pids) {
      if (pid === this.#ownPid) continue;
      const known = this.#tracked.get(pid);
      if (known === undefined && !mustStatEveryPid && !this.#pids.has(pid)) continue;
      try {
        const startTicks = readStartTimeTicks(pid, this.#procRoot);
        if (startTicks === undefined) continue;
        seen.set(pid, startTicks);
        if (known !== undefined && known.startTimeTicks === startTicks) {
          tracked.set(pid, known);
          continue;
        }
        const isNew = this.#previouslySeen.get(pid) !== startTicks;
        const match = this.#match(pid, startTicks, {
          selectedListening,
          checkFds: scanAllFds || isNew,
          exeRejected,
        });
        if (match === undefined) continue;
        const proc = this.#resolve(pid, startTicks, match.matchedBy, match.info);
        if (proc === undefined) continue;
        tracked.set(pid, proc);
        started.push(proc);
      } catch (error) {
        this.#onError(error);
      }
    }

    const exited = [...this.#tracked.values()].filter((proc) => tracked.get(proc.pid) !== proc);
    this.#tracked = tracked;
    this.#previouslySeen = seen;
    this.#exeRejected = exeRejected;
    this.#previousListeningKey = listeningKey;

    for (const proc of exited) this.#emit(this.#onExit, proc);
    for (const proc of started) this.#emit(this.#onStart, proc);
  }

  #selectedListeningSockets(pids: readonly number[]): Map<number, number> {
    const selected = new Map<number, number>();
    if (this.#ports.size === 0) return selected;
    for (const [inode, port] of listeningTcpPortsAllNamespaces(pids, this.#procRoot)) {
      if (this.#ports.has(port)) selected.set(inode, port);
    }
    return selected;
  }

  #match(
    pid: number,
    startTicks: number,
    scan: { selectedListening: Map<number, number>; checkFds: boolean; exeRejected: Map<number, string> },
  ): { matchedBy: string; info?: ProcessInfo } | undefined {
    if (this.#pids.has(pid)) {
      const pinned = this.#pinnedStartTicks.get(pid);
      if (pinned === undefined) this.#pinnedStartTicks.set(pid, startTicks);
      if (pinned === undefined || pinned === startTicks) return { matchedBy: `--pid ${pid}` };
    }

    if (this.#selection.exes.length > 0) {
      // execve keeps the start time but changes the exe, so both must be unchanged to trust a rejection.
      const identity = `${startTicks} ${readExePath(pid, this.#procRoot) ?? ''}`;
      if (this.#exeRejected.get(pid) === identity) {
        scan.exeRejected.set(pid, identity);
      } else {
        const info = readProcessInfo(pid, this.#procRoot);
        if (info !== undefined && info.startTimeTicks === startTicks) {
          const pattern = this.#selection.exes.find((candidate) => matchesExe(candidate, info));
          if (pattern !== undefined) return { matchedBy: `--exe ${pattern}`, info };
          scan.exeRejected.set(pid, identity);
        }
      }
    }

    if (scan.selectedListening.size > 0 && scan.checkFds) {
      for (const inode of socketInodesOf(pid, this.#procRoot)) {
        const port = scan.selectedListening.get(inode);
        if (port !== undefined) return { matchedBy: `--open-port ${port}` };
      }
    }
    return undefined;
  }

  #resolve(pid: number, startTicks: number, matchedBy: string, alreadyRead?: ProcessInfo): TracedProcess | undefined {
    const info = alreadyRead ?? readProcessInfo(pid, this.#procRoot);
    // A different start time means the pid was reused between the two reads.
    if (info === undefined || info.startTimeTicks !== startTicks) return undefined;
    const environ = readEnviron(pid, this.#procRoot);
    return {
      pid,
      startTimeTicks: startTicks,
      info,
      serviceName: serviceNameFor(info, environ),
      resource: resourceAttributesFor(info, environ),
      matchedBy,
    };
  }

  #scanReportingErrors(): void {
    try {
      this.scanNow();
    } catch (error) {
      this.#onError(error);
    }
  }

  #emit(callback: (proc: TracedProcess) => void, proc: TracedProcess): void {
    try {
      callback(proc);
    } catch (error) {
      this.#onError(error);
    }
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
