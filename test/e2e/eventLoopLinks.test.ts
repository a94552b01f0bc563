/**
 * Whole traces through event loops (DESIGN.md, "Linking on event loops"):
 * nginx as a reverse proxy, a Node service with several requests in flight
 * on its one thread, each making sequential and concurrent calls to a
 * Python service. Every hop of every request is checked against the span it
 * must hang from, so a call linked to the wrong request fails the test as
 * surely as a broken trace does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpGrpcReceiver } from '../support/receivers';
import { driveFanout, spansPerRequest, startFanoutTopology, type FanoutOptions } from '../support/fanoutTopology';
import { describeFigures, wholeTraceFigures, type WholeTraceFigures } from '../support/wholeTraces';
import { hasCommand, settledCounters, startSonde } from './support';

const REQUESTS = 300;
const CONCURRENCY = 6;
const noNginx = hasCommand('nginx') ? false : 'nginx is not installed (apt-get install nginx-light)';

async function runTopology(t: import('node:test').TestContext, options: FanoutOptions): Promise<WholeTraceFigures> {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const topology = await startFanoutTopology(t, options);
  t.after(() => topology.stop());
  const sonde = await startSonde(t, topology.ports.flatMap((p) => ['--open-port', String(p)]), {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  });
  const ids = await driveFanout(topology.frontPort, REQUESTS, CONCURRENCY, 'w');
  const expected = REQUESTS * spansPerRequest(topology, options.nginx !== 'none');
  const spans = await otlp.waitFor((s) => s.length >= expected, 60_000).catch(() => otlp.spans);
  await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  const figures = wholeTraceFigures(spans, ids, { nginx: options.nginx !== 'none', calls: topology.calls });
  t.diagnostic(describeFigures(figures));
  assert.ok(spans.length >= expected, `${spans.length} spans of ${expected}\n${describeFigures(figures)}`);
  return figures;
}

function assertNoWrongParent(figures: WholeTraceFigures): void {
  for (const [hop, h] of Object.entries(figures.hops)) assert.equal(h.wrong, 0, `${hop}: linked to another request\n${describeFigures(figures)}`);
}

test('nginx with a keep-alive upstream pool -> Node (two awaited calls, a Promise.all pair) -> Python: ≥ 99 % whole traces, no wrong parent', { skip: noNginx }, async (t) => {
  const figures = await runTopology(t, { nginx: 'keepalive' });
  assertNoWrongParent(figures);
  assert.ok(figures.wholeTraces >= 0.99 * REQUESTS, describeFigures(figures));
});

test('nginx connecting upstream per request -> Node fetch (undici) -> Python: ≥ 99 % whole traces, no wrong parent', { skip: noNginx }, async (t) => {
  const figures = await runTopology(t, { nginx: 'no-keepalive', serviceEnv: { CLIENT: 'fetch' } });
  assertNoWrongParent(figures);
  assert.ok(figures.wholeTraces >= 0.99 * REQUESTS, describeFigures(figures));
});
