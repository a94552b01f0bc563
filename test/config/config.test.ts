import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, helpText, loadConfig, parseHeaderList, type ExporterConfig, type SondeConfig } from '../../src/config/config';
import { OPTION_SPECS } from '../../src/config/options';

function throwsConfig(fn: () => unknown, ...mustMention: Array<string | RegExp>): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.name, 'ConfigError');
  for (const m of mustMention) {
    if (typeof m === 'string') assert.ok(caught.message.includes(m), `message ${JSON.stringify(caught.message)} should mention ${m}`);
    else assert.match(caught.message, m);
  }
  return caught;
}

const DEFAULTS: SondeConfig = {
  selection: { pids: [], exes: [], openPorts: [] },
  viewer: { enabled: true, host: '127.0.0.1', port: 16680, maxSpans: 10000, maxSpansPerSecond: 100 },
  exporters: [{ kind: 'console' }],
  metrics: { exporters: [], exportIntervalMs: 60000, maxSeries: 2000 },
  routes: [],
  sampler: { name: 'always_on', ratio: 1 },
  queue: { maxQueueSize: 262144, maxQueueBytes: 33554432, maxExportBatchSize: 4096, maxExportBatchBytes: 2097152, scheduledDelayMs: 1000, exportTimeoutMs: 10000, maxAttempts: 3 },
  capture: { payloadCaptureBytes: 1024, ringBufferBytes: 4 * 1024 * 1024, responseTimeoutMs: 30000, maxConnections: 65536 },
  nativeSpans: true,
  statsIntervalMs: 5000,
  discoveryIntervalMs: 1000,
  nice: 10,
  logLevel: 'info',
  logFormat: 'pretty',
  help: false,
  version: false,
};

// ---------------------------------------------------------------------------
// Defaults and precedence
// ---------------------------------------------------------------------------

test('no flags and an empty environment give the defaults', () => {
  assert.deepEqual(loadConfig([], {}), DEFAULTS);
});

test('unrelated environment variables are ignored', () => {
  assert.deepEqual(loadConfig([], { PATH: '/usr/bin', HOME: '/root', OTEL_SERVICE_NAME: 'x' }), DEFAULTS);
});

test('precedence: flag > SONDE_* > OTEL_* > default', () => {
  const env = { SONDE_MAX_QUEUE_SIZE: '20', OTEL_BSP_MAX_QUEUE_SIZE: '30' };
  assert.equal(loadConfig(['--max-queue-size', '10'], env).queue.maxQueueSize, 10);
  assert.equal(loadConfig([], env).queue.maxQueueSize, 20);
  assert.equal(loadConfig([], { OTEL_BSP_MAX_QUEUE_SIZE: '30' }).queue.maxQueueSize, 30);
  assert.equal(loadConfig([], {}).queue.maxQueueSize, 262144);
});

test('empty or blank variables count as unset', () => {
  assert.equal(loadConfig([], { SONDE_MAX_QUEUE_SIZE: '', OTEL_BSP_MAX_QUEUE_SIZE: '30' }).queue.maxQueueSize, 30);
  assert.equal(loadConfig([], { SONDE_MAX_QUEUE_SIZE: '   ', OTEL_BSP_MAX_QUEUE_SIZE: ' ' }).queue.maxQueueSize, 262144);
});

test('several OTEL_* variables are tried in their listed order', () => {
  const all = { OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '1', OTEL_EXPORTER_OTLP_TIMEOUT: '2', OTEL_BSP_EXPORT_TIMEOUT: '3' };
  assert.equal(loadConfig([], all).queue.exportTimeoutMs, 1);
  assert.equal(loadConfig([], { ...all, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: undefined }).queue.exportTimeoutMs, 2);
  assert.equal(loadConfig([], { OTEL_BSP_EXPORT_TIMEOUT: '3' }).queue.exportTimeoutMs, 3);
  assert.equal(loadConfig([], { ...all, SONDE_EXPORT_TIMEOUT_MS: '4' }).queue.exportTimeoutMs, 4);
  assert.equal(loadConfig(['--export-timeout-ms=5'], { ...all, SONDE_EXPORT_TIMEOUT_MS: '4' }).queue.exportTimeoutMs, 5);
});

test('every int option is read from its flag and its SONDE_* variable', () => {
  const cases: Array<[string, string, string, (c: SondeConfig) => number]> = [
    ['--max-queue-size', 'SONDE_MAX_QUEUE_SIZE', '77', (c) => c.queue.maxQueueSize],
    ['--max-export-batch-size', 'SONDE_MAX_EXPORT_BATCH_SIZE', '77', (c) => c.queue.maxExportBatchSize],
    ['--schedule-delay-ms', 'SONDE_SCHEDULE_DELAY_MS', '77', (c) => c.queue.scheduledDelayMs],
    ['--export-timeout-ms', 'SONDE_EXPORT_TIMEOUT_MS', '77', (c) => c.queue.exportTimeoutMs],
    ['--payload-bytes', 'SONDE_PAYLOAD_CAPTURE_BYTES', '77', (c) => c.capture.payloadCaptureBytes],
    ['--ring-buffer-bytes', 'SONDE_RING_BUFFER_BYTES', '131072', (c) => c.capture.ringBufferBytes],
    ['--response-timeout-ms', 'SONDE_RESPONSE_TIMEOUT_MS', '77', (c) => c.capture.responseTimeoutMs],
    ['--max-connections', 'SONDE_MAX_CONNECTIONS', '77', (c) => c.capture.maxConnections],
    ['--stats-interval-ms', 'SONDE_STATS_INTERVAL_MS', '77', (c) => c.statsIntervalMs],
    ['--discovery-interval-ms', 'SONDE_DISCOVERY_INTERVAL_MS', '77', (c) => c.discoveryIntervalMs],
  ];
  for (const [flag, env, value, get] of cases) {
    assert.equal(get(loadConfig([flag, value], {})), Number(value), flag);
    assert.equal(get(loadConfig([`${flag}=${value}`], {})), Number(value), `${flag}=`);
    assert.equal(get(loadConfig([], { [env]: value })), Number(value), env);
  }
  assert.equal(loadConfig(['--stats-interval-ms', '0'], {}).statsIntervalMs, 0);
});

test('OTEL_BSP_* variables feed the queue settings', () => {
  const c = loadConfig([], { OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10', OTEL_BSP_SCHEDULE_DELAY: '250', OTEL_BSP_EXPORT_TIMEOUT: '5000' });
  assert.deepEqual(c.queue, { maxQueueSize: 100, maxQueueBytes: 33554432, maxExportBatchSize: 10, maxExportBatchBytes: 2097152, scheduledDelayMs: 250, exportTimeoutMs: 5000, maxAttempts: 3 });
});

// ---------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------

test('repeatable and comma-separated lists: --pid 1 --pid 2,3', () => {
  assert.deepEqual(loadConfig(['--pid', '1', '--pid', '2,3'], {}).selection.pids, [1, 2, 3]);
  assert.deepEqual(loadConfig(['--pid=1', '--pid', ' 2 , 3 ,'], {}).selection.pids, [1, 2, 3]);
  assert.deepEqual(loadConfig(['--open-port', '80', '--open-port=443,8080'], {}).selection.openPorts, [80, 443, 8080]);
  assert.deepEqual(loadConfig(['--exe', 'node', '--exe', 'python3,/usr/sbin/*'], {}).selection.exes, ['node', 'python3', '/usr/sbin/*']);
  assert.deepEqual(loadConfig(['--route', '/users/:id', '--route', '/a,/b'], {}).routes, ['/users/:id', '/a', '/b']);
});

test('list variables are comma-separated, and a flag replaces the variable entirely', () => {
  const env = { SONDE_PIDS: '4, 5', SONDE_EXES: 'nginx', SONDE_OPEN_PORTS: '8080', SONDE_ROUTES: '/x/:y' };
  assert.deepEqual(loadConfig([], env).selection, { pids: [4, 5], exes: ['nginx'], openPorts: [8080] });
  assert.deepEqual(loadConfig([], env).routes, ['/x/:y']);
  assert.deepEqual(loadConfig(['--pid', '1'], env).selection.pids, [1]);
});

test('an empty list value selects nothing', () => {
  assert.deepEqual(loadConfig(['--pid='], {}).selection.pids, []);
  assert.deepEqual(loadConfig(['--exe', ',,'], {}).selection.exes, []);
});

test('--flag=value keeps everything after the first "="', () => {
  assert.deepEqual(loadConfig(['--otlp-headers=a=b=c'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317' }).exporters, [
    { kind: 'otlp', protocol: 'grpc', endpoint: 'http://c:4317', headers: { a: 'b=c' } },
  ]);
});

test('a repeated single-value flag: the last one wins', () => {
  assert.equal(loadConfig(['--log-level', 'debug', '--log-level', 'warn'], {}).logLevel, 'warn');
});

test('--help, -h and --version', () => {
  assert.equal(loadConfig(['--help'], {}).help, true);
  assert.equal(loadConfig(['-h'], {}).help, true);
  assert.equal(loadConfig(['--version'], {}).version, true);
  assert.equal(loadConfig(['--version'], {}).help, false);
  // A boolean flag takes no value: the next argument is parsed on its own.
  assert.deepEqual(loadConfig(['--help', '--pid', '3'], {}).selection.pids, [3]);
});

test('log level and format are case-insensitive and read from their variables', () => {
  assert.equal(loadConfig(['--log-level', 'DEBUG'], {}).logLevel, 'debug');
  assert.equal(loadConfig([], { OTEL_LOG_LEVEL: 'error' }).logLevel, 'error');
  assert.equal(loadConfig([], { SONDE_LOG_LEVEL: 'warn', OTEL_LOG_LEVEL: 'error' }).logLevel, 'warn');
  assert.equal(loadConfig([], { SONDE_LOG_FORMAT: 'JSON' }).logFormat, 'json');
  assert.equal(loadConfig(['--log-format', 'pretty'], { SONDE_LOG_FORMAT: 'json' }).logFormat, 'pretty');
});

// ---------------------------------------------------------------------------
// Exporters
// ---------------------------------------------------------------------------

test('default exporter: console without an OTLP endpoint, otlp with one', () => {
  assert.deepEqual(loadConfig([], {}).exporters, [{ kind: 'console' }]);
  assert.deepEqual(loadConfig([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317' }).exporters, [
    { kind: 'otlp', protocol: 'grpc', endpoint: 'http://collector:4317', headers: {} },
  ]);
  assert.deepEqual(loadConfig([], { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector:4317' }).exporters, [
    { kind: 'otlp', protocol: 'grpc', endpoint: 'https://collector:4317', headers: {} },
  ]);
  assert.deepEqual(loadConfig(['--otlp-endpoint', 'http://c:4317'], {}).exporters, [{ kind: 'otlp', protocol: 'grpc', endpoint: 'http://c:4317', headers: {} }]);
  // Only an endpoint switches the default: a protocol or headers alone do not.
  assert.deepEqual(loadConfig([], { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_HEADERS: 'a=b' }).exporters, [{ kind: 'console' }]);
});

test('OTEL_TRACES_EXPORTER lists: "otlp,zipkin", "none", duplicates, case', () => {
  assert.deepEqual(loadConfig([], { OTEL_TRACES_EXPORTER: 'otlp,zipkin' }).exporters, [
    { kind: 'otlp', protocol: 'grpc', endpoint: 'http://localhost:4317', headers: {} },
    { kind: 'zipkin', endpoint: 'http://localhost:9411/api/v2/spans' },
  ]);
  assert.deepEqual(loadConfig([], { OTEL_TRACES_EXPORTER: 'none' }).exporters, []);
  assert.deepEqual(loadConfig([], { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317' }).exporters, []);
  assert.deepEqual(loadConfig([], { OTEL_TRACES_EXPORTER: ' Console , console ,CONSOLE' }).exporters, [{ kind: 'console' }]);
  assert.deepEqual(loadConfig([], { OTEL_TRACES_EXPORTER: 'zipkin', OTEL_EXPORTER_ZIPKIN_ENDPOINT: 'https://zipkin.example/api/v2/spans' }).exporters, [
    { kind: 'zipkin', endpoint: 'https://zipkin.example/api/v2/spans' },
  ]);
  assert.deepEqual(loadConfig(['--exporter', 'console', '--exporter', 'zipkin'], { OTEL_TRACES_EXPORTER: 'otlp' }).exporters, [
    { kind: 'console' },
    { kind: 'zipkin', endpoint: 'http://localhost:9411/api/v2/spans' },
  ]);
  assert.deepEqual(loadConfig([], { SONDE_TRACES_EXPORTER: 'console', OTEL_TRACES_EXPORTER: 'otlp' }).exporters, [{ kind: 'console' }]);
  assert.deepEqual(loadConfig(['--zipkin-endpoint', 'http://z:9411/api/v2/spans', '--exporter=zipkin'], { SONDE_ZIPKIN_ENDPOINT: 'http://other:1/' }).exporters, [
    { kind: 'zipkin', endpoint: 'http://z:9411/api/v2/spans' },
  ]);
});

test('http/protobuf: the base endpoint gets /v1/traces appended, the traces endpoint does not', () => {
  const otlp = (env: NodeJS.ProcessEnv, argv: string[] = []): Extract<ExporterConfig, { kind: 'otlp' }> => {
    const exporters = loadConfig(argv, { OTEL_TRACES_EXPORTER: 'otlp', ...env }).exporters;
    assert.equal(exporters.length, 1);
    const e = exporters[0];
    assert.ok(e.kind === 'otlp');
    return e;
  };
  assert.deepEqual(otlp({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), {
    kind: 'otlp',
    protocol: 'http/protobuf',
    endpoint: 'http://collector:4318/v1/traces',
    headers: {},
  });
  assert.equal(otlp({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).endpoint, 'http://collector:4318/v1/traces');
  assert.equal(otlp({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp' }).endpoint, 'https://gw.example/otlp/v1/traces');
  assert.equal(otlp({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/v1/traces' }).endpoint, 'http://collector:4318/v1/traces');
  assert.equal(otlp({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/custom/path' }).endpoint, 'http://collector:4318/custom/path');
  assert.equal(otlp({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318' }).endpoint, 'http://collector:4318');
  // The traces variable wins over the base one.
  assert.equal(
    otlp({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://b:2' }).endpoint,
    'http://t:1/x',
  );
  // No endpoint at all: the http/protobuf default port, with the path.
  assert.equal(otlp({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }).endpoint, 'http://localhost:4318/v1/traces');
  // gRPC endpoints are never changed.
  assert.equal(otlp({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317/' }).endpoint, 'http://collector:4317/');
  // The traces protocol variable wins over the base one; the value is case-insensitive.
  assert.equal(otlp({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }).protocol, 'grpc');
  assert.equal(otlp({}, ['--otlp-protocol', 'HTTP/PROTOBUF']).protocol, 'http/protobuf');
});

test('OTEL_EXPORTER_OTLP_HEADERS: KEY=VALUE pairs, percent-decoded, names lower-cased', () => {
  const headers = (value: string) =>
    (loadConfig([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_HEADERS: value }).exporters[0] as { headers: Record<string, string> }).headers;
  assert.deepEqual(headers('api-key=secret'), { 'api-key': 'secret' });
  assert.deepEqual(headers('Api-Key=abc%20def, X-Tenant = acme%2Cco ,authorization=Basic%20dXNlcjpwYXNz'), {
    'api-key': 'abc def',
    'x-tenant': 'acme,co',
    authorization: 'Basic dXNlcjpwYXNz',
  });
  assert.deepEqual(headers('a=1,,b=%E2%9C%93,'), { a: '1', b: '\u2713' });
  assert.deepEqual(headers('raw=100%'), { raw: '100%' }, 'a bad escape keeps the raw value');
  assert.deepEqual(headers('empty='), { empty: '' });
  assert.deepEqual(headers('k=v1,k=v2'), { k: 'v2' });
  // The traces variable wins over the base one.
  const c = loadConfig([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 't=1', OTEL_EXPORTER_OTLP_HEADERS: 'b=2' });
  assert.deepEqual((c.exporters[0] as { headers: Record<string, string> }).headers, { t: '1' });
});

test('parseHeaderList directly', () => {
  assert.deepEqual(parseHeaderList(undefined, 'X'), {});
  assert.deepEqual(parseHeaderList('', 'X'), {});
  assert.deepEqual(parseHeaderList(' , ', 'X'), {});
  assert.deepEqual(parseHeaderList('a=%3D%2C', 'X'), { a: '=,' });
  throwsConfig(() => parseHeaderList('novalue', 'MY_SOURCE'), 'MY_SOURCE', '"novalue"', 'KEY=VALUE');
  throwsConfig(() => parseHeaderList('a=1,=2', 'MY_SOURCE'), 'MY_SOURCE', '"=2"');
  throwsConfig(() => loadConfig(['--exporter', 'otlp'], { OTEL_EXPORTER_OTLP_HEADERS: 'a=1,b' }), 'OTEL_EXPORTER_OTLP_HEADERS', '"b"');
  throwsConfig(() => loadConfig(['--exporter', 'otlp', '--otlp-headers', 'x'], {}), '--otlp-headers', '"x"');
});

test(
  'a header with an empty name after a space is refused like one without',
  () => {
    throwsConfig(() => parseHeaderList('a=1, =2', 'MY_SOURCE'), 'MY_SOURCE', '"=2"');
  },
);

// ---------------------------------------------------------------------------
// Errors: each one names the flag or variable
// ---------------------------------------------------------------------------

test('unknown flags and stray arguments', () => {
  throwsConfig(() => loadConfig(['--nope'], {}), '"--nope"', 'unknown argument');
  throwsConfig(() => loadConfig(['--nope=1'], {}), '"--nope=1"');
  throwsConfig(() => loadConfig(['8080'], {}), '"8080"');
  throwsConfig(() => loadConfig(['-p', '1'], {}), '"-p"');
  throwsConfig(() => loadConfig(['--PID', '1'], {}), '"--PID"');
});

test('a flag missing its value', () => {
  throwsConfig(() => loadConfig(['--pid'], {}), '--pid needs a value (PID)');
  throwsConfig(() => loadConfig(['--exporter', 'console', '--otlp-endpoint'], {}), '--otlp-endpoint needs a value (URL)');
});

test('bad ports, pids and integers name their source', () => {
  throwsConfig(() => loadConfig(['--open-port', '70000'], {}), '--open-port', '1 to 65535', '"70000"');
  throwsConfig(() => loadConfig(['--open-port', '0'], {}), '--open-port', '"0"');
  throwsConfig(() => loadConfig(['--open-port', '80,http'], {}), '--open-port', '"http"');
  throwsConfig(() => loadConfig(['--open-port', '80.5'], {}), '--open-port', '"80.5"');
  throwsConfig(() => loadConfig([], { SONDE_OPEN_PORTS: '8080,-1' }), 'SONDE_OPEN_PORTS', '"-1"');
  throwsConfig(() => loadConfig(['--pid', '0'], {}), '--pid', '"0"');
  throwsConfig(() => loadConfig([], { SONDE_PIDS: 'abc' }), 'SONDE_PIDS', '"abc"');
  throwsConfig(() => loadConfig(['--max-queue-size', 'lots'], {}), '--max-queue-size', '"lots"');
  throwsConfig(() => loadConfig(['--max-queue-size', '1.5'], {}), '--max-queue-size', '"1.5"');
  throwsConfig(() => loadConfig([], { OTEL_BSP_MAX_QUEUE_SIZE: '0' }), 'OTEL_BSP_MAX_QUEUE_SIZE', '"0"');
  throwsConfig(() => loadConfig([], { OTEL_BSP_SCHEDULE_DELAY: '-5' }), 'OTEL_BSP_SCHEDULE_DELAY');
  throwsConfig(() => loadConfig(['--payload-bytes', '63'], {}), '--payload-bytes', '64 to 4096');
  throwsConfig(() => loadConfig(['--payload-bytes', '4097'], {}), '--payload-bytes');
  throwsConfig(() => loadConfig(['--max-connections', '15'], {}), '--max-connections', '16 to 4000000');
  throwsConfig(() => loadConfig(['--discovery-interval-ms', '49'], {}), '--discovery-interval-ms');
});

test(
  'an empty value for an integer flag is refused, not read as 0',
  () => {
    throwsConfig(() => loadConfig(['--stats-interval-ms='], {}), '--stats-interval-ms');
  },
);

test('ring buffer size must be a power of two within range', () => {
  throwsConfig(() => loadConfig(['--ring-buffer-bytes', '100000'], {}), '--ring-buffer-bytes must be a power of two (got 100000)');
  throwsConfig(() => loadConfig([], { SONDE_RING_BUFFER_BYTES: '196608' }), 'SONDE_RING_BUFFER_BYTES must be a power of two');
  throwsConfig(() => loadConfig(['--ring-buffer-bytes', '32768'], {}), '--ring-buffer-bytes', '65536 to 1073741824');
  throwsConfig(() => loadConfig(['--ring-buffer-bytes', String(2 ** 31)], {}), '--ring-buffer-bytes');
  assert.equal(loadConfig(['--ring-buffer-bytes', '65536'], {}).capture.ringBufferBytes, 65536);
  assert.equal(loadConfig(['--ring-buffer-bytes', String(2 ** 30)], {}).capture.ringBufferBytes, 2 ** 30);
});

test('unknown exporter names its source', () => {
  throwsConfig(() => loadConfig(['--exporter', 'jaeger'], {}), '--exporter', '"jaeger"', 'otlp, zipkin, console or none');
  throwsConfig(() => loadConfig([], { OTEL_TRACES_EXPORTER: 'otlp,logging' }), 'OTEL_TRACES_EXPORTER', '"logging"');
  throwsConfig(() => loadConfig([], { SONDE_TRACES_EXPORTER: 'prometheus' }), 'SONDE_TRACES_EXPORTER', '"prometheus"');
});

test('http/json and other protocols are refused, naming the variable', () => {
  throwsConfig(() => loadConfig([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), 'OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json', 'grpc or http/protobuf');
  throwsConfig(() => loadConfig(['--exporter', 'otlp'], { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http' }), 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', '"http"');
  throwsConfig(() => loadConfig(['--exporter', 'otlp', '--otlp-protocol', 'udp'], {}), '--otlp-protocol', '"udp"');
  // Not checked when no OTLP exporter is used.
  assert.deepEqual(loadConfig(['--exporter', 'console'], { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).exporters, [{ kind: 'console' }]);
});

test('bad URLs name their source', () => {
  throwsConfig(() => loadConfig(['--otlp-endpoint', 'ftp://c:21'], {}), '--otlp-endpoint must be an http:// or https:// URL', '"ftp://c:21"');
  throwsConfig(() => loadConfig(['--otlp-endpoint', 'collector:4317'], {}), '--otlp-endpoint');
  throwsConfig(() => loadConfig([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }), 'OTEL_EXPORTER_OTLP_ENDPOINT');
  throwsConfig(() => loadConfig([], { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '://x' }), 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  throwsConfig(() => loadConfig([], { SONDE_OTLP_ENDPOINT: 'grpc://c:4317' }), 'SONDE_OTLP_ENDPOINT');
  throwsConfig(() => loadConfig(['--exporter', 'zipkin', '--zipkin-endpoint', 'localhost:9411'], {}), '--zipkin-endpoint', '"localhost:9411"');
  throwsConfig(() => loadConfig([], { OTEL_TRACES_EXPORTER: 'zipkin', OTEL_EXPORTER_ZIPKIN_ENDPOINT: 'file:///tmp/x' }), 'OTEL_EXPORTER_ZIPKIN_ENDPOINT');
});

test('bad log level and format name their source', () => {
  throwsConfig(() => loadConfig(['--log-level', 'loud'], {}), '--log-level', 'debug, info, warn or error');
  throwsConfig(() => loadConfig([], { SONDE_LOG_LEVEL: 'trace' }), 'SONDE_LOG_LEVEL');
  throwsConfig(() => loadConfig(['--log-format', 'xml'], {}), '--log-format', 'pretty or json');
  throwsConfig(() => loadConfig([], { SONDE_LOG_FORMAT: 'text' }), 'SONDE_LOG_FORMAT');
});

test(
  'standard OTEL_LOG_LEVEL values from the OTel SDKs (none, verbose, all) do not stop sonde from starting',
  () => {
    for (const value of ['verbose', 'all', 'none']) assert.doesNotThrow(() => loadConfig([], { OTEL_LOG_LEVEL: value }), value);
  },
);

// ---------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------

test('helpText mentions every flag, every variable and every default in OPTION_SPECS', () => {
  const help = helpText();
  assert.ok(OPTION_SPECS.length >= 20);
  for (const spec of OPTION_SPECS) {
    assert.ok(help.includes(spec.flag), `help should mention ${spec.flag}`);
    if (spec.env) assert.ok(help.includes(spec.env), `help should mention ${spec.env}`);
    for (const v of spec.otelEnv ?? []) assert.ok(help.includes(v), `help should mention ${v}`);
    if (spec.default !== undefined) assert.ok(help.includes(`(default ${spec.default})`), `help should give the default of ${spec.flag}`);
    assert.ok(help.includes(spec.help), `help should carry the text of ${spec.flag}`);
    if (spec.kind !== 'flag') assert.ok(help.includes(`${spec.flag} ${spec.valueName ?? 'VALUE'}`), `${spec.flag} shows its value name`);
  }
  for (const group of ['Selection:', 'Export:', 'Capture:', 'Operation:']) assert.ok(help.includes(`\n${group}\n`), group);
});

test('OPTION_SPECS: keys, flags and variables are unique, and every env var is SONDE_*', () => {
  const keys = OPTION_SPECS.map((s) => s.key);
  const flags = OPTION_SPECS.map((s) => s.flag);
  const envs = OPTION_SPECS.map((s) => s.env).filter(Boolean);
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(new Set(flags).size, flags.length);
  assert.equal(new Set(envs).size, envs.length);
  for (const e of envs) assert.match(e, /^SONDE_[A-Z_]+$/);
  for (const f of flags) assert.match(f, /^--[a-z][a-z-]*$/);
  for (const s of OPTION_SPECS) for (const v of s.otelEnv ?? []) assert.match(v, /^OTEL_[A-Z_]+$/);
});

test('the removed raw hook set is refused with its replacement named, from the flag and the variable', () => {
  throwsConfig(() => loadConfig(['--hooks', 'raw'], {}), '--hooks', 'removed', 'per-syscall');
  throwsConfig(() => loadConfig([], { SONDE_HOOKS: 'raw' }), 'SONDE_HOOKS', 'removed', 'per-syscall');
  assert.doesNotThrow(() => loadConfig(['--hooks', 'per-syscall'], {}));
});

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

test('metrics follow the traces: none without an OTLP endpoint, OTLP to the same collector with one', () => {
  assert.deepEqual(loadConfig([], {}).metrics.exporters, []);
  assert.deepEqual(loadConfig([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317' }).metrics.exporters, [{ kind: 'otlp', protocol: 'grpc', endpoint: 'http://collector:4317', headers: {} }]);
  // http/protobuf: the base URL gets the metrics path, as the traces' gets /v1/traces.
  assert.deepEqual(loadConfig([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s3cret' }).metrics.exporters, [
    { kind: 'otlp', protocol: 'http/protobuf', endpoint: 'http://collector:4318/v1/metrics', headers: { 'api-key': 's3cret' } },
  ]);
});

test('OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is used as is; a traces-only endpoint says nothing about metrics', () => {
  const own = loadConfig([], { OTEL_METRICS_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:4318/custom', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' });
  assert.deepEqual(own.metrics.exporters, [{ kind: 'otlp', protocol: 'http/protobuf', endpoint: 'http://m:4318/custom', headers: {} }]);
  const tracesOnly = loadConfig([], { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4317', OTEL_METRICS_EXPORTER: 'otlp' });
  assert.deepEqual(tracesOnly.metrics.exporters, [{ kind: 'otlp', protocol: 'grpc', endpoint: 'http://localhost:4317', headers: {} }]);
});

test('prometheus and console metrics, with the standard variables', () => {
  const c = loadConfig([], { OTEL_METRICS_EXPORTER: 'prometheus,console', OTEL_EXPORTER_PROMETHEUS_HOST: '0.0.0.0', OTEL_EXPORTER_PROMETHEUS_PORT: '9500', OTEL_METRIC_EXPORT_INTERVAL: '5000' });
  assert.deepEqual(c.metrics, { exporters: [{ kind: 'prometheus', host: '0.0.0.0', port: 9500 }, { kind: 'console' }], exportIntervalMs: 5000, maxSeries: 2000 });
  assert.deepEqual(loadConfig(['--metrics-exporter', 'prometheus'], {}).metrics.exporters, [{ kind: 'prometheus', host: 'localhost', port: 9464 }]);
  assert.deepEqual(loadConfig(['--metrics-exporter', 'none'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317' }).metrics.exporters, []);
});

test('a bad metrics setting names its source', () => {
  throwsConfig(() => loadConfig([], { OTEL_METRICS_EXPORTER: 'statsd' }), 'OTEL_METRICS_EXPORTER', 'statsd');
  throwsConfig(() => loadConfig(['--metrics-exporter', 'prometheus', '--prometheus-port', '70000'], {}), '--prometheus-port');
  throwsConfig(() => loadConfig([], { SONDE_MAX_METRIC_SERIES: '0' }), 'SONDE_MAX_METRIC_SERIES');
});

test('the viewer: on by default at 127.0.0.1:16680; another address, IPv6, or off', () => {
  assert.deepEqual(loadConfig(['--ui-address', '0.0.0.0:8080', '--ui-max-spans', '500', '--ui-max-spans-per-second', '50'], {}).viewer, { enabled: true, host: '0.0.0.0', port: 8080, maxSpans: 500, maxSpansPerSecond: 50 });
  assert.deepEqual(loadConfig([], { SONDE_UI_ADDRESS: '[::1]:0' }).viewer, { enabled: true, host: '::1', port: 0, maxSpans: 10000, maxSpansPerSecond: 100 });
  assert.equal(loadConfig(['--no-ui'], {}).viewer.enabled, false);
  assert.equal(loadConfig([], { SONDE_NO_UI: '1' }).viewer.enabled, false);
  assert.equal(loadConfig([], { SONDE_NO_UI: 'false' }).viewer.enabled, true);
  throwsConfig(() => loadConfig(['--ui-address', '16680'], {}), '--ui-address', 'HOST:PORT');
  throwsConfig(() => loadConfig([], { SONDE_UI_ADDRESS: 'localhost:99999' }), 'SONDE_UI_ADDRESS');
});

test('the sampler: OTEL_TRACES_SAMPLER and its argument, a flag winning over them', () => {
  assert.deepEqual(loadConfig([], { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).sampler, { name: 'traceidratio', ratio: 0.25 });
  assert.deepEqual(loadConfig(['--sampler', 'parentbased_traceidratio', '--sampler-arg', '0'], { OTEL_TRACES_SAMPLER: 'always_off' }).sampler, { name: 'parentbased_traceidratio', ratio: 0 });
  assert.deepEqual(loadConfig([], { OTEL_TRACES_SAMPLER: 'ParentBased_Always_Off' }).sampler, { name: 'parentbased_always_off', ratio: 1 });
  // Only the ratio samplers read the argument, as OpenTelemetry SDKs do.
  assert.deepEqual(loadConfig([], { OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: 'not a number' }).sampler, { name: 'always_on', ratio: 1 });
  assert.deepEqual(loadConfig([], { OTEL_TRACES_SAMPLER: 'traceidratio' }).sampler, { name: 'traceidratio', ratio: 1 });
});

test('a sampler sonde does not have, or a ratio outside 0 to 1, is refused with its source', () => {
  throwsConfig(() => loadConfig([], { OTEL_TRACES_SAMPLER: 'jaeger_remote' }), 'OTEL_TRACES_SAMPLER', 'parentbased_traceidratio', 'remote samplers are not supported');
  throwsConfig(() => loadConfig(['--sampler', 'sometimes'], {}), '--sampler', '"sometimes"');
  throwsConfig(() => loadConfig([], { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' }), 'OTEL_TRACES_SAMPLER_ARG', 'from 0 to 1', '"1.5"');
  throwsConfig(() => loadConfig(['--sampler', 'traceidratio', '--sampler-arg', 'half'], {}), '--sampler-arg', '"half"');
});
