/**
 * Typed view of the native addon (native/src/binding/addon.cc). Options are
 * validated and given defaults here, before they reach C++.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';

/** Options of the kernel tracer; every size has a bound and a default. */
export interface NativeTracerOptions {
  /** sonde's own pid: never traced, its connections are remembered so that its exports are not traced either. */
  selfPid: number;
  /** Trace every process instead of the pids passed to setPidSelected. */
  traceAllPids: boolean;
  /** Bytes copied at the start of each message (request line and headers). 64..4096. */
  payloadCaptureBytes: number;
  /** Ring buffer size in bytes: a power of two, at least 64 KiB. */
  ringBufferBytes: number;
  /**
   * How often the reader drains the ring buffer, in ms, at most: the kernel
   * wakes it sooner once a quarter of the buffer is waiting. Each wake-up
   * costs the reader and the JavaScript thread a batch's fixed work, which
   * at low rates is most of what a span costs.
   */
  pollIntervalMs: number;
  /** Records in a batch handed to JavaScript, in bytes at most (a record larger than this goes alone). */
  maxBatchBytes: number;
  /**
   * A response quiet this long is checked against its framing (length
   * reached, last chunk written) and reported when over; one whose head was
   * longer than the capture is closed at its last chunk. In ms.
   */
  responseQuietMs: number;
  /** A request unanswered, or a response still open and quiet, this long is closed out and flagged, in ms. */
  responseTimeoutMs: number;
  /** Connections the correlator follows at once; the least recently active is evicted past this. */
  maxConnections: number;
  /**
   * The reader thread also encodes the OTLP Span of each plain HTTP/1
   * exchange and gRPC call it can (native/src/encode/EncodedSpans.h) and
   * hands the entries over with the batch. Off by default.
   */
  encodeSpans?: boolean;
  /**
   * How long the reader waits for room when 64 batches are already queued
   * for the JavaScript thread, before it drops the next one (counted), in
   * ms. The ring buffer keeps filling meanwhile. 100 by default.
   */
  batchQueueWaitMs?: number;
}

/** Counters of the native side; all are totals since start except connectionsTracked. */
export interface NativeCounters {
  eventsRead: number;
  eventsMalformed: number;
  /** Message boundaries known lost from per-connection sequence gaps. */
  messagesLost: number;
  exchangesEmitted: number;
  /** Exchanges given up: lost boundaries, pipelining overflow, eviction, shutdown. */
  exchangesAbandoned: number;
  responsesWithoutRequest: number;
  requestsTimedOut: number;
  /** Responses closed out before their framing said they were over. */
  responsesIncomplete: number;
  connectionsOpened: number;
  connectionsEvicted: number;
  /** Gauge: connections in the table now. */
  connectionsTracked: number;
  linksAmbiguous: number;
  /** Client calls linked by their thread's last read or by their connection's connect. */
  linksByCause: number;
  connectContextsDropped: number;
  selfConnectionsIgnored: number;
  /** HTTP/2 streams not followed: a connection had max_streams_per_connection open. */
  h2StreamsDropped: number;
  /** HTTP/2 header blocks over a bound, not decoded. */
  h2HeaderBlocksTruncated: number;
  /** HTTP/2 header blocks that broke HPACK; that direction's decoder starts again. */
  h2HpackErrors: number;
  /** HTTP/2 frame boundaries lost, in the kernel's walk or the reader. */
  h2FrameErrors: number;
  /** HTTP/2 exchanges with header fields whose HPACK entry predates sonde. */
  h2HeadersUnknown: number;
  /**
   * HTTP/2 frames events of a connection the table does not hold (its start
   * event was lost, or it was evicted): that connection stays untraced.
   */
  h2FramesUnmatched: number;
}

export interface NativeTracerCounters extends NativeCounters {
  /**
   * Batches JavaScript was too slow to take: the queue of 64 stayed full
   * for as long as the reader waits (batchQueueWaitMs).
   */
  batchesDropped: number;
  exchangesDropped: number;
  ringBufferPolls: number;
  /** Batches delivered in a buffer lent at start, and in one of their own (none lent was free and big enough). */
  batchesLent: number;
  batchesUnlent: number;
  /** Batches that found the queue to JavaScript full and waited for room (then went, or were dropped). */
  batchesWaited: number;
  /** Indexed like KERNEL_DROP_REASONS. */
  kernelDrops: number[];
}

/** Order of the kernel's drop_counters map: enum sonde_kernel_drop in bpf/shared/events.h. */
export const KERNEL_DROP_REASONS = ['ringBufferFull', 'connTableFull', 'notHttpConnections', 'threadTableFull', 'tlsNoSocket'] as const;

/**
 * batch[0, batchBytes): `exchanges` records in its first recordsBytes, then,
 * with encodeSpans, the spans the addon encoded for them
 * (src/native/encodedSpans.ts). `lent`: the index of the lent buffer that
 * holds the batch, or -1.
 */
export type BatchCallback = (batch: Buffer, exchanges: number, recordsBytes: number, batchBytes: number, lent: number) => void;

export interface NativeTracer {
  // start(onBatch, lend?): { attached: string[], onDemand: string[] }
  // attached: section names of the programs attached now; onDemand: names of
  // programs loaded as well, attached per process later (attachEventLoopMarks).
  // lend: buffers the reader thread copies batches into, each given back
  // with releaseBatch once its batch is worked off (a batch that finds none
  // free and big enough gets a buffer of its own: lent is then -1).
  start(onBatch: BatchCallback, lend?: Buffer[]): { attached: string[]; onDemand: string[] };
  // releaseBatch(lent: number): void — the lent buffer `lent` is free again
  releaseBatch(lent: number): void;
  // stop(): Buffer — records still in flight, closed out
  stop(): Buffer;
  // setPidSelected(pid: number, selected: boolean, withDescendants?: boolean): void
  // withDescendants: the kernel also selects every process this one forks
  // from now on, and their children in turn (sched_process_fork).
  setPidSelected(pid: number, selected: boolean, withDescendants?: boolean): void;
  // selectComm(comm: string): void — processes exec'ing this command name are selected in the kernel
  selectComm(comm: string): void;
  /** Execs on the host since the programs were attached (counted in the kernel); undefined before start and after stop. */
  execCount(): number | undefined;
  /**
   * Processes forked, exec'd, exited or reaped on the host since the
   * programs were attached (threads not counted); undefined before start
   * and after stop.
   */
  processChangeCount(): number | undefined;
  /**
   * Uprobes on node::Environment::RunTimers and node::MakeCallback in
   * process `pid`, so that the calls its timers and setImmediate callbacks
   * make are not taken for the last read's request (docs/design-notes.md,
   * "Linking on event loops"). Returns "" once attached (or if it already
   * was), else why not: an executable without RunTimers is not Node.js.
   */
  attachEventLoopMarks(pid: number, executable: string): string;
  detachEventLoopMarks(pid: number): void;
  /**
   * Uprobes on OpenSSL's SSL_read, SSL_write (and their _ex forms),
   * SSL_do_handshake and SSL_free in the library or binary at `path`, for
   * process `pid` alone, or with -1 for every process that maps it (the
   * programs skip processes that are not selected, but each still takes
   * the trap). `error` is "" once attached (or if it already was), else
   * why not: a file without SSL_read and SSL_write is not OpenSSL.
   * `probes` says where each probe sits: "(at its callee)" where the
   * function is a thin wrapper whose own entry the kernel would
   * single-step, "(single-stepped)" where no cheaper site was found.
   */
  attachTls(path: string, pid: number): { error: string; probes: string };
  /** Detaches the uprobes attached for process `pid` alone. */
  detachTls(pid: number): void;
  counters(): NativeTracerCounters;
}

export interface ReplayTracker {
  feed(event: Buffer): void;
  // setKernelMessage(pid, fd, generation, seq, lastChunkNs, totalBytes, tail): void
  // — stands in for the kernel's conn_states entry of that connection.
  setKernelMessage(pid: number, fd: number, generation: number, seq: number, lastChunkNs: bigint, totalBytes: number, tail: Buffer): void;
  tick(nowNs: bigint): void;
  finish(nowNs: bigint): void;
  take(): Buffer;
  counters(): NativeCounters;
}

export interface NativeLayout {
  exchangeRecord: Record<string, number> & { size: number };
  encodedSpanEntry: Record<string, number> & { size: number };
  encodedSpanMethods: string[];
  encodedSpanShapes: Record<string, number>;
  redactionHints: string[];
  events: {
    headerBytes: number;
    sourceOffset: number;
    protocolOffset: number;
    causeFdOffset: number;
    causeGenerationOffset: number;
    connectEventBytes: number;
    msgStartHeaderBytes: number;
    closeEventBytes: number;
    selfConnectEventBytes: number;
    processExitEventBytes: number;
    tupleOffset: number;
    prevOffset: number;
    commOffset: number;
    chunkBytesOffset: number;
    payloadBytesOffset: number;
    maxPayloadBytes: number;
    msgContinueHeaderBytes: number;
    maxHeadBytes: number;
    h2FramesHeaderBytes: number;
    h2EventBytes: number;
    h2CopyBound: number;
    h2ChunkBytesOffset: number;
    h2PayloadBytesOffset: number;
    h2FirstFrameOffsetOffset: number;
    h2FlagsOffset: number;
  };
  /** enum sonde_event_kind of bpf/shared/events.h */
  eventKinds: Record<string, number>;
  /** enum ExchangeFlag of native/src/core/ExchangeRecord.h */
  exchangeFlags: Record<string, number>;
  /** enum sonde_direction of bpf/shared/events.h */
  directions: Record<string, number>;
  /** enum sonde_role_hint of bpf/shared/events.h */
  roleHints: Record<string, number>;
  /** enum sonde_source: where an event's bytes were seen */
  sources: Record<string, number>;
  /** enum sonde_protocol: what the kernel recognised a connection as */
  connProtocols: Record<string, number>;
  /** enum sonde_msg_class of bpf/shared/events.h */
  msgClasses: Record<string, number>;
  /** enum sonde_h2_frames_flags of bpf/shared/events.h */
  h2FramesFlags: Record<string, number>;
  /** enum class LinkSource of native/src/core/ExchangeRecord.h */
  linkSources: Record<string, number>;
  /** enum class Protocol of native/src/core/ExchangeRecord.h */
  protocols: Record<string, number>;
  /** enum class ExchangeRole of native/src/core/ExchangeRecord.h, keyed by the decoded role */
  exchangeRoles: Record<string, number>;
}

/** Options of http2Test.decodeHpack, and of decodeFrames' `hpack`. */
export interface Http2TestHpackOptions {
  /** SETTINGS_HEADER_TABLE_SIZE of the receiver, in bytes; default 4096. */
  maxTableBytes?: number;
  /** Bound on maxTableBytes, in bytes; default 65536. */
  tableBytesCeiling?: number;
  /** The connection was open before sonde saw it. */
  midLife?: boolean;
  maxFields?: number;
  /** Bound on the name and value bytes kept per block; default 65536. */
  maxDecodedBytes?: number;
}

export interface Http2TestField {
  name: string;
  value: string;
  /** Present and true only when set. */
  nameUnknown?: true;
  valueUnknown?: true;
  neverIndexed?: true;
}

export interface Http2TestDecodedBlock {
  /**
   * - `ok`: every field decoded;
   * - `unknownDynamicEntry`: some fields refer to dynamic-table entries inserted before we saw the connection;
   * - `error`: the block breaks RFC 7541, and the decoder is broken from here on;
   * - `broken`: an earlier block broke the decoder.
   */
  status: 'ok' | 'unknownDynamicEntry' | 'error' | 'broken';
  fields: Http2TestField[];
  fieldsDropped?: number;
}

export interface Http2TestHpackCounters {
  blocks: number;
  blocksWithUnknownEntries: number;
  fieldsUnknown: number;
  errors: number;
  desynchronised: number;
  broken: boolean;
}

export type Http2TestEvent =
  | { kind: 'frame'; length: number; type: number; flags: number; streamId: number }
  | {
      kind: 'headers' | 'pushPromise';
      streamId: number;
      promisedStreamId?: number;
      endStream: boolean;
      truncated: boolean;
      truncatedBytes?: number;
      block: Buffer;
      hpack?: Http2TestDecodedBlock;
    }
  | { kind: 'data'; streamId: number; dataBytes: number; endStream: boolean }
  | { kind: 'rstStream'; streamId: number; errorCode: number }
  | { kind: 'goaway'; lastStreamId: number; errorCode: number }
  | { kind: 'setting'; id: number; value: number };

export type Http2TestPlausible = 'yes' | 'no' | 'needMore';

/**
 * Test hook: native/src/binding/http2TestHook.cc drives the HTTP/2 frame
 * reader and HPACK decoder of native/src/core/http2 from tests.
 * Not for production use: it copies every block and field into JS objects.
 */
export interface Http2TestHook {
  // decodeFrames(chunks: Buffer[], options?): one FrameReader fed the chunks in order
  decodeFrames(
    chunks: Buffer[],
    options?: {
      clientPreface?: boolean;
      maxFrameBytes?: number;
      maxHeaderBlockBytes?: number;
      /** The bytes are the kernel's frame walk: DATA frames arrive as their 9-byte header alone. */
      dataPayloadElided?: boolean;
      /** Of any other frame, at most this many payload bytes follow its header (SONDE_H2_COPY_BOUND). */
      payloadCopyBound?: number;
      /** Decode each whole header block with one HpackDecoder. */
      hpack?: Http2TestHpackOptions;
      /** Count events without building them (for the fuzz test). */
      summary?: boolean;
    },
  ): {
    events?: Http2TestEvent[];
    eventCount: number;
    /** BrokenReason of FrameReader.h, or null. */
    broken: string | null;
    counters: {
      bytes: number;
      frames: number;
      unknownFramesSkipped: number;
      headerBlocks: number;
      headerBlocksTruncated: number;
      headerBytesTruncated: number;
    };
    hpack?: Http2TestHpackCounters;
  };
  // decodeHpack(blocks: Buffer[], options?): one HpackDecoder, state carried from block to block
  decodeHpack(
    blocks: Buffer[],
    options?: Http2TestHpackOptions,
  ): { blocks: Http2TestDecodedBlock[]; counters: Http2TestHpackCounters; desynchronised: boolean };
  // looksLikeFrames(bytes: Buffer, options?): looksLikeHttp2Frames of FrameReader.h
  looksLikeFrames(bytes: Buffer, options?: { sender?: 'client' | 'server'; maxFrameBytes?: number }): Http2TestPlausible;
  // startsWithClientPreface(bytes: Buffer)
  startsWithClientPreface(bytes: Buffer): Http2TestPlausible;
}

export interface UprobeSite {
  entryOffset: number;
  fileOffset: number;
  /** The site is the entry of the function `symbol` calls with its own arguments. */
  viaCallee: boolean;
  /** The site is past the function's `test %rdi,%rdi; je` (an entry probe with nothing to do for NULL). */
  pastNullCheck: boolean;
  emulated: boolean;
}

/** One of the tracer's OpenSSL probes in a file, as native/src/core/TlsProbePlan.h places it. */
export interface TlsProbePlacement {
  symbol: string;
  program: 'read' | 'read_ex' | 'write' | 'write_ex' | 'handshake' | 'free';
  /** The call's return is probed too, at the same site. */
  withReturn: boolean;
  /** The file is not traced without it. */
  required: boolean;
  /** The placement before it (found, so attached) sees this one's calls: the tracer attaches this one only if that one fails. */
  coveredByPrevious: boolean;
  /** Where it goes; null when the tracer leaves it to libbpf to find the symbol's entry by name. */
  fileOffset: number | null;
  emulated: boolean;
}

export interface NativeModule {
  Tracer: new (options: NativeTracerOptions) => NativeTracer;
  // not exposed: id seeding of the live tracer (ids must be random there)
  ReplayTracker: new (options: Partial<NativeTracerOptions> & { idSeed?: number; maxPendingPerConnection?: number }) => ReplayTracker;
  layout(): NativeLayout;
  /**
   * Where the tracer puts a uprobe on `symbol` of the ELF file at `path`
   * (file offsets) when `moves` allow the site off the entry, and whether
   * the kernel emulates the instruction there rather than single-stepping
   * it; null when the file lacks the symbol.
   */
  uprobeSite(path: string, symbol: string, moves: { throughWrapper?: boolean; pastNullCheck?: boolean }): UprobeSite | null;
  /** Where the tracer puts its OpenSSL programs in the ELF file at `path`, in attach order. */
  tlsProbePlan(path: string): TlsProbePlacement[];
  /** [CLOCK_REALTIME ns, CLOCK_MONOTONIC ns], read back to back. */
  clock(): [bigint, bigint];
  /** CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), ms. */
  threadCpuMs(): number;
  /** The encoded spans of a batch of exchange records, as the reader thread makes them with encodeSpans. */
  encodeSpans(records: Buffer): Buffer;
  /** Where the reader cuts a poll's records into batches of at most `maxBytes`: [end, count, end, count, ...]. */
  batchBounds(records: Buffer, maxBytes: number): number[];
  /**
   * The TCP listeners of the network namespace of a /proc/PID/ns/net file,
   * or of sonde's own, asked of the kernel over NETLINK_SOCK_DIAG:
   * [inode, port, inode, port, ...]. Throws when the kernel cannot answer.
   */
  listeningTcpSockets(netnsPath?: string): number[];
  // not for production use: a test hook (see Http2TestHook)
  http2Test: Http2TestHook;
}

export const DEFAULT_NATIVE_OPTIONS: Omit<NativeTracerOptions, 'selfPid' | 'traceAllPids'> = {
  payloadCaptureBytes: 1024,
  ringBufferBytes: 4 << 20,
  pollIntervalMs: 1000,
  maxBatchBytes: 128 << 10,
  responseQuietMs: 100,
  responseTimeoutMs: 30_000,
  maxConnections: 65_536,
};

export class NativeBuildMissingError extends Error {
  constructor(where: string) {
    super(`load native addon: ${where} is missing; build it with "npm run setup" (needs clang, bpftool and libbpf-dev)`);
    this.name = 'NativeBuildMissingError';
  }
}

let cached: NativeModule | undefined;

export function loadNativeModule(): NativeModule {
  if (cached) return cached;
  const root = findPackageRoot();
  const addonPath = path.join(root, 'build', 'Release', 'sonde_native.node');
  if (!fs.existsSync(addonPath)) throw new NativeBuildMissingError(addonPath);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  cached = require(addonPath) as NativeModule;
  return cached;
}

function findPackageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new NativeBuildMissingError('package root (binding.gyp)');
    dir = parent;
  }
}

export function validateNativeOptions(o: NativeTracerOptions): NativeTracerOptions {
  const intIn = (name: keyof NativeTracerOptions, min: number, max: number): void => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new RangeError(`Option "${name}" must be an integer from ${min} to ${max} (got ${String(v)})`);
    }
  };
  intIn('payloadCaptureBytes', 64, 4096);
  intIn('ringBufferBytes', 1 << 16, 1 << 30);
  if ((o.ringBufferBytes & (o.ringBufferBytes - 1)) !== 0) {
    throw new RangeError(`Option "ringBufferBytes" must be a power of two (got ${o.ringBufferBytes})`);
  }
  intIn('pollIntervalMs', 1, 1000);
  intIn('maxBatchBytes', 4096, 64 << 20);
  if (o.batchQueueWaitMs !== undefined) intIn('batchQueueWaitMs', 0, 60_000);
  intIn('responseQuietMs', 1, 60_000);
  intIn('responseTimeoutMs', 1, 3_600_000);
  intIn('maxConnections', 16, 4_000_000);
  intIn('selfPid', 0, 0x7fffffff);
  return o;
}
