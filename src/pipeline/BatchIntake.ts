/**
 * Between the addon's reader and the span pipeline: batches are queued as
 * they arrive and worked off in slices of the event loop.
 *
 * Node hands a thread-safe function's queued calls over in one go, up to a
 * thousand without returning to the event loop. When the JavaScript thread
 * fell behind (a busy host gives it less than a core), turning them all into
 * spans at once kept the loop blocked for seconds: the OTLP exporter's
 * socket went unserviced, exports of 4096 spans took a second instead of
 * 15 ms, and the export queue overflowed while the same spans would have
 * drained in 0.3 s. Here each turn of the loop does at most `sliceMs` of
 * batches, so the exporters' I/O runs between slices.
 */

export interface BatchIntakeOptions {
  /** Records waiting to be turned into spans; a batch that would pass this is dropped and counted. */
  maxPendingBytes: number;
  /** Work done per turn of the event loop before yielding to I/O, in ms. */
  sliceMs: number;
  /** Wall clock in ms (performance.now by default). */
  now?: () => number;
}

export interface BatchIntakeCounters {
  /** Batches dropped because `maxPendingBytes` were already waiting. */
  batchesDropped: number;
  exchangesDropped: number;
  pendingBatches: number;
  pendingBytes: number;
}

export class BatchIntake {
  readonly #process: (records: Buffer, encoded?: Buffer) => void;
  readonly #options: BatchIntakeOptions;
  readonly #now: () => number;
  #pending: Array<{ records: Buffer; encoded: Buffer | undefined; release: (() => void) | undefined }> = [];
  #pendingBytes = 0;
  #scheduled: NodeJS.Immediate | undefined;
  #batchesDropped = 0;
  #exchangesDropped = 0;
  #closed = false;

  constructor(process: (records: Buffer, encoded?: Buffer) => void, options: BatchIntakeOptions) {
    this.#process = process;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  get counters(): BatchIntakeCounters {
    return {
      batchesDropped: this.#batchesDropped,
      exchangesDropped: this.#exchangesDropped,
      pendingBatches: this.#pending.length,
      pendingBytes: this.#pendingBytes,
    };
  }

  /**
   * Queues a batch of `exchanges` records, with the spans the addon encoded
   * for it; drops and counts it if the queue is full. `release` is called
   * once the batch's buffers are no longer read (worked off or dropped).
   */
  push(records: Buffer, exchanges: number, encoded?: Buffer, release?: () => void): void {
    const bytes = records.length + (encoded?.length ?? 0);
    // One batch is always taken, however large, so that a bound smaller
    // than a batch cannot stop the flow.
    if (records.length === 0 || this.#closed || (this.#pending.length > 0 && this.#pendingBytes + bytes > this.#options.maxPendingBytes)) {
      if (records.length > 0) {
        this.#batchesDropped++;
        this.#exchangesDropped += exchanges;
      }
      release?.();
      return;
    }
    this.#pending.push({ records, encoded, release });
    this.#pendingBytes += bytes;
    this.#schedule();
  }

  /**
   * At stop, once the exporters are about to flush: a batch that comes
   * later could not be exported, so it is dropped and counted instead.
   */
  close(): void {
    this.#closed = true;
  }

  /** Works off everything queued now (at stop). */
  drain(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    while (this.#pending.length > 0) this.#takeOne();
  }

  #schedule(): void {
    this.#scheduled ??= setImmediate(this.#slice);
  }

  readonly #slice = (): void => {
    this.#scheduled = undefined;
    const started = this.#now();
    do this.#takeOne();
    while (this.#pending.length > 0 && this.#now() - started < this.#options.sliceMs);
    if (this.#pending.length > 0) this.#schedule();
  };

  #takeOne(): void {
    const { records, encoded, release } = this.#pending.shift()!;
    this.#pendingBytes -= records.length + (encoded?.length ?? 0);
    try {
      this.#process(records, encoded);
    } finally {
      release?.();
    }
  }
}
