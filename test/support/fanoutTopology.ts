/**
 * The whole-trace topology, started for real: a Python leaf
 * (test/e2e/fixtures/threaded-server.py), the Node fan-out service
 * (test/e2e/fixtures/fanout-service.js) calling it, and optionally nginx in
 * front as a reverse proxy, with or without a keep-alive upstream pool.
 * Every process is tied to its owner (test/support/processes.ts), so none
 * outlives the test or the benchmark run. driveFanout() sends the
 * front-door requests with a fixed concurrency and keeps their ids for
 * wholeTraceFigures().
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, startProcess, waitUntil, type Owner, type RunningProcess } from './processes';

export interface FanoutOptions {
  nginx: 'keepalive' | 'no-keepalive' | 'none';
  /** fanout-service.js's environment: CLIENT, MAX_SOCKETS, DOWNSTREAM_HOST, TIMER_CALL. */
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

const FIXTURES = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures');

async function servicePort(proc: RunningProcess): Promise<number> {
  const m = await proc.waitForOutput(/^(\d+)\s*$/m, 10_000, 'stdout');
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

export async function startFanoutTopology(owner: Owner, options: FanoutOptions): Promise<FanoutTopology> {
  const leaf = startProcess(owner, 'python3', ['-u', path.join(FIXTURES, 'threaded-server.py')]);
  const leafPort = await servicePort(leaf);
  const service = startProcess(owner, process.execPath, [path.join(FIXTURES, 'fanout-service.js')], {
    env: { ...process.env, DOWNSTREAM_PORT: String(leafPort), ...options.serviceEnv },
  });
  const servicePortNumber = await servicePort(service);
  const calls = ['/one', '/two', '/fan-a', '/fan-b', ...(options.serviceEnv?.TIMER_CALL === '1' ? ['/timer'] : [])];
  const procs = [leaf, service];
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
    const nginx = startProcess(owner, 'nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir]);
    procs.push(nginx);
    ports.push(frontPort);
    const pidFile = path.join(dir, 'nginx.pid');
    await waitUntil(() => fs.existsSync(pidFile) || nginx.child.exitCode !== null, 10_000);
    if (!fs.existsSync(pidFile)) throw new Error(`nginx did not start\n${nginx.stderr()}`);
  }
  return {
    frontPort,
    ports,
    pids: procs.map((p) => p.child.pid!),
    calls,
    async stop() {
      await Promise.all(procs.map((p) => p.stop()));
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `requests` GETs of /r/<prefix>-<n> to the front door, `concurrency` at a
 * time on as many keep-alive connections. Resolves with the ids once all
 * are answered; rejects on the first that is not a 200.
 */
export async function driveFanout(frontPort: number, requests: number, concurrency: number, prefix: string): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const ids = Array.from({ length: requests }, (_, i) => `${prefix}-${i}`);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++];
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: frontPort, path: `/r/${id}`, agent }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`/r/${id}: status ${res.statusCode}`))));
        });
        req.setTimeout(20_000, () => req.destroy(new Error(`/r/${id}: no answer within 20 s`)));
        req.on('error', reject);
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return ids;
}

/** Spans the topology gives per front-door request. */
export function spansPerRequest(topology: FanoutTopology, withNginx: boolean): number {
  return (withNginx ? 2 : 0) + 1 + 2 * topology.calls.length;
}
