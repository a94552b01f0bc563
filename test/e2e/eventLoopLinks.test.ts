/**
 * Whole traces through event loops (docs/design-notes.md, "Linking on event loops"):
 * nginx as a reverse proxy, a Node service with several requests in flight
 * on its one thread, each making sequential and concurrent calls to a
 * Python service. Every hop of every request is checked against the span it
 * must hang from, so a call linked to the wrong request fails a test as
 * surely as a broken trace does. The patterns sonde cannot link yet (a
 * saturated Node agent, calls from timers) are held to the other half of
 * the rule: never a wrong parent, and every call left a root is counted.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpGrpcReceiver } from '../support/receivers';
import { driveFanout, driveFanoutH2, spansPerRequest, startFanoutTopology, type FanoutOptions } from '../support/fanoutTopology';
import { describeFigures, wholeTraceFigures, type WholeTraceFigures } from '../support/wholeTraces';
import { hasCommand, launchFor, settledCounters, startSonde, type CountersLine } from './support';

const REQUESTS = 300;
const CONCURRENCY = 6;
const noNginx = hasCommand('nginx') ? false : 'nginx is not installed (apt-get install nginx-light)';

async function runTopology(t: TestContext, options: FanoutOptions): Promise<{ figures: WholeTraceFigures; counters: CountersLine }> {
  const otlp = await startOtlpGrpcReceiver();
  t.after(() => otlp.close());
  const topology = await startFanoutTopology(launchFor(t), options);
  t.after(() => topology.stop());
  const sonde = await startSonde(t, topology.ports.flatMap((p) => ['--open-port', String(p)]), {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  });
  const drive = options.serviceEnv?.SERVE === 'h2c' ? driveFanoutH2 : driveFanout;
  const ids = await drive(topology.frontPort, REQUESTS, CONCURRENCY, 'w');
  const expected = REQUESTS * spansPerRequest(topology, options.nginx !== 'none');
  const spans = await otlp.waitFor((s) => s.length >= expected, 60_000).catch(() => otlp.spans);
  const counters = await settledCounters(sonde);
  assert.equal(await sonde.stop(), 0);
  const figures = wholeTraceFigures(spans, ids, { nginx: options.nginx !== 'none', calls: topology.calls });
  t.diagnostic(`${describeFigures(figures)}\nlinksAmbiguous=${counters.linksAmbiguous}`);
  assert.equal(spans.length, expected, `every request's spans, once\n${describeFigures(figures)}`);
  for (const [hop, h] of Object.entries(figures.hops)) {
    assert.equal(h.wrong, 0, `${hop}: linked to another request\n${describeFigures(figures)}`);
    assert.equal(h.missing, 0, `${hop}: no span\n${describeFigures(figures)}`);
  }
  return { figures, counters };
}

function serviceCallRoots(figures: WholeTraceFigures): number {
  return Object.entries(figures.hops)
    .filter(([hop]) => hop.startsWith('service call'))
    .reduce((n, [, h]) => n + h.root, 0);
}

test('nginx with a keep-alive upstream pool -> Node (two awaited calls, a Promise.all pair) -> Python: ≥ 99 % whole traces', { skip: noNginx }, async (t) => {
  const { figures } = await runTopology(t, { nginx: 'keepalive' });
  assert.ok(figures.wholeTraces >= 0.99 * REQUESTS, describeFigures(figures));
});

test('nginx connecting upstream per request -> Node fetch (undici) -> Python: ≥ 99 % whole traces', { skip: noNginx }, async (t) => {
  const { figures } = await runTopology(t, { nginx: 'no-keepalive', serviceEnv: { CLIENT: 'fetch' } });
  assert.ok(figures.wholeTraces >= 0.99 * REQUESTS, describeFigures(figures));
});

test('an HTTP/2 server with 6 streams in flight on one connection: a stream is the parent of its handler\'s calls when its request came alone in a read; the others are roots, counted', async (t) => {
  const { figures, counters } = await runTopology(t, { nginx: 'none', serviceEnv: { SERVE: 'h2c' } });
  // Measured: 116-185 of 300 whole over four runs. A read that carries two
  // streams' requests runs both handlers: which one made a call is not known.
  const first = figures.hops['service call /one'];
  assert.ok(first.correct > 0, `a stream read alone parents its calls\n${describeFigures(figures)}`);
  const roots = serviceCallRoots(figures);
  assert.ok(counters.linksAmbiguous >= roots, `every call left a root is counted: linksAmbiguous=${counters.linksAmbiguous}, roots=${roots}`);
});

test('thread per request: Python calling Python on a new connection per call stays whole', async (t) => {
  const { figures } = await runTopology(t, { nginx: 'none', service: 'python-threads' });
  assert.equal(figures.wholeTraces, REQUESTS, describeFigures(figures));
});

test("a Node agent at maxSockets queues calls that it writes in another request's callback: they are left roots and counted, never misattributed", async (t) => {
  const { figures, counters } = await runTopology(t, { nginx: 'none', serviceEnv: { MAX_SOCKETS: '2' } });
  const roots = serviceCallRoots(figures);
  assert.ok(roots > 0, `the saturated agent's calls cannot all be told apart\n${describeFigures(figures)}`);
  assert.ok(counters.linksAmbiguous >= roots, `every call left a root is counted: linksAmbiguous=${counters.linksAmbiguous}, roots=${roots}`);
});

test('calls made from a Node timer or a setImmediate callback are not taken for the request the loop read last', async (t) => {
  const { figures } = await runTopology(t, { nginx: 'none', serviceEnv: { TIMER_CALL: '1', IMMEDIATE_CALL: '1' } });
  // The uprobes on node::Environment::RunTimers and node::MakeCallback:
  // without them 90 of 300 timer calls and 52 of 300 immediate calls came
  // out linked to another request (runTopology's check on `wrong` holds
  // them); with them, such calls are roots.
  for (const hop of ['service call /timer', 'service call /immediate']) {
    const h = figures.hops[hop];
    assert.equal(h.correct + h.root, REQUESTS, `${hop}\n${describeFigures(figures)}`);
  }
  const awaited = figures.hops['service call /one'];
  assert.equal(awaited.correct, REQUESTS, `the calls before them are unaffected\n${describeFigures(figures)}`);
});
