/**
 * The trace viewer's HTTP server: the page and its assets (plain ES modules
 * and CSS from ./assets, nothing from the network) and the JSON API under
 * /api/ that the page polls and a script can use too.
 *
 *   GET /api/traces?service=&name=&status=error|ok&minDurationMs=&traceId=&limit=
 *   GET /api/traces/<traceId>      the spans of one trace
 *   GET /api/services
 *   GET /api/map                   the service map of the traces held
 *   GET /api/counters              sonde's counters and the store's
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { CounterSummary } from '../runtime/counterSummary';
import type { TraceFilter, TraceStore } from './TraceStore';

/** The page's files, served from the source tree (tsc does not copy them). */
export const ASSETS_DIR = path.resolve(__dirname, '..', '..', '..', 'src', 'viewer', 'assets');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export interface ViewerOptions {
  host: string;
  port: number;
  store: TraceStore;
  counters: () => CounterSummary | undefined;
}

export class ViewerServer {
  readonly #options: ViewerOptions;
  readonly #server: http.Server;
  readonly #assets = new Map<string, { body: Buffer; type: string }>();

  constructor(options: ViewerOptions) {
    this.#options = options;
    for (const file of fs.readdirSync(ASSETS_DIR)) {
      const type = CONTENT_TYPES[path.extname(file)];
      if (type) this.#assets.set(`/${file}`, { body: fs.readFileSync(path.join(ASSETS_DIR, file)), type });
    }
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    // The page polls on keep-alive connections: do not let them hold stop.
    this.#server.keepAliveTimeout = 5000;
  }

  /** Listens; rejects with what to change when the address cannot be had. */
  listen(): Promise<string> {
    const { host, port } = this.#options;
    return new Promise((resolve, reject) => {
      this.#server.once('error', (error: NodeJS.ErrnoException) => {
        const what = error.code === 'EADDRINUSE' ? 'is taken' : error.code === 'EADDRNOTAVAIL' ? 'is not an address of this host' : `cannot be used (${error.message})`;
        reject(new Error(`trace viewer: ${host}:${port} ${what}; set SONDE_UI_ADDRESS (--ui-address HOST:PORT) or turn it off with --no-ui`));
      });
      this.#server.listen(port, host, () => {
        const bound = (this.#server.address() as AddressInfo).port;
        resolve(`http://${host.includes(':') ? `[${host}]` : host}:${bound}/`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.#send(res, 405, { error: 'only GET' });
    const url = new URL(req.url ?? '/', 'http://viewer');
    const p = url.pathname;
    try {
      if (p === '/') return this.#asset(res, '/index.html');
      if (!p.startsWith('/api/')) return this.#asset(res, p);
      const store = this.#options.store;
      if (p === '/api/traces') return this.#send(res, 200, store.traces(filterOf(url.searchParams)));
      if (p.startsWith('/api/traces/')) {
        const spans = store.trace(decodeURIComponent(p.slice('/api/traces/'.length)));
        return spans ? this.#send(res, 200, spans) : this.#send(res, 404, { error: 'no such trace held (evicted, or not seen)' });
      }
      if (p === '/api/services') return this.#send(res, 200, store.services());
      if (p === '/api/map') return this.#send(res, 200, store.serviceMap());
      if (p === '/api/counters') return this.#send(res, 200, { sonde: this.#options.counters() ?? null, viewer: store.counters });
      return this.#send(res, 404, { error: `no API ${p}` });
    } catch (error) {
      return this.#send(res, 400, { error: error instanceof Error ? error.message : String(error) });
    }
  }

  #asset(res: http.ServerResponse, p: string): void {
    const asset = this.#assets.get(p);
    if (!asset) return this.#send(res, 404, { error: `no ${p}` });
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    res.end(asset.body);
  }

  #send(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  }
}

function filterOf(q: URLSearchParams): TraceFilter {
  const filter: TraceFilter = {};
  const text = (k: string) => {
    const v = q.get(k)?.trim();
    return v ? v : undefined;
  };
  const num = (k: string) => {
    const v = text(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${k} must be a number ≥ 0 (got "${v}")`);
    return n;
  };
  filter.service = text('service');
  filter.name = text('name');
  const status = text('status');
  if (status !== undefined && status !== 'error' && status !== 'ok') throw new Error(`status must be error or ok (got "${status}")`);
  filter.status = status;
  filter.minDurationMs = num('minDurationMs');
  filter.traceId = text('traceId');
  filter.limit = num('limit');
  return filter;
}
