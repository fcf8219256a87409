#!/usr/bin/env bash
# Builds the addons in native/ with node-gyp, into native/build/Release/: the libfuse3 binding
# (space_fuse3.node), a memcpy for shared memory (space_mem.node) and a read-and-open of sealed
# blocks on the libuv pool (space_block.node, on Node's own OpenSSL), the peer's uid of a Unix
# socket and no core dumps (space_sys.node), against the Node headers
# scripts/env.sh points npm_config_nodedir at. Needs libfuse3-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh
pkg-config --exists fuse3 || { echo "build-native: libfuse3-dev is missing (pkg-config fuse3)" >&2; exit 1; }
if command -v node-gyp >/dev/null 2>&1; then GYP=(node-gyp)
else GYP=(node "$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"); fi
"${GYP[@]}" rebuild --directory native --loglevel=error >/dev/null
test -f native/build/Release/space_fuse3.node
test -f native/build/Release/space_mem.node
test -f native/build/Release/space_block.node
test -f native/build/Release/space_sys.node
echo "build-native: native/build/Release/space_fuse3.node space_mem.node space_block.node space_sys.node"
