/**
 * Reads sonde's configuration from the command line and the environment
 * (flag, then SONDE_*, then the standard OTEL_* variable, then the default),
 * validates it and resolves the exporters. Errors name the flag or variable.
 */
import type { Selection } from '../discovery';
import { OPTION_SPECS, type OptionSpec } from './options';

export type ExporterConfig =
  | { kind: 'otlp'; protocol: 'grpc' | 'http/protobuf'; endpoint: string; headers: Record<string, string> }
  | { kind: 'zipkin'; endpoint: string }
  | { kind: 'console' };

export type MetricsExporterConfig =
  | { kind: 'otlp'; protocol: 'grpc' | 'http/protobuf'; endpoint: string; headers: Record<string, string> }
  | { kind: 'prometheus'; host: string; port: number }
  | { kind: 'console' };

export interface MetricsConfig {
  exporters: MetricsExporterConfig[];
  exportIntervalMs: number;
  maxSeries: number;
}

export interface ViewerConfig {
  enabled: boolean;
  host: string;
  port: number;
  maxSpans: number;
  /** Above this rate of spans, the store holds a sample of traces. */
  maxSpansPerSecond: number;
}

export interface SondeConfig {
  selection: Selection;
  viewer: ViewerConfig;
  exporters: ExporterConfig[];
  metrics: MetricsConfig;
  routes: string[];
  /** Which traces reach the exporters. */
  sampler: SamplerConfig;
  queue: { maxQueueSize: number; maxQueueBytes: number; maxExportBatchSize: number; maxExportBatchBytes: number; scheduledDelayMs: number; exportTimeoutMs: number; maxAttempts: number };
  capture: { payloadCaptureBytes: number; ringBufferBytes: number; responseTimeoutMs: number; maxConnections: number };
  /** The addon may encode the spans it can (plain HTTP/1 exchanges, gRPC calls, plain HTTP/2 streams) when every sink takes them; off with --no-native-spans. */
  nativeSpans: boolean;
  statsIntervalMs: number;
  discoveryIntervalMs: number;
  nice: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  logFormat: 'pretty' | 'json';
  help: boolean;
  version: boolean;
}

/** OTEL_TRACES_SAMPLER's values that sonde implements (src/pipeline/TraceSampler.ts). */
export const SAMPLER_NAMES = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

export interface SamplerConfig {
  name: SamplerName;
  /** The fraction of traces the ratio samplers keep, 0 to 1 (1 for the others). */
  ratio: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Raw = Map<string, { values: string[]; source: string }>;

function readRaw(argv: readonly string[], env: NodeJS.ProcessEnv): Raw {
  const byFlag = new Map(OPTION_SPECS.map((s) => [s.flag, s]));
  const raw: Raw = new Map();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      raw.set('help', { values: ['true'], source: arg });
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byFlag.get(name);
    if (!spec) throw new ConfigError(`unknown argument "${arg}" (see sonde --help)`);
    let value: string;
    if (spec.kind === 'flag') value = 'true';
    else if (eq > 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i];
    else throw new ConfigError(`${spec.flag} needs a value (${spec.valueName ?? 'VALUE'})`);
    const prior = raw.get(spec.key);
    const repeatable = spec.kind === 'list' || spec.kind === 'intList';
    if (prior && repeatable) prior.values.push(value);
    else raw.set(spec.key, { values: [value], source: spec.flag });
  }
  for (const spec of OPTION_SPECS) {
    if (raw.has(spec.key)) continue;
    for (const name of [spec.env, ...(spec.otelEnv ?? [])]) {
      const v = name ? env[name] : undefined;
      if (v !== undefined && v.trim() !== '') {
        raw.set(spec.key, { values: [v], source: name });
        break;
      }
    }
  }
  return raw;
}

function specOf(key: string): OptionSpec {
  const spec = OPTION_SPECS.find((s) => s.key === key);
  if (!spec) throw new Error(`no option ${key}`);
  return spec;
}

function str(raw: Raw, key: string): string | undefined {
  return raw.get(key)?.values[0] ?? specOf(key).default;
}

function list(raw: Raw, key: string): string[] {
  return (raw.get(key)?.values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

function int(raw: Raw, key: string, min: number, max: number): number {
  const entry = raw.get(key);
  const text = entry?.values[0] ?? specOf(key).default;
  const value = text === undefined || text.trim() === '' ? NaN : Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${entry?.source ?? specOf(key).flag} must be an integer from ${min} to ${max} (got "${text}")`);
  }
  return value;
}

function intList(raw: Raw, key: string, min: number, max: number): number[] {
  const source = raw.get(key)?.source ?? specOf(key).flag;
  return list(raw, key).map((text) => {
    const value = text.trim() === '' ? NaN : Number(text);
    if (!Number.isInteger(value) || value < min || value > max) throw new ConfigError(`${source} must be an integer from ${min} to ${max} (got "${text}")`);
    return value;
  });
}

/** "k1=v1,k2=v2" with percent-encoded values, as OTEL_EXPORTER_OTLP_HEADERS has them. */
export function parseHeaderList(text: string | undefined, source: string): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!text) return headers;
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0 || part.slice(0, eq).trim() === '') throw new ConfigError(`${source}: "${part}" is not KEY=VALUE`);
    let value = part.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      // keep the raw value: a literal '%' is better sent than refused
    }
    headers[part.slice(0, eq).trim().toLowerCase()] = value;
  }
  return headers;
}

function resolveExporters(raw: Raw): ExporterConfig[] {
  const explicit = list(raw, 'exporters').map((e) => e.toLowerCase());
  const otlpSet = raw.has('otlpEndpoint');
  const kinds = explicit.length > 0 ? explicit : [otlpSet ? 'otlp' : 'console'];
  const source = raw.get('exporters')?.source ?? '--exporter';
  const out: ExporterConfig[] = [];
  for (const kind of new Set(kinds)) {
    if (kind === 'none') continue;
    if (kind === 'console') out.push({ kind: 'console' });
    else if (kind === 'zipkin') out.push({ kind: 'zipkin', endpoint: validUrl(str(raw, 'zipkinEndpoint')!, raw.get('zipkinEndpoint')?.source ?? '--zipkin-endpoint') });
    else if (kind === 'otlp') {
      const protocol = otlpProtocol(raw);
      const given = raw.get('otlpEndpoint');
      let endpoint = given?.values[0] ?? (protocol === 'grpc' ? 'http://localhost:4317' : 'http://localhost:4318');
      // Per the OTLP exporter spec, the signal-less variable is a base URL
      // for HTTP and gets /v1/traces appended; the traces one is used as is.
      if (protocol === 'http/protobuf' && given?.source !== 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' && !/\/v1\/traces\/?$/.test(endpoint)) {
        endpoint = `${endpoint.replace(/\/+$/, '')}/v1/traces`;
      }
      out.push({ kind: 'otlp', protocol, endpoint: validUrl(endpoint, given?.source ?? '--otlp-endpoint'), headers: parseHeaderList(str(raw, 'otlpHeaders'), raw.get('otlpHeaders')?.source ?? '--otlp-headers') });
    } else {
      throw new ConfigError(`${source}: unknown exporter "${kind}" (use otlp, zipkin, console or none)`);
    }
  }
  return out;
}

function otlpProtocol(raw: Raw): 'grpc' | 'http/protobuf' {
  const protocol = (str(raw, 'otlpProtocol') ?? 'grpc').toLowerCase();
  if (protocol !== 'grpc' && protocol !== 'http/protobuf') {
    throw new ConfigError(`${raw.get('otlpProtocol')?.source ?? '--otlp-protocol'} must be grpc or http/protobuf (got "${protocol}"; http/json is not supported)`);
  }
  return protocol;
}

/**
 * Metrics go where traces go unless told otherwise: OTLP when an OTLP
 * endpoint is set (to the same collector, through the signal-less base
 * URL), else nowhere. The console would drown the span lines.
 */
function resolveMetrics(raw: Raw): MetricsConfig {
  const explicit = list(raw, 'metricsExporter').map((e) => e.toLowerCase());
  const otlpSet = raw.has('otlpEndpoint') || raw.has('otlpMetricsEndpoint');
  const kinds = explicit.length > 0 ? explicit : otlpSet ? ['otlp'] : [];
  const source = raw.get('metricsExporter')?.source ?? '--metrics-exporter';
  const exporters: MetricsExporterConfig[] = [];
  for (const kind of new Set(kinds)) {
    if (kind === 'none') continue;
    if (kind === 'console') exporters.push({ kind: 'console' });
    else if (kind === 'prometheus') exporters.push({ kind: 'prometheus', host: str(raw, 'prometheusHost') ?? 'localhost', port: int(raw, 'prometheusPort', 0, 65535) });
    else if (kind === 'otlp') {
      const protocol = otlpProtocol(raw);
      const own = raw.get('otlpMetricsEndpoint');
      // The traces' endpoint counts only as a base: a signal-specific
      // traces URL says nothing about where metrics go.
      const traces = raw.get('otlpEndpoint');
      const base = traces && traces.source !== 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' ? traces.values[0].replace(/\/v1\/traces\/?$/, '') : undefined;
      let endpoint = own?.values[0] ?? base ?? (protocol === 'grpc' ? 'http://localhost:4317' : 'http://localhost:4318');
      if (protocol === 'http/protobuf' && !own && !/\/v1\/metrics\/?$/.test(endpoint)) endpoint = `${endpoint.replace(/\/+$/, '')}/v1/metrics`;
      exporters.push({ kind: 'otlp', protocol, endpoint: validUrl(endpoint, own?.source ?? traces?.source ?? '--otlp-metrics-endpoint'), headers: parseHeaderList(str(raw, 'otlpHeaders'), raw.get('otlpHeaders')?.source ?? '--otlp-headers') });
    } else {
      throw new ConfigError(`${source}: unknown metrics exporter "${kind}" (use otlp, prometheus, console or none)`);
    }
  }
  return { exporters, exportIntervalMs: int(raw, 'metricExportIntervalMs', 100, 86_400_000), maxSeries: int(raw, 'maxMetricSeries', 1, 1_000_000) };
}

/** A flag given on the command line, or its variable set to anything but 0, false or no. */
function flagSet(raw: Raw, key: string): boolean {
  const given = raw.get(key);
  return given !== undefined && !['0', 'false', 'no'].includes(given.values[0].toLowerCase());
}

function resolveViewer(raw: Raw): ViewerConfig {
  const given = raw.get('uiAddress');
  const text = str(raw, 'uiAddress') ?? '127.0.0.1:16680';
  const m = text.match(/^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) throw new ConfigError(`${given?.source ?? '--ui-address'} must be HOST:PORT, e.g. 127.0.0.1:16680 or [::1]:16680 (got "${text}")`);
  return { enabled: !flagSet(raw, 'noUi'), host: m[1] ?? m[2], port, maxSpans: int(raw, 'uiMaxSpans', 100, 10_000_000), maxSpansPerSecond: int(raw, 'uiMaxSpansPerSecond', 1, 10_000_000) };
}

function resolveSampler(raw: Raw): SamplerConfig {
  const given = raw.get('sampler');
  const name = (str(raw, 'sampler') ?? 'always_on').trim().toLowerCase();
  if (!(SAMPLER_NAMES as readonly string[]).includes(name)) {
    throw new ConfigError(`${given?.source ?? '--sampler'} must be one of ${SAMPLER_NAMES.join(', ')} (got "${name}"${/jaeger|xray/.test(name) ? '; remote samplers are not supported' : ''})`);
  }
  // The argument means something to the ratio samplers only; the others
  // ignore it, as OpenTelemetry SDKs do.
  if (!name.endsWith('traceidratio')) return { name: name as SamplerName, ratio: 1 };
  const argGiven = raw.get('samplerArg');
  const text = (str(raw, 'samplerArg') ?? '1.0').trim();
  const ratio = text === '' ? NaN : Number(text);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new ConfigError(`${argGiven?.source ?? '--sampler-arg'} must be a fraction from 0 to 1, the share of traces ${name} keeps (got "${text}")`);
  }
  return { name: name as SamplerName, ratio };
}

function validUrl(text: string, source: string): string {
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
    return text;
  } catch {
    throw new ConfigError(`${source} must be an http:// or https:// URL (got "${text}")`);
  }
}

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): SondeConfig {
  const raw = readRaw(argv, env);
  // OTEL_LOG_LEVEL may be set for other SDKs on the host: take its values too.
  const OTEL_LEVELS: Record<string, string> = { verbose: 'debug', all: 'debug', warning: 'warn', none: 'error' };
  const givenLevel = (str(raw, 'logLevel') ?? 'info').toLowerCase();
  const logLevel = OTEL_LEVELS[givenLevel] ?? givenLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new ConfigError(`${raw.get('logLevel')?.source ?? '--log-level'} must be debug, info, warn or error`);
  const logFormat = (str(raw, 'logFormat') ?? 'pretty').toLowerCase();
  if (logFormat !== 'pretty' && logFormat !== 'json') throw new ConfigError(`${raw.get('logFormat')?.source ?? '--log-format'} must be pretty or json`);
  const ringBufferBytes = int(raw, 'ringBufferBytes', 1 << 16, 1 << 30);
  if ((ringBufferBytes & (ringBufferBytes - 1)) !== 0) throw new ConfigError(`${raw.get('ringBufferBytes')?.source} must be a power of two (got ${ringBufferBytes})`);
  const hooks = (str(raw, 'hooks') ?? 'per-syscall').toLowerCase();
  if (hooks === 'raw') throw new ConfigError(`${raw.get('hooks')?.source ?? '--hooks'} raw was removed: reads are now seen at syscall exit alone, which the per-syscall tracepoints do for less (use per-syscall, the only hook set; docs/design-notes.md has the figures)`);
  if (hooks !== 'per-syscall') throw new ConfigError(`${raw.get('hooks')?.source ?? '--hooks'} must be per-syscall (got "${hooks}")`);
  return {
    selection: { pids: intList(raw, 'pids', 1, 0x7fffffff), exes: list(raw, 'exes'), openPorts: intList(raw, 'openPorts', 1, 65535) },
    viewer: resolveViewer(raw),
    exporters: resolveExporters(raw),
    metrics: resolveMetrics(raw),
    routes: list(raw, 'routes'),
    sampler: resolveSampler(raw),
    queue: {
      maxQueueSize: int(raw, 'maxQueueSize', 1, 10_000_000),
      maxQueueBytes: int(raw, 'maxQueueBytes', 1 << 16, 2 ** 32),
      maxExportBatchSize: int(raw, 'maxExportBatchSize', 1, 100_000),
      maxExportBatchBytes: int(raw, 'maxExportBatchBytes', 1 << 12, 1 << 30),
      scheduledDelayMs: int(raw, 'scheduleDelayMs', 1, 600_000),
      exportTimeoutMs: int(raw, 'exportTimeoutMs', 1, 600_000),
      maxAttempts: int(raw, 'exportAttempts', 1, 10),
    },
    capture: {
      payloadCaptureBytes: int(raw, 'payloadCaptureBytes', 64, 4096),
      ringBufferBytes,
      responseTimeoutMs: int(raw, 'responseTimeoutMs', 1, 3_600_000),
      maxConnections: int(raw, 'maxConnections', 16, 4_000_000),
    },
    nativeSpans: !flagSet(raw, 'noNativeSpans'),
    statsIntervalMs: int(raw, 'statsIntervalMs', 0, 86_400_000),
    discoveryIntervalMs: int(raw, 'discoveryIntervalMs', 50, 600_000),
    nice: int(raw, 'nice', 0, 19),
    logLevel: logLevel as SondeConfig['logLevel'],
    logFormat,
    help: raw.has('help'),
    version: raw.has('version'),
  };
}

export function helpText(): string {
  const lines = [
    'sonde: traces unmodified HTTP/1.x, HTTP/2 and gRPC services with eBPF and exports OpenTelemetry spans',
    '',
    'Usage: sudo sonde [options]',
    '  sudo sonde --open-port 8080       trace whatever listens on 8080, and the calls it makes',
    '  sudo sonde --exe node --exe python3',
    '  sudo sonde --pid 1234',
    '  sudo sonde                        trace every process on the host that speaks HTTP',
    '',
    'Each option can also be set by the environment variable after it; standard',
    'OTEL_* variables are honoured where listed. A flag wins over a variable.',
  ];
  for (const group of ['Selection', 'Export', 'Metrics', 'Viewer', 'Capture', 'Operation'] as const) {
    lines.push('', `${group}:`);
    for (const s of OPTION_SPECS.filter((o) => o.group === group)) {
      const flag = s.kind === 'flag' ? s.flag : `${s.flag} ${s.valueName ?? 'VALUE'}`;
      const vars = [s.env, ...(s.otelEnv ?? [])].filter(Boolean).join(', ');
      const def = s.default !== undefined ? ` (default ${s.default})` : '';
      lines.push(`  ${flag}`, `      ${s.help}${def}${vars ? `\n      env: ${vars}` : ''}`);
    }
  }
  return lines.join('\n');
}
