#!/usr/bin/env bash
# The whole suite: builds what is missing, then runs unit, privileged and
# end-to-end tests with Node's own test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --build-only-if-needed
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found under dist/test" >&2; exit 1; fi
exec node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
