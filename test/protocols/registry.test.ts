import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import { ExportChannel } from '../../src/export/ExportChannel';
import { MonotonicClock } from '../../src/native/clock';
import { decodeExchanges, ExchangeProtocol, RECORD_HEADER_BYTES, RECORD_OFFSETS, type Exchange } from '../../src/native/exchangeDecoder';
import { SpanPipeline } from '../../src/pipeline/SpanPipeline';
import { describers, type DescriberRegistry, type ProtocolDescriber } from '../../src/protocols';
import { buildSpan, type BuildResult, type SpanBuildContext } from '../../src/spans/buildSpan';
import { ResourceRegistry } from '../../src/spans/resources';
import { compileRoutes } from '../../src/spans/routes';

/** realtime - monotonic = 1_000_000_000_000_000_000 ns: epoch times read straight off the monotonic ones. */
const EPOCH_OFFSET_NS = 1_000_000_000_000_000_000n;
const TEST_PROTOCOL = 99;

/**
 * One record as the addon writes it, decoded by the real decoder, so that
 * these tests keep up with the record as it gains fields. The heads are
 * HTTP/1: a fake describer must be the one that makes them into a span.
 */
function batch(
  protocol: ExchangeProtocol = ExchangeProtocol.Http1,
  request = Buffer.from('GET /orders/7 HTTP/1.1\r\n\r\n'),
  response = Buffer.from('HTTP/1.1 200 OK\r\n\r\n'),
): Buffer {
  const o = RECORD_OFFSETS;
  const b = Buffer.alloc(RECORD_HEADER_BYTES + request.length + response.length);
  b.writeUInt32LE(b.length, o.record_bytes);
  b.writeUInt8(1, o.role);
  b.writeUInt8(protocol, o.protocol);
  b.writeUInt8(1, o.trace_flags);
  b.writeUInt32LE(4242, o.pid);
  b.writeUInt16LE(2, o.family);
  b.writeUInt32LE(1_000, o.request_start_ns);
  b.writeUInt32LE(2_000, o.request_end_ns);
  b.writeUInt32LE(3_000, o.response_start_ns);
  b.writeUInt32LE(4_000, o.response_end_ns);
  b.write('4bf92f3577b34da6a3ce929d0e0e4736', o.trace_id, 'hex');
  b.write('00f067aa0ba902b7', o.span_id, 'hex');
  b.write('b7ad6b7169203331', o.parent_span_id, 'hex');
  b.write('fake', o.comm, 'latin1');
  b.writeUInt32LE(request.length, o.request_payload_bytes);
  b.writeUInt32LE(response.length, o.response_payload_bytes);
  request.copy(b, RECORD_HEADER_BYTES);
  response.copy(b, RECORD_HEADER_BYTES + request.length);
  return b;
}

function decoded(protocol?: number): Exchange {
  const all: Exchange[] = [];
  decodeExchanges(batch(), (x) => all.push(x));
  assert.equal(all.length, 1);
  return protocol === undefined ? all[0] : ({ ...all[0], protocol } as Exchange);
}

function ctx(protocols?: DescriberRegistry): SpanBuildContext {
  return {
    clock: new MonotonicClock(() => [EPOCH_OFFSET_NS, 0n], { nowMs: () => 0, refreshEveryMs: 1e12 }),
    resource: resourceFromAttributes({ 'service.name': 'svc' }),
    scope: { name: 'sonde' },
    routes: compileRoutes(['/orders/:id']),
    protocols,
  };
}

/** Says something no HTTP/1 span would, from the exchange and the context it is given. */
const fake: ProtocolDescriber<'fake-refused'> = {
  failures: ['fake-refused'],
  describe(x, c) {
    if (x.requestBytes === 1) return { ok: false, reason: 'fake-refused' };
    return {
      ok: true,
      name: 'fake op',
      kind: SpanKind.INTERNAL,
      attributes: { 'fake.route': c.routes.match('/orders/7') ?? 'none', 'fake.pid': x.pid },
      status: { code: SpanStatusCode.ERROR, message: 'fake status' },
      endNs: x.requestEndNs,
    };
  },
};

function span(result: BuildResult) {
  assert.ok(result.ok, `expected a span, got ${result.ok ? '' : result.reason}`);
  return result.span;
}

test('the describer registered for the record\'s protocol id makes the span; the core adds ids, times, resource and scope', () => {
  const s = span(buildSpan(decoded(TEST_PROTOCOL), ctx(new Map([[TEST_PROTOCOL, fake]]))));
  assert.equal(s.name, 'fake op');
  assert.equal(s.kind, SpanKind.INTERNAL);
  assert.deepEqual(s.attributes, { 'fake.route': '/orders/:id', 'fake.pid': 4242 });
  assert.deepEqual(s.status, { code: SpanStatusCode.ERROR, message: 'fake status' });
  // Starts at the request's start, ends where the describer said.
  assert.deepEqual(s.startTime, [1_000_000_000, 1_000]);
  assert.deepEqual(s.endTime, [1_000_000_000, 2_000]);
  assert.deepEqual(s.duration, [0, 1_000]);
  assert.deepEqual(s.spanContext(), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: false });
  assert.equal(s.parentSpanContext?.spanId, 'b7ad6b7169203331');
  assert.equal(s.resource.attributes['service.name'], 'svc');
  assert.deepEqual(s.instrumentationScope, { name: 'sonde' });
});

test('a describer\'s failure comes back as the build failure, reason unchanged', () => {
  const x = { ...decoded(TEST_PROTOCOL), requestBytes: 1 };
  assert.deepEqual(buildSpan(x, ctx(new Map([[TEST_PROTOCOL, fake]]))), { ok: false, reason: 'fake-refused' });
});

test('a protocol id with no describer is an unknown-protocol failure, not a throw', () => {
  assert.deepEqual(buildSpan(decoded(TEST_PROTOCOL), ctx()), { ok: false, reason: 'unknown-protocol' });
  assert.deepEqual(buildSpan(decoded(1), ctx(new Map([[TEST_PROTOCOL, fake]]))), { ok: false, reason: 'unknown-protocol' });
});

test('the built-in registry reads protocol 1 as HTTP/1, protocol 2 as HTTP/2 and gRPC', () => {
  assert.deepEqual([...describers.keys()], [1, 2]);
  const s = span(buildSpan(decoded(1), ctx()));
  assert.equal(s.name, 'GET /orders/:id');
  assert.equal(s.kind, SpanKind.SERVER);
  assert.equal(s.attributes['http.route'], '/orders/:id');
  assert.equal(s.attributes['http.response.status_code'], 200);

  const h2: Exchange[] = [];
  const request = Buffer.from(':method: GET\r\n:scheme: http\r\n:authority: shop:8080\r\n:path: /orders/7\r\n');
  const response = Buffer.from(':status: 200\r\n');
  decodeExchanges(batch(ExchangeProtocol.Http2, request, response), (x) => h2.push(x));
  const s2 = span(buildSpan(h2[0], ctx()));
  assert.equal(s2.name, 'GET /orders/:id');
  assert.equal(s2.attributes['network.protocol.version'], '2');
  assert.equal(s2.attributes['http.response.status_code'], 200);
});

function pipeline(protocols?: DescriberRegistry) {
  const exporter = new InMemorySpanExporter();
  const channel = new ExportChannel('memory', exporter, { maxQueueSize: 10, maxQueueBytes: 1 << 20, maxExportBatchSize: 10, maxExportBatchBytes: 1 << 20, scheduledDelayMs: 1, exportTimeoutMs: 1000 });
  const p = new SpanPipeline({
    clock: ctx().clock,
    resources: new ResourceRegistry({ describe: () => undefined }),
    routes: compileRoutes([]),
    channels: [channel],
    log: pino({ level: 'silent' }),
    protocols,
  });
  return { p, exporter, channel };
}

test('the pipeline counts every reason of the built-in describers, and unknown-protocol, from zero', () => {
  assert.deepEqual(pipeline().p.counters.unparsed, {
    'request-not-http': 0,
    'request-truncated': 0,
    'request-malformed': 0,
    'http2-request-headers-missing': 0,
    'unknown-protocol': 0,
  });
});

test('the pipeline hands a decoded record to the describer of its protocol id, and counts one it has none for', async () => {
  const id = decoded().protocol;
  const known = pipeline(new Map([[id, fake]]));
  known.p.onBatch(batch());
  await known.channel.flush(1000);
  assert.deepEqual(known.exporter.getFinishedSpans().map((s) => s.name), ['fake op']);
  assert.equal(known.p.counters.serverSpans, 1);
  assert.deepEqual(known.p.counters.unparsed, { 'fake-refused': 0, 'unknown-protocol': 0 });

  const unknown = pipeline(new Map([[id + 1, fake]]));
  unknown.p.onBatch(batch());
  await unknown.channel.flush(1000);
  assert.equal(unknown.exporter.getFinishedSpans().length, 0);
  assert.equal(unknown.p.counters.exchanges, 1);
  assert.equal(unknown.p.counters.serverSpans, 0);
  assert.deepEqual(unknown.p.counters.unparsed, { 'fake-refused': 0, 'unknown-protocol': 1 });
});
