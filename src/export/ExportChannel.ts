/**
 * A bounded batching queue in front of one exporter. Each exporter gets its
 * own channel, so a dead backend fills and drops only its own queue. Unlike
 * BatchSpanProcessor it counts everything it drops, by cause.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

export interface ExportChannelOptions {
  /** Spans waiting to be exported; past this new spans are dropped and counted. */
  maxQueueSize: number;
  maxExportBatchSize: number;
  /** Longest a span waits before its batch is sent, in ms. */
  scheduledDelayMs: number;
  /** An export that has not answered by then is counted as failed, in ms. */
  exportTimeoutMs: number;
  /**
   * Tries per batch before its spans are dropped (default 1). The OTLP gRPC
   * exporter does not retry by itself, so a backend that restarts would
   * otherwise lose every batch sent meanwhile.
   */
  maxAttempts?: number;
  /** Wait before the first retry, in ms; each further retry waits 4 times longer. */
  retryBackoffMs?: number;
}

export interface ExportChannelCounters {
  exported: number;
  /** Dropped because the queue was full (the backend is slower than the traffic). */
  droppedQueueFull: number;
  /** Dropped because every attempt to export them failed. */
  droppedExportFailed: number;
  /** Attempts that failed and were tried again. */
  retries: number;
  queued: number;
}

export class ExportChannel {
  readonly name: string;
  readonly #exporter: SpanExporter;
  readonly #options: ExportChannelOptions;
  #queue: ReadableSpan[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #exported = 0;
  #droppedQueueFull = 0;
  #droppedExportFailed = 0;
  #retries = 0;
  #lastError: string | undefined;
  #onError: (message: string) => void;

  constructor(name: string, exporter: SpanExporter, options: ExportChannelOptions, onError: (message: string) => void = () => {}) {
    this.name = name;
    this.#exporter = exporter;
    this.#options = options;
    this.#onError = onError;
  }

  get counters(): ExportChannelCounters {
    return {
      exported: this.#exported,
      droppedQueueFull: this.#droppedQueueFull,
      droppedExportFailed: this.#droppedExportFailed,
      retries: this.#retries,
      queued: this.#queue.length,
    };
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  push(span: ReadableSpan): void {
    if (this.#queue.length >= this.#options.maxQueueSize) {
      this.#droppedQueueFull++;
      return;
    }
    this.#queue.push(span);
    this.#kickOrSchedule();
  }

  /** A full batch goes now; a partial one waits at most scheduledDelayMs. */
  #kickOrSchedule(): void {
    if (this.#queue.length >= this.#options.maxExportBatchSize) this.#kick();
    else if (this.#queue.length > 0 && !this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#kick();
      }, this.#options.scheduledDelayMs);
      this.#timer.unref();
    }
  }

  /** Exports everything queued; resolves when done or when `timeoutMs` runs out. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.#queue.length > 0 || this.#inFlight) && Date.now() < deadline) {
      if (!this.#inFlight) this.#kick();
      const remaining = deadline - Date.now();
      const timer = sleep(Math.max(0, remaining));
      await Promise.race([this.#inFlight ?? Promise.resolve(), timer.done]);
      timer.cancel();
    }
  }

  async shutdown(timeoutMs: number): Promise<void> {
    await this.flush(timeoutMs);
    if (this.#timer) clearTimeout(this.#timer);
    const timer = sleep(timeoutMs);
    await Promise.race([this.#exporter.shutdown().catch(() => undefined), timer.done]);
    timer.cancel();
  }

  #kick(): void {
    if (this.#inFlight || this.#queue.length === 0) return;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch = this.#queue.splice(0, this.#options.maxExportBatchSize);
    this.#inFlight = this.#exportBatch(batch).finally(() => {
      this.#inFlight = undefined;
      this.#kickOrSchedule();
    });
  }

  async #exportBatch(batch: ReadableSpan[]): Promise<void> {
    const maxAttempts = Math.max(1, this.#options.maxAttempts ?? 1);
    let backoffMs = this.#options.retryBackoffMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      const result = await this.#exportOnce(batch);
      if (result.code === ExportResultCode.SUCCESS) {
        this.#exported += batch.length;
        this.#lastError = undefined;
        return;
      }
      const message = result.error?.message ?? 'export failed';
      if (attempt >= maxAttempts) {
        this.#droppedExportFailed += batch.length;
        if (message !== this.#lastError) this.#onError(message);
        this.#lastError = message;
        return;
      }
      this.#retries++;
      const wait = sleep(backoffMs);
      await wait.done;
      backoffMs *= 4;
    }
  }

  #exportOnce(batch: ReadableSpan[]): Promise<ExportResult> {
    return new Promise<ExportResult>((resolve) => {
      let settled = false;
      const settle = (result: ExportResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        resolve(result);
      };
      const timeout = setTimeout(
        () => settle({ code: ExportResultCode.FAILED, error: new Error(`export timed out after ${this.#options.exportTimeoutMs} ms`) }),
        this.#options.exportTimeoutMs,
      );
      timeout.unref();
      try {
        this.#exporter.export(batch, settle);
      } catch (error) {
        settle({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
      }
    });
  }
}

// Referenced on purpose: a flush at shutdown must keep the process alive
// until the exporter answers or the flush times out.
function sleep(ms: number): { done: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return { done, cancel: () => clearTimeout(timer) };
}
