#!/usr/bin/env bash
# What one transaction of the bench's SQLite row costs us (docs/performance.md, "Random I/O"):
#   bash scripts/bench/sqlite-tx.sh [transactions]      (default 300)
# Mounts our file system alone in a fresh temp dir, creates the bench's 200,000-row WAL table,
# lets the store settle, drops the caches, runs that many of the bench's transactions
# (scripts/bench/sqlite-updates.mjs) and prints, per transaction: daemon CPU (all threads),
# commits, store growth, disk bytes read and written; the mean commit as SPACE_DEBUG_COMMITS=1
# logs it (callers, seal time, bytes sealed, time to durable); and the kinds of records appended
# (scripts/bench/pack-records.mjs). DIST=dir runs another build (default dist). Unmounts (by
# the daemon's PID) and removes the temp dir at the end.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/env.sh
. scripts/env.sh
TX=${1:-300}
W=$(mktemp -d /var/tmp/space-sqlite-tx.XXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  mountpoint -q "$W/mnt" && fusermount -u -z "$W/mnt"
  rm -rf --one-file-system "$W"
}
trap cleanup EXIT
mkdir -p "$W/mnt" "$W/data" "$W/config"
SPACE_DEBUG_COMMITS=1 node "${DIST:-dist}"/src/cli/main.js mount "$W/mnt" --data-dir "$W/data" --config-dir "$W/config" --foreground > "$W/out" 2> "$W/log" &
PID=$!
until grep -qsx "mounted $W/mnt" "$W/out"; do kill -0 "$PID" || exit 1; sleep 0.1; done
sqlite3 "$W/mnt/bench.db" > /dev/null <<SQL
PRAGMA journal_mode = WAL;
CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000)
INSERT INTO t SELECT i, hex(randomblob(50)) FROM c;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
node scripts/bench/sqlite-updates.mjs "$W/u.sql" 200000 "$TX" > /dev/null
store() { find "$W/data" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
settle() { local a b; b=$(store); while sleep 1; a=$(store); [ "$a" != "$b" ]; do b=$a; done; }
settle; sync; echo 3 > /proc/sys/vm/drop_caches
cpu() { sed 's/.*) //' "/proc/$PID/stat" | awk '{ print $12 + $13 }'; }
io() { awk '/^(read|write)_bytes:/ { printf "%s ", $2 }' "/proc/$PID/io"; }
commits() { grep -c "commit [0-9]*:" "$W/log" || true; }
read -r pn po <<< "$(node scripts/bench/pack-records.mjs "$W/data" --end)"
n0=$(commits); c0=$(cpu); s0=$(store); read -r r0 w0 <<< "$(io)"; t0=$EPOCHREALTIME
sqlite3 "$W/mnt/bench.db" < "$W/u.sql" > /dev/null
t1=$EPOCHREALTIME; c1=$(cpu); settle; s1=$(store); read -r r1 w1 <<< "$(io)"; n1=$(commits)
echo "$TX transactions in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s; load $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v tx="$TX" -v n=$((n1 - n0)) -v s=$((s1 - s0)) -v r=$((r1 - r0)) -v w=$((w1 - w0)) 'BEGIN {
  printf "per transaction: CPU %.0f us, %.2f commits, store %.1f KiB, disk read %.1f KiB, written %.1f KiB\n", c * 1e6 / hz / tx, n / tx, s / 1024 / tx, r / 1024 / tx, w / 1024 / tx }'
grep "commit [0-9]*:" "$W/log" | tail -n +$((n0 + 1)) | awk '{
    for (i = 1; i <= NF; i++) { if ($i == "sealed") { s += $(i + 1); b += $(i + 3) } if ($i == "durable") d += $(i + 1); if ($i == "callers,") c += $(i - 1) }
    n++ }
  END { if (n > 0) printf "commits: %d, mean %.2f callers, seal %.2f ms, %.1f KiB sealed, durable after %.2f ms\n", n, c / n, s / n, b / n / 1024, d / n }'
echo "records appended:"; node scripts/bench/pack-records.mjs "$W/data" "$pn" "$po" | sed 's/^/  /'
