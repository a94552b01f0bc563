/**
 * Durations, rates and repetitions for each kind of run. `full` is for
 * numbers worth publishing (medians of 5 A/B pairs of 15 s), `quick` checks a
 * change in under 3 minutes, `smoke` only proves the machinery works.
 */
export type ModeName = 'smoke' | 'quick' | 'full';

export interface Mode {
  name: ModeName;
  /** A/B pairs per comparison. */
  pairs: number;
  /** Pause before each run, ms (lets sockets in TIME_WAIT and CPU settle). */
  gapMs: number;
  /** Pause between "attached" and the start of the load window, ms. */
  settleMs: number;
  /** Untraced load before the first pair, to warm up the server (JIT), seconds. */
  warmupS: number;
  /** Unmeasured load at the start of every run of worst-case, fixed-rate and grpc-unary, seconds (MeasureOptions.warmup). */
  runWarmupS: number;
  worstCase: { durationS: number; threads: number; connections: number };
  fixedRate: {
    /** Untraced wrk warm-up of each server before its maximum is measured, seconds (0: none). */
    warmupS: number;
    /** Untraced wrk run that finds each server's maximum. */
    maxDurationS: number;
    durationS: number;
    /** Fractions of the maximum. */
    loads: number[];
    /** hey workers, at least (its -q is per worker; more are used above 400 req/s per worker). */
    workers: number;
    /** Smoke only: the maximum is capped at this, so that rates stay tiny. */
    maxCapRps?: number;
    /**
     * Unmeasured load before a traced run's window, seconds, instead of
     * runWarmupS. At 1-5k req/s V8 goes on compiling sonde for about 30 s:
     * the hot paths first, then what runs once a second (the export, the
     * discovery scan). sonde's CPU per 5 s at 1.6k req/s (Python): 58, 30,
     * 15, then 20, 20, 14, then 13-15 ms/s. What the warm-up costs is
     * recorded beside the window (SondeFigures.warmup).
     */
    tracedWarmupS: number;
  };
  capacity: { stepsRps: number[]; durationS: number };
  idleTax: { iterations: number; rounds: number };
  churn: { rps: number; durationS: number; workers: number };
  viewerSoak: { rps: number; durationS: number; workers: number };
  /** grpc-unary: h2load for durationS, `clients` connections of `streams` concurrent streams. */
  grpcUnary: { durationS: number; clients: number; streams: number };
  /** whole-traces: front-door requests and concurrency per pattern; the first `patterns` patterns of the scenario. */
  wholeTraces: { requests: number; concurrency: number; patterns: number };
  /** How long a traced run may wait after the load for sonde to export what it saw. */
  drainMs: number;
}

export const MODES: Record<ModeName, Mode> = {
  smoke: {
    name: 'smoke',
    pairs: 1,
    gapMs: 100,
    settleMs: 100,
    warmupS: 0,
    runWarmupS: 0,
    worstCase: { durationS: 1, threads: 1, connections: 10 },
    fixedRate: { warmupS: 0, maxDurationS: 1, durationS: 1, loads: [0.25, 0.5], workers: 5, maxCapRps: 800, tracedWarmupS: 0 },
    capacity: { stepsRps: [100, 200], durationS: 1 },
    idleTax: { iterations: 50_000, rounds: 3 },
    churn: { rps: 100, durationS: 2, workers: 5 },
    viewerSoak: { rps: 100, durationS: 2, workers: 5 },
    grpcUnary: { durationS: 1, clients: 1, streams: 4 },
    wholeTraces: { requests: 20, concurrency: 3, patterns: 1 },
    drainMs: 2500,
  },
  quick: {
    name: 'quick',
    pairs: 2,
    gapMs: 200,
    settleMs: 200,
    warmupS: 1,
    runWarmupS: 1,
    worstCase: { durationS: 3, threads: 1, connections: 50 },
    fixedRate: { warmupS: 0, maxDurationS: 1, durationS: 2, loads: [0.25, 0.5], workers: 20, tracedWarmupS: 1 },
    capacity: { stepsRps: [5_000, 10_000, 20_000, 30_000], durationS: 2 },
    idleTax: { iterations: 150_000, rounds: 3 },
    churn: { rps: 1_000, durationS: 3, workers: 20 },
    viewerSoak: { rps: 2_000, durationS: 30, workers: 20 },
    grpcUnary: { durationS: 3, clients: 4, streams: 16 },
    wholeTraces: { requests: 150, concurrency: 6, patterns: 5 },
    drainMs: 3000,
  },
  full: {
    name: 'full',
    pairs: 5,
    gapMs: 1000,
    settleMs: 500,
    warmupS: 3,
    runWarmupS: 3,
    worstCase: { durationS: 15, threads: 1, connections: 50 },
    fixedRate: { warmupS: 2, maxDurationS: 5, durationS: 15, loads: [0.25, 0.5], workers: 20, tracedWarmupS: 30 },
    capacity: { stepsRps: [2_000, 5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000], durationS: 15 },
    idleTax: { iterations: 1_000_000, rounds: 5 },
    churn: { rps: 2_000, durationS: 45, workers: 20 },
    // hey keeps at most 1M results for its report: 1500 req/s for 600 s stays under.
    viewerSoak: { rps: 1_500, durationS: 600, workers: 20 },
    grpcUnary: { durationS: 15, clients: 4, streams: 16 },
    wholeTraces: { requests: 1000, concurrency: 6, patterns: 5 },
    drainMs: 5000,
  },
};
