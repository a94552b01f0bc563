// Proves the test receivers against the real OpenTelemetry exporters, so that a
// failing end-to-end test can be blamed on sonde rather than on the harness.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { context, trace, SpanKind, SpanStatusCode, type HrTime } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { startOtlpGrpcReceiver, startZipkinReceiver, type ReceivedSpan, type ReceivedZipkinSpan } from '../support/receivers';

const RESOURCE = {
  'service.name': 'selftest-frontend',
  'service.instance.id': 'pid-4242',
  'process.pid': 4242,
};
const SERVER_ATTRIBUTES = {
  'http.request.method': 'GET',
  'url.path': '/checkout',
  'http.response.status_code': 200,
  'sonde.negative': -42,
  'sonde.ratio': 0.25,
  'sonde.sampled': true,
  'sonde.tags': ['a', 'b'],
};
const CLIENT_ATTRIBUTES = { 'server.address': '127.0.0.1', 'server.port': 8081 };

// Nanosecond-precise values beyond 2^53 ns catch any float conversion on the way.
const SERVER_START: HrTime = [1_700_000_000, 123_456_789];
const SERVER_END: HrTime = [1_700_000_000, 323_456_789];
// Whole microseconds, because Zipkin carries microseconds.
const CLIENT_START: HrTime = [1_700_000_000, 150_000_000];
const CLIENT_END: HrTime = [1_700_000_000, 300_250_000];

const nanos = ([s, ns]: HrTime): bigint => BigInt(s) * 1_000_000_000n + BigInt(ns);
const micros = ([s, ns]: HrTime): number => s * 1e6 + ns / 1e3;

interface EmittedIds {
  traceId: string;
  serverSpanId: string;
  clientSpanId: string;
}

/** Emits a SERVER span and its CLIENT child through `exporter`, then shuts everything down. */
async function emitTwoSpans(exporter: SpanExporter): Promise<EmittedIds> {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(RESOURCE),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('receivers-selftest');
  const server = tracer.startSpan('GET /checkout', {
    kind: SpanKind.SERVER,
    startTime: SERVER_START,
    attributes: SERVER_ATTRIBUTES,
  });
  const client = tracer.startSpan(
    'GET',
    { kind: SpanKind.CLIENT, startTime: CLIENT_START, attributes: CLIENT_ATTRIBUTES },
    trace.setSpan(context.active(), server),
  );
  client.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream said no' });
  client.end(CLIENT_END);
  server.setStatus({ code: SpanStatusCode.OK });
  server.end(SERVER_END);
  await provider.forceFlush();
  await provider.shutdown();
  return {
    traceId: server.spanContext().traceId,
    serverSpanId: server.spanContext().spanId,
    clientSpanId: client.spanContext().spanId,
  };
}

async function recordTwoSpans(): Promise<ReadableSpan[]> {
  // Not InMemorySpanExporter: provider.shutdown() shuts it down, which empties it.
  const kept: ReadableSpan[] = [];
  await emitTwoSpans({
    export(spans, done) {
      kept.push(...spans);
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: () => Promise.resolve(),
  });
  return kept;
}

const exportOnce = (exporter: SpanExporter, spans: ReadableSpan[]): Promise<ExportResult> =>
  new Promise((resolve) => exporter.export(spans, resolve));

function byKind<T extends { kind?: string }>(spans: T[], kind: string): T {
  const found = spans.find((s) => s.kind === kind);
  assert.ok(found, `no ${kind} span among ${JSON.stringify(spans.map((s) => s.kind))}`);
  return found;
}

function pick(record: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, record[k]]));
}

test('OTLP/gRPC receiver round-trips spans from the real OTLPTraceExporter', async (t) => {
  const receiver = await startOtlpGrpcReceiver();
  t.after(() => receiver.close());
  assert.match(receiver.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const ids = await emitTwoSpans(new OTLPTraceExporter({ url: receiver.url }));
  const spans = await receiver.waitFor((s) => s.length >= 2, 5000);

  assert.equal(spans.length, 2);
  assert.ok(receiver.requests >= 1);
  const server: ReceivedSpan = byKind(spans, 'SERVER');
  const client: ReceivedSpan = byKind(spans, 'CLIENT');

  assert.match(server.traceId, /^[0-9a-f]{32}$/);
  assert.match(server.spanId, /^[0-9a-f]{16}$/);
  assert.equal(server.traceId, ids.traceId);
  assert.equal(client.traceId, ids.traceId);
  assert.equal(server.spanId, ids.serverSpanId);
  assert.equal(client.spanId, ids.clientSpanId);
  assert.equal(server.parentSpanId, undefined);
  assert.equal(client.parentSpanId, ids.serverSpanId);

  assert.equal(server.name, 'GET /checkout');
  assert.equal(client.name, 'GET');
  assert.deepEqual(server.attributes, SERVER_ATTRIBUTES);
  assert.deepEqual(client.attributes, CLIENT_ATTRIBUTES);
  assert.equal(server.statusCode, 'OK');
  assert.equal(client.statusCode, 'ERROR');

  for (const span of spans) {
    assert.deepEqual(pick(span.resource, Object.keys(RESOURCE)), RESOURCE);
  }

  assert.equal(server.startTimeUnixNano, nanos(SERVER_START));
  assert.equal(server.endTimeUnixNano, nanos(SERVER_END));
  assert.equal(client.startTimeUnixNano, nanos(CLIENT_START));
  assert.equal(client.endTimeUnixNano, nanos(CLIENT_END));
});

test('OTLP/gRPC receiver setFailing(14) makes the exporter report failure and stores nothing', async (t) => {
  const receiver = await startOtlpGrpcReceiver();
  t.after(() => receiver.close());
  const spans = await recordTwoSpans();
  const exporter = new OTLPTraceExporter({ url: receiver.url, timeoutMillis: 3000 });
  t.after(() => exporter.shutdown());

  receiver.setFailing(14);
  const failed = await exportOnce(exporter, spans);
  assert.equal(failed.code, ExportResultCode.FAILED);
  assert.equal((failed.error as { code?: number } | undefined)?.code, grpc.status.UNAVAILABLE);
  assert.equal(receiver.spans.length, 0);
  const refused = receiver.requests;
  assert.ok(refused >= 1);

  receiver.setFailing(null);
  const ok = await exportOnce(exporter, spans);
  assert.equal(ok.code, ExportResultCode.SUCCESS);
  assert.equal(receiver.spans.length, 2);
  assert.equal(receiver.requests, refused + 1);
});

test('OTLP/gRPC receiver answers garbage with INVALID_ARGUMENT and reports it from waitFor', async (t) => {
  const receiver = await startOtlpGrpcReceiver();
  t.after(() => receiver.close());
  const Client = grpc.makeGenericClientConstructor(
    {
      Export: {
        path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    'TraceService',
  );
  const client = new Client(receiver.url.replace('http://', ''), grpc.credentials.createInsecure());
  t.after(() => client.close());

  // Field 1, length-delimited, claiming 100 bytes that are not there.
  const garbage = Buffer.from([0x0a, 0x64, 0x01]);
  const err = await new Promise<grpc.ServiceError | null>((resolve) => {
    (client as unknown as { Export: (req: Buffer, cb: (e: grpc.ServiceError | null) => void) => void }).Export(garbage, resolve);
  });
  assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
  await assert.rejects(receiver.waitFor((s) => s.length > 0, 50), /0 span\(s\) in 1 request\(s\)[\s\S]*undecodable/);
});

test('Zipkin receiver round-trips spans from the real ZipkinExporter', async (t) => {
  const receiver = await startZipkinReceiver();
  t.after(() => receiver.close());
  assert.match(receiver.url, /^http:\/\/127\.0\.0\.1:\d+\/api\/v2\/spans$/);

  const ids = await emitTwoSpans(new ZipkinExporter({ url: receiver.url }));
  const spans = await receiver.waitFor((s) => s.length >= 2, 5000);

  assert.equal(spans.length, 2);
  const server: ReceivedZipkinSpan = byKind(spans, 'SERVER');
  const client: ReceivedZipkinSpan = byKind(spans, 'CLIENT');

  assert.equal(server.traceId, ids.traceId);
  assert.equal(client.traceId, ids.traceId);
  assert.equal(server.id, ids.serverSpanId);
  assert.equal(client.id, ids.clientSpanId);
  assert.equal(server.parentId, undefined);
  assert.equal(client.parentId, ids.serverSpanId);
  assert.equal(server.name, 'GET /checkout');
  assert.equal(client.name, 'GET');

  for (const span of spans) {
    assert.equal(span.localEndpoint?.serviceName, RESOURCE['service.name']);
    assert.equal(span.tags['service.instance.id'], RESOURCE['service.instance.id']);
    assert.equal(span.tags['process.pid'], '4242');
  }
  assert.equal(server.tags['http.response.status_code'], '200');
  assert.equal(server.tags['sonde.sampled'], 'true');
  assert.equal(server.tags['sonde.tags'], 'a,b');
  assert.equal(server.tags['otel.status_code'], 'OK');
  assert.equal(client.tags['server.port'], '8081');
  assert.equal(client.tags['otel.status_code'], 'ERROR');
  assert.equal(client.tags['error'], 'upstream said no');

  assert.equal(client.timestamp, micros(CLIENT_START));
  assert.equal(client.duration, 150_250);
  // The exporter sends sub-microsecond precision as a fraction; the server span's
  // start is not a whole microsecond, so compare with that tolerance.
  assert.ok(Math.abs(server.timestamp - micros(SERVER_START)) < 1, `timestamp ${server.timestamp}`);
  assert.equal(server.duration, 200_000);
});

test('Zipkin receiver setFailing makes the exporter report failure and stores nothing', async (t) => {
  const receiver = await startZipkinReceiver();
  t.after(() => receiver.close());
  const spans = await recordTwoSpans();
  const exporter = new ZipkinExporter({ url: receiver.url });
  t.after(() => exporter.shutdown());

  receiver.setFailing(503);
  const failed = await exportOnce(exporter, spans);
  assert.equal(failed.code, ExportResultCode.FAILED);
  assert.equal(receiver.spans.length, 0);
  assert.equal(receiver.requests, 1);

  receiver.setFailing(null);
  const ok = await exportOnce(exporter, spans);
  assert.equal(ok.code, ExportResultCode.SUCCESS);
  assert.equal(receiver.spans.length, 2);
});

test('Zipkin receiver rejects malformed spans with 400 and waitFor lists the reason', async (t) => {
  const receiver = await startZipkinReceiver();
  t.after(() => receiver.close());

  const res = await fetch(receiver.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([{ traceId: 'abc', id: 'nothex', name: 'x' }]),
  });
  assert.equal(res.status, 400);
  await res.arrayBuffer();
  const missing = await fetch(receiver.url.replace('/api/v2/spans', '/elsewhere'));
  assert.equal(missing.status, 404);
  await missing.arrayBuffer();

  await assert.rejects(
    receiver.waitFor((s) => s.length > 0, 50),
    (err: Error) => /within 50 ms; received 0 span\(s\) in 1 request\(s\)/.test(err.message) && /bad traceId/.test(err.message),
  );
});

test('waitFor resolves on a later batch and rejects when the receiver closes', async (t) => {
  const receiver = await startZipkinReceiver();
  t.after(() => receiver.close());
  const pending = receiver.waitFor((s) => s.length >= 4, 5000);
  const spans = await recordTwoSpans();
  const exporter = new ZipkinExporter({ url: receiver.url });
  t.after(() => exporter.shutdown());
  await exportOnce(exporter, spans);
  assert.equal(receiver.spans.length, 2);
  await exportOnce(exporter, spans);
  const got = await pending;
  assert.equal(got.length, 4);

  const never = receiver.waitFor(() => false, 5000);
  await receiver.close();
  await assert.rejects(never, /receiver closed/);
});
