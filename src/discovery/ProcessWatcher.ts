import { LRUCache } from 'lru-cache';
import {
  DEFAULT_PROC_ROOT,
  listeningTcpPortsAllNamespaces,
  listPids,
  procfsListeningReader,
  readEnviron,
  readExePath,
  readProcessInfo,
  readStartTimeTicks,
  readStat,
  socketInodesOf,
  type ListeningTcpReader,
  type ProcessInfo,
  type ProcessStat,
} from './procfs';
import { matchesExe, selectsEverything, type Selection } from './selectors';
import { resourceAttributesFor, serviceNameFor, type ResourceAttributes } from './serviceName';

export interface TracedProcess {
  pid: number;
  startTimeTicks: number;
  info: ProcessInfo;
  serviceName: string;
  resource: ResourceAttributes;
  /** The selector that picked this process, as the user wrote it: "--open-port 8080", "--pid 123 (descendant)". */
  matchedBy: string;
  /**
   * Whether what it forks is selected too, as for a process picked by --pid
   * and its descendants: the kernel then selects a child at fork, before a
   * scan sees it.
   */
  withDescendants: boolean;
}

export interface ProcessWatcherOptions {
  selection: Selection;
  /** Never traced, whatever the selection says; nor are its descendants and ancestors as descendants of a --pid. */
  ownPid?: number;
  pollIntervalMs?: number;
  /**
   * Every how many scans each process's /proc/PID/stat is read again; in
   * between, only processes new since the previous scan are read, and the
   * others keep what was read of them (default 10).
   */
  restatEveryScans?: number;
  procRoot?: string;
  /** Where --open-port learns each network namespace's listeners (default: /proc/net/tcp and tcp6 under procRoot). */
  readListening?: ListeningTcpReader;
  /**
   * Execs on the host so far, or undefined when unknown. While it is the
   * same at two scans, no process changed its executable in between, and
   * a process --exe rejected stays rejected without its exe link being
   * read again.
   */
  execCount?: () => number | undefined;
  /**
   * Processes forked, exec'd, exited or reaped on the host so far, or
   * undefined when unknown. While it is the same at two scans, /proc lists
   * the same processes with the same parents and executables, and a scan
   * without --open-port (listeners change with no such event) is skipped.
   */
  processChangeCount?: () => number | undefined;
  onStart?: (proc: TracedProcess) => void;
  onExit?: (proc: TracedProcess) => void;
  /** Failures of a whole scan or of a callback; defaults to a process warning. */
  onError?: (error: unknown) => void;
}

export const DEFAULT_POLL_INTERVAL_MS = 1000;
// Reading every process's stat was half of sonde's idle CPU at one scan a
// second (docs/design-notes.md, "Discovery"). What a re-read can reveal of
// a pid already seen is rare: its reuse by another process (the pid space
// must wrap in between) or a new parent (reparenting, which never makes a
// process a --pid's descendant unless a subreaper in that --pid's tree
// takes it). Until the re-read, the old stat stands for the pid, also as
// the parent of a new process.
export const DEFAULT_RESTAT_EVERY_SCANS = 10;
const DESCRIBE_CACHE_MAX = 4096;
const EVERYTHING = 'all processes';

/**
 * Polls /proc for the processes a Selection picks and reports when they start
 * and exit. A process is a (pid, start time) pair, so a reused pid is an exit
 * followed by a start. Once picked, a process stays picked until it exits: a
 * service that briefly closes its listener is not dropped and re-added.
 *
 * --pid also picks the process's descendants: whatever has, through its
 * chain of parents in /proc/PID/stat, a --pid process or one already picked
 * as a descendant above it. A parent younger than its child is a pid reused
 * between two reads, and ends the chain. sonde, its descendants and the
 * processes that started it are never picked as descendants: a
 * `sudo sonde --pid $$` is not the workload of the shell it was started from.
 */
export class ProcessWatcher {
  readonly #selection: Selection;
  readonly #everything: boolean;
  readonly #pids: ReadonlySet<number>;
  readonly #ports: ReadonlySet<number>;
  readonly #ownPid: number;
  readonly #pollIntervalMs: number;
  readonly #restatEveryScans: number;
  readonly #procRoot: string;
  readonly #readListening: ListeningTcpReader;
  readonly #execCount: () => number | undefined;
  /** execCount() as the previous scan began. */
  #execsBeforeLastScan: number | undefined;
  readonly #processChangeCount: () => number | undefined;
  /** processChangeCount() as the previous complete scan began. */
  #changesBeforeLastScan: number | undefined;
  #scansSkipped = 0;
  readonly #onStart: (proc: TracedProcess) => void;
  readonly #onExit: (proc: TracedProcess) => void;
  readonly #onError: (error: unknown) => void;

  #timer: NodeJS.Timeout | undefined;
  #tracked = new Map<number, TracedProcess>();
  /** A --pid names the process that had it when first seen, not whatever reuses the pid later. */
  readonly #pinnedStartTicks = new Map<number, number>();
  /** pid → the --pid it is or descends from, for the tracked processes whose forks are selected too. */
  #pidRoots = new Map<number, number>();
  /** sonde and its ancestors as of the last scan. */
  #ownLineage: ReadonlySet<number>;
  /** pid → "startTicks exePath" of processes no --exe pattern matched; unchanged means still no match. */
  #exeRejected = new Map<number, string>();
  /** Start times of every process the previous scan looked at. */
  #previouslySeen = new Map<number, number>();
  /** What the previous scan read or kept of each process's stat. */
  #previousStats = new Map<number, ProcessStat>();
  #scansSinceRestat = 0;
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
    this.#ownLineage = new Set([this.#ownPid]);
    this.#pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.#restatEveryScans = Math.max(1, Math.floor(options.restatEveryScans ?? DEFAULT_RESTAT_EVERY_SCANS));
    this.#procRoot = options.procRoot ?? DEFAULT_PROC_ROOT;
    this.#readListening = options.readListening ?? procfsListeningReader(this.#procRoot);
    this.#execCount = options.execCount ?? (() => undefined);
    this.#processChangeCount = options.processChangeCount ?? (() => undefined);
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

  /** Scans skipped because no process had started, exec'd or ended since the previous one. */
  get scansSkipped(): number {
    return this.#scansSkipped;
  }

  current(): TracedProcess[] {
    return [...this.#tracked.values()];
  }

  /**
   * The traced process behind a pid seen in an event. In select-everything
   * mode any pid but sonde's own resolves; otherwise tracked ones do, and
   * descendants of a --pid that the kernel selected at fork and no scan has
   * seen yet, so that their first spans are named like the later ones.
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
    if (!this.#everything && this.#pids.size === 0) return undefined;
    const ticks = startTimeTicks ?? readStartTimeTicks(pid, this.#procRoot);
    if (ticks === undefined) return undefined;
    const key = `${pid}:${ticks}`;
    const cached = this.#described.get(key);
    if (cached !== undefined) return cached;
    let described: TracedProcess | undefined;
    if (this.#everything) {
      described = this.#resolve(pid, ticks, EVERYTHING, false);
    } else {
      const root = this.#unscannedPidRootOf(pid, ticks);
      if (root !== undefined) described = this.#resolve(pid, ticks, pidLabel(pid, root), true);
    }
    if (described !== undefined) this.#described.set(key, described);
    return described;
  }

  /** One synchronous scan; throws only when the proc root itself cannot be listed. */
  scanNow(): void {
    if (this.#everything) return;
    // Read before anything else: an exec or fork during this scan changes the count the next one compares.
    const changes = this.#ports.size === 0 ? this.#processChangeCount() : undefined;
    if (changes !== undefined && changes === this.#changesBeforeLastScan) {
      this.#scansSkipped++;
      return;
    }
    const execs = this.#selection.exes.length > 0 ? this.#execCount() : undefined;
    const noExecSinceLastScan = execs !== undefined && execs === this.#execsBeforeLastScan;
    const pids = listPids(this.#procRoot);
    const selectedListening = this.#selectedListeningSockets(pids);
    const listeningKey = [...selectedListening.keys()].sort((a, b) => a - b).join(',');
    // Listening sockets are inherited at fork, so while the set is unchanged only
    // processes new since the last scan can have gained one.
    const scanAllFds = listeningKey !== this.#previousListeningKey;
    // Descendants are found through their parents, which takes every process's stat.
    const mustStatEveryPid = this.#pids.size > 0 || this.#selection.exes.length > 0 || selectedListening.size > 0;

    const restat = this.#scansSinceRestat === 0;
    this.#scansSinceRestat = (this.#scansSinceRestat + 1) % this.#restatEveryScans;
    const stats = new Map<number, ProcessStat>();
    for (const pid of pids) {
      if (!mustStatEveryPid && !this.#tracked.has(pid) && !this.#pids.has(pid)) continue;
      const stat = (restat ? undefined : this.#previousStats.get(pid)) ?? readStat(pid, this.#procRoot);
      if (stat !== undefined) stats.set(pid, stat);
    }
    if (this.#pids.size > 0) {
      for (const pid of this.#pids) {
        const stat = stats.get(pid);
        if (stat !== undefined && !this.#pinnedStartTicks.has(pid)) this.#pinnedStartTicks.set(pid, stat.startTimeTicks);
      }
      this.#ownLineage = lineageOf(this.#ownPid, stats);
    }

    const tracked = new Map<number, TracedProcess>();
    const pidRoots = new Map<number, number>();
    const started: TracedProcess[] = [];
    const seen = new Map<number, number>();
    const exeRejected = new Map<number, string>();
    const pidRootMemo = new Map<number, number | undefined>();

    for (const [pid, { startTimeTicks: startTicks }] of stats) {
      if (pid === this.#ownPid) continue;
      seen.set(pid, startTicks);
      const known = this.#tracked.get(pid);
      if (known !== undefined && known.startTimeTicks === startTicks) {
        tracked.set(pid, known);
        const root = this.#pidRoots.get(pid);
        if (root !== undefined) pidRoots.set(pid, root);
        continue;
      }
      try {
        const isNew = this.#previouslySeen.get(pid) !== startTicks;
        const match = this.#match(pid, startTicks, {
          stats,
          pidRootMemo,
          selectedListening,
          checkFds: scanAllFds || isNew,
          exeRejected,
          noExecSinceLastScan,
        });
        if (match === undefined) continue;
        const proc = this.#resolve(pid, startTicks, match.matchedBy, match.pidRoot !== undefined, match.info);
        if (proc === undefined) continue;
        tracked.set(pid, proc);
        if (match.pidRoot !== undefined) pidRoots.set(pid, match.pidRoot);
        started.push(proc);
      } catch (error) {
        this.#onError(error);
      }
    }

    const exited = [...this.#tracked.values()].filter((proc) => tracked.get(proc.pid) !== proc);
    this.#tracked = tracked;
    this.#pidRoots = pidRoots;
    this.#previouslySeen = seen;
    this.#previousStats = stats;
    this.#exeRejected = exeRejected;
    this.#previousListeningKey = listeningKey;
    this.#execsBeforeLastScan = execs;
    this.#changesBeforeLastScan = changes;

    for (const proc of exited) this.#emit(this.#onExit, proc);
    for (const proc of started) this.#emit(this.#onStart, proc);
  }

  #selectedListeningSockets(pids: readonly number[]): Map<number, number> {
    const selected = new Map<number, number>();
    if (this.#ports.size === 0) return selected;
    for (const [inode, port] of listeningTcpPortsAllNamespaces(pids, this.#procRoot, this.#readListening)) {
      if (this.#ports.has(port)) selected.set(inode, port);
    }
    return selected;
  }

  #match(
    pid: number,
    startTicks: number,
    scan: {
      stats: ReadonlyMap<number, ProcessStat>;
      pidRootMemo: Map<number, number | undefined>;
      selectedListening: Map<number, number>;
      checkFds: boolean;
      exeRejected: Map<number, string>;
      noExecSinceLastScan: boolean;
    },
  ): { matchedBy: string; pidRoot?: number; info?: ProcessInfo } | undefined {
    if (this.#pids.size > 0) {
      // Before --exe and --open-port: only a --pid match makes the kernel follow the process's forks.
      const pidRoot = this.#pidRootOf(pid, (p) => scan.stats.get(p), scan.pidRootMemo);
      if (pidRoot !== undefined) return { matchedBy: pidLabel(pid, pidRoot), pidRoot };
    }

    if (this.#selection.exes.length > 0) {
      // execve keeps the start time but changes the exe, so both must be unchanged to trust a rejection.
      const rejected = this.#exeRejected.get(pid);
      const identity =
        scan.noExecSinceLastScan && rejected !== undefined && rejected.startsWith(`${startTicks} `)
          ? rejected
          : `${startTicks} ${readExePath(pid, this.#procRoot) ?? ''}`;
      if (rejected === identity) {
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

  /**
   * The --pid that this process is or descends from. The walk up its parents
   * stops at sonde and at the processes that started it, and at a parent
   * younger than its child.
   */
  #pidRootOf(
    pid: number,
    statOf: (pid: number) => ProcessStat | undefined,
    memo = new Map<number, number | undefined>(),
  ): number | undefined {
    const chain: number[] = [];
    let root: number | undefined;
    let current = pid;
    for (;;) {
      if (memo.has(current)) {
        root = memo.get(current);
        break;
      }
      if (current === this.#ownPid || chain.includes(current)) break;
      const stat = statOf(current);
      if (stat === undefined) break;
      chain.push(current);
      root = this.#selectedRootOf(current, stat.startTimeTicks);
      if (root !== undefined || this.#ownLineage.has(current)) break;
      const parent = statOf(stat.ppid);
      if (parent === undefined || parent.startTimeTicks > stat.startTimeTicks) break;
      current = stat.ppid;
    }
    for (const link of chain) memo.set(link, root);
    return root;
  }

  /** The --pid behind a process whose forks are selected: a --pid itself, or a tracked descendant of one. */
  #selectedRootOf(pid: number, startTicks: number): number | undefined {
    if (this.#pids.has(pid) && this.#pinnedStartTicks.get(pid) === startTicks) return pid;
    const tracked = this.#tracked.get(pid);
    return tracked !== undefined && tracked.startTimeTicks === startTicks ? this.#pidRoots.get(pid) : undefined;
  }

  #unscannedPidRootOf(pid: number, startTicks: number): number | undefined {
    const read = new Map<number, ProcessStat | undefined>();
    const statOf = (p: number): ProcessStat | undefined => {
      if (!read.has(p)) read.set(p, readStat(p, this.#procRoot));
      return read.get(p);
    };
    if (statOf(pid)?.startTimeTicks !== startTicks) return undefined;
    return this.#pidRootOf(pid, statOf);
  }

  #resolve(
    pid: number,
    startTicks: number,
    matchedBy: string,
    withDescendants: boolean,
    alreadyRead?: ProcessInfo,
  ): TracedProcess | undefined {
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
      withDescendants,
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

function pidLabel(pid: number, root: number): string {
  return pid === root ? `--pid ${root}` : `--pid ${root} (descendant)`;
}

/** The pid and its ancestors, oldest last, as far as the parent links hold. */
function lineageOf(pid: number, stats: ReadonlyMap<number, ProcessStat>): Set<number> {
  const lineage = new Set([pid]);
  let stat = stats.get(pid);
  while (stat !== undefined && !lineage.has(stat.ppid)) {
    const parent = stats.get(stat.ppid);
    if (parent === undefined || parent.startTimeTicks > stat.startTimeTicks) break;
    lineage.add(stat.ppid);
    stat = parent;
  }
  return lineage;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
