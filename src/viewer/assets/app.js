// sonde's trace viewer: plain DOM, no framework, no network but sonde's
// own /api/. It polls: the list and the counters every second, the open
// trace and the map while they are shown.
const $ = (sel) => document.querySelector(sel);
const POLL_MS = 1000;

const state = { selected: null, filters: {} };

async function api(path) {
  const res = await fetch(path, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-') || k === 'title' || k === 'style') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

const fmtMs = (us) => (us >= 1e6 ? `${(us / 1e6).toFixed(2)} s` : us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${Math.round(us)} µs`);
const fmtTime = (us) => new Date(us / 1000).toLocaleTimeString([], { hour12: false }) + `.${String(Math.floor(us / 1000) % 1000).padStart(3, '0')}`;

// ---- counters: "no traffic" and "broken" must look different ----
async function refreshCounters() {
  const c = await api('/api/counters');
  const s = c.sonde ?? {};
  const items = [
    ['requests', s.requests ?? 0, false],
    ['exported', s.exported ?? 0, false],
    ['lost', s.eventsLost ?? 0, (s.eventsLost ?? 0) > 0],
    ['dropped', s.spansDropped ?? 0, (s.spansDropped ?? 0) > 0],
    ['unparsed', s.unparsed ?? 0, false],
    ['connections', s.connectionsTracked ?? 0, false],
    ['traces held', c.viewer.traces, false],
    ['evicted', c.viewer.tracesEvicted, false],
    // Above --ui-max-spans-per-second the viewer holds a sample of traces.
    ['traces sampled', `${+(c.viewer.sampleFraction * 100).toPrecision(2)} %`, false],
  ];
  $('#counters').replaceChildren(...items.map(([k, v, bad]) => el('div', { 'data-counter': k }, el('dt', {}, k), el('dd', { class: bad ? 'bad' : '' }, String(v)))));
}

// ---- the trace list ----
function readFilters() {
  const f = new FormData($('#filters'));
  const out = {};
  for (const [k, v] of f) if (String(v).trim() !== '') out[k] = String(v).trim();
  return out;
}

async function refreshServices() {
  const services = await api('/api/services');
  const select = $('#filters select[name=service]');
  const current = select.value;
  select.replaceChildren(el('option', { value: '' }, 'any'), ...services.map((s) => el('option', { value: s }, s)));
  select.value = services.includes(current) ? current : '';
}

async function refreshList() {
  const q = new URLSearchParams({ ...readFilters(), limit: '200' });
  const traces = await api(`/api/traces?${q}`);
  const rows = traces.map((t) => {
    const tr = el(
      'tr',
      { class: `${t.error ? 'error' : ''} ${t.traceId === state.selected ? 'selected' : ''}`, 'data-trace-id': t.traceId, title: t.traceId },
      el('td', {}, `${t.rootService}: ${t.rootName}`),
      el('td', {}, t.services.join(', ')),
      el('td', {}, String(t.spanCount)),
      el('td', {}, fmtMs(t.durationUs)),
      el('td', {}, fmtTime(t.startUs)),
    );
    tr.addEventListener('click', () => {
      location.hash = `#/trace/${t.traceId}`;
    });
    return tr;
  });
  $('#trace-list tbody').replaceChildren(...rows);
}

// ---- one trace's waterfall ----
function nest(spans) {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parentSpanId && ids.has(s.parentSpanId)) {
      if (!children.has(s.parentSpanId)) children.set(s.parentSpanId, []);
      children.get(s.parentSpanId).push(s);
    } else roots.push(s);
  }
  const out = [];
  const walk = (s, depth) => {
    out.push({ span: s, depth });
    for (const c of (children.get(s.spanId) ?? []).sort((a, b) => a.startUs - b.startUs)) walk(c, depth + 1);
  };
  for (const r of roots.sort((a, b) => a.startUs - b.startUs)) walk(r, 0);
  return out;
}

function attributesTable(title, attrs) {
  const rows = Object.entries(attrs).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, String(v))));
  return el('div', {}, el('strong', {}, title), el('table', {}, el('tbody', {}, ...rows)));
}

async function showTrace(traceId) {
  state.selected = traceId;
  const detail = $('#trace-detail');
  let spans;
  try {
    spans = await api(`/api/traces/${encodeURIComponent(traceId)}`);
  } catch {
    detail.replaceChildren(el('p', { class: 'hint' }, `Trace ${traceId} is not held (evicted, or not seen).`));
    return;
  }
  const start = Math.min(...spans.map((s) => s.startUs));
  const end = Math.max(...spans.map((s) => s.startUs + s.durationUs));
  const total = Math.max(end - start, 1);
  const rows = nest(spans).map(({ span: s, depth }) => {
    const left = ((s.startUs - start) / total) * 100;
    const width = Math.max((s.durationUs / total) * 100, 0.2);
    const row = el(
      'div',
      { class: `span-row ${s.kind.toLowerCase()} ${s.error ? 'error' : ''}`, 'data-span-id': s.spanId, 'data-parent-span-id': s.parentSpanId ?? '', 'data-depth': String(depth), 'data-service': s.service },
      el('div', { class: 'label', style: `padding-left:${depth * 16}px`, title: `${s.service} ${s.name}` }, el('span', { class: 'kind' }, s.kind), `${s.service}: ${s.name}`),
      el('div', { class: 'bar-track' }, el('div', { class: 'bar', style: `left:${left}%;width:${width}%` }), el('span', { class: 'dur', style: `left:${Math.min(left + width, 92)}%` }, ` ${fmtMs(s.durationUs)}`)),
    );
    let open = null;
    row.addEventListener('click', () => {
      if (open) {
        open.remove();
        open = null;
        return;
      }
      open = el('div', { class: 'attrs' }, s.statusMessage ? el('p', {}, `status: ${s.statusMessage}`) : '', attributesTable('attributes', s.attributes), attributesTable('resource', s.resource), el('p', { class: 'hint' }, `span ${s.spanId}${s.parentSpanId ? `, parent ${s.parentSpanId}` : ''}`));
      row.after(open);
    });
    return row;
  });
  detail.replaceChildren(el('h3', {}, `trace ${traceId}`), el('p', { class: 'hint' }, `${spans.length} spans, ${fmtMs(total)}. Click a span for its attributes.`), ...rows);
}

// ---- the service map ----
async function refreshMap() {
  const map = await api('/api/map');
  const svg = $('#map');
  const W = svg.clientWidth || 800;
  const H = svg.clientHeight || 460;
  const names = [...new Set([...map.services, ...map.edges.map((e) => e.to)])];
  const untraced = new Set(map.edges.filter((e) => e.untracedPeer).map((e) => e.to));
  const pos = new Map();
  const r = Math.min(W, H) / 2 - 60;
  names.forEach((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(names.length, 1) - Math.PI / 2;
    pos.set(n, names.length === 1 ? [W / 2, H / 2] : [W / 2 + r * Math.cos(a), H / 2 + r * Math.sin(a)]);
  });
  const NS = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const defs = s('defs', {});
  const marker = s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 30, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' });
  marker.append(s('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#889' }));
  defs.append(marker);
  const edges = map.edges.map((e) => {
    const [x1, y1] = pos.get(e.from);
    const [x2, y2] = pos.get(e.to);
    const g = s('g', { class: `edge ${e.errorRate > 0 ? 'failing' : ''}`, 'data-from': e.from, 'data-to': e.to });
    g.append(s('line', { x1, y1, x2, y2 }));
    g.append(s('text', { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4 }, `${e.ratePerS.toFixed(1)}/s, ${(e.errorRate * 100).toFixed(0)}% err, p50 ${e.p50Ms.toFixed(1)} / p99 ${e.p99Ms.toFixed(1)} ms`));
    return g;
  });
  const nodes = names.map((n) => {
    const [x, y] = pos.get(n);
    const g = s('g', { class: `node ${untraced.has(n) ? 'untraced' : ''}`, 'data-service': n });
    g.append(s('circle', { cx: x, cy: y, r: 24 }));
    g.append(s('text', { x, y: y + 40 }, n));
    return g;
  });
  svg.replaceChildren(defs, ...edges, ...nodes);
  $('#edges tbody').replaceChildren(
    ...map.edges.map((e) =>
      el('tr', { 'data-from': e.from, 'data-to': e.to }, el('td', {}, e.from), el('td', {}, e.untracedPeer ? `${e.to} (not traced)` : e.to), el('td', {}, e.ratePerS.toFixed(2)), el('td', {}, `${e.errors} (${(e.errorRate * 100).toFixed(1)}%)`), el('td', {}, `${e.p50Ms.toFixed(2)} ms`), el('td', {}, `${e.p99Ms.toFixed(2)} ms`)),
    ),
  );
}

// ---- routing and polling ----
function route() {
  const h = location.hash || '#/';
  const onMap = h.startsWith('#/map');
  $('#traces-view').hidden = onMap;
  $('#map-view').hidden = !onMap;
  $('#nav-traces').classList.toggle('active', !onMap);
  $('#nav-map').classList.toggle('active', onMap);
  const m = h.match(/^#\/trace\/([0-9a-f]+)/);
  if (m) void showTrace(m[1]).then(refreshList);
  if (onMap) void refreshMap();
}

async function tick() {
  try {
    await refreshCounters();
    if ($('#map-view').hidden) {
      await refreshList();
      await refreshServices();
    } else await refreshMap();
    document.body.dataset.updated = String(Date.now());
  } catch (error) {
    document.body.dataset.error = String(error);
  }
  setTimeout(tick, POLL_MS);
}

$('#filters').addEventListener('input', () => void refreshList());
window.addEventListener('hashchange', route);
route();
void tick();
