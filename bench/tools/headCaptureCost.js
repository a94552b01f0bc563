// What following request heads past the capture costs in the kernel: BPF
// run time per sys_exit_read hit, and of all sonde programs per request, for
// 3000 keep-alive requests each with a small head, a 5 KB query string and a
// 3 KB cookie before a traceparent, on a Node server traced by sonde
// (kernel.bpf_stats_enabled, switched off again at the end). Run as root
// from the repository: node bench/tools/headCaptureCost.js [REPO]
const { spawn, execFileSync } = require('node:child_process');
const { progStats } = require('./bpfStats');
const net = require('node:net');
const repo = process.argv[2] || require('node:path').resolve(__dirname, "..", "..");
const N = 3000;
async function main() {
  execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=1']);
  const server = spawn(process.execPath, [`${repo}/test/e2e/fixtures/paced-server.js`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((r) => server.stdout.once('data', (d) => r(Number(String(d).trim()))));
  const sonde = spawn(`${repo}/bin/sonde`, ['--pid', String(server.pid), '--exporter', 'none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  process.on('exit', () => {
    sonde.kill('SIGKILL');
    server.kill('SIGKILL');
    execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=0']);
  });
  await new Promise((r) => { let e = ''; sonde.stderr.on('data', (d) => { e += d; if (/exporting spans/.test(e)) r(); }); });
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let buf = '';
  let want = 0;
  let done;
  sock.on('data', (d) => { buf += d; const n = (buf.match(/HTTP\/1\.1 200/g) || []).length; if (n >= want && done) { buf = ''; done(); } });
  const heads = {
    small: 'GET /s HTTP/1.1\r\nHost: x\r\n\r\n',
    query5k: `GET /q?q=${'x'.repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    cookie3k: `GET /c HTTP/1.1\r\nHost: x\r\nCookie: ${'c'.repeat(3000)}\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n`,
  };
  for (const [name, head] of Object.entries(heads)) {
    const before = progStats();
    for (let i = 0; i < N; i++) {
      want = 1;
      await new Promise((r) => { done = r; sock.write(head); });
    }
    const after = progStats();
    const d = (k) => ({ ns: after[k].ns - before[k].ns, cnt: after[k].cnt - before[k].cnt });
    const r = d('sonde_tp_sys_exit_read');
    const w = d('sonde_tp_sys_enter_writev');
    let total = 0;
    for (const k of Object.keys(after)) total += after[k].ns - (before[k] ? before[k].ns : 0);
    console.log(`${name.padEnd(9)} head ${String(head.length).padStart(5)} B: sys_exit_read ${(r.ns / r.cnt).toFixed(0)} ns/hit over ${r.cnt} hits; all sonde programs ${(total / N).toFixed(0)} ns/request`);
  }
  sock.destroy();
  sonde.kill('SIGINT');
  server.kill('SIGTERM');
  await new Promise((r) => sonde.once('exit', r));
  execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=0']);
}
main().catch((e) => { console.error(e); process.exit(1); });
