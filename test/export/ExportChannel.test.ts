import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ExportChannel, SDK_SPAN_BYTES_ESTIMATE, type ExportChannelOptions } from '../../src/export/ExportChannel';
import { WireSpan } from '../../src/spans/WireSpan';

const resource = resourceFromAttributes({ 'service.name': 'svc' });

function span(i: number): ReadableSpan {
  const id = i.toString(16).padStart(16, '0');
  return new WireSpan(`s${i}`, SpanKind.SERVER, { traceId: `${'0'.repeat(16)}${id}`, spanId: id, traceFlags: 1 }, '', [1, 0], [1, 1], [0, 1], { code: SpanStatusCode.UNSET }, { i }, resource, { name: 'sonde' });
}

function names(batch: ReadableSpan[]): string[] {
  return batch.map((s) => s.name);
}

type Behaviour = 'success' | 'hold' | { fail: string } | 'throw' | 'fail-no-error';

/** Records every batch; answers as `behaviour` says, which a test may change at any time. */
class FakeExporter implements SpanExporter {
  batches: ReadableSpan[][] = [];
  held: Array<(result: ExportResult) => void> = [];
  shutdownCalls = 0;
  forceFlushCalls = 0;
  constructor(public behaviour: Behaviour = 'success') {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.batches.push(spans);
    const b = this.behaviour;
    if (b === 'success') resultCallback({ code: ExportResultCode.SUCCESS });
    else if (b === 'hold') this.held.push(resultCallback);
    else if (b === 'throw') throw new Error('exporter exploded');
    else if (b === 'fail-no-error') resultCallback({ code: ExportResultCode.FAILED });
    else resultCallback({ code: ExportResultCode.FAILED, error: new Error(b.fail) });
  }

  releaseAll(result: ExportResult = { code: ExportResultCode.SUCCESS }): void {
    const held = this.held;
    this.held = [];
    for (const cb of held) cb(result);
  }

  async shutdown(): Promise<void> {
    this.shutdownCalls++;
  }

  async forceFlush(): Promise<void> {
    this.forceFlushCalls++;
  }
}

/** The counters, but the time spent, which depends on the machine. */
function countsOf(channel: ExportChannel<ReadableSpan>): Omit<ExportChannel['counters'], 'busyMs'> {
  const { busyMs, ...counts } = channel.counters;
  assert.ok(busyMs >= 0);
  return counts;
}

function opts(over: Partial<ExportChannelOptions> = {}): ExportChannelOptions {
  // Long delays by default: a test that wants the timer sets a short one.
  return { maxQueueSize: 100, maxQueueBytes: 1 << 30, maxExportBatchSize: 10, maxExportBatchBytes: 1 << 30, scheduledDelayMs: 60_000, exportTimeoutMs: 60_000, ...over };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Lets promise callbacks (the channel's .finally) run. */
const ticks = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

test('a full batch is exported at once, without waiting for the delay', async () => {
  const exporter = new FakeExporter();
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 3 }));
  channel.push(span(1));
  channel.push(span(2));
  assert.equal(exporter.batches.length, 0);
  assert.deepEqual(countsOf(channel), { exported: 0, droppedQueueFull: 0, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 0, queued: 2, queuedBytes: 2 * SDK_SPAN_BYTES_ESTIMATE });
  channel.push(span(3));
  assert.equal(exporter.batches.length, 1, 'the third span fills the batch and is sent synchronously');
  assert.deepEqual(names(exporter.batches[0]), ['s1', 's2', 's3']);
  await new Promise((resolve) => setImmediate(resolve)); // the result is accounted a microtask later
  assert.deepEqual(countsOf(channel), { exported: 3, droppedQueueFull: 0, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
  await channel.shutdown(100);
});

test('batches never exceed maxExportBatchSize and keep push order', async () => {
  const exporter = new FakeExporter('hold');
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 4, maxQueueSize: 100 }));
  for (let i = 1; i <= 10; i++) channel.push(span(i));
  // One export in flight (4 spans); the other 6 wait for it.
  assert.equal(exporter.batches.length, 1);
  assert.equal(channel.counters.queued, 6);
  exporter.releaseAll();
  await ticks();
  assert.equal(exporter.batches.length, 2, 'the queue still held a full batch, so it went at once');
  exporter.releaseAll();
  await ticks();
  // 2 spans left: less than a batch, so they wait for the (long) delay.
  assert.equal(exporter.batches.length, 2);
  assert.equal(channel.counters.queued, 2);
  exporter.behaviour = 'success';
  await channel.flush(1000);
  assert.deepEqual(exporter.batches.map(names), [
    ['s1', 's2', 's3', 's4'],
    ['s5', 's6', 's7', 's8'],
    ['s9', 's10'],
  ]);
  assert.deepEqual(countsOf(channel), { exported: 10, droppedQueueFull: 0, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
});

test('a partial batch is exported after scheduledDelayMs', async () => {
  const exporter = new FakeExporter();
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 100, scheduledDelayMs: 20 }));
  channel.push(span(1));
  channel.push(span(2));
  assert.equal(exporter.batches.length, 0, 'nothing is sent before the delay');
  await waitUntil(() => exporter.batches.length === 1, 'the timed export');
  assert.deepEqual(names(exporter.batches[0]), ['s1', 's2']);
  assert.deepEqual(countsOf(channel), { exported: 2, droppedQueueFull: 0, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
  // A later span starts a new timer.
  channel.push(span(3));
  await waitUntil(() => exporter.batches.length === 2, 'the second timed export');
  assert.deepEqual(names(exporter.batches[1]), ['s3']);
  await sleep(60);
  assert.equal(exporter.batches.length, 2, 'no empty exports');
  await channel.shutdown(100);
});

test('spans left over after an export are sent by the delay timer', async () => {
  const exporter = new FakeExporter('hold');
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 2, scheduledDelayMs: 20 }));
  channel.push(span(1));
  channel.push(span(2)); // full: in flight
  channel.push(span(3)); // waits
  assert.equal(exporter.batches.length, 1);
  exporter.behaviour = 'success';
  exporter.releaseAll();
  await waitUntil(() => exporter.batches.length === 2, 'the leftover span');
  assert.deepEqual(names(exporter.batches[1]), ['s3']);
  assert.equal(channel.counters.exported, 3);
});

test('a full queue drops new spans and counts them as droppedQueueFull', async () => {
  const exporter = new FakeExporter('hold');
  const channel = new ExportChannel('fake', exporter, opts({ maxQueueSize: 4, maxExportBatchSize: 2 }));
  channel.push(span(1));
  channel.push(span(2)); // batch in flight, queue empty again
  for (let i = 3; i <= 9; i++) channel.push(span(i)); // 3..6 fit, 7..9 are dropped
  assert.deepEqual(countsOf(channel), { exported: 0, droppedQueueFull: 3, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 0, queued: 4, queuedBytes: 4 * SDK_SPAN_BYTES_ESTIMATE });
  exporter.behaviour = 'success';
  exporter.releaseAll();
  await channel.flush(1000);
  assert.deepEqual(exporter.batches.map(names), [
    ['s1', 's2'],
    ['s3', 's4'],
    ['s5', 's6'],
  ]);
  assert.deepEqual(countsOf(channel), { exported: 6, droppedQueueFull: 3, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
});

test('failed exports are counted as droppedExportFailed; onError once per distinct message', async () => {
  const exporter = new FakeExporter({ fail: 'UNAVAILABLE: connection refused' });
  const errors: string[] = [];
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 2 }), (m) => errors.push(m));
  for (let i = 1; i <= 6; i++) channel.push(span(i));
  await channel.flush(1000);
  assert.equal(exporter.batches.length, 3);
  assert.deepEqual(countsOf(channel), { exported: 0, droppedQueueFull: 0, droppedExportFailed: 6, droppedAtShutdown: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
  assert.deepEqual(errors, ['UNAVAILABLE: connection refused']);
  assert.equal(channel.lastError, 'UNAVAILABLE: connection refused');

  exporter.behaviour = { fail: 'DEADLINE_EXCEEDED' };
  channel.push(span(7));
  channel.push(span(8));
  channel.push(span(9));
  channel.push(span(10));
  await channel.flush(1000);
  assert.deepEqual(errors, ['UNAVAILABLE: connection refused', 'DEADLINE_EXCEEDED']);

  // A success clears the last error, so the same failure is reported again afterwards.
  exporter.behaviour = 'success';
  channel.push(span(11));
  channel.push(span(12));
  await channel.flush(1000);
  assert.equal(channel.lastError, undefined);
  exporter.behaviour = { fail: 'DEADLINE_EXCEEDED' };
  channel.push(span(13));
  channel.push(span(14));
  await channel.flush(1000);
  assert.deepEqual(errors, ['UNAVAILABLE: connection refused', 'DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED']);
  assert.deepEqual(countsOf(channel), { exported: 2, droppedExportFailed: 12, droppedAtShutdown: 0, droppedQueueFull: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
});

test('a failure without an error object is reported as "export failed"', async () => {
  const exporter = new FakeExporter('fail-no-error');
  const errors: string[] = [];
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 1 }), (m) => errors.push(m));
  channel.push(span(1));
  channel.push(span(2));
  await channel.flush(1000);
  assert.deepEqual(errors, ['export failed']);
  assert.equal(channel.counters.droppedExportFailed, 2);
});

test('an exporter that never calls back is timed out and counted as failed', async () => {
  const exporter = new FakeExporter('hold');
  const errors: string[] = [];
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 3, exportTimeoutMs: 20 }), (m) => errors.push(m));
  channel.push(span(1));
  channel.push(span(2));
  channel.push(span(3));
  channel.push(span(4));
  assert.equal(exporter.batches.length, 1);
  await waitUntil(() => channel.counters.droppedExportFailed === 3, 'the export timeout');
  assert.deepEqual(errors, ['export timed out after 20 ms']);
  assert.equal(channel.lastError, 'export timed out after 20 ms');
  // A late answer to the timed-out export changes nothing.
  exporter.held[0]({ code: ExportResultCode.SUCCESS });
  assert.equal(channel.counters.exported, 0);
  assert.equal(channel.counters.droppedExportFailed, 3);
  // The channel is not stuck: the next batch is attempted.
  exporter.behaviour = 'success';
  await channel.flush(1000);
  assert.deepEqual(countsOf(channel), { exported: 1, droppedQueueFull: 0, droppedExportFailed: 3, droppedAtShutdown: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
  assert.equal(channel.lastError, undefined);
});

test('an exporter that throws synchronously is counted as failed and the channel keeps going', async () => {
  const exporter = new FakeExporter('throw');
  const errors: string[] = [];
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 2 }), (m) => errors.push(m));
  assert.doesNotThrow(() => {
    channel.push(span(1));
    channel.push(span(2));
  });
  await ticks();
  assert.deepEqual(countsOf(channel), { exported: 0, droppedQueueFull: 0, droppedExportFailed: 2, droppedAtShutdown: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
  assert.deepEqual(errors, ['exporter exploded']);
  channel.push(span(3));
  channel.push(span(4));
  await channel.flush(1000);
  assert.equal(channel.counters.droppedExportFailed, 4);
  assert.deepEqual(errors, ['exporter exploded'], 'the same message is not reported twice in a row');
  exporter.behaviour = 'success';
  channel.push(span(5));
  await channel.flush(1000);
  assert.equal(channel.counters.exported, 1);
});

test('a thrown non-Error value is reported by its string form', async () => {
  const exporter: SpanExporter = {
    export() {
      throw 'plain string';
    },
    async shutdown() {},
  };
  const errors: string[] = [];
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 1 }), (m) => errors.push(m));
  channel.push(span(1));
  await channel.flush(1000);
  assert.deepEqual(errors, ['plain string']);
  assert.equal(channel.counters.droppedExportFailed, 1);
});

test('flush() exports everything queued, in batches, without waiting for the delay', async () => {
  const exporter = new FakeExporter();
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 4, maxQueueSize: 1000 }));
  for (let i = 1; i <= 3; i++) channel.push(span(i));
  assert.equal(exporter.batches.length, 0);
  await channel.flush(1000);
  assert.equal(exporter.batches.length, 1);
  assert.deepEqual(countsOf(channel), { exported: 3, droppedQueueFull: 0, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
});

test('flush() waits for an export in flight and the spans queued behind it', async () => {
  const exporter = new FakeExporter('hold');
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 2 }));
  for (let i = 1; i <= 5; i++) channel.push(span(i));
  let flushed = false;
  const flushing = channel.flush(5000).then(() => {
    flushed = true;
  });
  await ticks();
  assert.equal(flushed, false);
  exporter.behaviour = 'success';
  exporter.releaseAll();
  await flushing;
  assert.deepEqual(countsOf(channel), { exported: 5, droppedQueueFull: 0, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 0, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
  assert.deepEqual(exporter.batches.map((b) => b.length), [2, 2, 1]);
});

test('flush() on an idle channel returns and exports nothing', async () => {
  const exporter = new FakeExporter();
  const channel = new ExportChannel('fake', exporter, opts());
  await channel.flush(1000);
  assert.equal(exporter.batches.length, 0);
});

test('flush() gives up at its timeout when the exporter hangs, leaving the rest queued', async () => {
  const exporter = new FakeExporter('hold');
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 2 }));
  for (let i = 1; i <= 3; i++) channel.push(span(i));
  // The channel's own timers are unref'd, so something has to keep the event
  // loop alive while flush() waits on an exporter that holds nothing open.
  const keepAlive = setInterval(() => {}, 1000);
  try {
    await channel.flush(20);
  } finally {
    clearInterval(keepAlive);
  }
  assert.equal(exporter.batches.length, 1);
  assert.equal(channel.counters.queued, 1);
  assert.equal(channel.counters.exported, 0);
  exporter.releaseAll();
});

test('shutdown() flushes, then calls exporter.shutdown once', async () => {
  const exporter = new FakeExporter();
  const channel = new ExportChannel('fake', exporter, opts({ scheduledDelayMs: 20 }));
  channel.push(span(1));
  channel.push(span(2));
  await channel.shutdown(1000);
  assert.equal(exporter.shutdownCalls, 1);
  assert.deepEqual(names(exporter.batches.flat()), ['s1', 's2']);
  assert.equal(channel.counters.exported, 2);
  // The cleared delay timer does not export again later.
  await sleep(40);
  assert.equal(exporter.batches.length, 1);
});

test('shutdown() survives an exporter whose shutdown rejects', async () => {
  const exporter = new FakeExporter();
  exporter.shutdown = async () => {
    exporter.shutdownCalls++;
    throw new Error('already shut down');
  };
  const channel = new ExportChannel('fake', exporter, opts());
  channel.push(span(1));
  await channel.shutdown(1000);
  assert.equal(exporter.shutdownCalls, 1);
  assert.equal(channel.counters.exported, 1);
});

test('channels are independent: a hanging exporter does not hold up another', async () => {
  const dead = new FakeExporter('hold');
  const live = new FakeExporter();
  const a = new ExportChannel('dead', dead, opts({ maxQueueSize: 2, maxExportBatchSize: 1 }));
  const b = new ExportChannel('live', live, opts({ maxQueueSize: 2, maxExportBatchSize: 1 }));
  for (let i = 1; i <= 5; i++) {
    a.push(span(i));
    b.push(span(i));
  }
  assert.equal(a.name, 'dead');
  assert.deepEqual(countsOf(a), { exported: 0, droppedQueueFull: 2, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 0, queued: 2, queuedBytes: 2 * SDK_SPAN_BYTES_ESTIMATE });
  await b.flush(1000);
  assert.equal(b.counters.exported + b.counters.droppedQueueFull, 5);
  assert.equal(b.counters.droppedExportFailed, 0);
  dead.releaseAll();
});

test('a failed batch is tried again, with backoff, before its spans are dropped', async () => {
  const exporter = new FakeExporter({ fail: 'UNAVAILABLE' });
  const errors: string[] = [];
  const channel = new ExportChannel('retrying', exporter, opts({ maxQueueSize: 10, maxExportBatchSize: 2, scheduledDelayMs: 5, exportTimeoutMs: 1000, maxAttempts: 3, retryBackoffMs: 20 }), (m) => errors.push(m));
  channel.push(span(1));
  channel.push(span(2));
  await waitUntil(() => exporter.batches.length === 2, 'the first retry');
  exporter.behaviour = 'success'; // the backend is back
  await channel.flush(2000);
  assert.equal(exporter.batches.length, 3);
  assert.deepEqual(exporter.batches.map(names), [['s1', 's2'], ['s1', 's2'], ['s1', 's2']]);
  assert.deepEqual(countsOf(channel), { exported: 2, droppedQueueFull: 0, droppedExportFailed: 0, droppedAtShutdown: 0, retries: 2, queued: 0, queuedBytes: 0 * SDK_SPAN_BYTES_ESTIMATE });
  assert.deepEqual(errors, [], 'nothing was lost, so nothing is reported');

  exporter.behaviour = { fail: 'UNAVAILABLE' };
  channel.push(span(3));
  channel.push(span(4));
  await channel.flush(2000);
  assert.equal(exporter.batches.length, 6, 'three attempts, then given up');
  assert.equal(channel.counters.droppedExportFailed, 2);
  assert.equal(channel.counters.retries, 4);
  assert.deepEqual(errors, ['UNAVAILABLE']);
});

test('the queue and the batches are bounded by bytes as well as by spans', async () => {
  const exporter = new FakeExporter('hold');
  const weights: Record<string, number> = { s1: 100, s2: 300, s3: 50, s4: 700, s5: 10, s6: 300, s7: 1 };
  const channel = new ExportChannel<ReadableSpan>('bytes', exporter, opts({ maxExportBatchSize: 100, maxExportBatchBytes: 400, maxQueueBytes: 1000 }), () => {}, {
    prepare: (s) => s,
    bytesOf: (s) => weights[s.name] ?? 1,
  });
  channel.push(span(1));
  channel.push(span(2));
  // 400 bytes queued: a batch is due, and it holds what fits in 400.
  assert.deepEqual(exporter.batches.map(names), [['s1', 's2']]);
  channel.push(span(3));
  channel.push(span(4));
  assert.equal(channel.counters.queuedBytes, 750);
  // Past 1000 bytes queued, new spans are dropped and counted.
  channel.push(span(5));
  channel.push(span(6));
  assert.equal(channel.counters.droppedQueueFull, 0);
  assert.equal(channel.counters.queuedBytes, 1060);
  channel.push(span(7));
  assert.equal(channel.counters.droppedQueueFull, 1);
  exporter.releaseAll();
  await waitUntil(() => exporter.batches.length === 2, 'the next batch');
  // A span heavier than the batch bound still goes, alone.
  assert.deepEqual(exporter.batches.map(names)[1], ['s3']);
  exporter.releaseAll();
  await waitUntil(() => exporter.batches.length === 3, 'the heavy span');
  assert.deepEqual(exporter.batches.map(names)[2], ['s4']);
});

test('the time spent queueing and handing over batches is counted', () => {
  const exporter = new FakeExporter();
  const channel = new ExportChannel('busy', exporter, opts({ maxExportBatchSize: 2 }));
  assert.equal(channel.counters.busyMs, 0);
  channel.pushAll([span(1), span(2), span(3)]);
  assert.ok(channel.counters.busyMs > 0);
  assert.deepEqual(exporter.batches.map(names), [['s1', 's2']]);
});

test('an item is released once, when its batch is exported or given up on, never while an attempt may need it', async () => {
  const released: string[] = [];
  const form = { prepare: (s: ReadableSpan) => s, bytesOf: () => 1, release: (s: ReadableSpan) => released.push(s.name) };
  const held = new FakeExporter('hold');
  const channel = new ExportChannel<ReadableSpan>('release', held, opts({ maxExportBatchSize: 2, scheduledDelayMs: 10 }), () => {}, form);
  channel.pushAll([span(1), span(2), span(3)]);
  assert.deepEqual(held.batches.map(names), [['s1', 's2']]);
  await ticks();
  assert.deepEqual(released, [], 'the batch is still out');
  held.behaviour = 'success';
  held.releaseAll();
  await waitUntil(() => released.length >= 3, 'both batches released');
  await sleep(20);
  assert.deepEqual(released, ['s1', 's2', 's3']);

  const failing = new FakeExporter({ fail: 'UNAVAILABLE' });
  const retried = new ExportChannel<ReadableSpan>('release-failed', failing, opts({ maxExportBatchSize: 1, maxAttempts: 2, retryBackoffMs: 200 }), () => {}, form);
  released.length = 0;
  retried.push(span(4));
  await sleep(50);
  assert.equal(failing.batches.length, 1, 'waiting to retry');
  assert.deepEqual(released, [], 'a retry is due');
  await waitUntil(() => released.length >= 1, 'the failed batch released after its last attempt');
  await sleep(20);
  assert.equal(failing.batches.length, 2);
  assert.deepEqual(released, ['s4']);
  await channel.shutdown(1000);
  await retried.shutdown(1000);
});

test('shutdown() counts what is still queued when its flush runs out of time, and releases it', async () => {
  const exporter = new FakeExporter('hold');
  const released: string[] = [];
  const form = { prepare: (s: ReadableSpan) => s, bytesOf: () => 1, release: (s: ReadableSpan) => released.push(s.name) };
  const channel = new ExportChannel('fake', exporter, opts({ maxExportBatchSize: 2 }), () => {}, form);
  for (let i = 1; i <= 5; i++) channel.push(span(i));
  // s1 and s2 are in flight and never answered; s3..s5 wait behind them.
  await channel.shutdown(50);
  assert.equal(exporter.shutdownCalls, 1);
  assert.deepEqual(countsOf(channel), { exported: 0, droppedQueueFull: 0, droppedExportFailed: 0, droppedAtShutdown: 3, retries: 0, queued: 0, queuedBytes: 0 });
  assert.deepEqual(released, ['s3', 's4', 's5']);
});
