#!/usr/bin/env bash
# sonde's benchmark: sonde against an untraced baseline, alternating runs.
#   npm run bench                 full run (about 105 minutes)
#   npm run bench -- --quick      under 3 minutes
#   npm run bench -- --smoke      seconds, for the test suite
#   npm run bench -- --out DIR --only worst-case,churn
# Needs root (eBPF), wrk, hey, h2load, nginx, openssl, python3, cc and clang; setup.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/bench/run.js "$@"
