// Real span receivers for end-to-end tests: an OTLP/gRPC TraceService and a
// Zipkin v2 HTTP endpoint, both on loopback with an ephemeral port. They speak
// the actual wire protocols so that exporter configuration, serialization and
// retry behaviour are exercised exactly as against a collector.

import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { decodeExportTraceServiceRequest } from './otlp-decode';

export type AttributeValue = string | number | boolean | string[];
export type SpanKindName = 'SERVER' | 'CLIENT' | 'INTERNAL' | 'PRODUCER' | 'CONSUMER' | 'UNSPECIFIED';
export type StatusCodeName = 'UNSET' | 'OK' | 'ERROR';

export interface ReceivedSpan {
  /** 32 lower-case hex digits. */
  traceId: string;
  /** 16 lower-case hex digits. */
  spanId: string;
  /** undefined for a root span. */
  parentSpanId: string | undefined;
  name: string;
  kind: SpanKindName;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  /** int values as numbers, bytes as hex, non-string array items and kvlists as JSON. */
  attributes: Record<string, AttributeValue>;
  statusCode: StatusCodeName;
  resource: Record<string, AttributeValue>;
}

export type SpanPredicate<T> = (spans: T[]) => boolean;

export interface OtlpReceiver {
  /** e.g. "http://127.0.0.1:43127": the form OTLPTraceExporter takes for an insecure endpoint. */
  readonly url: string;
  /** Live list of every span stored so far, in arrival order. */
  readonly spans: ReceivedSpan[];
  /** Export calls received, including those refused by setFailing or undecodable. */
  readonly requests: number;
  /** Resolves with a snapshot once `pred` holds; rejects on timeout with what was received. */
  waitFor(pred: SpanPredicate<ReceivedSpan>, timeoutMs: number): Promise<ReceivedSpan[]>;
  /** With a gRPC status code, Export answers with that status and stores nothing; null restores normal service. */
  setFailing(statusCode: number | null): void;
  close(): Promise<void>;
}

export interface ZipkinEndpoint {
  serviceName?: string;
  ipv4?: string;
  ipv6?: string;
  port?: number;
}

export interface ReceivedZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  name: string;
  kind?: 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER';
  /** Microseconds since the epoch. */
  timestamp: number;
  /** Microseconds. */
  duration: number;
  localEndpoint?: ZipkinEndpoint;
  remoteEndpoint?: ZipkinEndpoint;
  tags: Record<string, string>;
  annotations?: { timestamp: number; value: string }[];
}

export interface ZipkinReceiver {
  /** e.g. "http://127.0.0.1:43127/api/v2/spans": the full URL ZipkinExporter takes. */
  readonly url: string;
  readonly spans: ReceivedZipkinSpan[];
  /** POSTs to /api/v2/spans received, including refused ones. */
  readonly requests: number;
  waitFor(pred: SpanPredicate<ReceivedZipkinSpan>, timeoutMs: number): Promise<ReceivedZipkinSpan[]>;
  /** With an HTTP status, POSTs are answered with it and nothing is stored; null restores 202. */
  setFailing(httpStatus: number | null): void;
  close(): Promise<void>;
}

const OTLP_TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const ZIPKIN_SPANS_PATH = '/api/v2/spans';
const MAX_LISTED_SPANS = 40;

/** Span storage shared by both receivers, with event-driven waiting. */
class SpanStore<T> {
  readonly spans: T[] = [];
  readonly problems: string[] = [];
  requests = 0;
  private readonly wakeups = new Set<() => void>();
  private closed = false;

  constructor(private readonly describe: (span: T) => string) {}

  add(batch: T[]): void {
    this.spans.push(...batch);
    for (const wake of [...this.wakeups]) wake();
  }

  problem(message: string): void {
    this.problems.push(message);
  }

  close(): void {
    this.closed = true;
    for (const wake of [...this.wakeups]) wake();
  }

  waitFor(pred: SpanPredicate<T>, timeoutMs: number): Promise<T[]> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (timer) clearTimeout(timer);
        this.wakeups.delete(check);
      };
      const check = (): void => {
        let ok: boolean;
        try {
          ok = pred(this.spans);
        } catch (err) {
          finish();
          reject(err);
          return;
        }
        if (ok) {
          finish();
          resolve([...this.spans]);
        } else if (this.closed) {
          finish();
          reject(new Error(this.report('receiver closed before the condition was met')));
        }
      };
      this.wakeups.add(check);
      timer = setTimeout(() => {
        finish();
        reject(new Error(this.report(`condition not met within ${timeoutMs} ms`)));
      }, timeoutMs);
      check();
    });
  }

  private report(headline: string): string {
    const lines = [`waitFor: ${headline}; received ${this.spans.length} span(s) in ${this.requests} request(s)`];
    for (const span of this.spans.slice(0, MAX_LISTED_SPANS)) lines.push(`  - ${this.describe(span)}`);
    if (this.spans.length > MAX_LISTED_SPANS) lines.push(`  ... and ${this.spans.length - MAX_LISTED_SPANS} more`);
    for (const p of this.problems) lines.push(`  ! ${p}`);
    return lines.join('\n');
  }
}

function describeOtlpSpan(s: ReceivedSpan): string {
  const service = s.resource['service.name'] ?? '?';
  const parent = s.parentSpanId ?? 'none';
  return `${s.kind} "${s.name}" service=${String(service)} trace=${s.traceId} span=${s.spanId} parent=${parent} status=${s.statusCode} attrs=${JSON.stringify(s.attributes)}`;
}

function describeZipkinSpan(s: ReceivedZipkinSpan): string {
  const service = s.localEndpoint?.serviceName ?? '?';
  return `${s.kind ?? 'LOCAL'} "${s.name}" service=${service} trace=${s.traceId} id=${s.id} parent=${s.parentId ?? 'none'} tags=${JSON.stringify(s.tags)}`;
}

const passThrough = (b: Buffer): Buffer => b;

export async function startOtlpGrpcReceiver(): Promise<OtlpReceiver> {
  const store = new SpanStore<ReceivedSpan>(describeOtlpSpan);
  let failWith: number | null = null;

  // Serializers are the identity so a malformed body reaches the handler and
  // shows up in waitFor's report, instead of dying inside grpc-js as INTERNAL.
  const service: grpc.ServiceDefinition = {
    Export: {
      path: OTLP_TRACE_EXPORT_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: passThrough,
      requestDeserialize: passThrough,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
    },
  };
  const exportHandler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    store.requests++;
    if (failWith !== null) {
      callback({ code: failWith, details: `test receiver set to fail with status ${failWith}` });
      return;
    }
    let spans: ReceivedSpan[];
    try {
      spans = decodeExportTraceServiceRequest(call.request);
    } catch (err) {
      const message = `undecodable ExportTraceServiceRequest (${call.request.length} bytes): ${(err as Error).message}`;
      store.problem(message);
      callback({ code: grpc.status.INVALID_ARGUMENT, details: message });
      return;
    }
    store.add(spans);
    // An empty message is a valid ExportTraceServiceResponse (no partial_success).
    callback(null, Buffer.alloc(0));
  };

  const server = new grpc.Server();
  let closing: Promise<void> | undefined;
  server.addService(service, { Export: exportHandler });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, boundPort) =>
      err ? reject(err) : resolve(boundPort),
    );
  });

  return {
    url: `http://127.0.0.1:${port}`,
    spans: store.spans,
    get requests() {
      return store.requests;
    },
    waitFor: (pred, timeoutMs) => store.waitFor(pred, timeoutMs),
    setFailing(statusCode) {
      failWith = statusCode;
    },
    close() {
      store.close();
      closing ??= closeGrpcServer(server);
      return closing;
    },
  };
}

/**
 * A graceful shutdown waits for calls in flight, and a test that fails
 * midway may leave one hanging: closing must not hang with it.
 */
export function closeGrpcServer(server: grpc.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 1000);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseEndpoint(v: unknown): ZipkinEndpoint | undefined {
  if (!isObject(v)) return undefined;
  const out: ZipkinEndpoint = {};
  if (typeof v.serviceName === 'string') out.serviceName = v.serviceName;
  if (typeof v.ipv4 === 'string') out.ipv4 = v.ipv4;
  if (typeof v.ipv6 === 'string') out.ipv6 = v.ipv6;
  if (typeof v.port === 'number') out.port = v.port;
  return out;
}

const ZIPKIN_KINDS = new Set(['CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER']);

// Strict where Zipkin itself would be (ids, tag types) and where sonde must
// never be sloppy (timestamp and duration are optional in Zipkin v2, but a
// tracer that omits them has a bug): the receiver exists to catch such bugs.
function parseZipkinSpan(v: unknown, index: number): ReceivedZipkinSpan {
  const fail = (why: string): never => {
    throw new Error(`span #${index}: ${why}: ${JSON.stringify(v)}`);
  };
  if (!isObject(v)) return fail('not an object');
  if (typeof v.traceId !== 'string' || !/^([0-9a-f]{16}|[0-9a-f]{32})$/.test(v.traceId)) fail('bad traceId');
  if (typeof v.id !== 'string' || !/^[0-9a-f]{16}$/.test(v.id)) fail('bad id');
  if (v.parentId !== undefined && (typeof v.parentId !== 'string' || !/^[0-9a-f]{16}$/.test(v.parentId))) fail('bad parentId');
  if (v.kind !== undefined && (typeof v.kind !== 'string' || !ZIPKIN_KINDS.has(v.kind))) fail('bad kind');
  if (typeof v.timestamp !== 'number') fail('missing timestamp');
  if (typeof v.duration !== 'number') fail('missing duration');
  const tags: Record<string, string> = {};
  if (v.tags !== undefined) {
    if (!isObject(v.tags)) fail('tags is not an object');
    for (const [k, t] of Object.entries(v.tags as Record<string, unknown>)) {
      if (typeof t !== 'string') fail(`tag ${k} is not a string`);
      tags[k] = t as string;
    }
  }
  const span: ReceivedZipkinSpan = {
    traceId: v.traceId as string,
    id: v.id as string,
    name: typeof v.name === 'string' ? v.name : '',
    timestamp: v.timestamp as number,
    duration: v.duration as number,
    tags,
  };
  if (v.parentId !== undefined) span.parentId = v.parentId as string;
  if (v.kind !== undefined) span.kind = v.kind as ReceivedZipkinSpan['kind'];
  const local = parseEndpoint(v.localEndpoint);
  if (local) span.localEndpoint = local;
  const remote = parseEndpoint(v.remoteEndpoint);
  if (remote) span.remoteEndpoint = remote;
  if (Array.isArray(v.annotations)) span.annotations = v.annotations as ReceivedZipkinSpan['annotations'];
  return span;
}

export async function startZipkinReceiver(): Promise<ZipkinReceiver> {
  const store = new SpanStore<ReceivedZipkinSpan>(describeZipkinSpan);
  let failWith: number | null = null;

  const answer = (res: http.ServerResponse, status: number, body = ''): void => {
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== ZIPKIN_SPANS_PATH) return answer(res, 404, 'not found\n');
    if (req.method !== 'POST') return answer(res, 405, 'POST only\n');
    store.requests++;
    readBody(req).then(
      (raw) => {
        if (failWith !== null) return answer(res, failWith, 'test receiver set to fail\n');
        let spans: ReceivedZipkinSpan[];
        try {
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          const parsed: unknown = JSON.parse(body.toString('utf8'));
          if (!Array.isArray(parsed)) throw new Error('body is not a JSON array');
          spans = parsed.map(parseZipkinSpan);
        } catch (err) {
          const message = `rejected Zipkin payload: ${(err as Error).message}`;
          store.problem(message);
          return answer(res, 400, `${message}\n`);
        }
        store.add(spans);
        answer(res, 202);
      },
      () => answer(res, 400, 'unreadable body\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}${ZIPKIN_SPANS_PATH}`,
    spans: store.spans,
    get requests() {
      return store.requests;
    },
    waitFor: (pred, timeoutMs) => store.waitFor(pred, timeoutMs),
    setFailing(httpStatus) {
      failWith = httpStatus;
    },
    close() {
      store.close();
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Node 20's global agent keeps connections alive, which would hold close() open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
