/**
 * OTEL_TRACES_SAMPLER against a real service and a real OTLP receiver:
 * what reaches the backend is the traces the sampler keeps, a caller's
 * traceparent flag decides for the parent-based samplers, and the counters
 * account for every request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { startOtlpGrpcReceiver } from '../support/receivers';
import { COUNTERS_LINE, REPO_ROOT, lastCounters, nextCounters, request, startService, startSonde } from './support';

const HELLO = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'hello-server.js');
const HALF = 0x8000_0000;
/** What the ratio is compared with: hex digits 16-23, the upper half of the id's lower 8 bytes (as the Go and Python SDKs do). */
const ratioBits = (traceId: string) => Number.parseInt(traceId.slice(16, 24), 16);

test('parentbased_traceidratio 0.5 exports the traces it keeps, whole; a caller\'s sampled flag overrides the ratio; the rest is counted', async (t) => {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const { proc: server, port } = await startService(t, process.execPath, [HELLO]);
  const sonde = await startSonde(t, ['--pid', String(server.child.pid)], {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.5',
  });
  assert.match(sonde.stderr(), /parentbased_traceidratio 0\.5/, 'the start-up line names the sampler');

  // Traces sonde starts: kept by their id, about half of them.
  const own = 60;
  for (let i = 0; i < own; i++) assert.equal((await request(`http://127.0.0.1:${port}/own/${i}`)).status, 200);
  // Callers that decided: the ratio would keep the first kind and drop the
  // second, and the caller's flag says the opposite.
  const said = (id: number, keep: boolean) => `00-${id.toString(16).padStart(16, '0')}${keep ? 'ffffffff' : '00000001'}${keep ? '00000001' : 'ffffffff'}-00f067aa0ba902b7-0${keep ? 1 : 0}`;
  for (let i = 0; i < 5; i++) {
    assert.equal((await request(`http://127.0.0.1:${port}/caller-says-no/${i}`, { headers: { traceparent: said(i + 1, false) } })).status, 200);
    assert.equal((await request(`http://127.0.0.1:${port}/caller-says-yes/${i}`, { headers: { traceparent: said(i + 100, true) } })).status, 200);
  }

  // Every request accounted for: exported, or counted as sampled out.
  const total = own + 10;
  let counters = lastCounters(sonde);
  let sampledOut = NaN;
  const deadline = Date.now() + 30_000;
  for (;;) {
    counters = lastCounters(sonde);
    sampledOut = Number(/"?spansSampledOut"?[=:](\d+)/.exec(sonde.stderr().split('\n').filter((l) => COUNTERS_LINE.test(l)).pop() ?? '')?.[1]);
    if (counters && counters.requests === total && counters.exported + sampledOut === total) break;
    assert.ok(Date.now() < deadline, `counters never accounted for ${total} requests: ${JSON.stringify(counters)}, sampled out ${sampledOut}`);
    await nextCounters(sonde);
  }
  const received = await otlp.waitFor((spans) => spans.length >= counters.exported, 10_000);
  assert.equal(received.length, counters.exported);
  assert.equal(counters.spansDropped, 0);

  const path = (s: (typeof received)[number]) => String(s.attributes['url.path']);
  const ownKept = received.filter((s) => path(s).startsWith('/own/'));
  for (const s of ownKept) assert.ok(ratioBits(s.traceId) < HALF, `${path(s)}: trace ${s.traceId} is past the ratio`);
  // 60 fair coins: all heads or all tails has odds of 2^-59.
  assert.ok(ownKept.length > 0 && ownKept.length < own, `${ownKept.length} of ${own} traces kept`);
  assert.equal(received.filter((s) => path(s).startsWith('/caller-says-no/')).length, 0);
  assert.equal(received.filter((s) => path(s).startsWith('/caller-says-yes/')).length, 5);
  assert.equal(await sonde.stop(), 0);
});
