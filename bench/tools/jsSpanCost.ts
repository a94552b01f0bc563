/**
 * sonde's JavaScript cost per span without the kernel, the addon or the
 * network: batches of HTTP/1 exchange records, as the addon hands them over,
 * through the real SpanPipeline into a real export channel whose transport
 * answers at once. Reports thread CPU µs per span, by part, after a warm-up.
 *
 *   node dist/bench/tools/jsSpanCost.js [--spans N] [--batch N] [--channel otlp|sdk-otlp|none] [--sinks viewer,metrics] [--request hey|browser|grpc] [--plain] [--native] [--profile FILE]
 *
 * `otlp` is sonde's OTLP path (spans encoded as they are queued); `sdk-otlp`
 * queues SDK span objects and serializes them with the OTel serializer, the
 * path sonde used before; `none` only builds spans. `--sinks` adds the
 * other span sinks sonde runs by default or on request: the viewer's trace
 * store (default size and rate: at this tool's rate it holds a sample)
 * and the RED histograms (never collected, so only
 * recording is measured).
 *
 * `--request grpc` sends HTTP/2 records of a grpc-js unary call (the
 * h2load call of the grpc-unary scenario, answered with grpc-status 0).
 *
 * `--plain` sends the request without its query string and runs with no
 * route templates: the requests the addon can encode itself. `--native`
 * (implies `--plain`) has the addon encode them, as its reader thread does
 * with `encodeSpans` on; the time that takes is reported apart, as the
 * reader thread's, not the JavaScript thread's.
 */
import { performance } from 'node:perf_hooks';
import * as fs from 'node:fs';
import { Session } from 'node:inspector';
import pino from 'pino';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { ExportChannel, type SpanSink } from '../../src/export/ExportChannel';
import { OtlpRequestEncoder, OtlpSpanEncoder, type EncodedSpan } from '../../src/export/otlp/encodeTraces';
import { otlpQueuedForm } from '../../src/export/createExporters';
import { RequestBuffers } from '../../src/export/otlp/RequestBuffers';
import { MonotonicClock } from '../../src/native/clock';
import { RECORD_OFFSETS } from '../../src/native/exchangeDecoder';
import { SpanPipeline } from '../../src/pipeline/SpanPipeline';
import { ResourceRegistry } from '../../src/spans/resources';
import { compileRoutes } from '../../src/spans/routes';
import { loadNativeModule } from '../../src/native/binding';
import { useThreadCpuClock, threadCpuMs } from '../../src/telemetry/cpuClock';
import { encodeRecord, v4mapped } from '../../test/support/records';
import { RedMetrics } from '../../src/metrics/RedMetrics';
import { TraceStore } from '../../src/viewer/TraceStore';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const SPANS = Number(arg('spans', '200000'));
const BATCH = Number(arg('batch', '100'));
const CHANNEL = arg('channel', 'otlp');
const PROFILE = arg('profile', '');
const SINKS = arg('sinks', '').split(',').filter(Boolean);
const NATIVE = process.argv.includes('--native');
const PLAIN = NATIVE || process.argv.includes('--plain');

function extraSinks(): SpanSink[] {
  const sinks: SpanSink[] = [];
  if (SINKS.includes('viewer')) sinks.push(new TraceStore({ maxSpans: 10_000, maxSpansPerSecond: 100 }));
  if (SINKS.includes('metrics')) {
    sinks.push(new RedMetrics({ maxSeries: 2000 }));
  }
  return sinks;
}

/** What hey sends (`--request hey`, the default) or a browser sends (`--request browser`); a Node hello-world answers. */
const REQUESTS: Record<string, Buffer> = {
  hey: Buffer.from('GET /orders/42?page=2 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: hey/0.0.1\r\nContent-Type: text/html\r\nAccept-Encoding: gzip\r\n\r\n'),
  browser: Buffer.from(
    [
      'GET /orders/42?page=2 HTTP/1.1',
      'Host: shop.example.com',
      'Connection: keep-alive',
      'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"',
      'sec-ch-ua-mobile: ?0',
      'sec-ch-ua-platform: "Linux"',
      'Upgrade-Insecure-Requests: 1',
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
      'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
      'Sec-Fetch-Site: same-origin',
      'Sec-Fetch-Mode: navigate',
      'Sec-Fetch-Dest: document',
      'Referer: https://shop.example.com/orders',
      'Accept-Encoding: gzip, deflate, br, zstd',
      'Accept-Language: en-GB,en;q=0.9',
      'Cookie: session=6f1c0e7a9b2d4c8e; theme=dark; _ga=GA1.1.123456789.1700000000',
      '',
      '',
    ].join('\r\n'),
  ),
};
/** HTTP/2 header fields as the native stitcher hands them over (HTTP2_PAYLOAD in ExchangeRecord.h). */
const GRPC_REQUEST = Buffer.from(':method: POST\r\n:path: /demo.Echo/Unary\r\n:scheme: http\r\n:authority: 127.0.0.1:50051\r\nuser-agent: h2load nghttp2/1.52.0\r\ncontent-type: application/grpc\r\nte: trailers\r\n');
const GRPC_RESPONSE = Buffer.from(':status: 200\r\ncontent-type: application/grpc+proto\r\ngrpc-accept-encoding: identity,deflate,gzip\r\ndate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\r\ngrpc-status: 0\r\ngrpc-message: OK\r\n');
const REQUEST_KIND = arg('request', 'hey');
const GRPC = REQUEST_KIND === 'grpc';
if (!REQUESTS[REQUEST_KIND] && !GRPC) throw new Error(`--request: one of ${[...Object.keys(REQUESTS), 'grpc'].join(', ')}`);
const REQUEST = GRPC ? GRPC_REQUEST : PLAIN ? Buffer.from(REQUESTS[REQUEST_KIND].toString('latin1').replace('?page=2', ''), 'latin1') : REQUESTS[REQUEST_KIND];
const RESPONSE = GRPC ? GRPC_RESPONSE : Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\n\r\nhello\n');

function batchOf(first: number): Buffer {
  const records: Buffer[] = [];
  for (let i = 0; i < BATCH; i++) {
    const n = first + i;
    const start = 1_000_000_000n + BigInt(n) * 100_000n;
    records.push(
      encodeRecord({
        pid: 4242,
        ...(GRPC ? { protocol: 2, streamId: 1 + 2 * (n % 1000) } : {}),
        localAddr: v4mapped(127, 0, 0, 1),
        remoteAddr: v4mapped(127, 0, 0, 1),
        remotePort: 40000 + (n % 50),
        requestStartNs: start,
        requestEndNs: start + 1_000n,
        responseStartNs: start + 30_000n,
        responseEndNs: start + 31_000n,
        traceId: (n + 1).toString(16).padStart(32, '0'),
        spanId: (n + 1).toString(16).padStart(16, '0'),
        request: REQUEST,
        response: RESPONSE,
      }),
    );
  }
  return Buffer.concat(records);
}

const answered = (cb: (r: ExportResult) => void): void => cb({ code: ExportResultCode.SUCCESS });
const options = { maxQueueSize: 1 << 20, maxQueueBytes: 1 << 30, maxExportBatchSize: 4096, maxExportBatchBytes: 2 << 20, scheduledDelayMs: 1000, exportTimeoutMs: 10_000 };

function channel(): SpanSink[] {
  if (CHANNEL === 'none') return [];
  if (CHANNEL === 'sdk-otlp') {
    return [new ExportChannel<ReadableSpan>('sdk', { export: (spans, cb) => (ProtobufTraceSerializer.serializeRequest(spans), answered(cb)), shutdown: async () => {} }, options)];
  }
  const spanEncoder = new OtlpSpanEncoder();
  const requestEncoder = new OtlpRequestEncoder();
  // Requests written into reused buffers, as OtlpEncodedExporter writes
  // them: a fresh one per request would add its page faults to the copy.
  const buffers = new RequestBuffers({ maxBytes: options.maxExportBatchBytes + (1 << 20) });
  const exportOnce = (spans: EncodedSpan[], cb: (r: ExportResult) => void): void => {
    buffers.give(requestEncoder.encode(spans, (size) => buffers.take(size)));
    answered(cb);
  };
  return [new ExportChannel<EncodedSpan>('otlp', { export: exportOnce, shutdown: async () => {} }, options, () => {}, otlpQueuedForm(spanEncoder))];
}

async function main(): Promise<void> {
  const native = loadNativeModule();
  useThreadCpuClock(() => native.threadCpuMs());
  const pipeline = new SpanPipeline({
    clock: new MonotonicClock(() => native.clock()),
    resources: new ResourceRegistry({ describe: () => undefined }),
    routes: compileRoutes(PLAIN ? [] : ['/orders/:id']),
    channels: [...channel(), ...extraSinks()],
    log: pino({ level: 'warn' }),
  });
  const batches = Array.from({ length: 16 }, (_, i) => batchOf(i * BATCH));
  // One batch per turn of the event loop, as the addon delivers them: the
  // export answers, and the next batch goes out, in between.
  let encodeMs = 0;
  let traceIds = 0;
  const run = async (spans: number): Promise<void> => {
    for (let done = 0, i = 0; done < spans; done += BATCH, i++) {
      const records = batches[i % batches.length];
      // Every round gets new trace ids, as real traffic does: the viewer
      // keeps all spans of a trace it holds, so repeated ids would pass for
      // one long trace.
      for (let at = 0; at < records.length; at += records.readUInt32LE(at)) records.writeUInt32LE(++traceIds, at + RECORD_OFFSETS.trace_id);
      let encoded: Buffer | undefined;
      if (NATIVE) {
        const started = threadCpuMs();
        encoded = native.encodeSpans(records);
        encodeMs += threadCpuMs() - started;
      }
      pipeline.onBatch(records, encoded);
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await run(Math.min(SPANS, 100_000)); // warm-up: V8 compiles the hot paths
  let session: Session | undefined;
  if (PROFILE) {
    session = new Session();
    session.connect();
    await new Promise((r) => session!.post('Profiler.enable', () => session!.post('Profiler.start', r)));
  }
  const before = pipeline.counters;
  encodeMs = 0;
  const cpu0 = threadCpuMs();
  const process0 = process.cpuUsage();
  const wall0 = performance.now();
  await run(SPANS);
  const wall = performance.now() - wall0;
  const cpu = threadCpuMs() - cpu0 - encodeMs;
  const processCpu = process.cpuUsage(process0);
  const after = pipeline.counters;
  if (session) {
    await new Promise<void>((r) =>
      session!.post('Profiler.stop', (err, result) => {
        if (!err) fs.writeFileSync(PROFILE, JSON.stringify(result.profile));
        r();
      }),
    );
  }
  const spans = after.exchanges - before.exchanges;
  const us = (ms: number): string => ((ms * 1000) / spans).toFixed(2);
  const encodedByAddon = after.encodedByAddon - before.encodedByAddon;
  console.log(`${spans} spans in batches of ${BATCH}, channel ${CHANNEL}${SINKS.length ? `, sinks ${SINKS.join(',')}` : ''}${PLAIN ? ', plain requests' : ''}${NATIVE ? `, ${encodedByAddon} encoded by the addon` : ''}`);
  if (NATIVE) console.log(`  addon encode (the reader thread's): ${us(encodeMs)} µs/span`);
  console.log(`  JS thread CPU:        ${us(cpu)} µs/span (wall ${us(wall)})`);
  console.log(`    records -> spans:   ${us(after.buildMs - before.buildMs)} µs/span`);
  console.log(`    spans -> exporters: ${us(cpu - (after.buildMs - before.buildMs))} µs/span`);
  console.log(`  process CPU (all threads, GC helpers included${NATIVE ? ', addon encode included' : ''}): ${us((processCpu.user + processCpu.system) / 1000)} µs/span`);
  process.exit(0);
}

void main();
