/**
 * Every setting of sonde, once: its flag, its SONDE_* variable (they mirror
 * each other), the standard OTEL_* variable it also honours, its default and
 * its help text. `sonde --help` is generated from this table.
 */
export type OptionKind = 'int' | 'string' | 'list' | 'intList' | 'flag';

export interface OptionSpec {
  key: string;
  flag: string;
  env: string;
  /** Standard variables honoured after the SONDE_* one, in order. */
  otelEnv?: string[];
  kind: OptionKind;
  default?: string;
  valueName?: string;
  help: string;
  group: 'Selection' | 'Export' | 'Metrics' | 'Viewer' | 'Capture' | 'Operation';
}

export const OPTION_SPECS: readonly OptionSpec[] = [
  { key: 'pids', flag: '--pid', env: 'SONDE_PIDS', kind: 'intList', valueName: 'PID', group: 'Selection', help: 'trace this process and its descendants, present and future (repeat or comma-separate)' },
  { key: 'exes', flag: '--exe', env: 'SONDE_EXES', kind: 'list', valueName: 'NAME|GLOB', group: 'Selection', help: 'trace processes by executable name or path glob, e.g. node, python3, "/usr/sbin/*"' },
  { key: 'openPorts', flag: '--open-port', env: 'SONDE_OPEN_PORTS', kind: 'intList', valueName: 'PORT', group: 'Selection', help: 'trace processes listening on this TCP port, and the calls they make' },

  { key: 'exporters', flag: '--exporter', env: 'SONDE_TRACES_EXPORTER', otelEnv: ['OTEL_TRACES_EXPORTER'], kind: 'list', valueName: 'LIST', group: 'Export', help: 'otlp, zipkin, console or none, comma-separated; default otlp when an OTLP endpoint is set, else console' },
  { key: 'otlpEndpoint', flag: '--otlp-endpoint', env: 'SONDE_OTLP_ENDPOINT', otelEnv: ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'], kind: 'string', valueName: 'URL', group: 'Export', help: 'OTLP endpoint (default http://localhost:4317 for grpc, http://localhost:4318 for http/protobuf)' },
  { key: 'otlpProtocol', flag: '--otlp-protocol', env: 'SONDE_OTLP_PROTOCOL', otelEnv: ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'], kind: 'string', default: 'grpc', valueName: 'grpc|http/protobuf', group: 'Export', help: 'OTLP transport' },
  { key: 'otlpHeaders', flag: '--otlp-headers', env: 'SONDE_OTLP_HEADERS', otelEnv: ['OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS'], kind: 'string', valueName: 'K=V,...', group: 'Export', help: 'headers (gRPC metadata) sent with every export, e.g. api-key=secret' },
  { key: 'zipkinEndpoint', flag: '--zipkin-endpoint', env: 'SONDE_ZIPKIN_ENDPOINT', otelEnv: ['OTEL_EXPORTER_ZIPKIN_ENDPOINT'], kind: 'string', default: 'http://localhost:9411/api/v2/spans', valueName: 'URL', group: 'Export', help: 'Zipkin v2 JSON endpoint' },
  { key: 'maxQueueSize', flag: '--max-queue-size', env: 'SONDE_MAX_QUEUE_SIZE', otelEnv: ['OTEL_BSP_MAX_QUEUE_SIZE'], kind: 'int', default: '262144', valueName: 'SPANS', group: 'Export', help: 'spans waiting per exporter; past this (or --max-queue-bytes) they are dropped and counted' },
  { key: 'maxQueueBytes', flag: '--max-queue-bytes', env: 'SONDE_MAX_QUEUE_BYTES', kind: 'int', default: '33554432', valueName: 'BYTES', group: 'Export', help: 'bytes of spans waiting per exporter (OTLP: their encoded size; other exporters: 1536 per span); past this they are dropped and counted' },
  { key: 'maxExportBatchSize', flag: '--max-export-batch-size', env: 'SONDE_MAX_EXPORT_BATCH_SIZE', otelEnv: ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'], kind: 'int', default: '4096', valueName: 'SPANS', group: 'Export', help: 'spans per export request' },
  { key: 'maxExportBatchBytes', flag: '--max-export-batch-bytes', env: 'SONDE_MAX_EXPORT_BATCH_BYTES', kind: 'int', default: '2097152', valueName: 'BYTES', group: 'Export', help: 'bytes per export request, as counted for --max-queue-bytes (an OTel Collector takes 4 MiB by default)' },
  { key: 'scheduleDelayMs', flag: '--schedule-delay-ms', env: 'SONDE_SCHEDULE_DELAY_MS', otelEnv: ['OTEL_BSP_SCHEDULE_DELAY'], kind: 'int', default: '1000', valueName: 'MS', group: 'Export', help: 'longest a span waits before it is sent' },
  { key: 'exportTimeoutMs', flag: '--export-timeout-ms', env: 'SONDE_EXPORT_TIMEOUT_MS', otelEnv: ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_BSP_EXPORT_TIMEOUT'], kind: 'int', default: '10000', valueName: 'MS', group: 'Export', help: 'an export (with its retries) that takes longer is dropped and counted' },
  { key: 'exportAttempts', flag: '--export-attempts', env: 'SONDE_EXPORT_ATTEMPTS', kind: 'int', default: '3', valueName: 'N', group: 'Export', help: 'tries per batch (with backoff 250 ms, 1 s, …) before its spans are dropped and counted' },
  { key: 'sampler', flag: '--sampler', env: 'SONDE_TRACES_SAMPLER', otelEnv: ['OTEL_TRACES_SAMPLER'], kind: 'string', default: 'always_on', valueName: 'NAME', group: 'Export', help: 'which traces are exported: always_on, always_off, traceidratio (a --sampler-arg fraction of traces, by trace id), or parentbased_always_on / parentbased_always_off / parentbased_traceidratio (a trace that came in with a traceparent follows its sampled flag; the others as named). A trace is exported whole or not at all; RED metrics and the viewer still count every request, and what is not exported is counted' },
  { key: 'samplerArg', flag: '--sampler-arg', env: 'SONDE_TRACES_SAMPLER_ARG', otelEnv: ['OTEL_TRACES_SAMPLER_ARG'], kind: 'string', default: '1.0', valueName: 'RATIO', group: 'Export', help: 'the fraction of traces traceidratio and parentbased_traceidratio keep, 0 to 1' },
  { key: 'routes', flag: '--route', env: 'SONDE_ROUTES', kind: 'list', valueName: 'TEMPLATE', group: 'Export', help: 'route template for span names and http.route, e.g. /users/:id (repeatable)' },

  { key: 'metricsExporter', flag: '--metrics-exporter', env: 'SONDE_METRICS_EXPORTER', otelEnv: ['OTEL_METRICS_EXPORTER'], kind: 'list', valueName: 'LIST', group: 'Metrics', help: 'RED metrics (http.server.request.duration, rpc.server.duration, ...) and sonde\'s own counters: otlp, prometheus, console or none, comma-separated; default otlp when an OTLP endpoint is set, else none' },
  { key: 'otlpMetricsEndpoint', flag: '--otlp-metrics-endpoint', env: 'SONDE_OTLP_METRICS_ENDPOINT', otelEnv: ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'], kind: 'string', valueName: 'URL', group: 'Metrics', help: 'OTLP endpoint for metrics (default: the base of --otlp-endpoint, with its protocol and headers)' },
  { key: 'metricExportIntervalMs', flag: '--metric-export-interval-ms', env: 'SONDE_METRIC_EXPORT_INTERVAL_MS', otelEnv: ['OTEL_METRIC_EXPORT_INTERVAL'], kind: 'int', default: '60000', valueName: 'MS', group: 'Metrics', help: 'how often metrics are pushed (otlp, console)' },
  { key: 'prometheusHost', flag: '--prometheus-host', env: 'SONDE_PROMETHEUS_HOST', otelEnv: ['OTEL_EXPORTER_PROMETHEUS_HOST'], kind: 'string', default: 'localhost', valueName: 'HOST', group: 'Metrics', help: 'where the prometheus exporter serves /metrics; another address than localhost exposes the metrics (services, routes, peers) to whoever reaches it' },
  { key: 'prometheusPort', flag: '--prometheus-port', env: 'SONDE_PROMETHEUS_PORT', otelEnv: ['OTEL_EXPORTER_PROMETHEUS_PORT'], kind: 'int', default: '9464', valueName: 'PORT', group: 'Metrics', help: 'port of /metrics (0: any free port, logged)' },
  { key: 'maxMetricSeries', flag: '--max-metric-series', env: 'SONDE_MAX_METRIC_SERIES', kind: 'int', default: '2000', valueName: 'N', group: 'Metrics', help: 'attribute sets kept per histogram; past this, requests go to one overflow series (otel.metric.overflow=true) and are counted' },

  { key: 'uiAddress', flag: '--ui-address', env: 'SONDE_UI_ADDRESS', kind: 'string', default: '127.0.0.1:16680', valueName: 'HOST:PORT', group: 'Viewer', help: 'where the trace viewer (a web page and its JSON API under /api/) is served; another host than 127.0.0.1 shows your traces (paths, peers, headers sonde records) to whoever reaches it' },
  { key: 'noUi', flag: '--no-ui', env: 'SONDE_NO_UI', kind: 'flag', group: 'Viewer', help: 'do not serve the trace viewer' },
  { key: 'uiMaxSpans', flag: '--ui-max-spans', env: 'SONDE_UI_MAX_SPANS', kind: 'int', default: '10000', valueName: 'N', group: 'Viewer', help: 'spans the viewer holds (about 1 KB each); past this the oldest traces are evicted, whole, and counted' },
  { key: 'uiMaxSpansPerSecond', flag: '--ui-max-spans-per-second', env: 'SONDE_UI_MAX_SPANS_PER_SECOND', kind: 'int', default: '100', valueName: 'N', group: 'Viewer', help: 'above this rate the viewer holds a sample of whole traces (by trace id) and counts the rest; its service map scales rates back up. Holding every span at high rates costs sonde more CPU than building them' },

  { key: 'payloadCaptureBytes', flag: '--payload-bytes', env: 'SONDE_PAYLOAD_CAPTURE_BYTES', kind: 'int', default: '1024', valueName: 'BYTES', group: 'Capture', help: 'bytes copied at the start of each message: request line and headers (64-4096)' },
  { key: 'ringBufferBytes', flag: '--ring-buffer-bytes', env: 'SONDE_RING_BUFFER_BYTES', kind: 'int', default: String(4 << 20), valueName: 'BYTES', group: 'Capture', help: 'kernel-to-sonde ring buffer, a power of two (mapped twice, so it counts double in RSS)' },
  { key: 'hooks', flag: '--hooks', env: 'SONDE_HOOKS', kind: 'string', default: 'per-syscall', valueName: 'per-syscall', group: 'Capture', help: 'one syscalls:sys_* tracepoint per hooked syscall, the only hook set (raw was removed: it cost every syscall on the host more)' },
  { key: 'responseTimeoutMs', flag: '--response-timeout-ms', env: 'SONDE_RESPONSE_TIMEOUT_MS', kind: 'int', default: '30000', valueName: 'MS', group: 'Capture', help: 'a request unanswered this long becomes an error span' },
  { key: 'maxConnections', flag: '--max-connections', env: 'SONDE_MAX_CONNECTIONS', kind: 'int', default: '65536', valueName: 'N', group: 'Capture', help: 'connections followed at once; the least recently active is evicted past this' },

  { key: 'noNativeSpans', flag: '--no-native-spans', env: 'SONDE_NO_NATIVE_SPANS', kind: 'flag', group: 'Operation', help: 'build every span in JavaScript: by default the addon encodes the spans of plain HTTP/1 requests, gRPC calls and plain HTTP/2 streams itself when every exporter is OTLP, which costs less CPU and gives the same spans' },
  { key: 'statsIntervalMs', flag: '--stats-interval-ms', env: 'SONDE_STATS_INTERVAL_MS', kind: 'int', default: '5000', valueName: 'MS', group: 'Operation', help: 'how often a line of counters is logged (0: never)' },
  { key: 'discoveryIntervalMs', flag: '--discovery-interval-ms', env: 'SONDE_DISCOVERY_INTERVAL_MS', kind: 'int', default: '1000', valueName: 'MS', group: 'Operation', help: 'how often /proc is scanned for processes that match' },
  { key: 'nice', flag: '--nice', env: 'SONDE_NICE', kind: 'int', default: '10', valueName: 'N', group: 'Operation', help: "sonde's own scheduling niceness (0-19): above 0, the traced services win the CPU when both want it; 0 leaves it alone" },
  { key: 'logLevel', flag: '--log-level', env: 'SONDE_LOG_LEVEL', otelEnv: ['OTEL_LOG_LEVEL'], kind: 'string', default: 'info', valueName: 'LEVEL', group: 'Operation', help: 'debug, info, warn or error' },
  { key: 'logFormat', flag: '--log-format', env: 'SONDE_LOG_FORMAT', kind: 'string', default: 'pretty', valueName: 'pretty|json', group: 'Operation', help: 'pretty lines for people, JSON lines for log shippers' },
  { key: 'help', flag: '--help', env: '', kind: 'flag', group: 'Operation', help: 'show this help' },
  { key: 'version', flag: '--version', env: '', kind: 'flag', group: 'Operation', help: 'show the version' },
];
