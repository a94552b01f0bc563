// What the kernel's HTTP/2 frame walk costs: BPF run time of all sonde
// programs per gRPC unary call, and of the read/write exit programs per hit,
// on the bench's grpc-js echo server traced by sonde (exporter none), for
// N calls from h2load at several stream concurrencies (more streams per
// connection: more frames per syscall). kernel.bpf_stats_enabled is
// switched on for the run and off again at the end. Run as root from the
// repository: node bench/tools/h2WalkCost.js [N]
const { spawn, execFileSync } = require('node:child_process');
const { progStats } = require('./bpfStats');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const repo = path.resolve(__dirname, '..', '..');
const N = Number(process.argv[2] || 20000);


async function main() {
  execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=1']);
  const server = spawn(process.execPath, [`${repo}/bench/fixtures/grpc-server.js`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const sonde = spawn(`${repo}/bin/sonde`, ['--pid', String(server.pid), '--exporter', 'none', '--stats-interval-ms', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  process.on('exit', () => {
    sonde.kill('SIGKILL');
    server.kill('SIGKILL');
    execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=0']);
  });
  const port = await new Promise((r) => server.stdout.once('data', (d) => r(Number(String(d).trim()))));
  await new Promise((r) => { let e = ''; sonde.stderr.on('data', (d) => { e += d; if (/exporting spans/.test(e)) r(); }); });
  const body = path.join(os.tmpdir(), `h2walk-${process.pid}.bin`);
  const msg = Buffer.from('hello sonde');
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  fs.writeFileSync(body, frame);
  for (const streams of [1, 16, 64]) {
    const before = progStats();
    execFileSync('h2load', ['-n', String(N), '-c', '4', '-m', String(streams), '-t', '1', '-H', 'content-type: application/grpc', '-H', 'te: trailers', '-d', body, `http://127.0.0.1:${port}/demo.Echo/Unary`], { stdio: 'ignore' });
    const after = progStats();
    const d = (k) => ({ ns: (after[k]?.ns ?? 0) - (before[k]?.ns ?? 0), cnt: (after[k]?.cnt ?? 0) - (before[k]?.cnt ?? 0) });
    let total = 0;
    for (const k of Object.keys(after)) total += d(k).ns;
    const per = (k) => { const x = d(k); return x.cnt ? `${(x.ns / x.cnt).toFixed(0)} ns/hit x ${(x.cnt / N).toFixed(2)}/call` : '-'; };
    console.log(`h2load -c4 -m${String(streams).padEnd(2)} ${N} calls: all sonde programs ${(total / N).toFixed(0)} ns/call; sys_exit_read ${per('sonde_tp_sys_exit_read')}; sys_exit_writev ${per('sonde_tp_sys_exit_writev')}; sys_enter_writev ${per('sonde_tp_sys_enter_writev')}`);
  }
  fs.rmSync(body, { force: true });
  sonde.kill('SIGINT');
  server.kill('SIGTERM');
  await new Promise((r) => sonde.once('exit', r));
}
main().catch((e) => { console.error(e); process.exit(1); });
