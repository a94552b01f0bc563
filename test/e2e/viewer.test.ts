/**
 * The trace viewer, driven by a real browser: Debian's Chromium, headless,
 * through puppeteer-core. Two unmodified Node services (one calling the
 * other four times per request) are traced; the page must list the
 * request, draw its waterfall nested as the spans are, and show the edge
 * between the services on the map. A screenshot of each view goes to the
 * test's temporary directory (named in the failure message, removed when
 * the test passes), or to SONDE_SCREENSHOT_DIR when set (the README's
 * pictures come from there).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { REPO_ROOT, hasCommand, startService, startSonde, takenPort } from './support';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const FIXTURES = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures');

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body));
          } catch (error) {
            reject(error);
          }
        });
      })
      .on('error', reject);
  });
}

test('the viewer lists a traced request, draws its waterfall nested, maps the services, and shows the counters', { skip: CHROMIUM && hasCommand('curl') ? false : 'needs chromium (apt-get install chromium) and curl' }, async (t) => {
  // Screenshots stay where SONDE_SCREENSHOT_DIR says, or in a temporary
  // folder that is removed when the test passes and kept (its path is in
  // the failure) when it does not.
  const shots = process.env.SONDE_SCREENSHOT_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-viewer-'));
  let passed = false;
  t.after(() => {
    if (passed && !process.env.SONDE_SCREENSHOT_DIR) fs.rmSync(shots, { recursive: true, force: true });
  });
  const { proc: back, port: backPort } = await startService(t, process.execPath, [path.join(FIXTURES, 'hello-server.js')]);
  const { proc: front, port: frontPort } = await startService(t, process.execPath, [path.join(FIXTURES, 'fanout-service.js')], { DOWNSTREAM_PORT: String(backPort) });
  const sonde = await startSonde(t, ['--pid', `${front.child.pid},${back.child.pid}`, '--exporter', 'none', '--ui-address', '127.0.0.1:0', '--route', '/r/:id'], {});
  const m = await sonde.waitForOutput(/trace viewer: open this address in a browser\s+url=(http:\/\/127\.0\.0\.1:\d+\/)/, 10_000);
  const url = m[1];

  for (const id of ['known-1', 'known-2']) {
    const res = await new Promise<number>((resolve, reject) => http.get(`http://127.0.0.1:${frontPort}/r/${id}`, (r) => (r.resume(), r.on('end', () => resolve(r.statusCode ?? 0)))).on('error', reject));
    assert.equal(res, 200);
  }

  // The JSON API the page uses, as a script would.
  let traces: Array<{ traceId: string; rootName: string; spanCount: number }> = [];
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    traces = (await getJson(`${url}api/traces?service=hello-server`)) as typeof traces;
    if (traces.length === 2 && traces.every((x) => x.spanCount === 9)) break;
  }
  assert.equal(traces.length, 2, `two traces of 9 spans each: ${JSON.stringify(traces)}`);
  assert.ok(traces.every((x) => x.rootName === 'GET /r/:id' && x.spanCount === 9), JSON.stringify(traces));

  let browser: Browser | undefined;
  t.after(() => browser?.close());
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 30_000 });
  const page: Page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 800 });
  const shoot = async (name: string) => {
    const file = path.join(shots, `${name}.png`);
    await page.screenshot({ path: file as `${string}.png` });
    return file;
  };
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      const file = await shoot(`failed-${name}`).catch(() => 'none');
      throw new Error(`${name}: ${error instanceof Error ? error.message : String(error)} (screenshot: ${file})`);
    }
  };
  try {
    await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
    const traceId = traces[0].traceId;
    await step('list', () => page.waitForSelector(`#trace-list tr[data-trace-id="${traceId}"]`, { timeout: 10_000 }));
    const rowText = await page.$eval(`#trace-list tr[data-trace-id="${traceId}"]`, (tr) => tr.textContent ?? '');
    assert.match(rowText, /fanout-service: GET \/r\/:id/);
    assert.match(rowText, /fanout-service, hello-server/);
    assert.equal(await page.$$eval('#trace-list tbody tr', (rows) => rows.length), 2);

    await page.click(`#trace-list tr[data-trace-id="${traceId}"]`);
    await step('waterfall', () => page.waitForFunction("document.querySelectorAll('#trace-detail .span-row').length === 9", { timeout: 10_000 }));
    const rows = await page.$$eval('#trace-detail .span-row', (els) =>
      els.map((e) => ({ id: e.getAttribute('data-span-id'), parent: e.getAttribute('data-parent-span-id'), depth: Number(e.getAttribute('data-depth')), service: e.getAttribute('data-service'), kind: e.className.split(' ')[1] })),
    );
    // Nested as the spans are: the front's request, its four calls under it,
    // each call's server span under the call.
    assert.deepEqual(rows.map((r) => `${r.depth} ${r.kind} ${r.service}`).sort(), ['0 server fanout-service', ...Array(4).fill('1 client fanout-service'), ...Array(4).fill('2 server hello-server')].sort());
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const r of rows) if (r.depth > 0) assert.equal(byId.get(r.parent)?.depth, r.depth - 1, 'a row sits under its parent');
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i].depth <= rows[i - 1].depth + 1, 'children follow their parent');
    await shoot('waterfall');
    // A span's attributes open on click.
    await page.click(`#trace-detail .span-row[data-depth="2"]`);
    await step('attributes', () => page.waitForSelector('#trace-detail .attrs', { timeout: 5000 }));
    assert.match(await page.$eval('#trace-detail .attrs', (e) => e.textContent ?? ''), /http\.response\.status_code200/);

    const requests = await page.$eval('[data-counter="requests"] dd', (e) => Number(e.textContent));
    assert.equal(requests, 18, 'sonde counters on the page: 2 requests of 9 exchanges');
    assert.equal(await page.$eval('[data-counter="lost"] dd', (e) => e.textContent), '0');

    // Filters: an error-only list is empty here.
    await page.select('#filters select[name=status]', 'error');
    await step('filter', () => page.waitForFunction("document.querySelectorAll('#trace-list tbody tr').length === 0", { timeout: 5000 }));

    await page.goto(`${url}#/map`, { waitUntil: 'load' });
    const edge = '#map g.edge[data-from="fanout-service"][data-to="hello-server"]';
    await step('map', () => page.waitForSelector(edge, { timeout: 10_000 }));
    assert.match(await page.$eval(edge, (e) => e.textContent ?? ''), /\/s, 0% err, p50 [\d.]+ \/ p99 [\d.]+ ms/);
    assert.equal(await page.$$eval('#map g.node', (nodes) => nodes.length), 2);
    assert.match(await page.$eval('#edges tbody tr[data-from="fanout-service"]', (e) => e.textContent ?? ''), /^fanout-servicehello-server/);
    await shoot('service-map');
  } finally {
    await browser.close();
    browser = undefined;
  }
  assert.equal(await sonde.stop(), 0);
  passed = true;
});

test('with --no-ui nothing is served, and a taken viewer address is said without stopping sonde', async (t) => {
  const taken = await takenPort(t, '127.0.0.1');
  const { proc: server } = await startService(t, process.execPath, [path.join(FIXTURES, 'hello-server.js')]);
  const sonde = await startSonde(t, ['--pid', String(server.child.pid), '--exporter', 'none', '--ui-address', `127.0.0.1:${taken}`], {});
  assert.match(sonde.stderr(), new RegExp(`no trace viewer\\s+error="?trace viewer: 127\\.0\\.0\\.1:${taken} is taken; set SONDE_UI_ADDRESS`));
  assert.doesNotMatch(sonde.stderr(), /open this address in a browser/);
  assert.equal(await sonde.stop(), 0);
  const off = await startSonde(t, ['--pid', String(server.child.pid), '--exporter', 'none', '--no-ui'], {});
  assert.doesNotMatch(off.stderr(), /trace viewer/);
  assert.equal(await off.stop(), 0);
});
