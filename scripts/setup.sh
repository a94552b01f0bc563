#!/usr/bin/env bash
# Installs everything sonde needs on a fresh Debian machine and builds it:
# Debian packages (only those missing), npm packages, the BPF object, the
# native addon and the TypeScript. Safe to run again: each step is skipped
# when its output is newer than its inputs.
# `npm test` and `npm run bench` run it first for that reason; it takes no
# arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[sonde setup] $*" >&2; }

need_pkgs=()
check_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$1"); }
# Build: clang/llvm compile the BPF programs, bpftool generates vmlinux.h and
# the skeleton, libbpf/libelf/zlib are what the addon links against, and
# libnghttp2-dev brings the HPACK inflater the HTTP/2 stitcher decodes with.
# Tests and examples: curl, nginx, wrk, python3 (already on the image).
# HTTP/2 and gRPC peers for the tests and the benchmark: python3-grpcio (a
# second gRPC implementation, for Debian's /usr/bin/python3), nghttp2-server
# (nghttpd, an h2c static server) and nghttp2-client (h2load drives the
# gRPC benchmark; nghttp).
# chromium: the viewer's end-to-end test drives it headless (puppeteer-core).
for p in clang llvm libbpf-dev libelf-dev zlib1g-dev libnghttp2-dev bpftool make g++ curl nginx-light wrk hey \
  python3-grpcio nghttp2-server nghttp2-client chromium; do check_pkg "$p"; done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${need_pkgs[*]}"
    log "run as root (sudo npm run setup) or install them with: apt-get install ${need_pkgs[*]}"
    exit 1
  fi
  log "installing Debian packages: ${need_pkgs[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

newer_than() { # newer_than OUTPUT INPUT... : true when OUTPUT is missing or older than any INPUT
  local out=$1; shift
  [ -e "$out" ] || return 0
  [ -n "$(find "$@" -newer "$out" -type f 2>/dev/null | head -1)" ]
}

if newer_than bpf/.output/sock_trace.skel.h bpf/*.c bpf/shared bpf/lib bpf/Makefile; then
  log "building BPF programs"
  make -s -C bpf
fi
if newer_than build/Release/sonde_native.node native binding.gyp bpf/.output/sock_trace.skel.h; then
  log "building native addon"
  npm run -s build:native -- --loglevel=error >/dev/null
fi
if newer_than dist/.tsbuildstamp src test tsconfig.json bench examples; then
  log "compiling TypeScript"
  npx --no-install tsc -p tsconfig.json
  touch dist/.tsbuildstamp
fi
