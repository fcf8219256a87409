#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and mounts ~/Space with the embedded defaults: a local
# block store under $XDG_DATA_HOME/space and a local key store under $XDG_CONFIG_HOME/space.
# Serves in the foreground: Ctrl-C (or `bin/space unmount` elsewhere) commits and unmounts.
# Extra arguments go to `space mount` (e.g. another mountpoint, --allow-other).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bin/space mount "$@"
