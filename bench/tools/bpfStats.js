// BPF run time and run count of each loaded sonde program
// (kernel.bpf_stats_enabled must be on), for the kernel-cost tools here.
const { execFileSync } = require('node:child_process');

function progStats() {
  const out = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' }));
  const m = {};
  for (const p of out) if (p.name && p.name.startsWith('sonde_')) m[p.name] = { ns: p.run_time_ns || 0, cnt: p.run_cnt || 0 };
  return m;
}

module.exports = { progStats };
