/**
 * A bounded batching queue in front of one exporter. Each exporter gets its
 * own channel, so a dead backend fills and drops only its own queue. Unlike
 * BatchSpanProcessor it counts everything it drops, by cause, and bounds its
 * queue and its batches by bytes as well as by spans.
 *
 * What is queued is the exporter's own form of a span: the span itself for
 * the OTel exporters, or its OTLP bytes, encoded as it arrives, for sonde's
 * OTLP exporter (./otlp/), whose queue then holds bytes, not object graphs.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { threadCpuMs } from '../telemetry/cpuClock';
import type { PreencodedSpan } from '../spans/PreencodedSpan';

export interface ExportChannelOptions {
  /** Spans waiting to be exported; past this new spans are dropped and counted. */
  maxQueueSize: number;
  /** Bytes waiting to be exported (as {@link QueuedForm.bytesOf} counts them); past this new spans are dropped and counted. */
  maxQueueBytes: number;
  maxExportBatchSize: number;
  /** A batch closes before it passes this many bytes (a backend's message limit: 4 MiB for an OTel Collector by default). */
  maxExportBatchBytes: number;
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
  /** Still queued when the flush at shutdown ran out of time (the backend too slow or gone). */
  droppedAtShutdown: number;
  /** Attempts that failed and were tried again. */
  retries: number;
  queued: number;
  queuedBytes: number;
  /**
   * Milliseconds the JavaScript thread spent in this channel: turning spans
   * into what it queues (for OTLP, encoding them), and handing batches to
   * the exporter (for the OTel exporters, serializing them). The transport's
   * own work after that is not in it, nor is copying in a span the addon
   * encoded, or a batch sent when such a span fills it: the pipeline's
   * buildMs counts those.
   */
  busyMs: number;
}

/** What a channel hands its batches to: a SpanExporter, for items of any form. */
export interface BatchExporter<T> {
  export(items: T[], resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

/** How a channel turns a span into what it queues, and what that weighs. */
export interface QueuedForm<T> {
  prepare(span: ReadableSpan): T;
  /** The same for a span the addon encoded; a form without it makes the pipeline build every span in JavaScript. */
  fromPreencoded?(span: PreencodedSpan): T;
  bytesOf(item: T): number;
  /** The item has left the channel for good: exported, or given up on after its last attempt. */
  release?(item: T): void;
}

/**
 * A span object as the SDK exporters take it: its size in memory is not
 * known without walking it, so each counts as this many bytes (about what a
 * span of sonde's with its attributes takes on the heap).
 */
export const SDK_SPAN_BYTES_ESTIMATE = 1536;

export const SDK_SPANS: QueuedForm<ReadableSpan> = { prepare: (span) => span, bytesOf: () => SDK_SPAN_BYTES_ESTIMATE };

/** Where the pipeline hands finished spans. */
export interface SpanSink {
  push(span: ReadableSpan): void;
  /** The spans of one batch of exchanges, in order. */
  pushAll(spans: readonly ReadableSpan[]): void;
  /**
   * A span the addon encoded. The addon encodes spans only when every sink
   * has this; the object is reused, so the sink keeps nothing of it but copies.
   */
  pushPreencoded?(span: PreencodedSpan): void;
}

export class ExportChannel<T = ReadableSpan> implements SpanSink {
  readonly name: string;
  readonly #exporter: BatchExporter<T>;
  readonly #form: QueuedForm<T>;
  readonly #options: ExportChannelOptions;
  #queue: T[] = [];
  #queuedBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #exported = 0;
  #droppedQueueFull = 0;
  #droppedExportFailed = 0;
  #droppedAtShutdown = 0;
  #retries = 0;
  #busyMs = 0;
  /** Inside pushAll, whose time already counts what #kick does. */
  #timing = false;
  #lastError: string | undefined;
  #onError: (message: string) => void;

  constructor(
    name: string,
    exporter: BatchExporter<T>,
    options: ExportChannelOptions,
    onError: (message: string) => void = () => {},
    form: QueuedForm<T> = SDK_SPANS as unknown as QueuedForm<T>,
  ) {
    this.name = name;
    this.#exporter = exporter;
    this.#form = form;
    this.#options = options;
    this.#onError = onError;
    if (form.fromPreencoded) this.pushPreencoded = (span) => this.#pushPreencoded(span);
  }

  get counters(): ExportChannelCounters {
    return {
      exported: this.#exported,
      droppedQueueFull: this.#droppedQueueFull,
      droppedExportFailed: this.#droppedExportFailed,
      droppedAtShutdown: this.#droppedAtShutdown,
      retries: this.#retries,
      queued: this.#queue.length,
      queuedBytes: this.#queuedBytes,
      busyMs: this.#busyMs,
    };
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  push(span: ReadableSpan): void {
    this.pushAll([span]);
  }

  pushAll(spans: readonly ReadableSpan[]): void {
    if (spans.length === 0) return;
    const started = threadCpuMs();
    this.#timing = true;
    try {
      for (const span of spans) if (this.#hasRoom()) this.#enqueue(this.#form.prepare(span));
      this.#kickOrSchedule();
    } finally {
      this.#timing = false;
      this.#busyMs += threadCpuMs() - started;
    }
  }

  readonly pushPreencoded?: (span: PreencodedSpan) => void;

  // One span at a time, with no clock read: the pipeline's own time
  // (buildMs) already counts this copy, and a batch this sends, and reading
  // the thread clock per span would cost more than the copy.
  #pushPreencoded(span: PreencodedSpan): void {
    this.#timing = true;
    try {
      if (this.#hasRoom()) this.#enqueue(this.#form.fromPreencoded!(span));
      this.#kickOrSchedule();
    } finally {
      this.#timing = false;
    }
  }

  #hasRoom(): boolean {
    if (this.#queue.length < this.#options.maxQueueSize && this.#queuedBytes < this.#options.maxQueueBytes) return true;
    this.#droppedQueueFull++;
    return false;
  }

  #enqueue(item: T): void {
    this.#queue.push(item);
    this.#queuedBytes += this.#form.bytesOf(item);
    if (this.#queue.length >= this.#options.maxExportBatchSize || this.#queuedBytes >= this.#options.maxExportBatchBytes) this.#kick();
  }

  /** A full batch goes now; a partial one waits at most scheduledDelayMs. */
  #kickOrSchedule(): void {
    if (this.#queue.length >= this.#options.maxExportBatchSize || this.#queuedBytes >= this.#options.maxExportBatchBytes) this.#kick();
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
    const unsent = this.#queue.splice(0);
    this.#queuedBytes = 0;
    this.#droppedAtShutdown += unsent.length;
    this.#release(unsent);
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
    const batch = this.#queue.splice(0, this.#batchLength());
    for (const item of batch) this.#queuedBytes -= this.#form.bytesOf(item);
    const started = this.#timing ? 0 : threadCpuMs();
    this.#inFlight = this.#exportBatch(batch).finally(() => {
      this.#inFlight = undefined;
      this.#release(batch);
      this.#kickOrSchedule();
    });
    // The first attempt hands the batch over synchronously.
    if (!this.#timing) this.#busyMs += threadCpuMs() - started;
  }

  // Runs in the batch's finally: a throw would skip scheduling the next one.
  #release(batch: T[]): void {
    const form = this.#form;
    if (!form.release) return;
    try {
      for (const item of batch) form.release(item);
    } catch (error) {
      this.#onError(`releasing exported spans: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Spans in the next batch: up to the batch size and byte bound, and at least one. */
  #batchLength(): number {
    const max = Math.min(this.#queue.length, this.#options.maxExportBatchSize);
    let bytes = 0;
    for (let i = 0; i < max; i++) {
      bytes += this.#form.bytesOf(this.#queue[i]);
      if (bytes > this.#options.maxExportBatchBytes) return Math.max(1, i);
    }
    return max;
  }

  async #exportBatch(batch: T[]): Promise<void> {
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

  #exportOnce(batch: T[]): Promise<ExportResult> {
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
