#!/usr/bin/env bash
# Runs the outside conformance tools against a fresh Space mount: pjdfstest (POSIX, as root,
# the mount with --allow-other since the tests switch uids) and xfstests' fsx (random reads,
# writes, truncates, mmap, fallocate modes, checked against a model). Prints each tool's
# counts and exits non-zero when either reports a failure.
#
#   bash scripts/conformance.sh [pjdfstest|fsx ...]      (default: both)
#
# Environment:
#   SPACE_TOOLS_SRC  the tools' sources with their build.sh (default ../shared/tools)
#   SPACE_TOOLS_OUT  where they are built                     (default /tmp/space-tools)
#   FSX_OPS          fsx operation count                      (default 1000000)
# The tools are not part of this repository (their licences and code are their own); they are
# built from SPACE_TOOLS_SRC, which needs autoconf automake libaio-dev liburing-dev (installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SRC=${SPACE_TOOLS_SRC:-$ROOT/../shared/tools}
OUT=${SPACE_TOOLS_OUT:-/tmp/space-tools}
FSX_OPS=${FSX_OPS:-1000000}
WANT=("$@"); [ ${#WANT[@]} -gt 0 ] || WANT=(pjdfstest fsx)

[ "$(id -u)" -eq 0 ] || { echo "conformance: run as root (pjdfstest switches uids)" >&2; exit 2; }
[ -f "$SRC/build.sh" ] || { echo "conformance: no tools at $SRC (set SPACE_TOOLS_SRC)" >&2; exit 2; }
bash scripts/setup.sh >/dev/null
. scripts/env.sh
if [ ! -x "$OUT/fsx" ] || [ ! -x "$OUT/pjdfstest/pjdfstest" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends autoconf automake libaio-dev liburing-dev perl >/dev/null
  bash "$SRC/build.sh" "$OUT" >/dev/null 2>&1
fi

WORK=$(mktemp -d /var/tmp/space-conformance.XXXX)
MNT=$WORK/mnt; mkdir -p "$MNT"
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  fi
  mountpoint -q "$MNT" && fusermount3 -uz "$MNT" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

node dist/src/cli/main.js mount "$MNT" --allow-other --foreground \
  --data-dir "$WORK/data" --config-dir "$WORK/config" --socket "$WORK/ctl.sock" > "$WORK/out" 2> "$WORK/daemon.log" &
PID=$!
for _ in $(seq 1 300); do grep -q '^mounted ' "$WORK/out" 2>/dev/null && break; sleep 0.1; done
grep -q '^mounted ' "$WORK/out" || { cat "$WORK/daemon.log" >&2; echo "conformance: mount failed" >&2; exit 1; }

status=0
for tool in "${WANT[@]}"; do
  case $tool in
    pjdfstest)
      mkdir "$MNT/pjd"; chmod 0777 "$MNT/pjd"
      (cd "$MNT/pjd" && prove -r "$OUT/pjdfstest/tests" > "$WORK/pjdfstest.out" 2>&1) || true
      # The summary: each failing file with its count, the total, and the result.
      sed -n '/^Test Summary Report/,$p' "$WORK/pjdfstest.out" | grep -E 'Failed: [0-9]+|^Files=|^Result:' || true
      awk '/Failed: [0-9]+\)/ { sub(/.*Failed: /, ""); sub(/\).*/, ""); n += $0 } END { print "pjdfstest failed subtests: " n + 0 }' "$WORK/pjdfstest.out"
      grep -q '^Result: PASS' "$WORK/pjdfstest.out" || status=1
      ;;
    fsx)
      res=$(cd "$MNT" && "$OUT/fsx" -N "$FSX_OPS" -S 1 fsxfile 2>&1 | grep -Ev "^(skipping|copying|truncating|zero_range|punch|fallocating|writing|reading|mapwrite|mapread|insert|collapse)" | tail -8 || true)
      echo "$res"
      echo "$res" | grep -q 'All [0-9]* operations completed A-OK' || status=1
      ;;
    *) echo "conformance: unknown tool $tool" >&2; exit 2 ;;
  esac
done
exit $status
