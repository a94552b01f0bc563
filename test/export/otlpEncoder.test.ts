/**
 * The golden test of sonde's own OTLP encoder: the same spans through the
 * OTel JS serializer (ProtobufTraceSerializer, the reference) and through
 * OtlpSpanEncoder + OtlpRequestEncoder, both decoded with the official OTLP
 * protobuf definitions (test/fixtures/otlp-proto), must give the same
 * ExportTraceServiceRequest, field for field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { SpanKind, SpanStatusCode, TraceFlags, context, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import * as grpc from '@grpc/grpc-js';
import { ExportResultCode, TraceState, type ExportResult } from '@opentelemetry/core';
import { OtlpRequestEncoder, OtlpSpanEncoder } from '../../src/export/otlp/encodeTraces';
import { RequestBuffers } from '../../src/export/otlp/RequestBuffers';
import { OtlpEncodedExporter } from '../../src/export/otlp/OtlpEncodedExporter';
import { ProtoWriter } from '../../src/export/otlp/ProtoWriter';
import { buildSpan, type SpanBuildContext } from '../../src/spans/buildSpan';
import { WireSpan } from '../../src/spans/WireSpan';
import { compileRoutes } from '../../src/spans/routes';
import { MonotonicClock } from '../../src/native/clock';
import { ExchangeProtocol, LinkSource } from '../../src/native/exchangeDecoder';
import { EXCHANGE_DEFAULTS, exchangeOf } from '../support/exchange';
import { fields, h2Exchange, withTrailers } from '../protocols/http2/fixtures';

const PROTO_ROOT = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'otlp-proto');
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(PROTO_ROOT, target);
root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: true });
const ExportTraceServiceRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

function decoded(bytes: Uint8Array): unknown {
  const message = ExportTraceServiceRequest.decode(bytes);
  // Every field, defaults included, 64-bit values as exact strings, bytes as hex.
  return ExportTraceServiceRequest.toObject(message, { longs: String, enums: Number, bytes: String, defaults: true, arrays: true });
}

function viaSdk(spans: ReadableSpan[]): unknown {
  return decoded(ProtobufTraceSerializer.serializeRequest(spans)!);
}

function viaSonde(spans: ReadableSpan[], encoder = new OtlpSpanEncoder({ slabBytes: 4096 })): unknown {
  return decoded(new OtlpRequestEncoder().encode(spans.map((s) => encoder.encode(s))));
}

const REAL_NS = 1_700_000_000_999_999_999n;
const MONO_NS = 2_000_000_000n;

function buildContext(resourceAttributes: Record<string, string | number>): SpanBuildContext {
  return {
    clock: new MonotonicClock(() => [REAL_NS, MONO_NS], { nowMs: () => 0, refreshEveryMs: 1e12 }),
    resource: resourceFromAttributes(resourceAttributes),
    scope: { name: 'sonde', version: '0.1.0' },
    routes: compileRoutes(['/users/:id']),
  };
}

function built(c: SpanBuildContext, x: Parameters<typeof buildSpan>[0]): ReadableSpan {
  const result = buildSpan(x, c);
  assert.ok(result.ok, `span not built: ${JSON.stringify(result)}`);
  return result.span;
}

function http1(overrides: Partial<typeof EXCHANGE_DEFAULTS>, request: string, response: string): Parameters<typeof buildSpan>[0] {
  return exchangeOf(
    { ...EXCHANGE_DEFAULTS, ...overrides },
    { before: Buffer.from('xx'), request: Buffer.from(request, 'latin1'), between: Buffer.from('yy'), response: Buffer.from(response, 'latin1'), after: Buffer.from('zz') },
  );
}

/** Spans as the pipeline builds them: HTTP/1 and HTTP/2/gRPC, both roles, both linkings, errors, two processes. */
function pipelineSpans(): ReadableSpan[] {
  const checkout = buildContext({ 'service.name': 'checkout', 'process.pid': 4242, 'host.name': 'h', 'process.command_args': 'node server.js' });
  const payments = buildContext({ 'service.name': 'paiements-é', 'process.pid': 77 });
  const longPath = `/search?q=${'ü'.repeat(300)}&token=secret`;
  return [
    built(checkout, http1({}, 'GET /users/42?page=2 HTTP/1.1\r\nHost: shop.local:8080\r\nUser-Agent: curl/8.0\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n')),
    built(checkout, http1({ role: 'client', parentSpanId: 'b7ad6b7169203331', linkSource: LinkSource.CausingRead, remotePort: 9000, requestBytes: 120, responseBytes: 4_000_000_000 }, 'POST /pay HTTP/1.1\r\nHost: payments:9000\r\n\r\n', 'HTTP/1.1 503 Service Unavailable\r\n\r\n')),
    built(payments, http1({ traceFlags: 0, spanId: 'ffffffffffffffff' }, `GET ${longPath} HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n`, '')),
    built(payments, http1({ responseStartNs: 0, responseEndNs: 0, requestEndNs: 9_000_000_000_000 }, 'BREW /pot HTTP/1.1\r\n\r\n', '')),
    built(checkout, h2Exchange({})),
    built(
      checkout,
      h2Exchange({
        role: 'client',
        request: fields([':method', 'POST'], [':path', '/demo.Echo/Unary'], [':authority', 'echo:50051'], ['content-type', 'application/grpc']),
        response: withTrailers(fields([':status', '200'], ['content-type', 'application/grpc']), fields(['grpc-status', '14'], ['grpc-message', 'unavailable'])),
      }),
    ),
  ];
}

/** Spans the SDK made, with what sonde's own spans never carry: events, links, trace state, odd attribute values. */
function sdkSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'embedder', 'deployment.environment.name': 'test' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('embedder-scope', '2.0.0');
  const parent = trace.setSpanContext(context.active(), {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b9c7c989f97918e1',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('vendor=a,other=b'),
  });
  const span = tracer.startSpan(
    'op',
    {
      kind: SpanKind.PRODUCER,
      attributes: { s: 'x', i: -5, big: 2 ** 60, f: 1.5, nan: Number.NaN, b: false, arr: ['a', 'b'], nums: [1, 2.5], bools: [true] },
      links: [{ context: { traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceFlags: 0, isRemote: false }, attributes: { why: 'batch' } }],
    },
    parent,
  );
  span.addEvent('retry', { attempt: 2 }, [1_700_000_001, 5]);
  span.addEvent('bare');
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  span.end([1_700_000_002, 999_999_999]);
  tracer.startSpan('internal').end();
  return exporter.getFinishedSpans();
}

test('sonde encodes the pipeline spans as the OTel serializer does', () => {
  const spans = pipelineSpans();
  assert.deepEqual(viaSonde(spans), viaSdk(spans));
});

test('sonde encodes SDK spans with events, links, trace state and every attribute type as the OTel serializer does', () => {
  const spans = sdkSpans();
  assert.deepEqual(viaSonde(spans), viaSdk(spans));
});

test('spans of several resources and scopes, interleaved, are grouped the same way', () => {
  const a = pipelineSpans();
  const b = sdkSpans();
  const interleaved: ReadableSpan[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i]) interleaved.push(a[i]);
    if (b[i]) interleaved.push(b[i]);
  }
  assert.deepEqual(viaSonde(interleaved), viaSdk(interleaved));
});

test('a span whose slab is full goes to a new slab without changing what earlier spans hold', () => {
  const encoder = new OtlpSpanEncoder({ slabBytes: 1024 });
  const spans = pipelineSpans();
  const many = Array.from({ length: 40 }, (_, i) => spans[i % spans.length]);
  const encoded = many.map((s) => encoder.encode(s));
  assert.deepEqual(decoded(new OtlpRequestEncoder().encode(encoded)), viaSdk(many));
});

test('released span records are reused, and a record released twice frees nothing of what is still queued', () => {
  const encoder = new OtlpSpanEncoder({ slabBytes: 1024 });
  const spans = pipelineSpans();
  const first = encoder.encode(spans[0]);
  const kept = encoder.encode(spans[1]);
  // A second release of the same record must not count its slab's spans
  // down again: the slab would be taken for new spans while `kept` lies in it.
  encoder.release(first);
  encoder.release(first);
  // The record comes back for the next span, and only once.
  const reused = encoder.encode(spans[2]);
  assert.equal(reused, first);
  assert.notEqual(encoder.encode(spans[3]), reused);
  const later = Array.from({ length: 40 }, (_, i) => spans[i % spans.length]);
  const laterEncoded = later.map((s) => {
    const e = encoder.encode(s);
    const copy = { ...e, slab: Buffer.from(e.slab.subarray(e.fieldStart, e.start + e.length)) };
    copy.start -= copy.fieldStart;
    copy.fieldStart = 0;
    encoder.release(e);
    return copy;
  });
  assert.deepEqual(decoded(new OtlpRequestEncoder().encode([kept])), viaSdk([spans[1]]));
  assert.deepEqual(decoded(new OtlpRequestEncoder().encode(laterEncoded)), viaSdk(later));
});

test('spans the addon encoded, copied from batch buffers in turn, each keep their own bytes', () => {
  // Two batches' buffers, taken in turn and then again: the encoder keeps
  // a view of the last buffer it read, and must not read a span from it
  // when the span lies in another.
  const sdk = sdkSpans();
  const wire = (s: ReadableSpan): Buffer => {
    const w = new ProtoWriter(4096);
    const one = new OtlpSpanEncoder({ slabBytes: 64 * 1024 }).encode(s);
    w.raw(one.slab.subarray(one.start, one.start + one.length));
    return w.take() as Buffer;
  };
  const first = Buffer.concat([Buffer.from('pad'), ...sdk.map(wire)]);
  const second = Buffer.concat(sdk.map(wire).reverse());
  const at = (batch: Buffer, bytes: Buffer): number => batch.indexOf(bytes);
  const encoder = new OtlpSpanEncoder({ slabBytes: 64 * 1024 });
  const order = [0, 1, 1, 0, 1, 0, 0];
  const copied = order.map((b, i) => {
    const s = sdk[i % sdk.length];
    const bytes = wire(s);
    const batch = b === 0 ? first : second;
    return encoder.copy({ resource: s.resource, instrumentationScope: s.instrumentationScope, bytes: batch, start: at(batch, bytes), length: bytes.length, kind: s.kind, duration: s.duration, attributes: {}, traceId: () => '', traceIdTail: () => 0 });
  });
  const spans = order.map((_, i) => sdk[i % sdk.length]);
  assert.deepEqual(decoded(new OtlpRequestEncoder().encode(copied)), viaSdk(spans));
});

test('lengths of 128 bytes and more, and times that need all 64 bits, are written exactly', () => {
  const resource = resourceFromAttributes({ 'service.name': 'x'.repeat(200) });
  const span = new WireSpan(
    'n'.repeat(20_000),
    SpanKind.SERVER,
    { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 },
    'c'.repeat(16),
    [4_294_967_295, 999_999_999],
    [18_446_744_072, 709_551_615],
    [0, 0],
    { code: SpanStatusCode.OK },
    { ['k'.repeat(130)]: 'v'.repeat(70_000) },
    resource,
    { name: 's' },
  );
  assert.deepEqual(viaSonde([span]), viaSdk([span]));
});

test('ProtoWriter moves a field of any length into place', () => {
  for (const length of [0, 1, 127, 128, 16_383, 16_384, 2_097_152]) {
    const w = new ProtoWriter(16);
    const at = w.beginLength();
    w.raw(Buffer.alloc(length, 7));
    w.endLength(at);
    const reader = protobuf.Reader.create(w.take());
    assert.equal(reader.uint32(), length);
    assert.equal(reader.pos + length, reader.len);
  }
});

test('the spans decode to the values sonde meant (not only to what both encoders agree on)', () => {
  const [server] = pipelineSpans();
  const request = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(new OtlpRequestEncoder().encode([new OtlpSpanEncoder().encode(server)])), {
    longs: String,
    bytes: String,
  }) as { resource_spans: Array<{ scope_spans: Array<{ spans: Array<Record<string, unknown>> }> }> };
  const span = request.resource_spans[0].scope_spans[0].spans[0];
  assert.equal(Buffer.from(span.trace_id as string, 'base64').toString('hex'), EXCHANGE_DEFAULTS.traceId);
  assert.equal(span.name, 'GET /users/:id');
  assert.equal(span.kind, 2); // SPAN_KIND_SERVER
  // 5_000_000_001 monotonic ns + the clock offset.
  assert.equal(span.start_time_unix_nano, String(5_000_000_001n + REAL_NS - MONO_NS));
  assert.equal(ExchangeProtocol.Http1, 1);
});

test('a slab is reused once its spans are released, and spans still queued keep their bytes', () => {
  const spans = pipelineSpans();
  const many = Array.from({ length: 60 }, (_, i) => spans[i % spans.length]);
  const encoder = new OtlpSpanEncoder({ slabBytes: 1024 });
  const first = many.slice(0, 30).map((s) => encoder.encode(s));
  const allocatedBefore = encoder.slabsAllocated;
  // The first 20 are exported; the last 10 of them still wait in the queue.
  for (const e of first.slice(0, 20)) encoder.release(e);
  const second = many.slice(30).map((s) => encoder.encode(s));
  assert.ok(encoder.slabsAllocated < allocatedBefore * 2, `slabs reused: ${allocatedBefore} then ${encoder.slabsAllocated}`);
  const reused = new Set(first.slice(0, 20).map((e) => e.slab));
  assert.ok(second.some((e) => reused.has(e.slab)), 'a released slab is written again');
  assert.ok(!second.some((e) => first.slice(20).some((q) => q.slab === e.slab && q.start < e.start + e.length && e.start < q.start + q.length)), 'no queued span is overwritten');
  assert.deepEqual(decoded(new OtlpRequestEncoder().encode([...first.slice(20), ...second])), viaSdk([...many.slice(20, 30), ...many.slice(30)]));
});

test('schema URLs of resources and scopes, and several of each, are sized and written as the OTel serializer writes them', () => {
  const base = pipelineSpans();
  assert.ok(base.length > 1);
  const withSchema = (i: number): ReadableSpan => {
    const resource = resourceFromAttributes({ 'service.name': `svc-${i % 3}` }, { schemaUrl: i % 3 === 0 ? undefined : `https://opentelemetry.io/schemas/1.${i % 3}.0` });
    const scope = { name: `scope-${i % 2}`, version: '1', schemaUrl: i % 2 ? 'https://example.com/s'.repeat(10) : undefined };
    const s = base[i % base.length];
    const c = s.spanContext();
    return new WireSpan(s.name, s.kind, c, s.parentSpanContext?.spanId ?? '', s.startTime, s.endTime, s.duration, s.status, s.attributes, resource, scope);
  };
  const spans = Array.from({ length: 12 }, (_, i) => withSchema(i));
  assert.deepEqual(viaSonde(spans), viaSdk(spans));
  const encoder = new OtlpSpanEncoder();
  const request = new OtlpRequestEncoder().encode(spans.map((s) => encoder.encode(s)));
  assert.equal(request.buffer.byteLength, request.byteLength, 'written into a buffer of its exact size');
});

/** A gRPC server that keeps each request's bytes and answers after `delayMs(call number)`. */
async function rawTraceServer(delayMs: (n: number) => number = () => 0): Promise<{ port: number; received: Buffer[]; close(): Promise<void> }> {
  const received: Buffer[] = [];
  const passThrough = (b: Buffer): Buffer => b;
  const server = new grpc.Server();
  server.addService(
    { Export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: passThrough, requestDeserialize: passThrough, responseSerialize: passThrough, responseDeserialize: passThrough } },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const n = received.push(call.request);
        setTimeout(() => callback(null, Buffer.alloc(0)), delayMs(n));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, received, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

test('the gRPC exporter sends exactly the request the encoder writes, on the OTel transport, export after export, in one reused buffer', { timeout: 30_000 }, async () => {
  const server = await rawTraceServer();
  const exporter = OtlpEncodedExporter.grpc({ url: `http://127.0.0.1:${server.port}`, metadata: new grpc.Metadata(), timeoutMillis: 10_000, maxBatchBytes: 1 << 20 });
  try {
    const spanEncoder = new OtlpSpanEncoder({ slabBytes: 4096 });
    // Sizes that grow, shrink and grow again: the reused buffer is resized to each.
    const batches = [pipelineSpans(), sdkSpans(), [...pipelineSpans(), ...sdkSpans()], pipelineSpans().slice(0, 1), [...sdkSpans(), ...pipelineSpans()]].map((spans) => spans.map((s) => spanEncoder.encode(s)));
    for (const batch of batches) {
      const result = await new Promise<ExportResult>((resolve) => exporter.export(batch, resolve));
      assert.equal(result.code, ExportResultCode.SUCCESS, String(result.error));
    }
    assert.equal(server.received.length, batches.length);
    const reference = new OtlpRequestEncoder();
    batches.forEach((batch, i) => assert.ok(Buffer.from(reference.encode(batch)).equals(server.received[i]!), `request ${i}: the bytes the encoder wrote`));
    assert.deepEqual({ made: exporter.requestBuffers.made, fresh: exporter.requestBuffers.fresh }, { made: 1, fresh: 0 }, 'one buffer, reused by every export');
  } finally {
    await exporter.shutdown();
    await server.close();
  }
});

test('three exports at once: each has a buffer of its own until its result (two reused, one fresh), and every request arrives as written', { timeout: 30_000 }, async () => {
  const server = await rawTraceServer();
  const exporter = OtlpEncodedExporter.grpc({ url: `http://127.0.0.1:${server.port}`, metadata: new grpc.Metadata(), timeoutMillis: 10_000, maxBatchBytes: 1 << 20 });
  try {
    const spanEncoder = new OtlpSpanEncoder({ slabBytes: 4096 });
    const batches = [[...pipelineSpans(), ...sdkSpans()], pipelineSpans(), sdkSpans()].map((spans) => spans.map((s) => spanEncoder.encode(s)));
    const results = await Promise.all(batches.map((batch) => new Promise<ExportResult>((resolve) => exporter.export(batch, resolve))));
    for (const r of results) assert.equal(r.code, ExportResultCode.SUCCESS, String(r.error));
    const reference = new OtlpRequestEncoder();
    const expected = batches.map((batch) => Buffer.from(reference.encode(batch)));
    assert.equal(server.received.length, 3);
    for (const got of server.received) assert.ok(expected.some((e) => e.equals(got)), 'each request arrives as written');
    assert.ok(expected.every((e) => server.received.some((got) => e.equals(got))), 'every request arrives');
    // Three at once: two reusable buffers, and a fresh one for the third.
    assert.deepEqual({ made: exporter.requestBuffers.made, fresh: exporter.requestBuffers.fresh }, { made: 2, fresh: 1 });
  } finally {
    await exporter.shutdown();
    await server.close();
  }
});

test('RequestBuffers: a buffer is reused only once given back, a request too large gets a fresh one, and a fresh one is never kept', () => {
  const buffers = new RequestBuffers({ maxBytes: 1000, maxBuffers: 2 });
  const a = buffers.take(100);
  const b = buffers.take(900);
  const c = buffers.take(50);
  assert.deepEqual([a.length, b.length, c.length], [100, 900, 50], 'each exactly the size asked for');
  assert.ok(a.buffer !== b.buffer && a.buffer !== c.buffer && b.buffer !== c.buffer, 'none shared while in use');
  assert.equal(a.buffer.byteLength, 100, 'the ArrayBuffer itself has the size: the gRPC transport wraps it whole');
  assert.deepEqual({ made: buffers.made, fresh: buffers.fresh }, { made: 2, fresh: 1 });
  buffers.give(c);
  const e = buffers.take(60);
  assert.notEqual(e.buffer, c.buffer, 'a fresh buffer given back is not kept');
  assert.deepEqual({ made: buffers.made, fresh: buffers.fresh }, { made: 2, fresh: 2 }, 'both reusable ones still in use');
  buffers.give(a);
  const d = buffers.take(700);
  assert.equal(d.buffer, a.buffer, 'the given-back buffer, resized');
  assert.equal(d.buffer.byteLength, 700);
  buffers.give(d);
  buffers.take(1001);
  assert.deepEqual({ made: buffers.made, fresh: buffers.fresh }, { made: 2, fresh: 3 }, 'larger than maxBytes: fresh, though one is free');
  assert.equal((new RequestBuffers({ maxBytes: 1000, maxBuffers: 0 }).take(10).buffer as ArrayBuffer).resizable, false, 'maxBuffers 0: never a reused one');
});

test('gzip-compressed gRPC export (OTEL_EXPORTER_OTLP_COMPRESSION=gzip) writes every request into a fresh buffer, and the requests arrive as written', { timeout: 30_000 }, async () => {
  const server = await rawTraceServer();
  const saved = process.env.OTEL_EXPORTER_OTLP_COMPRESSION;
  process.env.OTEL_EXPORTER_OTLP_COMPRESSION = 'gzip';
  let exporter: OtlpEncodedExporter;
  try {
    exporter = OtlpEncodedExporter.grpc({ url: `http://127.0.0.1:${server.port}`, metadata: new grpc.Metadata(), timeoutMillis: 10_000, maxBatchBytes: 1 << 20 });
  } finally {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_COMPRESSION;
    else process.env.OTEL_EXPORTER_OTLP_COMPRESSION = saved;
  }
  try {
    const spanEncoder = new OtlpSpanEncoder({ slabBytes: 4096 });
    const batches = [pipelineSpans(), sdkSpans()].map((spans) => spans.map((s) => spanEncoder.encode(s)));
    for (const batch of batches) {
      const result = await new Promise<ExportResult>((resolve) => exporter.export(batch, resolve));
      assert.equal(result.code, ExportResultCode.SUCCESS, String(result.error));
    }
    const reference = new OtlpRequestEncoder();
    batches.forEach((batch, i) => assert.ok(Buffer.from(reference.encode(batch)).equals(server.received[i]!), `request ${i}: the bytes the encoder wrote`));
    assert.deepEqual({ made: exporter.requestBuffers.made, fresh: exporter.requestBuffers.fresh }, { made: 0, fresh: 2 });
  } finally {
    await exporter.shutdown();
    await server.close();
  }
});
