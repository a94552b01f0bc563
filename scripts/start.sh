#!/usr/bin/env bash
# The first command of the README: installs whatever is missing (Debian
# packages included), builds, and starts sonde. Arguments go to sonde; with
# none it traces every HTTP process and prints spans on the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "sonde: run this as root (sudo npm start): it installs packages and loads eBPF programs" >&2
  exit 77
fi
bash scripts/setup.sh
exec bin/sonde "$@"
