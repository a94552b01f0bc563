/**
 * The handful of figures a person (the counters line, the metrics) reads
 * off sonde's counters: what it saw, sent, lost and dropped, and why.
 */
import type { SondeCounters } from './Sonde';

/** Spans that were built or could have been, and did not reach every exporter, by where they went. */
export interface SpansDroppedByCause {
  /** A full export queue (by spans or bytes). */
  exportQueueFull: number;
  /** An export that failed after its retries. */
  exportFailed: number;
  /** Still queued when the flush at shutdown ran out of time. */
  unsentAtShutdown: number;
  /** The addon's bounded output to JavaScript was full. */
  nativeOutputFull: number;
  /** The JavaScript thread's intake was full (it fell behind), or a batch reached it after the flush at stop. */
  intakeFull: number;
  /** Requests given up on: the process exited or the bounds pushed them out. */
  abandoned: number;
}

export interface CounterSummary {
  requests: number;
  serverSpans: number;
  clientSpans: number;
  /** With several exporters, the one that delivered least: what a backend is sure to have. */
  exported: number;
  /** Messages the kernel or the addon could not follow (ring buffer full, TLS plaintext whose socket was not known, gaps). */
  eventsLost: number;
  spansDropped: number;
  spansDroppedByCause: SpansDroppedByCause;
  /** Spans the sampler (--sampler) did not send: chosen, not lost. */
  spansSampledOut: number;
  unparsed: number;
  connectionsTracked: number;
}

export function summarizeCounters(c: SondeCounters): CounterSummary {
  const byCause: SpansDroppedByCause = {
    exportQueueFull: c.exporters.reduce((a, e) => a + e.droppedQueueFull, 0),
    exportFailed: c.exporters.reduce((a, e) => a + e.droppedExportFailed, 0),
    unsentAtShutdown: c.exporters.reduce((a, e) => a + e.droppedAtShutdown, 0),
    nativeOutputFull: c.native.exchangesDropped,
    intakeFull: c.intake.exchangesDropped,
    abandoned: c.native.exchangesAbandoned,
  };
  return {
    requests: c.pipeline.exchanges,
    serverSpans: c.pipeline.serverSpans,
    clientSpans: c.pipeline.clientSpans,
    exported: c.exporters.length ? Math.min(...c.exporters.map((e) => e.exported)) : 0,
    eventsLost: c.kernelDrops.ringBufferFull + c.kernelDrops.tlsNoSocket + c.native.messagesLost,
    spansDropped: Object.values(byCause).reduce((a, b) => a + b, 0),
    spansDroppedByCause: byCause,
    spansSampledOut: c.pipeline.sampledOut,
    unparsed: Object.values(c.pipeline.unparsed).reduce((a, b) => a + b, 0),
    connectionsTracked: c.native.connectionsTracked,
  };
}
