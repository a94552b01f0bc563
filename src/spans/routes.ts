/**
 * Route templates given by the user (`--route /users/:id`). Nothing on the
 * wire says which handler served a request, so without them a span is named
 * by its method alone, as the HTTP semantic conventions ask, to keep span
 * names low-cardinality.
 */
export interface RouteMatcher {
  match(path: string): string | undefined;
}

interface CompiledRoute {
  template: string;
  segments: string[];
  wildcardTail: boolean;
}

export function compileRoutes(templates: readonly string[]): RouteMatcher {
  const routes: CompiledRoute[] = templates
    .map((t) => t.trim())
    .filter((t) => t.startsWith('/'))
    .map((template) => {
      const segments = template.split('/').slice(1);
      const wildcardTail = segments[segments.length - 1] === '*';
      return { template, segments: wildcardTail ? segments.slice(0, -1) : segments, wildcardTail };
    });
  // A service serves a few paths over and over: each is matched once.
  const matched = new Map<string, string | null>();
  const MATCHED_MAX = 4096;
  const matchUncached = (path: string): string | undefined => {
    const parts = path.split('/').slice(1);
      for (const r of routes) {
        if (r.wildcardTail ? parts.length <= r.segments.length : parts.length !== r.segments.length) continue;
        let ok = true;
        for (let i = 0; i < r.segments.length && ok; i++) {
          const s = r.segments[i];
          ok = s.startsWith(':') || s === '*' ? parts[i].length > 0 : s === parts[i];
        }
        if (ok) return r.template;
      }
      return undefined;
  };
  return {
    match(path: string): string | undefined {
      if (routes.length === 0) return undefined;
      const hit = matched.get(path);
      if (hit !== undefined) return hit ?? undefined;
      const route = matchUncached(path);
      if (matched.size >= MATCHED_MAX) matched.clear();
      matched.set(path, route ?? null);
      return route;
    },
  };
}
