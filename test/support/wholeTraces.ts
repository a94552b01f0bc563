/**
 * How whole the traces of the fan-out topology came out: front door (nginx,
 * or the Node service itself) -> test/e2e/fixtures/fanout-service.js ->
 * a Python leaf. Each front-door request /r/ID gives, in one trace:
 *
 *   nginx SERVER /r/ID                      (with nginx in front)
 *     nginx CLIENT /r/ID                    "nginx call"
 *       node SERVER /r/ID                   "node server"
 *         node CLIENT /one?from=ID          "node call /one"
 *           python SERVER /one?from=ID      "python /one"
 *         ... the same for every call path
 *
 * Every hop is judged against the span it must hang from: correct, a root
 * (left unlinked), wrong (linked to another request: the worst outcome),
 * or missing (no span). A request's trace is whole when every hop of it is
 * correct. Used by test/e2e/eventLoopLinks.test.ts and by the benchmark's
 * whole-traces scenario, so both count the same way.
 */
import type { ReceivedSpan } from './receivers';

export interface HopFigures {
  correct: number;
  root: number;
  wrong: number;
  missing: number;
}

export interface WholeTraceFigures {
  requests: number;
  wholeTraces: number;
  /** Per hop, in tree order: "nginx call", "node server", "node call /one", "python /one", ... */
  hops: Record<string, HopFigures>;
}

export interface TopologyShape {
  /** nginx in front of the Node service. */
  nginx: boolean;
  /** The paths the Node service calls for each request, e.g. ['/one', '/two', '/fan-a', '/fan-b']. */
  calls: string[];
}

type Tier = 'nginx' | 'node' | 'python' | 'other';

function tierOf(s: ReceivedSpan): Tier {
  const exe = String(s.resource['process.executable.name'] ?? '');
  if (exe.startsWith('nginx')) return 'nginx';
  if (exe.startsWith('node')) return 'node';
  if (exe.startsWith('python')) return 'python';
  return 'other';
}

/** Path and `from` of a span's request: url.path/url.query on servers, url.full on clients. */
function requestOf(s: ReceivedSpan): { path: string; from: string | null } | undefined {
  if (typeof s.attributes['url.full'] === 'string') {
    const u = new URL(s.attributes['url.full']);
    return { path: u.pathname, from: u.searchParams.get('from') };
  }
  if (typeof s.attributes['url.path'] !== 'string') return undefined;
  const query = typeof s.attributes['url.query'] === 'string' ? s.attributes['url.query'] : '';
  return { path: s.attributes['url.path'], from: new URLSearchParams(query).get('from') };
}

function spanKey(tier: Tier, kind: string, path: string, from: string | null): string {
  return `${tier} ${kind} ${path} ${from ?? ''}`;
}

export function wholeTraceFigures(spans: ReceivedSpan[], ids: string[], shape: TopologyShape): WholeTraceFigures {
  const index = new Map<string, ReceivedSpan>();
  for (const s of spans) {
    const r = requestOf(s);
    if (!r) continue;
    index.set(spanKey(tierOf(s), s.kind, r.path, r.from), s);
  }
  const hops: Record<string, HopFigures> = {};
  const judge = (hop: string, child: ReceivedSpan | undefined, parent: ReceivedSpan | undefined): boolean => {
    const f = (hops[hop] ??= { correct: 0, root: 0, wrong: 0, missing: 0 });
    if (!child || !parent) {
      f.missing++;
      return false;
    }
    if (child.parentSpanId === undefined) {
      f.root++;
      return false;
    }
    if (child.parentSpanId !== parent.spanId || child.traceId !== parent.traceId) {
      f.wrong++;
      return false;
    }
    f.correct++;
    return true;
  };
  let whole = 0;
  for (const id of ids) {
    const front = `/r/${id}`;
    let ok = true;
    const nodeServer = index.get(spanKey('node', 'SERVER', front, null));
    if (shape.nginx) {
      const nginxServer = index.get(spanKey('nginx', 'SERVER', front, null));
      const nginxCall = index.get(spanKey('nginx', 'CLIENT', front, null));
      ok = judge('nginx call', nginxCall, nginxServer) && ok;
      ok = judge('node server', nodeServer, nginxCall) && ok;
    } else if (!nodeServer) {
      ok = false;
    }
    for (const call of shape.calls) {
      const nodeCall = index.get(spanKey('node', 'CLIENT', call, id));
      const leaf = index.get(spanKey('python', 'SERVER', call, id));
      ok = judge(`node call ${call}`, nodeCall, nodeServer) && ok;
      ok = judge(`python ${call}`, leaf, nodeCall) && ok;
    }
    if (ok) whole++;
  }
  return { requests: ids.length, wholeTraces: whole, hops };
}

/** One line per hop, for a failure message or a report. */
export function describeFigures(f: WholeTraceFigures): string {
  const lines = [`whole traces: ${f.wholeTraces}/${f.requests}`];
  for (const [hop, h] of Object.entries(f.hops)) lines.push(`  ${hop}: correct ${h.correct}, root ${h.root}, wrong ${h.wrong}, missing ${h.missing}`);
  return lines.join('\n');
}
