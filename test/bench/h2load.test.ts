/**
 * The h2load parser on captured output (nghttp2 1.52, Debian 12): the
 * summary gives calls and rate, the --log-file the latency percentiles.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseH2load } from '../../bench/lib/load';
import { grpcFrame } from '../../bench/scenarios/grpcUnary';

const SUMMARY = `starting benchmark...
spawning thread #0: 4 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for thread #0.
Warm-up phase is over for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.00s, 5800.00 req/s, 250.08KB/s
requests: 11600 total, 11664 started, 11600 done, 11600 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 11632 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 500.16KB (512160) total, 57.34KB (58720) headers (space savings 96.37%), 113.91KB (116640) data
                     min         max         mean         sd        +/- sd
time for request:     3.10ms     32.82ms     10.90ms      2.97ms    75.48%
time for connect:      714us      4.73ms      1.79ms      1.96ms    75.00%
time to 1st byte:    33.83ms     90.48ms     60.53ms     24.58ms    50.00%
req/s           :    1431.74     1471.70     1449.72       17.71    50.00%
`;

test('parseH2load: calls done and rate from the summary, percentiles from the per-call log', () => {
  // 100 calls of 1..100 ms, one 503 among them.
  const log = Array.from({ length: 100 }, (_, i) => `1796104667918757\t${i === 7 ? 503 : 200}\t${(i + 1) * 1000}`).join('\n') + '\n';
  const r = parseH2load(SUMMARY, log);
  assert.equal(r.tool, 'h2load');
  assert.equal(r.requests, 11600, 'done, not started: calls in flight at the end are not complete');
  assert.equal(r.rps, 5800);
  assert.equal(r.durationS, 2);
  assert.equal(r.errors, 0);
  assert.deepEqual(r.latencyMs, { p50: 50, p75: 75, p90: 90, p99: 99 });
  assert.equal(r.non2xx, 1);
  assert.deepEqual(r.statusCounts, { 200: 99, 503: 1 });
});

test('parseH2load refuses output it cannot read', () => {
  assert.throws(() => parseH2load('connect to 127.0.0.1:1 failed\n', ''), /cannot parse h2load output/);
});

test('grpcFrame: uncompressed flag, big-endian length, then the message', () => {
  assert.deepEqual([...grpcFrame(Buffer.from('hi'))], [0, 0, 0, 0, 2, 0x68, 0x69]);
});
