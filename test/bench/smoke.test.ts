/**
 * The benchmark's machinery, end to end: `run.js --smoke` starts the
 * servers, the receiver and sonde, runs every scenario at tiny rates and
 * writes its files. Only the shape of the output is checked, never a
 * timing or a ratio: those depend on the machine.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, startProcess } from '../support/processes';
import { setTimeLimits } from '../support/watchdog';

const TIMEOUT_MS = 5 * 60_000;
const SCENARIOS = ['worst-case', 'worst-case-https', 'fixed-rate', 'capacity', 'idle-tax', 'churn', 'viewer-soak', 'grpc-unary', 'whole-traces'];

// The one test may take its whole TIMEOUT_MS; the watchdog's limits sit
// just above it, so the test's own timeout speaks first.
setTimeLimits({ testMs: TIMEOUT_MS + 30_000, fileMs: TIMEOUT_MS + 60_000 });

async function runSmoke(t: TestContext, outDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // SIGINT: the benchmark stops its own servers, receiver and sonde.
  const bench = startProcess(t, process.execPath, [path.join(REPO_ROOT, 'dist', 'bench', 'run.js'), '--smoke', '--out', outDir], { stopSignal: 'SIGINT' });
  const timer = setTimeout(() => void bench.stop(), TIMEOUT_MS - 15_000);
  const code = await bench.exited;
  clearTimeout(timer);
  return { code, stdout: bench.stdout(), stderr: bench.stderr() };
}

const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function assertSpread(value: unknown, where: string): void {
  const s = value as { median?: unknown; min?: unknown; max?: unknown; n?: unknown };
  assert.ok(s && typeof s === 'object', `${where} is missing`);
  for (const k of ['median', 'min', 'max', 'n'] as const) assert.ok(isNumber(s[k]), `${where}.${k} is not a number: ${JSON.stringify(s)}`);
}

function assertComparison(value: unknown, where: string): void {
  const c = value as { baseline?: unknown; traced?: unknown; ratio?: unknown };
  assertSpread(c?.baseline, `${where}.baseline`);
  assertSpread(c?.traced, `${where}.traced`);
  assert.ok(isNumber(c.ratio), `${where}.ratio is not a number`);
}

test('npm run bench -- --smoke runs every scenario and writes its report', { timeout: TIMEOUT_MS, skip: process.getuid?.() !== 0 ? 'needs root (sonde loads eBPF programs)' : false }, async (t) => {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-bench-smoke-'));
  try {
    const r = await runSmoke(t, outDir);
    assert.equal(r.code, 0, `bench exited ${r.code}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-4000)}`);

    const latest = path.join(outDir, 'latest.json');
    assert.ok(fs.existsSync(latest), 'latest.json was not written');
    const stamped = fs.readdirSync(outDir).filter((f) => /^bench-.+\.json$/.test(f));
    assert.equal(stamped.length, 1, `expected one bench-<timestamp>.json, found ${stamped.join(', ')}`);
    const report = JSON.parse(fs.readFileSync(latest, 'utf8'));

    assert.equal(report.mode, 'smoke');
    const m = report.machine;
    assert.ok(isNumber(m.cores) && m.cores >= 1, 'machine.cores');
    for (const k of ['cpuModel', 'kernel', 'node']) assert.equal(typeof m[k], 'string', `machine.${k}`);
    assert.ok(isNumber(m.totalMemoryMB), 'machine.totalMemoryMB');

    assert.deepEqual(Object.keys(report.scenarios).sort(), [...SCENARIOS].sort());
    for (const name of SCENARIOS) assert.equal(report.scenarios[name].status, 'ok', `${name}: ${report.scenarios[name].error ?? ''}`);

    const wc = report.scenarios['worst-case'];
    assertComparison(wc.summary.throughputRps, 'worst-case.summary.throughputRps');
    for (const p of ['p50', 'p75', 'p90', 'p99']) assertComparison(wc.summary.latencyMs[p], `worst-case.summary.latencyMs.${p}`);
    assertSpread(wc.summary.sonde.coresPer10kRps, 'worst-case.summary.sonde.coresPer10kRps');
    assertSpread(wc.summary.sonde.peakRssMB, 'worst-case.summary.sonde.peakRssMB');
    assertSpread(wc.summary.spansPerRequest, 'worst-case.summary.spansPerRequest');
    // What the server got of the CPU, and how long it waited for one: the
    // throughput ratio's two factors at saturation.
    assertComparison(wc.summary.serverCores, 'worst-case.summary.serverCores');
    assertSpread(wc.summary.serverRunQueueMsPerS.baseline, 'worst-case.summary.serverRunQueueMsPerS.baseline');
    assertSpread(wc.summary.serverRunQueueMsPerS.traced, 'worst-case.summary.serverRunQueueMsPerS.traced');
    assert.ok(wc.runs.baseline.length >= 1 && wc.runs.traced.length === wc.runs.baseline.length, 'worst-case runs, A and B');
    // The floor (F) and capture (C) runs of each pair: sonde's syscall
    // tracepoints all got an empty program, and the capture runs' sonde saw
    // the load (a capture run that saw nothing would pass for a cheap one).
    const d = wc.summary.decomposition;
    assert.ok(d.tracepoints.includes('sys_exit_read') && d.tracepoints.includes('sys_enter_writev'), `floor tracepoints: ${d.tracepoints}`);
    assertComparison(d.floor.throughputRps, 'worst-case.summary.decomposition.floor.throughputRps');
    assertComparison(d.capture.throughputRps, 'worst-case.summary.decomposition.capture.throughputRps');
    assertSpread(d.capture.sondeCoresPer10kRps, 'worst-case.summary.decomposition.capture.sondeCoresPer10kRps');
    assert.equal(wc.runs.floor.length, wc.runs.baseline.length, 'one F run per pair');
    assert.equal(wc.runs.capture.length, wc.runs.baseline.length, 'one C run per pair');
    // M, the least a boundary tracer does: its loader drained at least the
    // two message starts of every request in its window.
    assertComparison(d.boundary.throughputRps, 'worst-case.summary.decomposition.boundary.throughputRps');
    assert.equal(wc.runs.boundary.length, wc.runs.baseline.length, 'one M run per pair');
    for (const r of wc.runs.boundary) assert.ok(r.boundaryEvents >= 2 * r.load.requests && r.load.requests > 0, `M${r.pair}: ${r.boundaryEvents} events for ${r.load.requests} requests`);
    for (const r of wc.runs.capture) assert.ok(r.sondeRequests >= r.load.requests && r.load.requests > 0, `C${r.pair}: sonde counted ${r.sondeRequests} of ${r.load.requests} requests`);
    const https = report.scenarios['worst-case-https'];
    assert.equal(https.params.server, 'node-https');
    // Its F has empty programs on the OpenSSL sites sonde probes in node, for the server alone.
    const httpsSites = https.summary.decomposition?.uprobeSites ?? [];
    assert.ok(httpsSites.some((s: { kind: string }) => s.kind === 'uretprobe'), `worst-case-https F's OpenSSL sites: ${JSON.stringify(httpsSites)}`);
    assert.equal(https.runs.floor.length, https.runs.baseline.length, 'worst-case-https: one F run per pair');
    assertComparison(https.summary.throughputRps, 'worst-case-https.summary.throughputRps');
    assertSpread(https.summary.spansPerRequest, 'worst-case-https.summary.spansPerRequest');
    const b = wc.runs.traced[0];
    assert.ok(isNumber(b.load.requests) && isNumber(b.receiver.spans) && isNumber(b.sonde.cpuSeconds), 'a traced run has raw figures');
    for (const k of ['requests', 'server', 'client', 'exported', 'eventsLost', 'spansDropped', 'unparsed', 'connections']) {
      assert.ok(isNumber(b.sonde.final[k]), `sonde final counter ${k}`);
    }

    for (const server of ['node', 'python', 'nginx', 'nginx-https']) {
      const s = report.scenarios['fixed-rate'].servers[server];
      assert.ok(s, `fixed-rate.${server}`);
      assert.ok(isNumber(s.max.rps), `fixed-rate.${server}.max.rps`);
      for (const load of ['25%', '50%']) {
        // HTTPS is held by h2load over HTTP/1.1, the others by hey (lib/load.ts, clientFor).
        assert.match(s.rates[load]?.hey ?? '', server === 'nginx-https' ? /^h2load --h1 / : /^hey /, `fixed-rate.${server}.${load}: the client`);
        const summary = s.rates[load]?.summary;
        assertComparison(summary?.latencyMs.p99, `fixed-rate.${server}.${load}.latencyMs.p99`);
        assertSpread(summary.sonde.coresPer10kRps, `fixed-rate.${server}.${load}.sonde.coresPer10kRps`);
        assertSpread(summary.sonde.peakRssMB, `fixed-rate.${server}.${load}.sonde.peakRssMB`);
      }
      // At 50 % each pair also runs with empty programs on sonde's tracepoints (F), for the tail's floor.
      assertComparison(s.rates['50%'].floor?.latencyMs.p99, `fixed-rate.${server}.50%.floor.latencyMs.p99`);
      assert.equal(s.rates['50%'].runs.floor?.length, s.rates['50%'].runs.baseline.length, `fixed-rate.${server}: one F run per pair at 50%`);
      assert.equal(s.rates['25%'].runs.floor, undefined, `fixed-rate.${server}: no F runs at 25%`);
      // F hooks where sonde does: nginx maps libssl, so its F has empty
      // programs on OpenSSL's sites too, for the server's processes alone.
      const hooks = s.rates['50%'].floorHooks;
      assert.ok(hooks.tracepoints.includes('sys_exit_read'), `fixed-rate.${server}: F's tracepoints ${hooks.tracepoints}`);
      for (const site of hooks.uprobeSites) assert.ok(s.pids.includes(site.pid), `fixed-rate.${server}: F site for pid ${site.pid}, not one of the server's ${s.pids}`);
      if (server.startsWith('nginx')) {
        const kinds = new Set<string>(hooks.uprobeSites.map((site: { kind: string; symbol: string }) => `${site.kind} ${site.symbol}`));
        assert.ok(kinds.has('uprobe SSL_free') && [...kinds].some((k) => k.startsWith('uretprobe SSL_read')), `fixed-rate.${server}: F's OpenSSL sites ${[...kinds]}`);
      }
    }

    const cap = report.scenarios.capacity;
    assert.ok(Array.isArray(cap.steps) && cap.steps.length >= 1, 'capacity.steps');
    assert.ok(isNumber(cap.summary.highestZeroLossRps), 'capacity.summary.highestZeroLossRps');

    const idle = report.scenarios['idle-tax'];
    assertComparison(idle.summary.getppidNs, 'idle-tax.summary.getppidNs');
    assertComparison(idle.summary.readNs, 'idle-tax.summary.readNs');
    assertSpread(idle.summary.floor.readNs, 'idle-tax.summary.floor.readNs');
    assert.ok(idle.runs.some((r: { kind: string }) => r.kind === 'floor'), 'idle-tax ran no floor run');

    const churn = report.scenarios.churn;
    for (const k of ['startMB', 'peakMB', 'endMB', 'growthMB']) assertSpread(churn.summary.rss[k], `churn.summary.rss.${k}`);
    assertSpread(churn.summary.connectionsAfterLoad, 'churn.summary.connectionsAfterLoad');
    assertSpread(churn.summary.spansPerRequest, 'churn.summary.spansPerRequest');

    const grpc = report.scenarios['grpc-unary'];
    assertComparison(grpc.summary.throughputRps, 'grpc-unary.summary.throughputRps');
    assertComparison(grpc.summary.latencyMs.p99, 'grpc-unary.summary.latencyMs.p99');
    assertSpread(grpc.summary.spansPerRequest, 'grpc-unary.summary.spansPerRequest');
    const g = grpc.runs.traced[0];
    assert.ok(g.load.tool === 'h2load' && g.load.requests > 0 && isNumber(g.receiver.spans), `grpc-unary: h2load completed calls: ${JSON.stringify(g.load)}`);

    const whole = report.scenarios['whole-traces'];
    assert.ok(isNumber(whole.summary.wholeTraceShare), 'whole-traces.summary.wholeTraceShare');
    const first = whole.runs[0];
    assert.ok(first.figures.requests > 0 && first.spansReceived === first.spansExpected, `whole-traces: every span of the first pattern: ${JSON.stringify(first)}`);
    assert.equal(g.load.non2xx, 0, 'grpc-unary: every call answered 200 (the gRPC status is in trailers)');
    assert.match(r.stdout, /HTTP\/1 and gRPC at saturation, side by side/, 'the side-by-side table of HTTP/1 and gRPC');

    assert.ok(Array.isArray(report.targets) && report.targets.length > 0, 'targets');
    const svg = fs.readFileSync(path.join(outDir, 'latency.svg'), 'utf8');
    assert.ok(svg.startsWith('<svg'), 'latency.svg starts with <svg');
    assert.ok(svg.trimEnd().endsWith('</svg>'), 'latency.svg is complete');
    assert.match(r.stdout, /== targets/, 'the terminal report lists the targets');
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
});
