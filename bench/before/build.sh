#!/usr/bin/env bash
# Builds the sonde from before the performance work (8001542) for
# `npm run bench -- --before-dir DIR`, on kernels that refuse its programs
# as they were: 6.18 counts sys_exit_read's frame and emit_msg_start's
# together at 544 bytes, past the 512 a BPF call chain may use.
# 8001542-stack.patch moves three things off the stack and nothing else:
# a new connection's state and emit_msg_start's arguments into per-CPU
# scratch maps, as later builds do, and the request-head follow into a
# function the program calls after emit_msg_start returns. That costs the
# old build a lookup or two per message start; its events, and so its
# spans, are as they were.
#
#   bash bench/before/build.sh [DIR]     (default /tmp/sonde-before)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/sonde-before}
rev=8001542
if [ -e "$dir" ]; then
  echo "build-before: $dir exists; remove it (git worktree remove --force $dir) or name another directory" >&2
  exit 1
fi
git -C "$repo" worktree add --detach "$dir" "$rev"
git -C "$dir" apply "$here/$rev-stack.patch"
# The old build's dependencies are a subset of this checkout's, at the
# same versions.
ln -s "$repo/node_modules" "$dir/node_modules"
(cd "$dir" && make -s -C bpf && npm run -s build:native && npx tsc -p tsconfig.json)
echo "built $rev (patched to load here) in $dir: npm run bench -- --before-dir $dir"
