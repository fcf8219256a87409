#!/usr/bin/env bash
# Builds the addons in native/ with node-gyp, into native/build/Release/: the libfuse3 binding
# (space_fuse3.node), a memcpy for shared memory (space_mem.node), a read-check-and-open of
# sealed blocks on the libuv pool (space_block.node, on Node's own OpenSSL and the official BLAKE3
# C sources), and the peer's uid of a Unix socket and no core dumps (space_sys.node), against the
# Node headers scripts/env.sh points npm_config_nodedir at. Needs libfuse3-dev and
# librust-blake3-dev (Debian ships BLAKE3's C implementation, SIMD included, in
# /usr/share/cargo/registry/blake3-*/c; SPACE_BLAKE3_C names another directory of those sources).
# `--blake3-dir` prints that directory relative to native/ (binding.gyp asks; gyp names objects
# after relative source paths only).
set -euo pipefail
cd "$(dirname "$0")/.."

blake3_dir () {
  local d=${SPACE_BLAKE3_C:-}
  if [ -z "$d" ]; then d=$(ls -d /usr/share/cargo/registry/blake3-*/c 2>/dev/null | sort -V | tail -n 1 || true); fi
  [ -n "$d" ] && [ -f "$d/blake3.h" ] && [ -f "$d/blake3_dispatch.c" ] || return 1
  echo "$d"
}
if [ "${1:-}" = "--blake3-dir" ]; then
  d=$(blake3_dir) || { echo "build-native: no BLAKE3 C sources (install librust-blake3-dev, or set SPACE_BLAKE3_C)" >&2; exit 1; }
  realpath --relative-to=native "$d"
  exit 0
fi

# shellcheck source=scripts/env.sh
. scripts/env.sh
pkg-config --exists fuse3 || { echo "build-native: libfuse3-dev is missing (pkg-config fuse3)" >&2; exit 1; }
blake3_dir >/dev/null || { echo "build-native: the BLAKE3 C sources are missing (apt-get install librust-blake3-dev, or set SPACE_BLAKE3_C)" >&2; exit 1; }
if command -v node-gyp >/dev/null 2>&1; then GYP=(node-gyp)
else GYP=(node "$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"); fi
"${GYP[@]}" rebuild --directory native --loglevel=error >/dev/null
test -f native/build/Release/space_fuse3.node
test -f native/build/Release/space_mem.node
test -f native/build/Release/space_block.node
test -f native/build/Release/space_sys.node
echo "build-native: native/build/Release/space_fuse3.node space_mem.node space_block.node space_sys.node"
