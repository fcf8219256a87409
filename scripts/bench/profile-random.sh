#!/usr/bin/env bash
# Where the time of one random-I/O fio row goes (docs/performance.md, "Random I/O"):
#   bash scripts/bench/profile-random.sh <fs> <row> [seconds]
#   fs:  space | gocryptfs
#   row: randread | randrw | randrw_fsync | randrw64 (as in scripts/bench.sh), or hot-direct:
#        4 KiB O_DIRECT random reads of files small enough for our 32 MiB block cache (4 x 4 MiB),
#        so no disk and no AES-GCM: the FUSE round trip and the JS dispatch alone.
# Mounts one file system in a fresh temp dir the way scripts/bench.sh does, lays out the fio files
# (4 x BENCH_FIO_SIZE_MB, default 256 MiB), drops caches and runs the row for [seconds] (default
# 20) while counting, for the daemon: CPU per thread (grouped by thread name, /proc/PID/task),
# /proc/PID/io, fio's mean latency per read, write and fsync, store growth (ours) and the records
# appended (scripts/bench/pack-records.mjs).
# PRE="randrw 20" runs that row first, untimed, on the same files (as scripts/bench.sh does before
# randrw_fsync: the blocks then carry its patches).
# LOG_TO=FILE keeps the daemon's log (with SPACE_DEBUG_COMMITS=1: a line per commit) and its stdout (FILE.out);
# NODE_FLAGS="--trace-gc" passes flags NODE_OPTIONS refuses to the daemon's node.
# PERF=1 adds `perf record -e cpu-clock -g` of the daemon (software clock: this VM has no PMU) and
# prints the top shared objects and symbols. Unmounts and removes the temp dir at the end.
# PAUSE=secs idles that long before the row (ours releases memory when quiet, checked nonces included).
# DIST=dir runs the daemon from another build (default dist; e.g. a copy of the base's dist/ in the tree).
# SPACE_NATIVE_READS=0 (passed to the daemon) sends every read to JS, for the side-by-side with
# the native read path (native/src/fuse3/fastread.c); SPACE_DEBUG_NATIVE_READS=1 makes the daemon
# print how many reads each side answered when it unmounts.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/env.sh
. scripts/env.sh
FS=${1:?usage: profile-random.sh <space|gocryptfs> <row> [seconds]}
ROW=${2:?usage: profile-random.sh <space|gocryptfs> <row> [seconds]}
SECS=${3:-20}
MB=${BENCH_FIO_SIZE_MB:-256}
case $ROW in
  randread) ARGS="--rw=randread --bs=4k" ;;
  randrw) ARGS="--rw=randrw --rwmixread=50 --bs=4k" ;;
  randrw_fsync) ARGS="--rw=randrw --rwmixread=50 --bs=4k --fsync=32" ;;
  randrw64) ARGS="--rw=randrw --rwmixread=50 --bs=4k,64k --verify=crc32c --fsync=32" ;;
  hot-direct) ARGS="--rw=randread --bs=4k --direct=1"; MB=4 ;;
  *) echo "unknown row $ROW" >&2; exit 2 ;;
esac
W=$(mktemp -d /var/tmp/space-profile.XXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then
    if [ "$FS" = space ]; then kill -TERM "$PID" 2>/dev/null || true; else fusermount -u "$W/mnt" 2>/dev/null || true; fi
    wait "$PID" 2>/dev/null || true
    grep -h "^native reads:" "$W/log" 2>/dev/null || true # with SPACE_DEBUG_NATIVE_READS=1
  fi
  mountpoint -q "$W/mnt" && fusermount -u -z "$W/mnt"
  [ -z "${LOG_TO:-}" ] || { cp "$W/log" "$LOG_TO"; cp "$W/out" "$LOG_TO.out"; } 2>/dev/null || true
  rm -rf --one-file-system "$W"
}
trap cleanup EXIT
mkdir -p "$W/mnt" "$W/data" "$W/config" "$W/cipher"
if [ "$FS" = space ]; then
  node ${NODE_FLAGS:-} "${DIST:-dist}"/src/cli/main.js mount "$W/mnt" --data-dir "$W/data" --config-dir "$W/config" --foreground > "$W/out" 2> "$W/log" &
  PID=$!
  until grep -qsx "mounted $W/mnt" "$W/out"; do kill -0 "$PID" || exit 1; sleep 0.1; done
else
  gocryptfs -init -q -extpass 'echo benchpass' -scryptn 10 "$W/cipher" > /dev/null
  gocryptfs -fg -q -extpass 'echo benchpass' "$W/cipher" "$W/mnt" > "$W/log" 2>&1 &
  PID=$!
  until mountpoint -q "$W/mnt"; do kill -0 "$PID" || exit 1; sleep 0.1; done
fi
fio_cmd() { fio --name=fio --directory="$W/mnt" --numjobs=4 --size="${MB}m" --ioengine=psync --group_reporting \
      --verify_state_save=0 "$@"; }
fio_cmd --rw=read --bs=1m --create_only=1 --output=/dev/null > /dev/null
store() { find "$W/data" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
settle() { local a b; b=$(store); while sleep 1; a=$(store); [ "$a" != "$b" ]; do b=$a; done; }
[ "$FS" != space ] || settle
if [ -n "${PRE:-}" ]; then # PRE="<row> <seconds>": run that row first, untimed (the bench runs randrw before randrw_fsync)
  read -r prow psecs <<< "$PRE"
  case $prow in randrw) pargs="--rw=randrw --rwmixread=50 --bs=4k" ;; randrw_fsync) pargs="--rw=randrw --rwmixread=50 --bs=4k --fsync=32" ;; *) echo "PRE: unknown row $prow" >&2; exit 2 ;; esac
  # shellcheck disable=SC2086
  fio_cmd $pargs --runtime="$psecs" --time_based --output=/dev/null > /dev/null
  [ "$FS" != space ] || settle
fi
[ -z "${PAUSE:-}" ] || sleep "$PAUSE" # PAUSE=secs: idle first (ours: the quiet release forgets the checked nonces, as after a restart)
sync; echo 3 > /proc/sys/vm/drop_caches
[ "$ROW" != hot-direct ] || fio_cmd $ARGS --runtime=2 --time_based --output=/dev/null > /dev/null # warm the block cache
threads() { # "<thread name> <ticks>" per thread
  for t in /proc/"$PID"/task/*; do
    n=$(tr ' ' _ < "$t/comm"); [ "${t##*/}" != "$PID" ] || n="$n(main)" # the JS thread apart from libfuse's and V8's
    printf '%s %s\n' "$n" "$(sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }')"
  done 2>/dev/null
}
io() { awk '/^(read|write)_bytes:/ { printf "%s ", $2 }' "/proc/$PID/io"; }
packs_end() { node scripts/bench/pack-records.mjs "$W/data" --end; } # the last record's end (not the file size: O_DIRECT tails)
proc_cpu() { sed 's/.*) //' "/proc/$PID/stat" | awk '{ print $12 + $13 }'; }
commits() { python3 -c 'import sys,struct
d=open(sys.argv[1],"rb").read(); o=n=0
while o+8<=len(d): o+=8+struct.unpack(">I",d[o:o+4])[0]; n+=1
print(n)' "$W/data/journal" 2>/dev/null || echo 0; } # journal frames: length u32 BE | crc u32 | payload
threads > "$W/t0"; io0=$(io); s0=$(store); p0=$([ "$FS" != space ] || packs_end); j0=$(commits); c0=$(proc_cpu); t0=$EPOCHREALTIME
if [ "${PERF:-0}" = 1 ]; then perf record -q -e cpu-clock -F 999 -g -p "$PID" -o "$W/perf.data" -- sleep "$SECS" > /dev/null 2>&1 & PERFPID=$!; fi
# shellcheck disable=SC2086
fio_cmd $ARGS --runtime="$SECS" --time_based --output-format=json --output="$W/fio.json" > /dev/null
tf=$EPOCHREALTIME; cf=$(proc_cpu)
[ -z "${PERFPID:-}" ] || wait "$PERFPID" || true
[ "$FS" != space ] || settle
threads > "$W/t1"; io1=$(io); s1=$(store); c1=$(proc_cpu); t1=$EPOCHREALTIME
read -r rmib wmib rops wops < <(node scripts/bench/fio-result.mjs "$W/fio.json")
ops=$((rops + wops))
echo "$FS $ROW: ${SECS}s, read $rmib MiB/s, write $wmib MiB/s, $rops reads, $wops writes; load $(cut -d' ' -f1-3 /proc/loadavg)"
hz=$(getconf CLK_TCK)
awk -v a="$t0" -v f="$tf" -v b="$t1" -v c=$((c1 - c0)) -v cf=$((cf - c0)) -v hz="$hz" -v el="$(jq '.jobs[0].elapsed' "$W/fio.json")" 'BEGIN {
  printf "wall: fio %.1f s (fio says %s s elapsed), then settling %.1f s; daemon CPU %.1f s during fio, %.1f s in all\n", f - a, el, b - f, cf / hz, c / hz }'
# Where a job's wall time goes: each job runs one op at a time, so its cycle is the sum of these.
jq -r '.jobs[0] | "latency per op (mean): read \(.read.clat_ns.mean / 1000 | floor) us, write \(.write.clat_ns.mean / 1000 | floor) us" + (if .sync.lat_ns.N > 0 then ", fsync \(.sync.lat_ns.mean / 1000 | floor) us (\(.sync.lat_ns.N) fsyncs)" else "" end)' "$W/fio.json"
echo "daemon CPU per op (us), by thread:"
awk -v hz="$hz" -v ops="$ops" 'NR == FNR { a[$1] += $2; next } { b[$1] += $2; n[$1]++ }
  END { for (k in b) { d = b[k] - a[k]; tot += d; if (d > 0) printf "  %-16s x%-3d %7.1f\n", k, n[k], d * 1e6 / hz / ops }
        printf "  %-21s %7.1f\n", "all", tot * 1e6 / hz / ops }' "$W/t0" "$W/t1" | sort -k3 -n -r
read -r r0 w0 <<< "$io0"; read -r r1 w1 <<< "$io1"
awk -v r=$((r1 - r0)) -v w=$((w1 - w0)) -v s=$((s1 - s0)) -v ops="$ops" -v wops="$wops" 'BEGIN {
  printf "disk per op: read %.1f KiB, written %.1f KiB; store growth %.1f KiB per write\n", r / 1024 / ops, w / 1024 / ops, (wops > 0 ? s / 1024 / wops : 0) }'
if [ "$FS" = space ] && [ "$wops" -gt 0 ]; then
  j1=$(commits)
  awk -v n=$((j1 - j0)) -v s=$((s1 - s0)) -v w="$wops" -v t="$SECS" 'BEGIN { if (n > 0) printf "commits: %d (%.1f per second), %.1f KiB appended per commit, %.1f writes per commit\n", n, n / t, s / 1024 / n, w / n }'
  echo "records appended:"; read -r pn po <<< "$p0"; node scripts/bench/pack-records.mjs "$W/data" "$pn" "$po" | sed 's/^/  /'
fi
if [ -n "${PERFPID:-}" ]; then
  echo "perf: by shared object"; perf report -i "$W/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | grep '%' | head -12
  echo "perf: top symbols"; perf report -i "$W/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep '%' | head -40
fi
