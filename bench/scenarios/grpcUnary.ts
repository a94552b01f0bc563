/**
 * grpc-unary: a grpc-js unary echo service at saturation, driven by h2load
 * over h2c (4 connections of 16 concurrent streams: many calls interleaved
 * on each connection). The gRPC counterpart of worst-case: the service does
 * almost nothing per call, so what sonde costs per HTTP/2 stream shows.
 *
 * h2load speaks gRPC well enough for this: a POST to /demo.Echo/Unary with
 * `content-type: application/grpc`, `te: trailers` and a body that is one
 * length-prefixed message (1 flag byte, 4 length bytes, then the bytes).
 * The gRPC status travels in trailers, which h2load does not read; the
 * server answers every call with OK.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runH2load } from '../lib/load';
import { measure } from '../lib/measure';
import type { Row, Section } from '../lib/report';
import { startGrpcServer } from '../lib/servers';
import type { Comparison, Spread } from '../lib/stats';
import { alternate, chartPanel, checkRun, pct, rawSpansNote, ratioRow, standardRows, summarize, tracedRow, type Scenario, noteBeforeAfter } from './common';

/** One gRPC message as it goes on the wire: uncompressed flag, big-endian length, the bytes. */
export function grpcFrame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

export const GRPC_HEADERS = ['content-type: application/grpc', 'te: trailers'];

export const grpcUnary: Scenario = async (ctx) => {
  const m = ctx.mode.grpcUnary;
  const server = await startGrpcServer();
  const dataFile = path.join(ctx.tmpDir, 'grpc-unary-request.bin');
  fs.writeFileSync(dataFile, grpcFrame(Buffer.from('hello sonde')));
  const logFile = path.join(ctx.tmpDir, 'grpc-unary-h2load.log');
  try {
    const load = (durationS: number) => () => runH2load({ url: server.url, clients: m.clients, streams: m.streams, durationS, dataFile, headers: GRPC_HEADERS, logFile });
    if (ctx.mode.warmupS > 0) await load(ctx.mode.warmupS)();
    const select = ['--pid', server.pids.join(',')];
    const { baseline, traced, before } = await alternate(ctx.mode.pairs, (kind, pair) =>
      measure(ctx, { kind, pair, label: 'grpc unary saturation', serverPids: server.pids, select, load: load(m.durationS), warmup: ctx.mode.runWarmupS > 0 ? load(ctx.mode.runWarmupS) : undefined }),
    );
    const summary = summarize(baseline, traced);
    noteBeforeAfter('grpc-unary at saturation', baseline, traced, before);
    const thr = summary.throughputRps;
    // In flight when h2load stops: at most one call per stream.
    const inFlight = m.clients * m.streams;
    const allExported = traced.every((r) => r.receiver && r.sonde?.final && r.receiver.spans >= r.load.requests && r.sonde.final.eventsLost === 0 && r.sonde.final.spansDropped === 0);
    const thrOk = Number.isFinite(thr.ratio) ? thr.ratio >= 0.9 : undefined;
    const rows = standardRows(summary, { showP75P90: true });
    rows[0] = ratioRow('throughput (calls/s)', thr, 'ratio ≥ 0.90', thrOk);
    rows[1] = ratioRow('calls completed', summary.requests);
    const spanRow = rows.find((r) => r.metric === 'spans received / requests')!;
    spanRow.metric = 'spans received / calls';
    spanRow.target = '≥ 100%, no loss';
    spanRow.verdict = allExported ? 'met' : 'MISSED';
    const tool = `h2load -c${m.clients} -m${m.streams} -D${m.durationS} (POST ${new URL(server.url).pathname}, ${GRPC_HEADERS.join(', ')})`;
    const anomalies = [...baseline, ...traced].flatMap((r) => checkRun('grpc-unary', r, { spareSpans: inFlight }));
    return {
      json: {
        params: { server: 'grpc-js', tool, pairs: ctx.mode.pairs, durationS: m.durationS, clients: m.clients, streams: m.streams },
        runs: { baseline, traced, before },
        summary: { ...summary, allExported },
      },
      sections: [
        {
          title: `grpc-unary: grpc-js unary echo at saturation (h2load -c${m.clients} -m${m.streams}, ${m.durationS}s x ${ctx.mode.pairs} A/B pairs)`,
          rows,
          notes: [rawSpansNote(traced), `spans may exceed h2load's count by up to ${inFlight}: calls in flight when it stops are not counted`, 'latency: from h2load --log-file, per call'],
        },
      ],
      targets: [
        {
          scenario: 'grpc-unary',
          target: 'throughput ratio ≥ 0.90 with 100% exported',
          value: `ratio ${Number.isFinite(thr.ratio) ? thr.ratio.toFixed(3) : '–'}, spans/calls ${pct(summary.spansPerRequest.min)} (worst run)`,
          verdict: thrOk === undefined ? 'n/a' : thrOk && allExported ? 'met' : 'MISSED',
        },
      ],
      chart: [chartPanel(`grpc-unary: grpc-js at saturation (h2load -c${m.clients} -m${m.streams})`, baseline, traced)],
      anomalies,
    };
  } finally {
    await server.stop();
  }
};

interface SaturationSummary {
  throughputRps: Comparison;
  spansPerRequest: Spread;
}

/**
 * HTTP/1 (worst-case) and gRPC (grpc-unary) at saturation in one table,
 * when both ran: what tracing costs each, side by side.
 */
export function protocolsSideBySide(results: Record<string, { status: string; summary?: unknown }>): Section | undefined {
  const http1 = results['worst-case'];
  const grpc = results['grpc-unary'];
  if (http1?.status !== 'ok' || grpc?.status !== 'ok') return undefined;
  const h = http1.summary as SaturationSummary;
  const g = grpc.summary as SaturationSummary;
  const rows: Row[] = [
    ratioRow('HTTP/1 worst-case: req/s (wrk)', h.throughputRps),
    ratioRow('gRPC grpc-unary: calls/s (h2load)', g.throughputRps),
    tracedRow('HTTP/1: spans received / requests', h.spansPerRequest),
    tracedRow('gRPC: spans received / calls', g.spansPerRequest),
  ];
  return { title: 'HTTP/1 and gRPC at saturation, side by side (from worst-case and grpc-unary above)', rows, notes: [] };
}
