// A real OTLP/gRPC MetricsService for end-to-end tests: every
// ExportMetricsServiceRequest is decoded with the official protos
// (test/fixtures/otlp-proto) and its histogram points are kept, flat.
import * as grpc from '@grpc/grpc-js';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { REPO_ROOT } from './processes';
import { closeGrpcServer } from './receivers';

const EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

export interface ReceivedPoint {
  metric: string;
  unit: string;
  /** Histogram count, or a sum's or gauge's value. */
  value: number;
  attributes: Record<string, string | number | boolean>;
  resource: Record<string, string | number | boolean>;
  /** Histograms only. */
  bounds?: number[];
  bucketCounts?: number[];
}

export interface OtlpMetricsReceiver {
  url: string;
  /** Every point of every request, in arrival order. */
  readonly points: ReceivedPoint[];
  readonly requests: number;
  /** Resolves once `pred` holds for the points received, or rejects after `timeoutMs`. */
  waitFor(pred: (points: ReceivedPoint[]) => boolean, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

let requestType: protobuf.Type | undefined;
function exportRequestType(): protobuf.Type {
  if (requestType) return requestType;
  const root = new protobuf.Root();
  const protoRoot = path.join(REPO_ROOT, 'test', 'fixtures', 'otlp-proto');
  root.resolvePath = (_origin, target) => path.join(protoRoot, target);
  root.loadSync('opentelemetry/proto/collector/metrics/v1/metrics_service.proto', { keepCase: true });
  requestType = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');
  return requestType;
}

type KeyValue = { key: string; value: Record<string, unknown> };
function attributesOf(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const v = kv.value;
    if (v.string_value !== undefined) out[kv.key] = String(v.string_value);
    else if (v.int_value !== undefined) out[kv.key] = Number(v.int_value);
    else if (v.double_value !== undefined) out[kv.key] = Number(v.double_value);
    else if (v.bool_value !== undefined) out[kv.key] = Boolean(v.bool_value);
  }
  return out;
}

/** The points of one request, flattened. */
export function decodeExportMetricsServiceRequest(body: Buffer): ReceivedPoint[] {
  const message = exportRequestType().toObject(exportRequestType().decode(body), { longs: Number, defaults: false }) as {
    resource_metrics?: Array<{ resource?: { attributes?: KeyValue[] }; scope_metrics?: Array<{ metrics?: Array<Record<string, any>> }> }>;
  };
  const points: ReceivedPoint[] = [];
  for (const rm of message.resource_metrics ?? []) {
    const resource = attributesOf(rm.resource?.attributes);
    for (const sm of rm.scope_metrics ?? []) {
      for (const m of sm.metrics ?? []) {
        const base = { metric: String(m.name), unit: String(m.unit ?? ''), resource };
        for (const p of m.histogram?.data_points ?? []) {
          points.push({ ...base, value: Number(p.count ?? 0), attributes: attributesOf(p.attributes), bounds: (p.explicit_bounds ?? []).map(Number), bucketCounts: (p.bucket_counts ?? []).map(Number) });
        }
        for (const p of [...(m.sum?.data_points ?? []), ...(m.gauge?.data_points ?? [])]) {
          points.push({ ...base, value: Number(p.as_int ?? p.as_double ?? 0), attributes: attributesOf(p.attributes) });
        }
      }
    }
  }
  return points;
}

const passThrough = (b: Buffer): Buffer => b;

export async function startOtlpMetricsReceiver(): Promise<OtlpMetricsReceiver> {
  const points: ReceivedPoint[] = [];
  let requests = 0;
  const problems: string[] = [];
  const service: grpc.ServiceDefinition = {
    Export: { path: EXPORT_PATH, requestStream: false, responseStream: false, requestSerialize: passThrough, requestDeserialize: passThrough, responseSerialize: passThrough, responseDeserialize: passThrough },
  };
  const server = new grpc.Server();
  server.addService(service, {
    Export: ((call, callback) => {
      requests++;
      try {
        points.push(...decodeExportMetricsServiceRequest(call.request));
      } catch (err) {
        problems.push(`undecodable ExportMetricsServiceRequest: ${(err as Error).message}`);
        callback({ code: grpc.status.INVALID_ARGUMENT, details: problems[problems.length - 1] });
        return;
      }
      callback(null, Buffer.alloc(0));
    }) as grpc.handleUnaryCall<Buffer, Buffer>,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    points,
    get requests() {
      return requests;
    },
    async waitFor(pred, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!pred(points)) {
        if (Date.now() > deadline) {
          const names = [...new Set(points.map((p) => p.metric))].join(', ');
          throw new Error(`metrics receiver: condition not met within ${timeoutMs} ms; ${requests} request(s), metrics: ${names || 'none'}${problems.length ? `; ${problems.join('; ')}` : ''}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close() {
      closing ??= closeGrpcServer(server);
      return closing;
    },
  };
}
