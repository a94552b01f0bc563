/**
 * The most recent traces, for the viewer: a span sink beside the exporters
 * that keeps spans as plain objects, grouped by trace, bounded by a span
 * count. When full, the oldest traces go first, whole, and are counted.
 * The service map is computed from what is held, when asked.
 *
 * Past `maxSpansPerSecond` it holds a sample of traces, chosen by trace id
 * so that a trace is held whole or not at all. Every held span outlives
 * V8's nursery, and minor collections slow down with the rate of spans
 * held (README, "The trace viewer", has the figures): at 14k spans per
 * second, holding them all made the bench's worst case cost sonde 35 µs
 * per span instead of 26, and 50 MB of RSS. The service map's rates count
 * each held call as the calls it stands for.
 *
 * A span the addon encoded is held as its OTLP bytes and read into a
 * ViewSpan only when the viewer is asked for something. Building each one
 * in JavaScript as it came, at the 100 spans a second held, cost sonde
 * 3.7 ms of CPU a second at 1.6k req/s (docs/design-notes.md), whether
 * anyone looked or not.
 */
import { SpanKind, SpanStatusCode, type AttributeValue } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { SpanSink } from '../export/ExportChannel';
import type { PreencodedSpan } from '../spans/PreencodedSpan';
import { viewSpanOfOtlp } from './viewSpanOfOtlp';
import { TRACE_ID_TAIL_RANGE, traceIdTail } from '../spans/traceIdTail';

export type ViewKind = 'SERVER' | 'CLIENT' | 'INTERNAL' | 'PRODUCER' | 'CONSUMER';

export interface ViewSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: ViewKind;
  service: string;
  /** Microseconds since the epoch. */
  startUs: number;
  durationUs: number;
  error: boolean;
  statusMessage?: string;
  attributes: Record<string, AttributeValue>;
  resource: Record<string, AttributeValue>;
}

export interface TraceSummary {
  traceId: string;
  /** The root span's name and service (the earliest span when the root is not held). */
  rootName: string;
  rootService: string;
  startUs: number;
  durationUs: number;
  spanCount: number;
  services: string[];
  error: boolean;
}

export interface TraceFilter {
  service?: string;
  /** A substring of any span's name. */
  name?: string;
  status?: 'error' | 'ok';
  minDurationMs?: number;
  /** A prefix of the trace id. */
  traceId?: string;
  limit?: number;
}

export interface MapEdge {
  from: string;
  to: string;
  /** The callee is not traced: `to` is the address the caller called. */
  untracedPeer: boolean;
  calls: number;
  errors: number;
  ratePerS: number;
  errorRate: number;
  p50Ms: number;
  p99Ms: number;
}

export interface ServiceMap {
  services: string[];
  edges: MapEdge[];
  /** The time the rates are over: from the oldest held span's start to now, at least 1 s. */
  windowS: number;
}

export interface TraceStoreCounters {
  traces: number;
  spans: number;
  /** Traces pushed out (whole) to make room, and their spans. */
  tracesEvicted: number;
  spansEvicted: number;
  /** Spans refused because their trace had maxSpansPerTrace already. */
  spansRefused: number;
  /** Spans the addon encoded whose bytes could not be read back (a bug if ever above 0). */
  spansUnreadable: number;
  /** Spans not held because their trace was not in the sample (above maxSpansPerSecond). */
  spansNotSampled: number;
  /** The fraction of new traces held now: 1 below maxSpansPerSecond. */
  sampleFraction: number;
}

const KIND_NAMES: Record<number, ViewKind> = {
  [SpanKind.INTERNAL]: 'INTERNAL',
  [SpanKind.SERVER]: 'SERVER',
  [SpanKind.CLIENT]: 'CLIENT',
  [SpanKind.PRODUCER]: 'PRODUCER',
  [SpanKind.CONSUMER]: 'CONSUMER',
};

/** A span the addon encoded: its Span message, copied, and its process's resource. */
interface UnreadSpan {
  bytes: Buffer;
  resource: Record<string, AttributeValue>;
}

interface HeldTrace {
  traceId: string;
  spans: ViewSpan[];
  /** Held, not yet read: startUs, endUs and error do not count them until #readHeld. */
  unread: UnreadSpan[] | undefined;
  startUs: number;
  endUs: number;
  error: boolean;
  /** How many traces this one stands for: 1 / the sample fraction when it was taken. */
  weight: number;
}

const hrToUs = (t: readonly [number, number]): number => t[0] * 1e6 + Math.floor(t[1] / 1e3);

export function viewSpanOf(span: ReadableSpan): ViewSpan {
  const ctx = span.spanContext();
  const service = span.resource.attributes['service.name'];
  const view: ViewSpan = {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    name: span.name,
    kind: KIND_NAMES[span.kind] ?? 'INTERNAL',
    service: typeof service === 'string' ? service : 'unknown',
    startUs: hrToUs(span.startTime),
    durationUs: hrToUs(span.duration),
    error: span.status.code === SpanStatusCode.ERROR,
    // Held by reference: a built span is never changed, and a resource is
    // one object shared by every span of its process.
    attributes: span.attributes as Record<string, AttributeValue>,
    resource: span.resource.attributes as Record<string, AttributeValue>,
  };
  const parent = span.parentSpanContext?.spanId;
  if (parent) view.parentSpanId = parent;
  if (span.status.message) view.statusMessage = span.status.message;
  return view;
}

export interface TraceStoreOptions {
  maxSpans: number;
  maxSpansPerTrace?: number;
  /** Above this rate of spans offered, hold a sample of traces (default: hold every one). */
  maxSpansPerSecond?: number;
  /** Milliseconds, for the rate; Date.now by default. */
  now?: () => number;
}

/** traceIdTail's 32 bits, less these, index #heldTailBits: 2^15 bits. */
const HELD_TAIL_BIT_SHIFT = 17;
const HELD_TAIL_BIT_WORDS = TRACE_ID_TAIL_RANGE / 2 ** HELD_TAIL_BIT_SHIFT / 32;

export class TraceStore implements SpanSink {
  readonly #maxSpans: number;
  readonly #maxSpansPerTrace: number;
  readonly #maxSpansPerSecond: number;
  readonly #now: () => number;
  #sampleFraction = 1;
  #secondStartMs: number;
  #offeredThisSecond = 0;
  #heldThisSecond = 0;
  #spansNotSampled = 0;
  /** In the order traces were first seen: the first is the one to evict. */
  readonly #traces = new Map<string, HeldTrace>();
  /** traceIdTail → how many held traces have it. */
  readonly #heldTails = new Map<number, number>();
  /**
   * One bit per range of 2^17 tails (4 KiB in all), set for every held
   * tail: most spans are of traces not held, and a clear bit tells so
   * without a lookup in #heldTails, whose table is spread over pages that
   * a batch of spans has evicted. Bits of traces evicted since stay set
   * (a lookup then answers) until the next second rebuilds them. By the
   * tail's top bits, so that traces sampled in by a small fraction, which
   * have small tails, share bits that spans sampled out do not reach.
   */
  readonly #heldTailBits = new Int32Array(HELD_TAIL_BIT_WORDS);
  #spans = 0;
  #tracesEvicted = 0;
  #spansEvicted = 0;
  #spansRefused = 0;
  #spansUnreadable = 0;
  /** The held traces with unread spans. */
  readonly #withUnread = new Set<HeldTrace>();

  constructor(options: TraceStoreOptions) {
    this.#maxSpans = options.maxSpans;
    this.#maxSpansPerTrace = Math.min(options.maxSpansPerTrace ?? 1000, options.maxSpans);
    this.#maxSpansPerSecond = options.maxSpansPerSecond ?? Infinity;
    this.#now = options.now ?? Date.now;
    this.#secondStartMs = this.#now();
  }

  get counters(): TraceStoreCounters {
    return {
      traces: this.#traces.size,
      spans: this.#spans,
      tracesEvicted: this.#tracesEvicted,
      spansEvicted: this.#spansEvicted,
      spansRefused: this.#spansRefused,
      spansUnreadable: this.#spansUnreadable,
      spansNotSampled: this.#spansNotSampled,
      sampleFraction: this.#sampleFraction,
    };
  }

  push(span: ReadableSpan): void {
    if (this.#maxSpansPerSecond !== Infinity) {
      const traceId = span.spanContext().traceId;
      if (!this.#sampled(traceIdTail(traceId), traceId)) {
        this.#spansNotSampled++;
        return;
      }
    }
    this.add(viewSpanOf(span));
  }

  /**
   * Whether a span's trace is in the sample. Held traces keep their spans.
   * The fraction for new ones follows the rate offered over the last
   * second; within a second, new traces stop at twice the rate, so a burst
   * is bounded before the fraction catches up.
   */
  #sampled(tail: number, traceId: string | undefined, encoded?: PreencodedSpan): boolean {
    // The clock is read every 64 spans: the rate needs no finer grain.
    if ((this.#offeredThisSecond & 63) === 0) this.#rollSecond();
    this.#offeredThisSecond++;
    const inHeldTrace = this.#mayBeHeld(tail) && this.#heldTails.has(tail) && this.#traces.has(traceId ?? encoded!.traceId());
    const held = inHeldTrace || ((this.#sampleFraction === 1 || tail / TRACE_ID_TAIL_RANGE < this.#sampleFraction) && this.#heldThisSecond < 2 * this.#maxSpansPerSecond);
    if (held) this.#heldThisSecond++;
    return held;
  }

  #rollSecond(): void {
    const now = this.#now();
    if (now - this.#secondStartMs >= 1000) {
      const perSecond = (this.#offeredThisSecond * 1000) / (now - this.#secondStartMs);
      this.#sampleFraction = Math.min(1, this.#maxSpansPerSecond / Math.max(perSecond, 1));
      this.#secondStartMs = now;
      this.#offeredThisSecond = 0;
      this.#heldThisSecond = 0;
      this.#heldTailBits.fill(0);
      for (const tail of this.#heldTails.keys()) this.#markHeld(tail);
    }
  }

  #mayBeHeld(tail: number): boolean {
    const bit = tail >>> HELD_TAIL_BIT_SHIFT;
    return (this.#heldTailBits[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  #markHeld(tail: number): void {
    const bit = tail >>> HELD_TAIL_BIT_SHIFT;
    this.#heldTailBits[bit >>> 5]! |= 1 << (bit & 31);
  }

  pushAll(spans: readonly ReadableSpan[]): void {
    for (const span of spans) this.push(span);
  }

  /** A span the addon encoded: when its trace is in the sample, its bytes are held, to be read when asked for. */
  pushPreencoded(span: PreencodedSpan): void {
    if (this.#maxSpansPerSecond !== Infinity && !this.#sampled(span.traceIdTail(), undefined, span)) {
      this.#spansNotSampled++;
      return;
    }
    const trace = this.#roomFor(span.traceId());
    if (!trace) return;
    // A copy: the span's buffer is the addon's, reused for the next batch.
    const unread = { bytes: Buffer.from(span.bytes.subarray(span.start, span.start + span.length)), resource: span.resource.attributes as Record<string, AttributeValue> };
    if (trace.unread) trace.unread.push(unread);
    else {
      trace.unread = [unread];
      this.#withUnread.add(trace);
    }
    this.#spans++;
  }

  add(span: ViewSpan): void {
    const trace = this.#roomFor(span.traceId);
    if (!trace) return;
    this.#place(trace, span);
    this.#spans++;
  }

  /** The held trace a new span of `traceId` goes into, made room for; undefined when the trace is full. */
  #roomFor(traceId: string): HeldTrace | undefined {
    let trace = this.#traces.get(traceId);
    if (trace && trace.spans.length + (trace.unread?.length ?? 0) >= this.#maxSpansPerTrace) {
      this.#spansRefused++;
      return undefined;
    }
    while (this.#spans >= this.#maxSpans) this.#evictOldest();
    // The eviction may have taken this very trace: its span then starts it afresh.
    if (trace && this.#traces.get(traceId) !== trace) trace = undefined;
    if (!trace) {
      trace = { traceId, spans: [], unread: undefined, startUs: Infinity, endUs: -Infinity, error: false, weight: 1 / this.#sampleFraction };
      this.#traces.set(traceId, trace);
      const tail = traceIdTail(traceId);
      this.#heldTails.set(tail, (this.#heldTails.get(tail) ?? 0) + 1);
      this.#markHeld(tail);
    }
    return trace;
  }

  #place(trace: HeldTrace, span: ViewSpan): void {
    trace.spans.push(span);
    trace.startUs = Math.min(trace.startUs, span.startUs);
    trace.endUs = Math.max(trace.endUs, span.startUs + span.durationUs);
    trace.error ||= span.error;
  }

  /** Reads every held span still in its bytes: what the viewer is asked for is then complete. */
  #readHeld(): void {
    for (const trace of this.#withUnread) {
      for (const { bytes, resource } of trace.unread!) {
        try {
          this.#place(trace, viewSpanOfOtlp(bytes, 0, bytes.length, resource));
        } catch {
          this.#spansUnreadable++;
          this.#spans--;
        }
      }
      trace.unread = undefined;
      if (trace.spans.length === 0) this.#forget(trace);
    }
    this.#withUnread.clear();
  }

  #evictOldest(): void {
    const oldest = this.#traces.keys().next();
    if (oldest.done) return;
    const trace = this.#traces.get(oldest.value)!;
    this.#forget(trace);
    const spans = trace.spans.length + (trace.unread?.length ?? 0);
    this.#spans -= spans;
    this.#tracesEvicted++;
    this.#spansEvicted += spans;
  }

  #forget(trace: HeldTrace): void {
    this.#traces.delete(trace.traceId);
    this.#withUnread.delete(trace);
    const tail = traceIdTail(trace.traceId);
    const sharing = this.#heldTails.get(tail) ?? 0;
    if (sharing > 1) this.#heldTails.set(tail, sharing - 1);
    else this.#heldTails.delete(tail);
  }

  /** The spans of a trace, by start time; undefined when it is not held. */
  trace(traceId: string): ViewSpan[] | undefined {
    this.#readHeld();
    const trace = this.#traces.get(traceId.toLowerCase());
    return trace ? [...trace.spans].sort((a, b) => a.startUs - b.startUs) : undefined;
  }

  /** The held traces that pass `filter`, the most recently ended first. */
  traces(filter: TraceFilter = {}): TraceSummary[] {
    this.#readHeld();
    const limit = Math.max(1, Math.min(filter.limit ?? 100, 1000));
    const name = filter.name?.toLowerCase();
    const prefix = filter.traceId?.toLowerCase();
    const minUs = (filter.minDurationMs ?? 0) * 1000;
    const out: TraceSummary[] = [];
    for (const [traceId, t] of this.#traces) {
      if (prefix && !traceId.startsWith(prefix)) continue;
      if (filter.status === 'error' && !t.error) continue;
      if (filter.status === 'ok' && t.error) continue;
      if (t.endUs - t.startUs < minUs) continue;
      if (filter.service && !t.spans.some((s) => s.service === filter.service)) continue;
      if (name && !t.spans.some((s) => s.name.toLowerCase().includes(name))) continue;
      out.push(summarize(traceId, t));
    }
    out.sort((a, b) => b.startUs + b.durationUs - (a.startUs + a.durationUs));
    return out.slice(0, limit);
  }

  services(): string[] {
    this.#readHeld();
    const names = new Set<string>();
    for (const t of this.#traces.values()) for (const s of t.spans) names.add(s.service);
    return [...names].sort();
  }

  /**
   * Who calls whom, from the client spans held: a client span whose server
   * span is held is an edge between the two services; one whose callee is
   * not traced is an edge to the address it called. Figures are the
   * caller's: its duration and its error. Rates are over the time from
   * the oldest held span to `nowUs`, so that they fall when traffic stops;
   * a sampled trace's calls count as the traces it stands for, so rates
   * and error rates are estimates of all calls, while `calls` and
   * `errors` are those held.
   */
  serviceMap(nowUs = Date.now() * 1000): ServiceMap {
    this.#readHeld();
    const edges = new Map<string, { from: string; to: string; untracedPeer: boolean; durations: number[]; errors: number; weighted: number; weightedErrors: number }>();
    const services = new Set<string>();
    let firstUs = Infinity;
    let lastUs = -Infinity;
    for (const t of this.#traces.values()) {
      firstUs = Math.min(firstUs, t.startUs);
      lastUs = Math.max(lastUs, t.endUs);
      const serverByParent = new Map<string, ViewSpan>();
      for (const s of t.spans) {
        services.add(s.service);
        if (s.kind === 'SERVER' && s.parentSpanId) serverByParent.set(s.parentSpanId, s);
      }
      for (const c of t.spans) {
        if (c.kind !== 'CLIENT') continue;
        const callee = serverByParent.get(c.spanId);
        const to = callee ? callee.service : peerOf(c);
        const key = `${c.service}\u0000${to}\u0000${callee ? 1 : 0}`;
        let e = edges.get(key);
        if (!e) {
          e = { from: c.service, to, untracedPeer: !callee, durations: [], errors: 0, weighted: 0, weightedErrors: 0 };
          edges.set(key, e);
        }
        e.durations.push(c.durationUs / 1000);
        e.weighted += t.weight;
        if (c.error) {
          e.errors++;
          e.weightedErrors += t.weight;
        }
      }
    }
    const windowS = Number.isFinite(firstUs) ? Math.max((Math.max(nowUs, lastUs) - firstUs) / 1e6, 1) : 0;
    return {
      services: [...services].sort(),
      windowS,
      edges: [...edges.values()].map((e) => {
        const sorted = e.durations.sort((a, b) => a - b);
        return {
          from: e.from,
          to: e.to,
          untracedPeer: e.untracedPeer,
          calls: sorted.length,
          errors: e.errors,
          ratePerS: windowS > 0 ? e.weighted / windowS : 0,
          errorRate: e.weightedErrors / e.weighted,
          p50Ms: quantile(sorted, 0.5),
          p99Ms: quantile(sorted, 0.99),
        };
      }),
    };
  }
}

function peerOf(client: ViewSpan): string {
  const address = client.attributes['server.address'] ?? client.attributes['network.peer.address'] ?? 'unknown';
  const port = client.attributes['server.port'] ?? client.attributes['network.peer.port'];
  return port === undefined ? String(address) : `${String(address)}:${String(port)}`;
}

/** Nearest-rank quantile of sorted values. */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function summarize(traceId: string, t: HeldTrace): TraceSummary {
  const ids = new Set(t.spans.map((s) => s.spanId));
  // The root: a span whose parent is not held, the earliest of those.
  let root = t.spans[0];
  for (const s of t.spans) {
    const isRoot = !s.parentSpanId || !ids.has(s.parentSpanId);
    const rootIsRoot = !root.parentSpanId || !ids.has(root.parentSpanId);
    if ((isRoot && !rootIsRoot) || (isRoot === rootIsRoot && s.startUs < root.startUs)) root = s;
  }
  return {
    traceId,
    rootName: root.name,
    rootService: root.service,
    startUs: t.startUs,
    durationUs: t.endUs - t.startUs,
    spanCount: t.spans.length,
    services: [...new Set(t.spans.map((s) => s.service))].sort(),
    error: t.error,
  };
}
