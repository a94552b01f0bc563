/**
 * RED metrics from the spans sonde builds, every one of them (no sampling):
 * the stable OTel HTTP duration histograms, and the RPC ones for gRPC.
 * A span sink like the exporters, so that the metrics and the traces are
 * the same requests.
 *
 * Cardinality is bounded twice: attributes are the route, method, status
 * and peer, never a raw path or query; and each instrument keeps at most
 * `maxSeries` attribute sets, past which a request is recorded in one
 * overflow series (`otel.metric.overflow=true`, as the SDK names it) and
 * counted.
 */
import { SpanKind, type Attributes, type AttributeValue, type Histogram, type Meter } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { SpanSink } from '../export/ExportChannel';

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

/** One histogram and the attribute sets it has seen. */
class BoundedHistogram {
  readonly #histogram: Histogram;
  readonly #keys: readonly string[];
  readonly #seen = new Set<string>();
  readonly #maxSeries: number;
  readonly #onOverflow: () => void;

  constructor(histogram: Histogram, keys: readonly string[], maxSeries: number, onOverflow: () => void) {
    this.#histogram = histogram;
    this.#keys = keys;
    this.#maxSeries = maxSeries;
    this.#onOverflow = onOverflow;
  }

  get series(): number {
    return this.#seen.size;
  }

  record(value: number, span: ReadableSpan): void {
    const attributes: Attributes = {};
    const service = span.resource.attributes[SERVICE_NAME];
    let identity = typeof service === 'string' ? service : '';
    if (service !== undefined) attributes[SERVICE_NAME] = service;
    for (const key of this.#keys) {
      const v: AttributeValue | undefined = span.attributes[key];
      // A key absent and a key empty are different series: the separator
      // says which one it was.
      identity += v === undefined ? '\u0000' : `\u0001${String(v)}`;
      if (v !== undefined) attributes[key] = v;
    }
    if (!this.#seen.has(identity)) {
      if (this.#seen.size >= this.#maxSeries) {
        this.#onOverflow();
        this.#histogram.record(value, OVERFLOW);
        return;
      }
      this.#seen.add(identity);
    }
    this.#histogram.record(value, attributes);
  }
}

export class RedMetrics implements SpanSink {
  readonly #httpServer: BoundedHistogram;
  readonly #httpClient: BoundedHistogram;
  readonly #rpcServer: BoundedHistogram;
  readonly #rpcClient: BoundedHistogram;
  #seriesOverflow = 0;

  constructor(meter: Meter, options: { maxSeries: number }) {
    const overflow = (): void => {
      this.#seriesOverflow++;
    };
    const http = (name: string, description: string, keys: string[]) =>
      new BoundedHistogram(meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: HTTP_DURATION_BUCKETS_S } }), keys, options.maxSeries, overflow);
    const rpc = (name: string, description: string, keys: string[]) =>
      new BoundedHistogram(meter.createHistogram(name, { unit: 'ms', description, advice: { explicitBucketBoundaries: RPC_DURATION_BUCKETS_MS } }), keys, options.maxSeries, overflow);
    this.#httpServer = http('http.server.request.duration', 'Duration of HTTP server requests, seen by sonde', HTTP_SERVER_KEYS);
    this.#httpClient = http('http.client.request.duration', 'Duration of HTTP client requests, seen by sonde', HTTP_CLIENT_KEYS);
    this.#rpcServer = rpc('rpc.server.duration', 'Duration of inbound RPCs, seen by sonde', RPC_SERVER_KEYS);
    this.#rpcClient = rpc('rpc.client.duration', 'Duration of outbound RPCs, seen by sonde', RPC_CLIENT_KEYS);
  }

  get counters(): RedMetricsCounters {
    return {
      seriesOverflow: this.#seriesOverflow,
      series: this.#httpServer.series + this.#httpClient.series + this.#rpcServer.series + this.#rpcClient.series,
    };
  }

  push(span: ReadableSpan): void {
    const seconds = span.duration[0] + span.duration[1] / 1e9;
    const server = span.kind === SpanKind.SERVER;
    if (!server && span.kind !== SpanKind.CLIENT) return;
    if (span.attributes['rpc.system'] !== undefined) {
      (server ? this.#rpcServer : this.#rpcClient).record(seconds * 1000, span);
    } else if (span.attributes['http.request.method'] !== undefined) {
      (server ? this.#httpServer : this.#httpClient).record(seconds, span);
    }
  }

  pushAll(spans: readonly ReadableSpan[]): void {
    for (const span of spans) this.push(span);
  }
}
