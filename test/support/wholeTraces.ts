/**
 * How whole the traces of the fan-out topology came out: front door (nginx,
 * or the service itself) -> the service (test/e2e/fixtures/fanout-service.js
 * or fanout_threaded.py) -> a Python leaf. Each front-door request /r/ID
 * gives, in one trace:
 *
 *   nginx SERVER /r/ID                      (with nginx in front)
 *     nginx CLIENT /r/ID                    "nginx call"
 *       service SERVER /r/ID                "service server"
 *         service CLIENT /one?from=ID       "service call /one"
 *           leaf SERVER /one?from=ID        "leaf /one"
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
  /** Per hop, in tree order: "nginx call", "service server", "service call /one", "leaf /one", ... */
  hops: Record<string, HopFigures>;
}

export interface TopologyShape {
  /** nginx in front of the Node service. */
  nginx: boolean;
  /** The paths the service calls for each request, e.g. ['/one', '/two', '/fan-a', '/fan-b']. */
  calls: string[];
}

function isNginx(s: ReceivedSpan): boolean {
  return String(s.resource['process.executable.name'] ?? '').startsWith('nginx');
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

export function wholeTraceFigures(spans: ReceivedSpan[], ids: string[], shape: TopologyShape): WholeTraceFigures {
  // nginx's spans, the service's (its server spans are for /r/ID, its
  // client spans carry ?from=ID) and the leaf's (server spans with ?from=ID).
  const index = new Map<string, ReceivedSpan>();
  for (const s of spans) {
    const r = requestOf(s);
    if (!r) continue;
    const tier = isNginx(s) ? 'nginx' : s.kind === 'SERVER' && r.from !== null ? 'leaf' : 'service';
    index.set(`${tier} ${s.kind} ${r.path} ${r.from ?? ''}`, s);
  }
  const find = (tier: string, kind: string, path: string, from = ''): ReceivedSpan | undefined => index.get(`${tier} ${kind} ${path} ${from}`);
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
    const serviceServer = find('service', 'SERVER', front);
    if (shape.nginx) {
      const nginxCall = find('nginx', 'CLIENT', front);
      ok = judge('nginx call', nginxCall, find('nginx', 'SERVER', front)) && ok;
      ok = judge('service server', serviceServer, nginxCall) && ok;
    } else if (!serviceServer) {
      ok = false;
    }
    for (const call of shape.calls) {
      const serviceCall = find('service', 'CLIENT', call, id);
      ok = judge(`service call ${call}`, serviceCall, serviceServer) && ok;
      ok = judge(`leaf ${call}`, find('leaf', 'SERVER', call, id), serviceCall) && ok;
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
