/**
 * An OTLP/gRPC trace endpoint that only counts: the benchmark's stand-in for
 * a backend. It walks the protobuf just deep enough to count spans, so that
 * its own CPU, on the same cores as the service under test, stays small.
 * Run as its own process: `node countingReceiver.js` prints its URL, then
 * answers "count" on stdin with the number of spans received so far.
 * It takes metrics too (and only acknowledges them), as a collector does:
 * sonde pushes metrics where it sends traces by default.
 */
import * as grpc from '@grpc/grpc-js';
import * as readline from 'node:readline';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const METRICS_EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

function readVarint(buf: Buffer, pos: { at: number }): number {
  let result = 0;
  let shift = 1;
  for (;;) {
    const b = buf[pos.at++];
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

export async function startCountingReceiver(): Promise<{ url: string; count(): number; requests(): number; close(): Promise<void> }> {
  let spans = 0;
  let requests = 0;
  const server = new grpc.Server();
  const identity = (b: Buffer): Buffer => b;
  server.addService(
    { Export: { path: EXPORT_PATH, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        requests++;
        try {
          spans += countSpans(call.request);
          callback(null, Buffer.alloc(0));
        } catch (error) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: String(error) });
        }
      },
    },
  );
  server.addService(
    { Export: { path: METRICS_EXPORT_PATH, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
    { Export: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.alloc(0)) },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    count: () => spans,
    requests: () => requests,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
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
