/**
 * One running collector: discovery, kernel tracer, span pipeline, exporters
 * and the periodic counters line, started and stopped together.
 */
import type { Logger } from 'pino';
import { executableOf, kernelListeningReader, openSslLibrariesOf, ProcessWatcher, selectsEverything, systemOpenSslLibraries, type TlsLibrary, type TracedProcess } from '../discovery';
import type { SondeConfig } from '../config/config';
import { ExportChannel } from '../export/ExportChannel';
import { createExportChannel } from '../export/createExporters';
import { createMetrics, type SondeMetrics } from '../metrics/createMetrics';
import { TraceStore } from '../viewer/TraceStore';
import { ViewerServer } from '../viewer/ViewerServer';
import { MonotonicClock } from '../native/clock';
import { DEFAULT_NATIVE_OPTIONS, KERNEL_DROP_REASONS, loadNativeModule, validateNativeOptions, type NativeTracer, type NativeTracerCounters } from '../native/binding';
import { BatchIntake, type BatchIntakeCounters } from '../pipeline/BatchIntake';
import { SpanPipeline, type PipelineCounters } from '../pipeline/SpanPipeline';
import { ResourceRegistry } from '../spans/resources';
import { compileRoutes } from '../spans/routes';
import { useThreadCpuClock } from '../telemetry/cpuClock';
import { summarizeCounters, type SpansDroppedByCause } from './counterSummary';
import { TraceSampler } from '../pipeline/TraceSampler';

export interface SondeCounters {
  native: NativeTracerCounters;
  kernelDrops: Record<(typeof KERNEL_DROP_REASONS)[number], number>;
  intake: BatchIntakeCounters;
  pipeline: PipelineCounters;
  exporters: Array<{ name: string; exported: number; droppedQueueFull: number; droppedExportFailed: number; droppedAtShutdown: number; queued: number; queuedBytes: number; busyMs: number }>;
}

/**
 * Exchange records waiting for the JavaScript thread: about 1.5 s of a
 * saturated Node hello-world's (20k requests/s); what comes on top is
 * dropped and counted as spans dropped.
 */
const MAX_PENDING_RECORD_BYTES = 16 << 20;
/** Span building done per turn of the event loop before the exporters' I/O gets its turn. */
const BUILD_SLICE_MS = 10;
// Buffers lent to the addon for its batches (native/src/binding/LentBatches.h):
// a batch in a new buffer each time was new external memory for V8 to
// collect. Each holds a batch's records (maxBatchBytes) and the spans the
// addon encoded for them, which for small heads are larger than their
// records: at twice maxBatchBytes, a hello-world at 27k req/s had 1,075
// batches in 15 s miss the buffers, at three times none. 16 hold a backlog
// of 2 MiB of records.
const LENT_BATCHES = 16;
/**
 * At stop, the longest wait for batches still on their way from the reader
 * (normally a turn or two of the event loop); later ones are dropped and
 * counted, as the exporters flush without them.
 */
const BATCHES_IN_FLIGHT_WAIT_MS = 1000;
/**
 * OpenSSL attachments sonde makes at most (a library for every process, or
 * a library in one process); past this, new ones are logged and left.
 */
const MAX_TLS_ATTACHMENTS = 1024;
/**
 * Discovery intervals over which a traced process that maps no libssl yet
 * is looked at again: Python maps it only when something imports ssl.
 */
const TLS_RECHECKS = 10;
/** #attachTlsTo's answer for a file that has no OpenSSL. */
const NOT_OPENSSL = 'not OpenSSL';

export class Sonde {
  readonly #config: SondeConfig;
  readonly #log: Logger;
  #tracer: NativeTracer | undefined;
  #watcher: ProcessWatcher | undefined;
  #channels: ExportChannel<unknown>[] = [];
  #pipeline: SpanPipeline | undefined;
  #intake: BatchIntake | undefined;
  /** Batches the addon's reader handed to this thread that arrived. */
  #batchesReceived = 0;
  #statsTimer: NodeJS.Timeout | undefined;
  #seenPids = new Set<number>();
  /** The tracer is started: uprobes can be attached. */
  #tracing = false;
  /** Executables that are not Node.js (no RunTimers to probe), by path; at most 1024. */
  #notEventLoops = new Set<string>();
  /**
   * OpenSSL attachments tried, by "dev:inode" (for every process) or
   * "dev:inode@pid": "" attached, else why not.
   */
  #tlsAttached = new Map<string, string>();
  /**
   * The selection can take in processes that start later (--exe, or
   * everything): uprobes go on each library for every process that maps
   * it, since such a process (curl) can be done before a scan finds it.
   * Otherwise they go on each traced process alone: a uprobe is a trap in
   * every process it is attached to, traced or not (nginx over HTTPS spent
   * 19-20 µs of CPU per request untraced, 48-54 with the system libssl
   * probed for every process although nginx itself was not traced).
   */
  #tlsEveryProcess = false;
  /** Executables without OpenSSL of their own, by "dev:inode"; at most 1024. */
  #notOpenSsl = new Set<string>();
  /** Traced processes that mapped no libssl when last looked at, with the looks left. */
  #tlsRechecks = new Map<number, number>();
  #tlsTimer: NodeJS.Timeout | undefined;
  #metrics: SondeMetrics | undefined;
  #traceStore: TraceStore | undefined;
  #viewer: ViewerServer | undefined;
  #viewerUrl: string | undefined;
  #stopping: Promise<void> | undefined;

  constructor(config: SondeConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  /**
   * What serves starts before anything is attached: a metrics port that is
   * taken fails sonde with nothing to undo. The viewer is an aid, on by
   * default: when its address cannot be had, sonde says so and goes on.
   */
  async startServing(): Promise<void> {
    const counters = () => (this.#tracer && this.#pipeline && this.#intake ? summarizeCounters(this.counters()) : undefined);
    this.#metrics = createMetrics(this.#config.metrics, { counters, log: this.#log });
    await this.#metrics?.start();
    const ui = this.#config.viewer;
    if (!ui.enabled) return;
    const store = new TraceStore({ maxSpans: ui.maxSpans, maxSpansPerSecond: ui.maxSpansPerSecond });
    const viewer = new ViewerServer({ host: ui.host, port: ui.port, store, counters });
    try {
      const url = await viewer.listen();
      this.#traceStore = store;
      this.#viewer = viewer;
      this.#viewerUrl = url;
    } catch (error) {
      this.#log.warn({ error: error instanceof Error ? error.message : String(error) }, 'no trace viewer');
    }
  }

  start(): void {
    const config = this.#config;
    const native = loadNativeModule();
    useThreadCpuClock(() => native.threadCpuMs());
    const everything = selectsEverything(config.selection);

    this.#channels = config.exporters.map((e) =>
      createExportChannel(e, config.queue, (name, message) =>
        this.#log.warn({ exporter: name, error: message }, 'export failed: spans dropped (counted); will keep trying with the next batch'),
      ),
    );

    this.#watcher = new ProcessWatcher({
      selection: config.selection,
      ownPid: process.pid,
      pollIntervalMs: config.discoveryIntervalMs,
      readListening: kernelListeningReader((netnsPath) => native.listeningTcpSockets(netnsPath), {
        onFallback: (error) =>
          this.#log.warn({ error: error instanceof Error ? error.message : String(error) }, '--open-port: the kernel does not list listening sockets over netlink (inet_diag); reading /proc/net/tcp instead, which costs more CPU on each scan'),
      }),
      execCount: () => this.#tracer?.execCount(),
      processChangeCount: () => this.#tracer?.processChangeCount(),
      onStart: (p) => this.#onProcessStart(p),
      onExit: (p) => this.#onProcessExit(p),
      onError: (error) => this.#log.warn({ error: String(error) }, 'discovery scan failed'),
    });

    const resources = new ResourceRegistry({
      describe: (pid) => {
        const p = this.#watcher?.describe(pid);
        if (p && everything && !this.#seenPids.has(pid)) {
          this.#seenPids.add(pid);
          this.#log.info({ pid, exe: p.info.exeName, service: p.serviceName }, 'tracing process (first request seen)');
        }
        return p;
      },
    });

    this.#pipeline = new SpanPipeline({
      clock: new MonotonicClock(() => native.clock()),
      resources,
      routes: compileRoutes(config.routes),
      sampledChannels: this.#channels,
      sampler: new TraceSampler(config.sampler),
      channels: [...(this.#metrics ? [this.#metrics.sink] : []), ...(this.#traceStore ? [this.#traceStore] : [])],
      log: this.#log,
    });

    // Routes name spans, which the addon does not know of.
    const encodeSpans = config.nativeSpans && config.routes.length === 0 && this.#pipeline.acceptsPreencoded;
    const options = validateNativeOptions({
      ...DEFAULT_NATIVE_OPTIONS,
      selfPid: process.pid,
      traceAllPids: everything,
      payloadCaptureBytes: config.capture.payloadCaptureBytes,
      ringBufferBytes: config.capture.ringBufferBytes,
      responseTimeoutMs: config.capture.responseTimeoutMs,
      maxConnections: config.capture.maxConnections,
      encodeSpans,
    });
    this.#tracer = new native.Tracer(options);
    // Select what is already running before attaching, so that its first
    // requests after attach are not missed.
    this.#watcher.scanNow();
    const pipeline = this.#pipeline;
    const intake = new BatchIntake((records, encoded) => pipeline.onBatch(records, encoded), { maxPendingBytes: MAX_PENDING_RECORD_BYTES, sliceMs: BUILD_SLICE_MS });
    this.#intake = intake;
    const tracer = this.#tracer;
    const lend = Array.from({ length: LENT_BATCHES }, () => Buffer.allocUnsafeSlow(3 * options.maxBatchBytes));
    // The test suite overwrites each buffer it gives back: a view kept past
    // its batch would then read garbage and fail a test, not go unseen.
    const poison = process.env.SONDE_TEST_POISON_LENT_BATCHES === '1';
    const releases = lend.map((buffer, i) => () => {
      if (poison) buffer.fill(0xee);
      tracer.releaseBatch(i);
    });
    const { attached, onDemand } = tracer.start(
      (batch, exchanges, recordsBytes, batchBytes, lent) => {
        this.#batchesReceived++;
        intake.push(
          batch.subarray(0, recordsBytes),
          exchanges,
          recordsBytes < batchBytes ? batch.subarray(recordsBytes, batchBytes) : undefined,
          lent >= 0 ? releases[lent] : undefined,
        );
      },
      lend,
    );
    this.#tracing = true;
    // Processes that start later (selected by name at exec, or everything)
    // may be done before a scan finds what they map: the system's libssl
    // is attached up front for them.
    this.#tlsEveryProcess = everything || config.selection.exes.length > 0;
    if (this.#tlsEveryProcess) this.#attachTls(systemOpenSslLibraries());
    for (const p of this.#watcher.current()) this.#select(p);
    // Plain names (no glob, no path) are also matched by the kernel at exec
    // time: a client that lives less than one /proc scan is still traced.
    for (const exe of config.selection.exes) {
      if (!/[*?/]/.test(exe)) this.#tracer.selectComm(exe.slice(0, 15));
    }
    // programs: every one sonde loaded, the per-process uprobes (onDemand) included.
    this.#log.info(
      {
        programs: attached.length + onDemand.length,
        hooks: attached.map((a) => a.replace(/^(raw_)?tracepoint\/(syscalls\/|sched\/)?/, '')).join(','),
        onDemand: onDemand.join(','),
      },
      'attached eBPF programs',
    );
    if (everything) this.#log.info('tracing every process on this host that speaks HTTP/1.x or HTTP/2 (no --pid/--exe/--open-port given)');
    else if (this.#watcher.current().length === 0) this.#log.info({ selection: describeSelection(config) }, 'no matching process yet: waiting for one to start');
    this.#log.info(
      {
        exporters: this.#channels.map((c) => c.name).join(', ') || 'none',
        ...(config.sampler.name === 'always_on' ? {} : { sampler: config.sampler.name.endsWith('traceidratio') ? `${config.sampler.name} ${config.sampler.ratio}` : config.sampler.name }),
        spansEncoded: encodeSpans
          ? 'by the addon for plain HTTP/1 requests, gRPC calls and plain HTTP/2 streams, else in JavaScript'
          : `in JavaScript (${!config.nativeSpans ? '--no-native-spans' : config.routes.length > 0 ? 'routes are given' : 'an exporter other than OTLP'})`,
      },
      'exporting spans',
    );
    if (this.#metrics) this.#log.info({ exporters: this.#metrics.exporterNames.join(', '), every: `${config.metrics.exportIntervalMs} ms` }, 'exporting metrics');
    // Last, so that it is what a person sees when sonde has started.
    if (this.#viewerUrl) this.#log.info({ url: this.#viewerUrl }, 'trace viewer: open this address in a browser');
    this.#watcher.start();

    if (config.statsIntervalMs > 0) {
      this.#statsTimer = setInterval(() => this.logCounters(), config.statsIntervalMs);
      this.#statsTimer.unref();
    }
  }

  #select(p: TracedProcess): void {
    // With descendants, the kernel selects each fork at once: a worker is
    // traced from its first syscall, not from the next /proc scan.
    this.#tracer?.setPidSelected(p.pid, true, p.withDescendants);
    this.#markEventLoop(p);
    if (!this.#findTls(p.pid)) this.#recheckTlsLater(p.pid);
  }

  /**
   * Looks again at a process that maps no OpenSSL yet, every discovery
   * interval, TLS_RECHECKS times. The timer runs only while some process
   * waits for it: every timer is a wake-up of the event loop.
   */
  #recheckTlsLater(pid: number): void {
    this.#tlsRechecks.set(pid, TLS_RECHECKS);
    if (this.#tlsTimer || this.#stopping) return;
    this.#tlsTimer = setInterval(() => this.#recheckTls(), this.#config.discoveryIntervalMs);
    this.#tlsTimer.unref();
  }

  /**
   * The OpenSSL a traced process maps gets uprobes (bpf/lib/tls.bpf.h):
   * for it alone, or once per library for every process that maps it
   * (#tlsEveryProcess). False when the process maps none.
   */
  #findTls(pid: number): boolean {
    // Before start, processes are only selected; start() goes over them again.
    if (!this.#tracer || !this.#tracing) return true;
    const libraries = openSslLibrariesOf(pid);
    if (libraries.length === 0) return this.#attachTlsInExecutable(pid);
    this.#attachTls(libraries, pid);
    return true;
  }

  /**
   * OpenSSL linked into the executable itself (node): attached for this
   * process alone, whatever the selection, so that no other process (sonde
   * is a node too) takes its traps. False when the executable has none.
   */
  #attachTlsInExecutable(pid: number): boolean {
    const exe = executableOf(pid);
    if (!exe || this.#notOpenSsl.has(exe.identity)) return false;
    const why = this.#attachTlsTo(exe, pid, (reason) => /failed to find symbol|No such file|Invalid argument/.test(reason));
    if (why === undefined) return false;
    if (why === NOT_OPENSSL) {
      if (this.#notOpenSsl.size >= 1024) this.#notOpenSsl.clear();
      this.#notOpenSsl.add(exe.identity);
      return false;
    }
    return true;
  }

  /** Attaches to `libraries` for process `pid`, or for every process when #tlsEveryProcess (or no pid). */
  #attachTls(libraries: TlsLibrary[], pid?: number): void {
    const forPid = this.#tlsEveryProcess || pid === undefined ? -1 : pid;
    for (const lib of libraries) this.#attachTlsTo(lib, forPid);
  }

  /**
   * One attachment of the OpenSSL uprobes to `file`, for process `forPid`
   * (-1: every process), counted against the bound and logged once. Returns
   * "" when attached (now or before), else why not; NOT_OPENSSL when
   * `notOpenSsl` says the reason means the file has no OpenSSL (nothing is
   * logged or remembered then); undefined when nothing was tried.
   */
  #attachTlsTo(file: TlsLibrary, forPid: number, notOpenSsl?: (reason: string) => boolean): string | undefined {
    const tracer = this.#tracer;
    if (!tracer) return undefined;
    const key = forPid === -1 ? file.identity : `${file.identity}@${forPid}`;
    const known = this.#tlsAttached.get(key);
    if (known !== undefined) return known;
    const where = { file: file.mappedPath, pid: forPid === -1 ? undefined : forPid, for: forPid === -1 ? 'every process' : 'this process' };
    if (this.#tlsAttached.size >= MAX_TLS_ATTACHMENTS) {
      this.#log.warn({ ...where, max: MAX_TLS_ATTACHMENTS }, 'too many OpenSSL attachments: TLS through this one is not traced');
      return undefined;
    }
    const { error: why, probes } = tracer.attachTls(file.reachablePath, forPid);
    if (why !== '' && notOpenSsl?.(why)) return NOT_OPENSSL;
    this.#tlsAttached.set(key, why);
    if (why === '') this.#log.info({ ...where, probes }, 'tracing TLS through OpenSSL');
    else this.#log.warn({ ...where, reason: why }, 'cannot trace TLS through this file: its HTTPS stays unseen');
    return why;
  }

  /** The attachments for `pid` alone (its libssl, or node's own OpenSSL): those for every process stay. */
  #detachTls(pid: number): void {
    this.#tracer?.detachTls(pid);
    const suffix = `@${pid}`;
    for (const key of this.#tlsAttached.keys()) if (key.endsWith(suffix)) this.#tlsAttached.delete(key);
  }

  #recheckTls(): void {
    for (const [pid, left] of this.#tlsRechecks) {
      if (this.#findTls(pid) || left <= 1) this.#tlsRechecks.delete(pid);
      else this.#tlsRechecks.set(pid, left - 1);
    }
    if (this.#tlsRechecks.size === 0 && this.#tlsTimer) {
      clearInterval(this.#tlsTimer);
      this.#tlsTimer = undefined;
    }
  }

  /**
   * Node.js processes get uprobes where their loop runs timers and
   * immediates (docs/design-notes.md, "Linking on event loops"). An
   * executable without the symbol is not Node.js, and is not tried again.
   */
  #markEventLoop(p: TracedProcess): void {
    const exe = p.info.exePath;
    // Before start, processes are only selected; start() goes over them again.
    if (!this.#tracer || !this.#tracing || exe === undefined || this.#notEventLoops.has(exe)) return;
    const why = this.#tracer.attachEventLoopMarks(p.pid, `/proc/${p.pid}/exe`);
    if (why === '') {
      this.#log.debug({ pid: p.pid, exe }, 'marking the timers and immediates of a Node.js event loop');
      return;
    }
    if (/failed to find symbol|No such file/.test(why)) {
      if (this.#notEventLoops.size >= 1024) this.#notEventLoops.clear();
      this.#notEventLoops.add(exe);
      return;
    }
    this.#log.warn({ pid: p.pid, exe, reason: why }, 'cannot mark the timers of this Node.js process: calls its timers make may be linked to the request it read last');
  }

  #onProcessStart(p: TracedProcess): void {
    this.#select(p);
    this.#log.info({ pid: p.pid, exe: p.info.exeName, service: p.serviceName, matchedBy: p.matchedBy }, 'tracing process');
  }

  #onProcessExit(p: TracedProcess): void {
    this.#tlsRechecks.delete(p.pid);
    this.#detachTls(p.pid);
    this.#tracer?.setPidSelected(p.pid, false);
    this.#tracer?.detachEventLoopMarks(p.pid);
    this.#log.info({ pid: p.pid, exe: p.info.exeName, service: p.serviceName }, 'process exited: no longer traced');
  }

  counters(): SondeCounters {
    const native = this.#tracer!.counters();
    const kernelDrops = Object.fromEntries(KERNEL_DROP_REASONS.map((name, i) => [name, native.kernelDrops[i] ?? 0])) as SondeCounters['kernelDrops'];
    return {
      native,
      kernelDrops,
      intake: this.#intake!.counters,
      pipeline: this.#pipeline!.counters,
      exporters: this.#channels.map((c) => ({ name: c.name, ...c.counters })),
    };
  }

  /** The counters line: periodically, at exit, and on SIGUSR2 (src/cli/main.ts). */
  logCounters(): void {
    if (!this.#tracer || !this.#pipeline) return;
    const c = this.counters();
    const summary = summarizeCounters(c);
    this.#log.info(
      {
        requests: summary.requests,
        server: summary.serverSpans,
        client: summary.clientSpans,
        exported: summary.exported,
        eventsLost: summary.eventsLost,
        spansDropped: summary.spansDropped,
        // Where they were lost, "cause:count,…", only once some were: the
        // same causes as the sonde.spans.dropped metric's.
        ...(summary.spansDropped > 0 ? { spansDroppedBy: droppedByText(summary.spansDroppedByCause) } : {}),
        spansSampledOut: summary.spansSampledOut,
        unparsed: summary.unparsed,
        connections: summary.connectionsTracked,
        // Responses closed out while their framing said more was to come.
        incomplete: c.native.responsesIncomplete,
        // HTTP/2 sonde could not read: frames lost, blocks that broke HPACK
        // or their bound, streams over the per-connection bound, frames of
        // connections it does not hold.
        h2Unreadable:
          c.native.h2FrameErrors + c.native.h2HpackErrors + c.native.h2HeaderBlocksTruncated + c.native.h2StreamsDropped + c.native.h2FramesUnmatched,
        h2HeadersUnknown: c.native.h2HeadersUnknown,
        // Outgoing calls left roots: several requests could have made them.
        linksAmbiguous: c.native.linksAmbiguous,
        // Spans whose OTLP bytes the addon wrote (plain HTTP/1 requests, gRPC calls, plain HTTP/2 streams).
        encodedByAddon: c.pipeline.encodedByAddon,
        // Batches that found none of the buffers lent to the addon free:
        // each was new memory for V8 to collect.
        batchesUnlent: c.native.batchesUnlent,
        // Batches that found the JavaScript thread 64 batches behind, and
        // waited for it (up to 100 ms, then dropped: nativeOutputFull).
        batchesWaited: c.native.batchesWaited,
        // Times the reader drained the ring buffer: once a second, more
        // often when the kernel wakes it because the buffer is filling.
        readerPolls: c.native.ringBufferPolls,
        // Where the JavaScript thread's time went, cumulative ms: records to
        // spans, and spans to the exporters (encoding included).
        jsBuildMs: Math.round(c.pipeline.buildMs * 10) / 10,
        jsExportMs: Math.round(c.exporters.reduce((a, e) => a + e.busyMs, 0) * 10) / 10,
      },
      'counters',
    );
  }

  /** Stops capture, exports what is pending (within `flushTimeoutMs`), detaches everything. */
  stop(flushTimeoutMs = 5000): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#statsTimer) clearInterval(this.#statsTimer);
      if (this.#tlsTimer) clearInterval(this.#tlsTimer);
      this.#watcher?.stop();
      if (this.#tracer && this.#pipeline && this.#intake) {
        const last = this.#tracer.stop();
        // Batches the reader handed over before it stopped reach this thread
        // on a later turn of the event loop, and come before the last
        // records: wait until all of them are here (the reader has ended,
        // so the addon's count of them is final).
        const { batchesLent, batchesUnlent } = this.#tracer.counters();
        const waitUntil = performance.now() + Math.min(flushTimeoutMs, BATCHES_IN_FLIGHT_WAIT_MS);
        while (this.#batchesReceived < batchesLent + batchesUnlent && performance.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 1));
        this.#intake.close();
        this.#intake.drain();
        this.#pipeline.onBatch(last);
      }
      await Promise.all([...this.#channels.map((c) => c.shutdown(flushTimeoutMs)), this.#metrics?.shutdown(flushTimeoutMs), this.#viewer?.close()]);
      if (this.#tracer) this.logCounters();
    })();
    return this.#stopping;
  }
}

function describeSelection(config: SondeConfig): string {
  const s = config.selection;
  return [...s.pids.map((p) => `--pid ${p}`), ...s.exes.map((e) => `--exe ${e}`), ...s.openPorts.map((p) => `--open-port ${p}`)].join(' ');
}

function droppedByText(byCause: SpansDroppedByCause): string {
  return Object.entries(byCause)
    .filter(([, n]) => n > 0)
    .map(([cause, n]) => `${cause}:${n}`)
    .join(',');
}
