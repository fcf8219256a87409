#!/usr/bin/env bash
# Per-op latency of 4 KiB reads and writes inside a 256 MiB file (scripts/bench/per-op.mjs), on
# our drive and on gocryptfs, same disk, one mounted at a time; remounted (and caches dropped)
# after the layout so the first reads are cold:
#   bash scripts/bench/per-op.sh [space|gocryptfs ...]     (as root: drop_caches; DIST=dir: another build of ours)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/env.sh
. scripts/env.sh
W=$(mktemp -d /var/tmp/space-perop.XXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  mountpoint -q "$W/mnt" && fusermount -u -z "$W/mnt"
  rm -rf --one-file-system "$W"
}
trap cleanup EXIT
start() {
  if [ "$1" = space ]; then
    node "${DIST:-dist}"/src/cli/main.js mount "$W/mnt" --data-dir "$W/data" --config-dir "$W/config" --foreground > "$W/out" 2> "$W/log" &
    PID=$!
    until grep -qsx "mounted $W/mnt" "$W/out"; do kill -0 "$PID" || exit 1; sleep 0.1; done
  else
    [ -f "$W/cipher/gocryptfs.conf" ] || gocryptfs -init -q -extpass 'echo benchpass' -scryptn 10 "$W/cipher" > /dev/null
    gocryptfs -fg -q -extpass 'echo benchpass' "$W/cipher" "$W/mnt" > "$W/log" 2>&1 &
    PID=$!
    until mountpoint -q "$W/mnt"; do kill -0 "$PID" || exit 1; sleep 0.1; done
  fi
}
stop() {
  if [ "$1" = space ]; then kill -TERM "$PID"; else fusermount -u "$W/mnt"; fi
  wait "$PID" 2>/dev/null || true
  PID=""
}
for fs in "${@:-space gocryptfs}"; do
  for f in $fs; do
    rm -rf "$W/data" "$W/config" "$W/cipher"; mkdir -p "$W/mnt" "$W/data" "$W/config" "$W/cipher"
    start "$f"; node scripts/bench/per-op.mjs "$W/mnt/f" layout; stop "$f"
    sync; echo 3 > /proc/sys/vm/drop_caches
    start "$f"
    echo "$f (load $(cut -d' ' -f1-3 /proc/loadavg)):"
    for phase in cold-read warm-read write small-write read-written; do node scripts/bench/per-op.mjs "$W/mnt/f" "$phase" | sed 's/^/  /'; done
    stop "$f"
  done
done
