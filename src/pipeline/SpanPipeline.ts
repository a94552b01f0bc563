/**
 * From the native addon's exchange batches to spans in the export channels.
 * Nothing here may throw back into the addon's callback: a record that
 * cannot be turned into a span is counted by cause and skipped.
 */
import type { Logger } from 'pino';
import type { SpanSink } from '../export/ExportChannel';
import type { MonotonicClock } from '../native/clock';
import { decodeExchanges, type Exchange } from '../native/exchangeDecoder';
import { describers, type DescriberRegistry } from '../protocols';
import { buildSpan, UNKNOWN_PROTOCOL, type BuildFailure } from '../spans/buildSpan';
import type { ProcessResource, ResourceRegistry } from '../spans/resources';
import type { RouteMatcher } from '../spans/routes';
import { SONDE_NAME, SONDE_VERSION } from '../version';
import { threadCpuMs } from '../telemetry/cpuClock';
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
   * Milliseconds the JavaScript thread spent turning exchange records into
   * spans (decode, describe, build), measured per batch. What handing them
   * to the exporters costs is each channel's `busyMs`.
   */
  buildMs: number;
}

export class SpanPipeline {
  readonly #clock: MonotonicClock;
  readonly #resources: ResourceRegistry;
  readonly #routes: RouteMatcher;
  readonly #channels: SpanSink[];
  readonly #protocols: DescriberRegistry;
  readonly #log: Logger;
  readonly #scope = { name: SONDE_NAME, version: SONDE_VERSION };
  readonly #onExchangeBound = (x: Exchange): void => this.#onExchange(x);
  /** Spans of the batch being decoded, handed to the channels once it is done. */
  #built: ReadableSpan[] = [];
  #lastPid = -1;
  #lastDescribed: ProcessResource | undefined;
  readonly #counters: PipelineCounters;

  constructor(options: {
    clock: MonotonicClock;
    resources: ResourceRegistry;
    routes: RouteMatcher;
    channels: SpanSink[];
    log: Logger;
    /** The built-in registry by default. */
    protocols?: DescriberRegistry;
  }) {
    this.#clock = options.clock;
    this.#resources = options.resources;
    this.#routes = options.routes;
    this.#channels = options.channels;
    this.#log = options.log;
    this.#protocols = options.protocols ?? describers;
    const unparsed: Record<BuildFailure, number> = {};
    for (const describer of this.#protocols.values()) for (const reason of describer.failures) unparsed[reason] = 0;
    unparsed[UNKNOWN_PROTOCOL] = 0;
    this.#counters = { exchanges: 0, serverSpans: 0, clientSpans: 0, unparsed, malformedBatches: 0, unknownProcess: 0, buildMs: 0 };
  }

  get counters(): PipelineCounters {
    return { ...this.#counters, unparsed: { ...this.#counters.unparsed } };
  }

  onBatch(records: Buffer): void {
    const started = threadCpuMs();
    this.#lastPid = -1;
    try {
      decodeExchanges(records, this.#onExchangeBound);
    } catch (error) {
      this.#counters.malformedBatches++;
      this.#log.warn({ err: error instanceof Error ? error.message : String(error) }, 'skipped a malformed exchange batch');
    }
    this.#counters.buildMs += threadCpuMs() - started;
    // Spans of a batch that broke midway are still exported.
    const built = this.#built;
    this.#built = [];
    for (const channel of this.#channels) channel.pushAll(built);
  }

  #onExchange(x: Exchange): void {
    this.#counters.exchanges++;
    // Batches come in runs of the same process: skip the cache lookup.
    let described = this.#lastPid === x.pid ? this.#lastDescribed : undefined;
    if (!described) {
      described = this.#resources.forPid(x.pid, x.comm);
      this.#lastPid = x.pid;
      this.#lastDescribed = described;
    }
    if (!described.known) this.#counters.unknownProcess++;
    const resource = described.resource;
    let result;
    try {
      result = buildSpan(x, { clock: this.#clock, resource, scope: this.#scope, routes: this.#routes, protocols: this.#protocols });
    } catch (error) {
      this.#count('request-malformed');
      this.#log.debug({ err: String(error) }, 'span build failed');
      return;
    }
    if (!result.ok) {
      this.#count(result.reason);
      return;
    }
    if (x.role === 'server') this.#counters.serverSpans++;
    else this.#counters.clientSpans++;
    this.#built.push(result.span);
  }

  // A reason missing from its describer's `failures` still counts, from
  // its first occurrence on.
  #count(reason: BuildFailure): void {
    this.#counters.unparsed[reason] = (this.#counters.unparsed[reason] ?? 0) + 1;
  }
}
