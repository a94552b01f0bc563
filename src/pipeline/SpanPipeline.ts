/**
 * From the native addon's exchange batches to spans in the export channels.
 * Nothing here may throw back into the addon's callback: a record that
 * cannot be turned into a span is counted by cause and skipped.
 */
import type { Logger } from 'pino';
import type { SpanSink } from '../export/ExportChannel';
import type { MonotonicClock } from '../native/clock';
import { decodeExchanges, EXCHANGE_ROLE_CODES, readCString, RECORD_OFFSETS, type Exchange } from '../native/exchangeDecoder';
import { u64At, viewOf } from '../native/dataView';
import { EncodedSpanCursor } from '../native/encodedSpans';
import { EncodedSpanAttributes } from './encodedSpanAttributes';
import type { PreencodedSpan } from '../spans/PreencodedSpan';
import { SpanKind, type Attributes, type HrTime } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { describers, type DescriberRegistry } from '../protocols';
import { buildSpan, UNKNOWN_PROTOCOL, type BuildFailure } from '../spans/buildSpan';
import type { ProcessResource, ResourceRegistry } from '../spans/resources';
import type { RouteMatcher } from '../spans/routes';
import { SONDE_NAME, SONDE_VERSION } from '../version';
import { threadCpuMs } from '../telemetry/cpuClock';
import { traceIdRatioBits } from '../spans/traceIdTail';
import type { TraceSampler } from './TraceSampler';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

export interface PipelineCounters {
  exchanges: number;
  serverSpans: number;
  clientSpans: number;
  /**
   * Exchanges that gave no span, by reason: every reason of every
   * registered describer (zero until it happens), and `unknown-protocol`.
   */
  unparsed: Record<BuildFailure, number>;
  malformedBatches: number;
  unknownProcess: number;
  /**
   * Spans the addon encoded (src/native/encodedSpans.ts), of serverSpans
   * and clientSpans: the JavaScript thread only placed them.
   */
  encodedByAddon: number;
  /**
   * Spans the sampler (--sampler) left out of the exports: built, and
   * counted by the RED metrics and the viewer, but not exported.
   */
  sampledOut: number;
  /**
   * Milliseconds the JavaScript thread spent turning exchange records into
   * spans (decode, describe, build), measured per batch, and handing the
   * spans the addon encoded to the sinks. What handing the other spans to
   * the exporters costs is each channel's `busyMs`.
   */
  buildMs: number;
}

export class SpanPipeline {
  readonly #clock: MonotonicClock;
  readonly #resources: ResourceRegistry;
  readonly #routes: RouteMatcher;
  /** Sinks of every span (RED metrics, viewer), and the exporters when nothing is sampled out. */
  readonly #channels: SpanSink[];
  /** The exporters, when a sampler decides what they get. */
  readonly #sampledChannels: SpanSink[];
  /** Undefined when every trace is exported. */
  readonly #sampler: TraceSampler | undefined;
  readonly #protocols: DescriberRegistry;
  readonly #log: Logger;
  readonly #scope = { name: SONDE_NAME, version: SONDE_VERSION };
  readonly #onExchangeBound = (x: Exchange): void => this.#onExchange(x);
  /** Spans of the batch being decoded, handed to the channels once it is done. */
  #built: ReadableSpan[] = [];
  /** Of those, the ones the sampler keeps (with a sampler only). */
  #builtSampled: ReadableSpan[] = [];
  #lastPid = -1;
  #lastDescribed: ProcessResource | undefined;
  readonly #counters: PipelineCounters;
  readonly #acceptsPreencoded: boolean;
  readonly #cursor = new EncodedSpanCursor();
  readonly #claimBound = (recordOffset: number): boolean => this.#claim(recordOffset);
  readonly #encodedSpanAttributes = new EncodedSpanAttributes();
  readonly #preencoded = new ReusedPreencodedSpan(this.#scope);

  constructor(options: {
    clock: MonotonicClock;
    resources: ResourceRegistry;
    routes: RouteMatcher;
    /** Sinks that get every span. */
    channels: SpanSink[];
    /** Sinks that get the spans `sampler` keeps: the exporters. */
    sampledChannels?: SpanSink[];
    sampler?: TraceSampler;
    log: Logger;
    /** The built-in registry by default. */
    protocols?: DescriberRegistry;
  }) {
    this.#clock = options.clock;
    this.#resources = options.resources;
    this.#routes = options.routes;
    this.#sampler = options.sampler && !options.sampler.keepsEverything ? options.sampler : undefined;
    this.#sampledChannels = this.#sampler ? (options.sampledChannels ?? []) : [];
    this.#channels = this.#sampler ? options.channels : [...(options.sampledChannels ?? []), ...options.channels];
    this.#log = options.log;
    this.#protocols = options.protocols ?? describers;
    const unparsed: Record<BuildFailure, number> = {};
    for (const describer of this.#protocols.values()) for (const reason of describer.failures) unparsed[reason] = 0;
    unparsed[UNKNOWN_PROTOCOL] = 0;
    this.#counters = { exchanges: 0, serverSpans: 0, clientSpans: 0, unparsed, malformedBatches: 0, unknownProcess: 0, encodedByAddon: 0, sampledOut: 0, buildMs: 0 };
    // With no sink at all (--exporter none, no viewer, no metrics) spans
    // are only counted: taking the addon's entries costs a fraction of
    // building each span in JavaScript.
    const sinks = [...this.#sampledChannels, ...this.#channels];
    this.#acceptsPreencoded = sinks.every((c) => c.pushPreencoded !== undefined);
  }

  /**
   * Every sink (if any) takes spans the addon encoded: only then may the
   * addon encode them (the option encodeSpans). Console and Zipkin
   * exporters take built spans only.
   */
  get acceptsPreencoded(): boolean {
    return this.#acceptsPreencoded;
  }

  get counters(): PipelineCounters {
    return { ...this.#counters, unparsed: { ...this.#counters.unparsed } };
  }

  /** `encoded`: the spans the addon encoded for these records, if any. */
  onBatch(records: Buffer, encoded?: Buffer): void {
    const started = threadCpuMs();
    this.#lastPid = -1;
    try {
      if (encoded !== undefined && encoded.length > 0 && this.#acceptsPreencoded) {
        this.#clock.refreshIfDue();
        this.#cursor.reset(encoded);
        this.#preencoded.records = records;
        this.#preencoded.recordsView = viewOf(records);
        try {
          decodeExchanges(records, this.#onExchangeBound, this.#claimBound);
        } finally {
          // Not kept past the batch: a record buffer can be megabytes.
          this.#preencoded.records = EMPTY;
          this.#preencoded.recordsView = EMPTY_VIEW;
          this.#preencoded.bytes = EMPTY;
        }
      } else {
        decodeExchanges(records, this.#onExchangeBound);
      }
    } catch (error) {
      this.#counters.malformedBatches++;
      this.#log.warn({ err: error instanceof Error ? error.message : String(error) }, 'skipped a malformed exchange batch');
    }
    this.#counters.buildMs += threadCpuMs() - started;
    // Spans of a batch that broke midway are still exported.
    const built = this.#built;
    this.#built = [];
    const sampled = this.#builtSampled;
    this.#builtSampled = [];
    for (const channel of this.#sampledChannels) channel.pushAll(sampled);
    for (const channel of this.#channels) channel.pushAll(built);
  }

  #onExchange(x: Exchange): void {
    this.#counters.exchanges++;
    const resource = this.#resourceOf(x.pid, x.payload, -1, x.comm);
    const result = this.#build(x, resource);
    if (!result) return;
    if (x.role === 'server') this.#counters.serverSpans++;
    else this.#counters.clientSpans++;
    this.#built.push(result);
    if (this.#sampler) {
      if (this.#sampler.keeps(traceIdRatioBits(x.traceId), x.traceFlags)) this.#builtSampled.push(result);
      else this.#counters.sampledOut++;
    }
  }

  /** The resource of a record's process; `comm` is read from the record at `recordOffset` only when needed. */
  #resourceOf(pid: number, records: Buffer, recordOffset: number, comm?: string): Resource {
    // Batches come in runs of the same process: skip the cache lookup.
    let described = this.#lastPid === pid ? this.#lastDescribed : undefined;
    if (!described) {
      described = this.#resources.forPid(pid, comm ?? readCString(records, recordOffset + RECORD_OFFSETS.comm, 16));
      this.#lastPid = pid;
      this.#lastDescribed = described;
    }
    if (!described.known) this.#counters.unknownProcess++;
    return described.resource;
  }

  #build(x: Exchange, resource: Resource): ReadableSpan | undefined {
    let result;
    try {
      result = buildSpan(x, { clock: this.#clock, resource, scope: this.#scope, routes: this.#routes, protocols: this.#protocols });
    } catch (error) {
      this.#count('request-malformed');
      this.#log.debug({ err: String(error) }, 'span build failed');
      return undefined;
    }
    if (!result.ok) {
      this.#count(result.reason);
      return undefined;
    }
    return result.span;
  }

  /**
   * Takes the record at `recordOffset` when the addon encoded its span:
   * the span's times become epoch times in place, and the sinks get it at
   * once (the exporters only if the sampler keeps its trace; the spans
   * built in JavaScript follow at the batch's end).
   */
  #claim(recordOffset: number): boolean {
    const cursor = this.#cursor;
    if (cursor.recordOffset !== recordOffset) return false;
    const records = this.#preencoded.records;
    const view = this.#preencoded.recordsView;
    const encoded = cursor.buffer;
    const server = records[recordOffset + RECORD_OFFSETS.role] === EXCHANGE_ROLE_CODES.server;
    this.#counters.exchanges++;
    if (server) this.#counters.serverSpans++;
    else this.#counters.clientSpans++;
    this.#counters.encodedByAddon++;
    const span = this.#preencoded;
    span.kind = server ? SpanKind.SERVER : SpanKind.CLIENT;
    span.resource = this.#resourceOf(view.getUint32(recordOffset + RECORD_OFFSETS.pid, true), records, recordOffset);
    span.recordOffset = recordOffset;
    span.bytes = encoded;
    span.start = cursor.spanStart;
    span.length = cursor.spanBytes;
    const startNs = u64At(view, recordOffset + RECORD_OFFSETS.request_start_ns);
    const endNs = cursor.endNs;
    const d = endNs > startNs ? endNs - startNs : 0;
    span.duration[0] = Math.floor(d / 1e9);
    span.duration[1] = d - span.duration[0] * 1e9;
    span.attributes = this.#encodedSpanAttributes.of(cursor, server, records[recordOffset + RECORD_OFFSETS.source] === SOURCE_TLS);
    this.#clock.writeEpochNs(cursor.view, cursor.startTimeAt, cursor.endTimeAt);
    if (this.#sampler) {
      if (this.#sampler.keeps(view.getUint32(recordOffset + RECORD_OFFSETS.trace_id + 8), records[recordOffset + RECORD_OFFSETS.trace_flags])) {
        for (const channel of this.#sampledChannels) channel.pushPreencoded!(span);
      } else {
        this.#counters.sampledOut++;
      }
    }
    for (const channel of this.#channels) channel.pushPreencoded!(span);
    // Last: a malformed next entry ends the batch after this span is delivered.
    cursor.next();
    return true;
  }

  // A reason missing from its describer's `failures` still counts, from
  // its first occurrence on.
  #count(reason: BuildFailure): void {
    this.#counters.unparsed[reason] = (this.#counters.unparsed[reason] ?? 0) + 1;
  }
}

/** SONDE_SOURCE_TLS of enum sonde_source (bpf/shared/events.h). */
const SOURCE_TLS = 2;
const EMPTY = Buffer.alloc(0);
const EMPTY_VIEW = viewOf(EMPTY);

/** The one PreencodedSpan of a pipeline, pointed at each encoded span in turn. */
class ReusedPreencodedSpan implements PreencodedSpan {
  records: Buffer = EMPTY;
  recordsView = EMPTY_VIEW;
  recordOffset = 0;
  resource!: Resource;
  bytes: Buffer = EMPTY;
  start = 0;
  length = 0;
  kind: SpanKind = SpanKind.SERVER;
  readonly duration: HrTime = [0, 0];
  attributes: Attributes = {};

  constructor(readonly instrumentationScope: { name: string; version: string }) {}

  traceId(): string {
    const at = this.recordOffset + RECORD_OFFSETS.trace_id;
    return this.records.toString('hex', at, at + 16);
  }

  traceIdTail(): number {
    return this.recordsView.getUint32(this.recordOffset + RECORD_OFFSETS.trace_id + 12);
  }
}
