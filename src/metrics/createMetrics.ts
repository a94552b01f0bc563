/**
 * The metrics side of sonde: one OTel MeterProvider (the JS metrics SDK)
 * with a reader per configured exporter, the RED histograms fed from the
 * spans (./RedMetrics.ts) and sonde's own counters as observable
 * instruments, so that "no traffic" and "broken" look different on a
 * dashboard too.
 *
 * Every metric has sonde's resource; the traced service a histogram point
 * belongs to is its `service.name` attribute, since one provider serves
 * every traced process (and Prometheus shows resources only in target_info).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metadata } from '@grpc/grpc-js';
import { OTLPMetricExporter as OtlpGrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as OtlpProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader, type IMetricReader, type MetricProducer, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { Logger } from 'pino';
import type { MetricsConfig, MetricsExporterConfig } from '../config/config';
import type { CounterSummary } from '../runtime/counterSummary';
import { SONDE_NAME, SONDE_VERSION } from '../version';
import { RedMetrics } from './RedMetrics';

export interface SondeMetrics {
  /** Takes every span the pipeline builds. */
  readonly sink: RedMetrics;
  /** One line per exporter, for the start-up log. */
  readonly exporterNames: string[];
  /** Starts what serves (Prometheus' /metrics); rejects with a message that says what to change. */
  start(): Promise<void>;
  /** Pushes what is pending (OTLP, console) and stops serving. */
  shutdown(timeoutMs: number): Promise<void>;
}

interface ReaderOf {
  name: string;
  reader: IMetricReader;
  start?: () => Promise<void>;
  stop?: () => Promise<void>;
}

export function createMetrics(config: MetricsConfig, options: { counters: () => CounterSummary | undefined; log: Logger }): SondeMetrics | undefined {
  if (config.exporters.length === 0) return undefined;
  // The RED histograms are aggregated by sonde and read by every reader
  // beside the SDK's own instruments (sonde's counters).
  const sink = new RedMetrics({ maxSeries: config.maxSeries });
  const readers = config.exporters.map((e) => readerFor(e, config.exportIntervalMs, sink, options.log));
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': SONDE_NAME, 'service.version': SONDE_VERSION }),
    readers: readers.map((r) => r.reader),
  });
  const meter = provider.getMeter(SONDE_NAME, SONDE_VERSION);
  observeOwnCounters(meter, options.counters, () => sink.counters);
  let stopped = false;
  return {
    sink,
    get exporterNames() {
      return readers.map((r) => r.name);
    },
    async start() {
      for (const r of readers) await r.start?.();
    },
    async shutdown(timeoutMs) {
      if (stopped) return;
      stopped = true;
      try {
        await provider.shutdown({ timeoutMillis: timeoutMs });
      } catch (error) {
        options.log.warn({ error: String(error) }, 'metrics: the last export did not complete');
      }
      for (const r of readers) await r.stop?.();
    },
  };
}

/**
 * The SDK reports a failed export to a global handler that says nothing by
 * default: a backend that takes traces but not metrics (Jaeger) would fail
 * every interval in silence. Each distinct failure is logged once, with
 * what to change.
 */
function reportingFailures(name: string, exporter: PushMetricExporter, log: Logger): PushMetricExporter {
  const said = new Set<string>();
  const report = (result: ExportResult): void => {
    if (result.code === ExportResultCode.SUCCESS) return;
    const error = result.error?.message ?? 'failed';
    if (said.has(error) || said.size >= 16) return;
    said.add(error);
    log.warn({ exporter: name, error }, 'metrics export failed (set OTEL_METRICS_EXPORTER=none if this backend takes no metrics, or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT to one that does); said once per error');
  };
  return {
    export: (metrics, done) =>
      exporter.export(metrics, (result) => {
        report(result);
        done(result);
      }),
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
    selectAggregationTemporality: exporter.selectAggregationTemporality?.bind(exporter),
    selectAggregation: exporter.selectAggregation?.bind(exporter),
  };
}

function readerFor(e: MetricsExporterConfig, intervalMs: number, red: MetricProducer, log: Logger): ReaderOf {
  const periodic = (name: string, exporter: PushMetricExporter): ReaderOf => ({
    name,
    reader: new PeriodicExportingMetricReader({ exporter: reportingFailures(name, exporter, log), exportIntervalMillis: intervalMs, exportTimeoutMillis: Math.min(30_000, intervalMs), metricProducers: [red] }),
  });
  switch (e.kind) {
    case 'console':
      return periodic('console', new ConsoleMetricExporter());
    case 'otlp': {
      if (e.protocol === 'grpc') {
        const metadata = new Metadata();
        for (const [k, v] of Object.entries(e.headers)) metadata.set(k, v);
        return periodic(`otlp grpc ${e.endpoint}`, new OtlpGrpcMetricExporter({ url: e.endpoint, metadata }));
      }
      return periodic(`otlp http/protobuf ${e.endpoint}`, new OtlpProtoMetricExporter({ url: e.endpoint, headers: e.headers }));
    }
    case 'prometheus': {
      // sonde serves /metrics itself, so that a taken port is a clear
      // error at start and port 0 can be said.
      const exporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [red] });
      const server = http.createServer((req, res) => {
        if (req.url?.split('?')[0] === '/metrics') exporter.getMetricsRequestHandler(req, res);
        else {
          res.statusCode = 404;
          res.end('sonde serves metrics at /metrics\n');
        }
      });
      const reader: ReaderOf = { name: `prometheus http://${e.host}:${e.port}/metrics`, reader: exporter };
      reader.start = () =>
        new Promise<void>((resolve, reject) => {
          server.once('error', (error: NodeJS.ErrnoException) => {
            const what = error.code === 'EADDRINUSE' ? 'is taken' : error.code === 'EADDRNOTAVAIL' ? 'is not an address of this host' : `cannot be used (${error.message})`;
            reject(new Error(`prometheus: ${e.host}:${e.port} ${what}; set OTEL_EXPORTER_PROMETHEUS_PORT (--prometheus-port) or OTEL_EXPORTER_PROMETHEUS_HOST (--prometheus-host)`));
          });
          server.listen(e.port, e.host, () => {
            const port = (server.address() as AddressInfo).port;
            reader.name = `prometheus http://${e.host}:${port}/metrics`;
            log.info({ url: `http://${e.host}:${port}/metrics` }, 'serving metrics for Prometheus');
            resolve();
          });
        });
      reader.stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
      return reader;
    }
  }
}

/** sonde's own counters, read when a reader collects. */
function observeOwnCounters(meter: ReturnType<MeterProvider['getMeter']>, summary: () => CounterSummary | undefined, series: () => RedMetrics['counters']): void {
  const counter = (name: string, unit: string, description: string) => meter.createObservableCounter(name, { unit, description });
  const requests = counter('sonde.requests', '{request}', 'Requests and calls seen (exchanges turned into spans or counted as unparsed)');
  const exported = counter('sonde.spans.exported', '{span}', 'Spans delivered, by the exporter that delivered least');
  const lost = counter('sonde.events.lost', '{event}', 'Messages sonde could not follow: ring buffer full, TLS plaintext whose socket was not known, gaps');
  const dropped = counter('sonde.spans.dropped', '{span}', 'Spans lost on the way out, by cause');
  const sampledOut = counter('sonde.spans.sampled_out', '{span}', 'Spans not exported because the sampler (--sampler) left their trace out');
  const unparsed = counter('sonde.exchanges.unparsed', '{exchange}', 'Exchanges that gave no span: not HTTP, malformed');
  const overflow = counter('sonde.metrics.series.overflow', '{request}', 'Requests recorded in the overflow series of a histogram that had --max-metric-series attribute sets');
  const connections = meter.createObservableGauge('sonde.connections.tracked', { unit: '{connection}', description: 'Connections sonde follows now' });
  meter.addBatchObservableCallback(
    (result) => {
      const s = summary();
      result.observe(overflow, series().seriesOverflow);
      if (!s) return;
      result.observe(requests, s.requests);
      result.observe(exported, s.exported);
      result.observe(lost, s.eventsLost);
      for (const [cause, n] of Object.entries(s.spansDroppedByCause)) result.observe(dropped, n, { 'sonde.drop.cause': cause });
      result.observe(sampledOut, s.spansSampledOut);
      result.observe(unparsed, s.unparsed);
      result.observe(connections, s.connectionsTracked);
    },
    [requests, exported, lost, dropped, sampledOut, unparsed, overflow, connections],
  );
}
