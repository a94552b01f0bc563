/**
 * An OTLP/gRPC trace endpoint that only counts: the benchmark's stand-in for
 * a backend. It walks the protobuf just deep enough to count spans, so that
 * its own CPU, on the same cores as the service under test, stays small.
 * Run as its own process: `node countingReceiver.js` prints its URL, then
 * answers "count" on stdin with the number of spans received so far.
 * It takes metrics too (and only acknowledges them), as a collector does:
 * sonde pushes metrics where it sends traces by default.
 */
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import * as readline from 'node:readline';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const METRICS_EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

function readVarint(buf: Buffer, pos: { at: number }): number {
  let result = 0;
  let shift = 1;
  for (;;) {
    const b = buf[pos.at++];
    if (b === undefined) throw new Error('varint runs past the message');
    result += (b & 0x7f) * shift;
    if (b < 0x80) return result;
    shift *= 128;
  }
}

/** Calls `onField(fieldNumber, start, end)` for each length-delimited field of the message in [start, end). */
function forEachLengthDelimited(buf: Buffer, start: number, end: number, onField: (field: number, s: number, e: number) => void): void {
  const pos = { at: start };
  while (pos.at < end) {
    const tag = readVarint(buf, pos);
    const wire = tag & 7;
    const field = tag >>> 3;
    if (wire === 2) {
      const len = readVarint(buf, pos);
      if (pos.at + len > end) throw new Error(`field ${field} runs past its message`);
      onField(field, pos.at, pos.at + len);
      pos.at += len;
    } else if (wire === 0) readVarint(buf, pos);
    else if (wire === 1) pos.at += 8;
    else if (wire === 5) pos.at += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

export function countSpans(request: Buffer): number {
  let spans = 0;
  forEachLengthDelimited(request, 0, request.length, (f1, s1, e1) => {
    if (f1 !== 1) return; // resource_spans
    forEachLengthDelimited(request, s1, e1, (f2, s2, e2) => {
      if (f2 !== 2) return; // scope_spans
      forEachLengthDelimited(request, s2, e2, (f3) => {
        if (f3 === 2) spans++; // spans
      });
    });
  });
  return spans;
}

/**
 * Flow-control windows the receiver grants. grpc-js's server keeps HTTP/2's
 * 64 KiB windows and cannot be told otherwise, so a 1-2 MB export waits for
 * 20-30 WINDOW_UPDATE round trips; on a saturated 2-core host each waits
 * for the (niced) sender to be scheduled: in a saturated run of the Node
 * service, sonde exported 4k spans a second for the first 10 s and its
 * export queue grew to 28 MB, where with these windows it kept up and held
 * at most 2 MB. An OpenTelemetry Collector or Jaeger
 * (grpc-go, window sizes left to its BDP estimator) grows its windows to
 * several MiB within the first exports: this stands for that.
 */
const STREAM_WINDOW_BYTES = 8 << 20;
const SESSION_WINDOW_BYTES = 16 << 20;

/** What an OpenTelemetry Collector's gRPC server takes by default. */
const MAX_MESSAGE_BYTES = 4 << 20;

/** The body of a unary gRPC request: one length-prefixed message, maybe compressed as `encoding` says. */
function grpcMessage(body: Buffer, encoding: string | undefined): Buffer {
  if (body.length < 5) throw new Error(`gRPC message of ${body.length} bytes`);
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length) throw new Error(`gRPC message says ${length} bytes, ${body.length - 5} came`);
  const message = body.subarray(5);
  if (body[0] === 0) return message;
  if (encoding === 'gzip') return zlib.gunzipSync(message, { maxOutputLength: MAX_MESSAGE_BYTES });
  if (encoding === 'deflate') return zlib.inflateSync(message, { maxOutputLength: MAX_MESSAGE_BYTES });
  throw new Error(`compressed with ${encoding ?? 'nothing named'}`);
}

const EMPTY_MESSAGE = Buffer.alloc(5); // not compressed, length 0: an empty Export*ServiceResponse

export async function startCountingReceiver(): Promise<{ url: string; count(): number; requests(): number; close(): Promise<void> }> {
  let spans = 0;
  let requests = 0;
  const server = http2.createServer({ settings: { initialWindowSize: STREAM_WINDOW_BYTES } });
  server.on('session', (session) => session.setLocalWindowSize(SESSION_WINDOW_BYTES));
  server.on('error', () => undefined);
  server.on('stream', (stream, headers) => {
    const path = headers[':path'];
    const encoding = headers['grpc-encoding'];
    const chunks: Buffer[] = [];
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // Past the limit the rest is not kept: the call fails as a collector's would.
      if (received <= MAX_MESSAGE_BYTES + 5) chunks.push(chunk);
    });
    stream.on('error', () => undefined);
    stream.on('end', () => {
      // A dropped connection also ends its streams, their bodies cut short:
      // not requests. (A body cut short otherwise fails the length check.)
      if (stream.aborted || stream.destroyed) return;
      let status = 0;
      let message = '';
      if (received > MAX_MESSAGE_BYTES + 5) {
        status = 8; // RESOURCE_EXHAUSTED
        message = `message of ${received - 5} bytes, over ${MAX_MESSAGE_BYTES}`;
      } else if (path === EXPORT_PATH) {
        requests++;
        try {
          spans += countSpans(grpcMessage(Buffer.concat(chunks), typeof encoding === 'string' ? encoding : undefined));
        } catch (error) {
          status = 3; // INVALID_ARGUMENT
          message = String(error);
        }
      } else if (path !== METRICS_EXPORT_PATH) {
        status = 12; // UNIMPLEMENTED
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(status === 0 ? { 'grpc-status': '0' } : { 'grpc-status': String(status), 'grpc-message': encodeURIComponent(message) }));
      stream.end(status === 0 ? EMPTY_MESSAGE : undefined);
    });
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    count: () => spans,
    requests: () => requests,
    close: () =>
      new Promise((resolve) => {
        for (const session of sessions) session.close();
        server.close(() => resolve());
      }),
  };
}

if (require.main === module) {
  void startCountingReceiver().then((r) => {
    process.stdout.write(`${r.url}\n`);
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      if (line.trim() === 'count') process.stdout.write(`${r.count()} ${r.requests()}\n`);
    });
    rl.on('close', () => void r.close().then(() => process.exit(0)));
  });
}
