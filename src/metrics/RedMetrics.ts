/**
 * RED metrics from the spans sonde builds, every one of them (no sampling):
 * the stable OTel HTTP duration histograms, and the RPC ones for gRPC.
 * A span sink like the exporters, so that the metrics and the traces are
 * the same requests.
 *
 * It aggregates by itself and hands the SDK's readers finished histograms
 * as a MetricProducer: recording through SDK instruments hashed every
 * measurement's attributes (sorted, JSON) and cost 6 µs per span, more
 * than building the span (bench/tools/jsSpanCost.js --sinks metrics). Here
 * a span costs a map lookup per kept attribute and a bucket search. The output is the
 * SDK's own, point for point: test/metrics/redMetrics.test.ts records the
 * same spans through SDK histograms and compares.
 *
 * Cardinality is bounded twice: attributes are the route, method, status
 * and peer, never a raw path or query; and each instrument keeps at most
 * `maxSeries` attribute sets, past which a request is recorded in one
 * overflow series (`otel.metric.overflow=true`, as the SDK names it) and
 * counted.
 */
import { SpanKind, ValueType, type Attributes, type AttributeValue, type HrTime } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, InstrumentType, type CollectionResult, type DataPoint, type Histogram, type HistogramMetricData, type MetricProducer } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { SpanSink } from '../export/ExportChannel';
import type { PreencodedSpan } from '../spans/PreencodedSpan';
import { SONDE_NAME, SONDE_VERSION } from '../version';

/** semconv: http.server.request.duration and http.client.request.duration, seconds. */
export const HTTP_DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** semconv: rpc.server.duration and rpc.client.duration, milliseconds. */
export const RPC_DURATION_BUCKETS_MS = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

const SERVICE_NAME = 'service.name';
const OVERFLOW: Attributes = { 'otel.metric.overflow': true };

/** The span attributes each instrument keeps (semconv's required and recommended ones that are bounded). */
const HTTP_SERVER_KEYS = ['http.request.method', 'url.scheme', 'http.response.status_code', 'http.route', 'network.protocol.name', 'network.protocol.version', 'error.type'];
const HTTP_CLIENT_KEYS = ['http.request.method', 'server.address', 'server.port', 'url.scheme', 'http.response.status_code', 'network.protocol.name', 'network.protocol.version', 'error.type'];
const RPC_SERVER_KEYS = ['rpc.system', 'rpc.service', 'rpc.method', 'rpc.grpc.status_code', 'error.type'];
const RPC_CLIENT_KEYS = ['rpc.system', 'rpc.service', 'rpc.method', 'rpc.grpc.status_code', 'server.address', 'server.port', 'error.type'];

export interface RedMetricsCounters {
  /** Requests recorded in the overflow series because their instrument had `maxSeries` attribute sets already. */
  seriesOverflow: number;
  /** Attribute sets held, all instruments together. */
  series: number;
}

/** A histogram's state for one attribute set, as the SDK keeps it. */
interface Series {
  attributes: Attributes;
  counts: number[];
  count: number;
  sum: number;
  min: number;
  max: number;
}

export interface HistogramSpec {
  name: string;
  unit: string;
  description: string;
  boundaries: readonly number[];
  /** The span attributes kept, in this order. */
  keys: readonly string[];
}

/**
 * Attribute sets are found through a tree of maps, one level per kept
 * attribute (the service first), keyed by the attribute's value or
 * `undefined` when the span has none: no key string is built per span,
 * and 200 and "200" stay apart as they do in the SDK.
 */
/** What a histogram reads of a span: a built one, or the facts of one the addon encoded. */
type SpanFacts = Pick<ReadableSpan, 'kind' | 'duration' | 'attributes' | 'resource'>;

type SeriesTree = Map<AttributeValue | undefined, SeriesTree | Series>;

/** One cumulative histogram and its attribute sets, at most `maxSeries` of them. */
class BoundedHistogram {
  readonly spec: HistogramSpec;
  readonly #tree: SeriesTree = new Map();
  readonly #all: Series[] = [];
  #overflow: Series | undefined;
  readonly #maxSeries: number;
  readonly #onOverflow: () => void;
  readonly #startTime: HrTime;
  /**
   * By shared attributes object, then by service (what the tree is keyed on
   * first: a process's Resource object is rebuilt every few seconds), at
   * most 4096 objects, then started afresh.
   */
  #byShared = new Map<Attributes, Map<AttributeValue | undefined, Series>>();
  // Runs of spans share their attributes object and service: the last
  // series found answers them before two Map lookups on cold tables.
  #lastShared: Attributes | undefined;
  #lastService: AttributeValue | undefined;
  #lastSeries: Series | undefined;

  constructor(spec: HistogramSpec, maxSeries: number, startTime: HrTime, onOverflow: () => void) {
    this.spec = spec;
    this.#maxSeries = maxSeries;
    this.#startTime = startTime;
    this.#onOverflow = onOverflow;
  }

  /** Attribute sets held, the overflow series not counted. */
  get series(): number {
    return this.#all.length;
  }

  record(value: number, span: SpanFacts): void {
    this.#count(this.#find(span) ?? this.#add(span), value);
  }

  /**
   * record() for a span whose attributes object is shared by every span of
   * its kind (the pipeline's sets for spans the addon encoded): its series
   * is found by that object and the service, without walking the tree.
   */
  recordShared(value: number, span: SpanFacts): void {
    const service = span.resource.attributes[SERVICE_NAME];
    if (span.attributes === this.#lastShared && service === this.#lastService) {
      this.#count(this.#lastSeries!, value);
      return;
    }
    let byService = this.#byShared.get(span.attributes);
    let series = byService?.get(service);
    if (series === undefined) {
      series = this.#find(span) ?? this.#add(span);
      // The overflow series is not remembered: each request that goes there is counted.
      if (series !== this.#overflow) {
        if (byService === undefined) {
          if (this.#byShared.size >= 4096) this.#byShared.clear();
          byService = new Map();
          this.#byShared.set(span.attributes, byService);
        }
        byService.set(service, series);
      }
    }
    if (series !== this.#overflow) {
      this.#lastShared = span.attributes;
      this.#lastService = service;
      this.#lastSeries = series;
    }
    this.#count(series, value);
  }

  #count(series: Series, value: number): void {
    series.count++;
    series.sum += value;
    if (value < series.min) series.min = value;
    if (value > series.max) series.max = value;
    series.counts[bucketOf(this.spec.boundaries, value)]++;
  }

  #find(span: SpanFacts): Series | undefined {
    const keys = this.spec.keys;
    let node = this.#tree.get(span.resource.attributes[SERVICE_NAME]);
    for (let i = 0; i < keys.length && node !== undefined; i++) node = (node as SeriesTree).get(span.attributes[keys[i]]);
    return node as Series | undefined;
  }

  #add(span: SpanFacts): Series {
    const counts = (): number[] => new Array<number>(this.spec.boundaries.length + 1).fill(0);
    if (this.#all.length >= this.#maxSeries) {
      this.#onOverflow();
      this.#overflow ??= { attributes: OVERFLOW, counts: counts(), count: 0, sum: 0, min: Infinity, max: -Infinity };
      return this.#overflow;
    }
    const keys = this.spec.keys;
    const series: Series = { attributes: attributesOf(span, keys), counts: counts(), count: 0, sum: 0, min: Infinity, max: -Infinity };
    let node = this.#tree;
    let at: AttributeValue | undefined = span.resource.attributes[SERVICE_NAME];
    for (let i = 0; i < keys.length; i++) {
      let child = node.get(at) as SeriesTree | undefined;
      if (child === undefined) {
        child = new Map();
        node.set(at, child);
      }
      node = child;
      at = span.attributes[keys[i]];
    }
    node.set(at, series);
    this.#all.push(series);
    return series;
  }

  /** What the SDK's histogram aggregation would report, cumulative. */
  metricData(endTime: HrTime): HistogramMetricData {
    const dataPoints: DataPoint<Histogram>[] = [];
    for (const s of this.#overflow ? [...this.#all, this.#overflow] : this.#all) {
      dataPoints.push({
        attributes: s.attributes,
        startTime: this.#startTime,
        endTime,
        value: { min: s.min, max: s.max, sum: s.sum, buckets: { boundaries: [...this.spec.boundaries], counts: [...s.counts] }, count: s.count },
      });
    }
    const descriptor = { name: this.spec.name, type: InstrumentType.HISTOGRAM, description: this.spec.description, unit: this.spec.unit, valueType: ValueType.DOUBLE, advice: { explicitBucketBoundaries: [...this.spec.boundaries] } };
    return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM, dataPoints };
  }
}

function attributesOf(span: SpanFacts, keys: readonly string[]): Attributes {
  const attributes: Attributes = {};
  const service = span.resource.attributes[SERVICE_NAME];
  if (service !== undefined) attributes[SERVICE_NAME] = service;
  for (const k of keys) {
    const v = span.attributes[k];
    if (v !== undefined) attributes[k] = v;
  }
  return attributes;
}

/** The bucket of `value`: the first whose inclusive upper bound it does not pass (the SDK's binarySearchUB). */
function bucketOf(boundaries: readonly number[], value: number): number {
  let lo = 0;
  let hi = boundaries.length - 1;
  let found = boundaries.length;
  while (hi >= lo) {
    const mid = lo + ((hi - lo) >> 1);
    if (boundaries[mid] < value) lo = mid + 1;
    else {
      found = mid;
      hi = mid - 1;
    }
  }
  return found;
}

export const RED_HISTOGRAMS = {
  httpServer: { name: 'http.server.request.duration', unit: 's', description: 'Duration of HTTP server requests, seen by sonde', boundaries: HTTP_DURATION_BUCKETS_S, keys: HTTP_SERVER_KEYS },
  httpClient: { name: 'http.client.request.duration', unit: 's', description: 'Duration of HTTP client requests, seen by sonde', boundaries: HTTP_DURATION_BUCKETS_S, keys: HTTP_CLIENT_KEYS },
  rpcServer: { name: 'rpc.server.duration', unit: 'ms', description: 'Duration of inbound RPCs, seen by sonde', boundaries: RPC_DURATION_BUCKETS_MS, keys: RPC_SERVER_KEYS },
  rpcClient: { name: 'rpc.client.duration', unit: 'ms', description: 'Duration of outbound RPCs, seen by sonde', boundaries: RPC_DURATION_BUCKETS_MS, keys: RPC_CLIENT_KEYS },
} satisfies Record<string, HistogramSpec>;

export class RedMetrics implements SpanSink, MetricProducer {
  readonly #httpServer: BoundedHistogram;
  readonly #httpClient: BoundedHistogram;
  readonly #rpcServer: BoundedHistogram;
  readonly #rpcClient: BoundedHistogram;
  readonly #all: BoundedHistogram[];
  #seriesOverflow = 0;

  constructor(options: { maxSeries: number; startTime?: HrTime }) {
    const overflow = (): void => {
      this.#seriesOverflow++;
    };
    const start = options.startTime ?? millisToHrTime(Date.now());
    const histogram = (spec: HistogramSpec) => new BoundedHistogram(spec, options.maxSeries, start, overflow);
    this.#httpServer = histogram(RED_HISTOGRAMS.httpServer);
    this.#httpClient = histogram(RED_HISTOGRAMS.httpClient);
    this.#rpcServer = histogram(RED_HISTOGRAMS.rpcServer);
    this.#rpcClient = histogram(RED_HISTOGRAMS.rpcClient);
    this.#all = [this.#httpServer, this.#httpClient, this.#rpcServer, this.#rpcClient];
  }

  get counters(): RedMetricsCounters {
    return { seriesOverflow: this.#seriesOverflow, series: this.#all.reduce((a, h) => a + h.series, 0) };
  }

  push(span: SpanFacts): void {
    const server = span.kind === SpanKind.SERVER;
    if (!server && span.kind !== SpanKind.CLIENT) return;
    const seconds = span.duration[0] + span.duration[1] / 1e9;
    if (span.attributes['rpc.system'] !== undefined) {
      (server ? this.#rpcServer : this.#rpcClient).record(seconds * 1000, span);
    } else if (span.attributes['http.request.method'] !== undefined) {
      (server ? this.#httpServer : this.#httpClient).record(seconds, span);
    }
  }

  pushAll(spans: readonly ReadableSpan[]): void {
    for (const span of spans) this.push(span);
  }

  pushPreencoded(span: PreencodedSpan): void {
    const server = span.kind === SpanKind.SERVER;
    const seconds = span.duration[0] + span.duration[1] / 1e9;
    if (span.attributes['rpc.system'] !== undefined) (server ? this.#rpcServer : this.#rpcClient).recordShared(seconds * 1000, span);
    else (server ? this.#httpServer : this.#httpClient).recordShared(seconds, span);
  }

  /** For the SDK's readers: the histograms that have points, under sonde's scope (the reader gives the resource). */
  async collect(): Promise<CollectionResult> {
    const endTime = millisToHrTime(Date.now());
    const metrics = this.#all.filter((h) => h.series > 0 || this.#seriesOverflow > 0).map((h) => h.metricData(endTime)).filter((m) => m.dataPoints.length > 0);
    return { resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length ? [{ scope: { name: SONDE_NAME, version: SONDE_VERSION }, metrics }] : [] }, errors: [] };
  }
}
