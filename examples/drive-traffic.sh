#!/usr/bin/env bash
# Sends a mixed stream of requests to the example frontend, one dot per request.
#
#   examples/drive-traffic.sh [--start] [--forever] [N]
#
#   N          number of requests (default: $N or 20)
#   --start    start frontend.js and prices.py when nothing listens on their
#              ports, and stop them again on exit
#   --forever  keep going until Ctrl-C
#
# Environment: PORT (8080), PRICES_PORT (8081). Only 127.0.0.1 is ever contacted.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
port=${PORT:-8080}
prices_port=${PRICES_PORT:-8081}
count=${N:-20}
start=0
forever=0

for arg in "$@"; do
  case $arg in
    --start) start=1 ;;
    --forever) forever=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    ''|*[!0-9]*) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    *) count=$arg ;;
  esac
done

frontend="http://127.0.0.1:$port"
started_pids=()

cleanup() {
  local pid
  for pid in "${started_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${started_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
# Ctrl-C ends the loop rather than the script, so the summary and cleanup run.
trap 'interrupted=1' INT
interrupted=0

listening() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" ; }

wait_until_listening() {
  local name=$1 port=$2 pid=$3
  for _ in $(seq 50); do
    listening "$port" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name exited during startup" >&2; exit 1; }
    sleep 0.1
  done
  echo "$name did not start listening on 127.0.0.1:$port" >&2
  exit 1
}

ensure_running() {
  local name=$1 port=$2
  shift 2
  listening "$port" && return 0
  if [ "$start" -eq 0 ]; then
    echo "$name is not listening on 127.0.0.1:$port; start it, or rerun with --start" >&2
    exit 1
  fi
  PORT=$port PRICES_PORT=$prices_port HOST=127.0.0.1 PRICES_HOST=127.0.0.1 "$@" >/dev/null &
  started_pids+=($!)
  wait_until_listening "$name" "$port" "$!"
  echo "started $name (pid $!) on 127.0.0.1:$port" >&2
}

ensure_running prices "$prices_port" python3 -u "$here/prices.py"
ensure_running frontend "$port" node "$here/frontend.js"

users=(ada grace linus margaret ken)
paths() {
  local i=$1 user=${users[$(( $1 % ${#users[@]} ))]}
  case $(( i % 10 )) in
    0|3|5|8) echo "/checkout?user=$user&token=tok-$RANDOM$RANDOM" ;;
    1|6)     echo "/" ;;
    2)       echo "/slow" ;;
    4)       echo "/error" ;;
    7)       echo "/missing" ;;
    9)       echo "/checkout?user=$user" ;;
  esac
}

sent=0
failed=0
while [ "$interrupted" -eq 0 ] && { [ "$forever" -eq 1 ] || [ "$sent" -lt "$count" ]; }; do
  path=$(paths "$sent")
  # Any HTTP status counts as served (the /error and /missing answers are the
  # point); only a failed connection is a failure.
  if curl -s -o /dev/null --max-time 5 "$frontend$path"; then
    printf '.'
  else
    # Ctrl-C reaches curl too; that request was ours to drop, not a failure.
    [ "$interrupted" -eq 1 ] && break
    printf 'x'
    failed=$((failed + 1))
  fi
  sent=$((sent + 1))
  if [ $((sent % 60)) -eq 0 ]; then printf '\n'; fi
done
printf '\n%d requests sent to %s, %d failed\n' "$sent" "$frontend" "$failed"
[ "$failed" -eq 0 ]
