#!/usr/bin/env bash
# The whole suite: builds what is missing, then runs unit, privileged and
# end-to-end tests with Node's own test runner, then checks that the suite
# left nothing behind (a sonde still attached makes later runs, and other
# people's, fail in confusing ways). Fails if either the tests or the check do.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
bash scripts/setup.sh
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found under dist/test" >&2; exit 1; fi

# Every process the suite starts carries this mark (test/support/processes.ts
# hands it on even to children given an environment of their own): it tells
# what this run left behind from anyone else's processes.
run_id="sonde-test-$$-$(date +%s%N)"

# Node 20 applies --test-timeout to each file as a whole as well as to each
# test, and SIGTERMs a file that runs out without showing what it printed.
# So this is the backstop, above the limits of test/support/watchdog.ts (3
# minutes a test, 5 a file, 6.5 for the benchmark smoke test), which fire
# first and name what hung.
tests_status=0
TEST_SUITE_RUN_ID="$run_id" node --test --test-concurrency=1 --test-timeout="${SONDE_TEST_RUNNER_TIMEOUT_MS:-480000}" \
  --test-reporter=spec "${files[@]}" || tests_status=$?

sonde_programs() {
  bpftool prog show 2>/dev/null | grep -E '^[0-9]+: .* name sonde_' || true
}

# A link names only its program's id; a sonde link is one whose program is a sonde one.
sonde_links() {
  local ids
  ids=" $(sonde_programs | cut -d: -f1 | tr '\n' ' ') "
  [ "$ids" != "  " ] || return 0
  bpftool link show 2>/dev/null | awk -v ids="$ids" '/^[0-9]+: / { for (i = 1; i < NF; i++) if ($i == "prog" && index(ids, " " $(i + 1) " ")) print }' || true
}

# This script and what started it (npm, .ci/run) are not leftovers.
ancestors=" "
pid=$$
while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
  ancestors+="$pid "
  pid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
done

suite_processes() {
  local dir pid cmd
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    case "$ancestors" in *" $pid "*) continue ;; esac
    cmd=$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline") || continue # stderr first: a process that ended meanwhile fails the redirection
    [ -n "$cmd" ] || continue # kernel threads, zombies
    # Should a sonde not carry the mark, its command line tells: bin/sonde
    # execs node on the CLI.
    if grep -qzxF "TEST_SUITE_RUN_ID=$run_id" "$dir/environ" 2>/dev/null || [[ "$cmd" == *"$root/bin/sonde"* || "$cmd" == *"$root/dist/src/cli/main.js"* ]]; then
      echo "$pid: $cmd"
    fi
  done
}

can_list_bpf=1
if ! command -v bpftool >/dev/null 2>&1; then
  echo "leftover check: bpftool is not installed, so loaded programs cannot be listed (apt-get install bpftool)" >&2
  can_list_bpf=0
elif ! bpftool prog show >/dev/null 2>&1; then
  echo "leftover check: bpftool cannot list programs as uid $(id -u) (run as root); checking processes only" >&2
  can_list_bpf=0
fi

# A killed process's programs and links are freed once the kernel has torn
# it down, which takes a moment: wait for that state, not for a fixed time.
leftover_status=0
for attempt in $(seq 1 20); do
  progs="" links=""
  if [ "$can_list_bpf" -eq 1 ]; then
    progs=$(sonde_programs)
    links=$(sonde_links)
  fi
  procs=$(suite_processes)
  [ -z "$progs$links$procs" ] && break
  if [ "$attempt" -eq 20 ]; then
    leftover_status=1
    {
      echo
      echo "✖ the test suite left things behind (still there 10 s after it ended):"
      [ -z "$progs" ] || printf 'sonde BPF programs still loaded:\n%s\n' "$progs"
      [ -z "$links" ] || printf 'links to sonde programs:\n%s\n' "$links"
      [ -z "$procs" ] || printf 'processes the suite started:\n%s\n' "$procs"
    } >&2
  else
    sleep 0.5
  fi
done
if [ "$leftover_status" -eq 0 ]; then echo "leftover check: no sonde program, link or process left by the suite"; fi

if [ "$tests_status" -ne 0 ]; then exit "$tests_status"; fi
exit "$leftover_status"
