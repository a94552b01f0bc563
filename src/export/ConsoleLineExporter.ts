/**
 * The embedded default when no backend is configured: one readable line per
 * span on the terminal, so that the first run shows something at once.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { grpcStatusName } from '../protocols/grpc/status';

/** Longer targets (a 5 KB query string) are cut for the terminal; the exported span keeps them whole. */
export const MAX_TARGET_CHARS = 200;

/**
 * What the capture could not tell (an HTTP/2 field behind an HPACK entry
 * older than sonde) shows as "?", never as a value it might have had.
 */
export function formatSpanLine(span: ReadableSpan): string {
  const a = span.attributes;
  const service = String(span.resource.attributes['service.name'] ?? 'unknown_service');
  const kind = span.kind === SpanKind.SERVER ? 'SERVER' : span.kind === SpanKind.CLIENT ? 'CLIENT' : 'INTERNAL';
  const { method, target: fullTarget, status } = a['rpc.system'] === 'grpc' ? rpcColumns(span) : httpColumns(span);
  let target = fullTarget;
  if (target.length > MAX_TARGET_CHARS) target = `${target.slice(0, MAX_TARGET_CHARS - 1)}…`;
  const durationMs = span.duration[0] * 1e3 + span.duration[1] / 1e6;
  const ctx = span.spanContext();
  const parent = span.parentSpanContext ? ` parent=${span.parentSpanContext.spanId}` : '';
  return `${service.padEnd(16)} ${kind.padEnd(6)} ${method.padEnd(6)} ${target} ${status} ${durationMs.toFixed(2)}ms trace=${ctx.traceId} span=${ctx.spanId}${parent}`;
}

interface Columns {
  method: string;
  target: string;
  status: string;
}

function httpColumns(span: ReadableSpan): Columns {
  const a = span.attributes;
  const method = a['sonde.http.method_unknown'] ? '?' : String(a['http.request.method_original'] ?? a['http.request.method'] ?? '?');
  const pathUnknown = a['sonde.url.path_unknown'] === true;
  let target: string;
  if (span.kind === SpanKind.CLIENT && a['url.full']) {
    target = pathUnknown ? `${String(a['url.full'])}/?` : String(a['url.full']);
  } else {
    const path = a['http.route'] ?? a['url.path'];
    // A client span without url.full is one whose scheme the capture could not tell.
    target = path !== undefined ? String(path) : pathUnknown || span.kind === SpanKind.CLIENT ? '?' : '';
    if (a['url.query'] !== undefined && !a['http.route']) target += `?${String(a['url.query'])}`;
  }
  const code = a['http.response.status_code'];
  return { method, target, status: code !== undefined ? String(code) : errorOr(span, a['sonde.http.status_code_unknown'] ? '?' : '-') };
}

/** gRPC: "gRPC package.Service/Method NOT_FOUND", the status by name whether or not it is an error. */
function rpcColumns(span: ReadableSpan): Columns {
  const a = span.attributes;
  const target = a['rpc.service'] !== undefined && a['rpc.method'] !== undefined ? `${String(a['rpc.service'])}/${String(a['rpc.method'])}` : '?';
  const code = a['rpc.grpc.status_code'];
  const status = typeof code === 'number' ? grpcStatusName(code) : errorOr(span, a['sonde.rpc.status_unknown'] ? '?' : '-');
  return { method: 'gRPC', target, status };
}

function errorOr(span: ReadableSpan, otherwise: string): string {
  return span.status.code === SpanStatusCode.ERROR ? String(span.attributes['error.type'] ?? 'error') : otherwise;
}

export class ConsoleLineExporter implements SpanExporter {
  readonly #write: (line: string) => void;

  constructor(write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)) {
    this.#write = write;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    for (const span of spans) this.#write(formatSpanLine(span));
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  async shutdown(): Promise<void> {}
}
