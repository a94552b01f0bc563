/**
 * The embedded default when no backend is configured: one readable line per
 * span on the terminal, so that the first run shows something at once.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/** Longer targets (a 5 KB query string) are cut for the terminal; the exported span keeps them whole. */
export const MAX_TARGET_CHARS = 200;

export function formatSpanLine(span: ReadableSpan): string {
  const a = span.attributes;
  const service = String(span.resource.attributes['service.name'] ?? 'unknown_service');
  const kind = span.kind === SpanKind.SERVER ? 'SERVER' : span.kind === SpanKind.CLIENT ? 'CLIENT' : 'INTERNAL';
  const method = String(a['http.request.method_original'] ?? a['http.request.method'] ?? '?');
  let target = String(a['http.route'] ?? a['url.path'] ?? '');
  if (span.kind === SpanKind.CLIENT && a['url.full']) target = String(a['url.full']);
  else if (a['url.query'] !== undefined && !a['http.route']) target += `?${String(a['url.query'])}`;
  if (target.length > MAX_TARGET_CHARS) target = `${target.slice(0, MAX_TARGET_CHARS - 1)}…`;
  const status = a['http.response.status_code'] ?? (span.status.code === SpanStatusCode.ERROR ? String(a['error.type'] ?? 'error') : '-');
  const durationMs = span.duration[0] * 1e3 + span.duration[1] / 1e6;
  const ctx = span.spanContext();
  const parent = span.parentSpanContext ? ` parent=${span.parentSpanContext.spanId}` : '';
  return `${service.padEnd(16)} ${kind.padEnd(6)} ${method.padEnd(6)} ${target} ${status} ${durationMs.toFixed(2)}ms trace=${ctx.traceId} span=${ctx.spanId}${parent}`;
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
