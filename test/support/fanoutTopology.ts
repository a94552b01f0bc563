/**
 * The whole-trace topology, started for real: a Python leaf
 * (test/e2e/fixtures/threaded-server.py), the fan-out service calling it
 * (test/e2e/fixtures/fanout-service.js on Node, or fanout_threaded.py for a
 * thread per request), and optionally nginx in
 * front as a reverse proxy, with or without a keep-alive upstream pool.
 * driveFanout() sends the front-door requests with a fixed concurrency and
 * keeps their ids for wholeTraceFigures().
 *
 * Processes are started through a Launch function, so that the tests tie
 * them to the test (test/support/processes.ts) and the benchmark to its
 * run (bench/lib/proc.ts); nothing here arms a test watchdog.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** A started process, as much as the topology needs of it. */
export interface Launched {
  readonly pid: number;
  /** Resolves with the first match on stdout; rejects on timeout or exit. */
  waitForStdout(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  hasExited(): boolean;
  stderr(): string;
  stop(): Promise<unknown>;
}

export type Launch = (name: string, command: string, args: string[], env: NodeJS.ProcessEnv) => Launched;

const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'e2e', 'fixtures');

export interface FanoutOptions {
  nginx: 'keepalive' | 'no-keepalive' | 'none';
  /** The middle tier: the Node event loop (default), or Python's thread per request. */
  service?: 'node' | 'python-threads';
  /** fanout-service.js's environment: CLIENT, MAX_SOCKETS, DOWNSTREAM_HOST, TIMER_CALL, IMMEDIATE_CALL, SERVE. */
  serviceEnv?: NodeJS.ProcessEnv;
}

export interface FanoutTopology {
  /** Where front-door requests go (nginx, or the Node service). */
  frontPort: number;
  /** Every port sonde should select by (--open-port). */
  ports: number[];
  pids: number[];
  calls: string[];
  stop(): Promise<void>;
}

async function servicePort(proc: Launched): Promise<number> {
  const m = await proc.waitForStdout(/^(\d+)\s*$/m, 10_000);
  return Number(m[1]);
}

/** A port free now, for nginx, which cannot listen on port 0 and say which it got. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startFanoutTopology(launch: Launch, options: FanoutOptions): Promise<FanoutTopology> {
  const procs: Launched[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.stop()));
  };
  try {
    return await startAll(launch, options, procs, stopAll);
  } catch (error) {
    await stopAll();
    throw error;
  }
}

async function startAll(launch: Launch, options: FanoutOptions, procs: Launched[], stopAll: () => Promise<void>): Promise<FanoutTopology> {
  const leaf = launch('python leaf', 'python3', ['-u', path.join(FIXTURES, 'threaded-server.py')], process.env);
  procs.push(leaf);
  const leafPort = await servicePort(leaf);
  const [command, script] =
    options.service === 'python-threads' ? ['python3', path.join(FIXTURES, 'fanout_threaded.py')] : [process.execPath, path.join(FIXTURES, 'fanout-service.js')];
  const service = launch('fanout service', command, [...(command === 'python3' ? ['-u'] : []), script], {
    ...process.env,
    DOWNSTREAM_PORT: String(leafPort),
    ...options.serviceEnv,
  });
  procs.push(service);
  const servicePortNumber = await servicePort(service);
  const calls = [
    '/one',
    '/two',
    '/fan-a',
    '/fan-b',
    ...(options.serviceEnv?.TIMER_CALL === '1' ? ['/timer'] : []),
    ...(options.serviceEnv?.IMMEDIATE_CALL === '1' ? ['/immediate'] : []),
  ];
  const ports = [leafPort, servicePortNumber];
  let frontPort = servicePortNumber;
  let dir: string | undefined;
  if (options.nginx !== 'none') {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-fanout-nginx-'));
    frontPort = await freePort();
    const pool = options.nginx === 'keepalive' ? 'keepalive 16;' : '';
    fs.writeFileSync(
      path.join(dir, 'nginx.conf'),
      `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_timeout 30;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream fanout { server 127.0.0.1:${servicePortNumber}; ${pool} }
  server { listen 127.0.0.1:${frontPort};
    location / { proxy_pass http://fanout; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
`,
    );
    const nginx = launch('nginx', 'nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], process.env);
    procs.push(nginx);
    ports.push(frontPort);
    // nginx writes its pid file once its sockets listen.
    const pidFile = path.join(dir, 'nginx.pid');
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(pidFile) && !nginx.hasExited() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!fs.existsSync(pidFile)) throw new Error(`nginx did not start\n${nginx.stderr()}`);
  }
  return {
    frontPort,
    ports,
    pids: procs.map((p) => p.pid),
    calls,
    async stop() {
      await stopAll();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Ids <prefix>-0 ... <prefix>-(requests-1), each sent with `send`, `concurrency` at a time; resolves with the ids. */
async function sendAll(requests: number, concurrency: number, prefix: string, send: (id: string) => Promise<void>): Promise<string[]> {
  const ids = Array.from({ length: requests }, (_, i) => `${prefix}-${i}`);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) await send(ids[next++]);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ids;
}

/**
 * `requests` GETs of /r/<prefix>-<n> to the front door, `concurrency` at a
 * time on as many keep-alive connections. Resolves with the ids once all
 * are answered; rejects on the first that is not a 200.
 */
export async function driveFanout(frontPort: number, requests: number, concurrency: number, prefix: string): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  try {
    return await sendAll(requests, concurrency, prefix, (id) => new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: frontPort, path: `/r/${id}`, agent }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`/r/${id}: status ${res.statusCode}`))));
      });
      req.setTimeout(20_000, () => req.destroy(new Error(`/r/${id}: no answer within 20 s`)));
      req.on('error', reject);
    }));
  } finally {
    agent.destroy();
  }
}

/**
 * The same over HTTP/2 (the service started with SERVE=h2c): every request
 * a stream of ONE connection, `concurrency` streams at a time.
 */
export async function driveFanoutH2(frontPort: number, requests: number, concurrency: number, prefix: string): Promise<string[]> {
  const session = http2.connect(`http://127.0.0.1:${frontPort}`);
  try {
    return await sendAll(requests, concurrency, prefix, (id) => new Promise<void>((resolve, reject) => {
      const req = session.request({ ':path': `/r/${id}` });
      let status = 0;
      req.on('response', (headers) => (status = Number(headers[':status'])));
      req.setTimeout(20_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
      req.on('error', reject);
      req.resume();
      req.on('close', () => (status === 200 ? resolve() : reject(new Error(`/r/${id}: status ${status}`))));
    }));
  } finally {
    session.close();
  }
}

/** Spans the topology gives per front-door request. */
export function spansPerRequest(topology: FanoutTopology, withNginx: boolean): number {
  return (withNginx ? 2 : 0) + 1 + 2 * topology.calls.length;
}
