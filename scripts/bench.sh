#!/usr/bin/env bash
# Space vs gocryptfs, side by side on the same disk (`npm run bench`).
#
# Mounts gocryptfs, runs every workload on it and unmounts it, then does the same with our drive
# (backing dirs under one temp dir on one disk; with BENCH_RUNS>1 the order alternates), and prints
#   workload | ours | gocryptfs | ratio ours/gocryptfs | target
# (throughput rows: MB/s = 10^6 B/s, or MiB/s read / write for the fio rows, ratio of throughput,
# target >= 1.0; time rows: seconds, ratio of time, target <= 1.5, SQLite <= 1.0), then for the
# random-I/O rows the cost per fio op (daemon CPU, daemon disk bytes, bytes appended to our
# store). The same tables go to $BENCH_OUT as markdown, with our daemon's peak RSS (VmHWM).
# Method: docs/performance.md.
#
# Default set: write read untar ls md5 rm (sequential and metadata), randread randrw
# randrw_fsync randrw64 sqlite (random I/O, issue 10), and sync_bulk sync_latency sync_fresh
# (replication, issue 9: a `space hub` and two daemons of one identity vs two Syncthing
# instances, on loopback; scripts/bench/sync-space.mjs and syncthing-peer.mjs; BENCH_ONLY=sync
# runs just those three; their table is printed after the others, ratio ours/Syncthing).
# Not in the default set: scale (issue 11 point 4; BENCH_ONLY=scale): cold mounts of generated
# stores (empty, 20k, 200k, 2M blocks; BENCH_SCALE_SIZES), RSS, and cat of BENCH_SCALE_READ
# (250) files of 1,000 blocks with RSS sampled (scripts/bench/scale.mjs, ours only; the stores
# are cached under /var/tmp: the first run generates them). Nor memory (issue 11 point 2; BENCH_ONLY=memory): each file system's
# daemon RSS while a BENCH_MEMORY_MB file is copied in and read back, idle 30 s after, while
# BENCH_MEMORY_FILES small files are copied in and idle after, and its idle CPU over 60 s
# (scripts/bench/memory.mjs; table from memory-report.mjs, after the others).
# Not in the default set either: bigdir (issue 11 points 3-4; BENCH_ONLY=bigdir): each file
# system creates BENCH_BIGDIR_FILES empty files in one folder through its mount (cost per file at
# 1k, 10k, 100k), is remounted with the caches dropped, and stats names in it cold, then once more
# for a listing of it (opendir: first name, all names)
# (scripts/bench/bigdir.mjs). 100,000 files take ~2-4 min per file system on the 2-core VM.
# A default run took 5 min 17 s on the 2-core VM (load 5-7), the random rows alone 3.5-4 min
# (4 fio rows x 20 s x 2 file systems, the 4 x 256 MiB fio layout per file system, SQLite); the
# replication rows add 3-12 min (on main at load ~12 the fresh device alone took 9 min: one
# on-demand fetch per file). Quick run: BENCH_SIZE_MB=64 BENCH_FILES=500 BENCH_FIO_SIZE_MB=16
# BENCH_FIO_RUNTIME=3 BENCH_SQLITE_ROWS=20000 BENCH_SQLITE_TXNS=100 BENCH_SYNC_MB=128
# BENCH_SYNC_FILES=500 BENCH_SYNC_LATENCY_N=5.
#
# Environment (all optional):
#   BENCH_SIZE_MB  size of the sequential file in MiB            (default 1024)
#   BENCH_FILES    number of small files                          (default 10000)
#   BENCH_FIO_SIZE_MB  size of each fio job's file in MiB         (default 256)
#   BENCH_FIO_RUNTIME  seconds per fio row                        (default 20)
#   BENCH_FIO_JOBS     fio jobs (one file each)                   (default 4)
#   BENCH_SQLITE_ROWS  rows of the SQLite table                   (default 200000)
#   BENCH_SQLITE_TXNS  SQLite transactions of 10 row updates      (default 1000)
#   BENCH_SYNC_MB  new data replicated A to B in MiB (sync_bulk) (default 1024)
#   BENCH_SYNC_LATENCY_N  small files timed one by one (sync_latency) (default 20)
#   BENCH_SYNC_FILES  small files to a fresh device (sync_fresh)  (default 10000)
#   BENCH_MEMORY_MB     file copied in and back (memory)        (default 4096)
#   BENCH_MEMORY_FILES  small files copied in (memory)           (default 35000)
#   BENCH_BIGDIR_FILES  files created in one folder (bigdir)    (default 100000)
#   BENCH_MEMORY_IDLE_S, BENCH_MEMORY_CPU_S  idle seconds after each copy, and of the CPU
#                  measurement (memory)                           (defaults 30, 60)
#   BENCH_RUNS     repetitions of the whole sequence; median kept (default 1)
#   BENCH_FS       file systems to run                            (default "gocryptfs space")
#   BENCH_ONLY     workloads to run, e.g. "write read" or "randread randrw sqlite" (default: all)
#   BENCH_DIR      work dir for sources, backing dirs, mounts     (default: new /var/tmp/space-bench.XXXX,
#                  removed afterwards unless BENCH_KEEP=1)
#   BENCH_OUT      markdown output                                (default docs/performance-latest.md)
#   BENCH_VERIFY   1 = check the bytes read back (untimed)        (default 1)
#   BENCH_SPACE_CMD  command that runs our CLI                    (default "node dist/src/cli/main.js",
#                  built first if dist/ is missing; a warning if older than src/)
# Needs fio and sqlite3 for the random rows (scripts/setup.sh installs them), syncthing for the
# replication rows (Debian package `syncthing`).
# Exit status: 0 if every step ran and verified, 1 otherwise.
# shellcheck disable=SC2317 # functions are called indirectly ("start_$fs", "wl_$wl", traps)
set -euo pipefail
export LC_ALL=C

case "${BENCH_OUT:-}" in ''|/*) ;; *) BENCH_OUT="$PWD/$BENCH_OUT" ;; esac
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/env.sh
. scripts/env.sh

SIZE_MB=${BENCH_SIZE_MB:-1024}
NFILES=${BENCH_FILES:-10000}
FIO_MB=${BENCH_FIO_SIZE_MB:-256}
FIO_RUNTIME=${BENCH_FIO_RUNTIME:-20}
FIO_JOBS=${BENCH_FIO_JOBS:-4}
SQL_ROWS=${BENCH_SQLITE_ROWS:-200000}
SQL_TXNS=${BENCH_SQLITE_TXNS:-1000}
SYNC_MB=${BENCH_SYNC_MB:-1024}
SYNC_LAT_N=${BENCH_SYNC_LATENCY_N:-20}
SYNC_FILES=${BENCH_SYNC_FILES:-10000}
RUNS=${BENCH_RUNS:-1}
read -r -a FSES <<< "${BENCH_FS:-gocryptfs space}"
OUT=${BENCH_OUT:-$ROOT/docs/performance-latest.md}
VERIFY=${BENCH_VERIFY:-1}
SPACE_CMD=${BENCH_SPACE_CMD:-node dist/src/cli/main.js}
READY_TIMEOUT=30 # seconds for a mount to come up, and for our daemon to exit after SIGTERM

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Work dir, sources, cleanup
# ---------------------------------------------------------------------------------------------
WORK=""; OWN_WORK=0           # set by make_work_dir

declare -A PID MNT RSS RC   # per file system: daemon pid, mountpoint, peak RSS (kB), exit code
declare -A TIMES            # "fs,workload" -> space-separated seconds per run (or FAIL/BAD);
                            # fio rows: read MiB/s per run, and "fs,workload:w" write MiB/s
declare -A COST             # "fs,workload:what" -> per-run values per fio op (random rows)
FAILED=0

# On failure the logs (daemons: *.log, *.out; steps: *.err) and md5 lists (*.txt) stay in $WORK.
# A signal's trap can run inside a redirection (e.g. `2>/dev/null`), so stderr is restored first.
exec 3>&2
cleanup() {
  local status=$? fs
  exec 2>&3
  for fs in "${!PID[@]}"; do stop_fs "$fs" || true; done
  if [ -n "$WORK" ] && [ "$OWN_WORK" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then
    if grep -qF " $WORK/" /proc/mounts; then
      log "something is still mounted under $WORK; leaving it in place"
    elif [ "$status" = 0 ]; then
      rm -rf --one-file-system "$WORK"
    else
      find "$WORK" -mindepth 1 -maxdepth 1 ! -name '*.log' ! -name '*.out' ! -name '*.err' ! -name '*.txt' \
        -exec rm -rf --one-file-system {} +
      log "logs kept in $WORK"
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_caches() {
  sync
  if ! { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
    [ -n "${WARNED_DROP:-}" ] || log "cannot drop caches (not root?); numbers include warm caches"
    WARNED_DROP=1
  fi
}

make_work_dir() {
  if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"; WORK=$(cd "$BENCH_DIR" && pwd)
  else
    WORK=$(mktemp -d /var/tmp/space-bench.XXXX); OWN_WORK=1
  fi
  SRC_BIG=$WORK/src/big.bin   # SIZE_MB MiB of random bytes: incompressible, not dedupable
  SRC_TAR=$WORK/src/tree.tar  # NFILES files of 1-8 KiB in nested folders (scripts/bench/mktree.mjs)
  SRC_MD5=$WORK/src/tree.md5  # their md5sums, to check what the mounts give back
  SRC_SQL=$WORK/src/updates.sql # SQL_TXNS transactions of 10 random row updates (sqlite-updates.mjs)
}

# make_sources: only the inputs of the selected workloads.
make_sources() {
  mkdir -p "$WORK/src"
  if wants write || wants read; then
    if [ ! -s "$SRC_BIG" ] || [ "$(stat -c %s "$SRC_BIG")" -ne $((SIZE_MB * 1048576)) ]; then
      head -c $((SIZE_MB * 1048576)) /dev/urandom > "$SRC_BIG"
    fi
  fi
  if wants untar || wants ls || wants md5 || wants rm; then
    rm -rf "$WORK/src/tree"
    node scripts/bench/mktree.mjs "$WORK/src/tree" "$NFILES" > /dev/null
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2024-01-01 00:00:00Z' \
        -C "$WORK/src" -cf "$SRC_TAR" tree
    (cd "$WORK/src/tree" && find . -type f -print0 | xargs -0 md5sum) | sort -k2 > "$SRC_MD5"
    rm -rf "$WORK/src/tree"
  fi
  SQL_TOUCHED=$(node scripts/bench/sqlite-updates.mjs "$SRC_SQL" "$SQL_ROWS" "$SQL_TXNS")
}
wants() { [[ " ${WORKLOADS[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------------
# Mounting. start_<fs> starts the daemon in the background and sets PID/MNT; stop_fs undoes it.
# ---------------------------------------------------------------------------------------------
# first_line/last_line <file>: its first/last non-blank line, for one-line error messages.
first_line() { nonblank_line "$1" head; }
last_line() { nonblank_line "$1" tail; }
nonblank_line() {
  local line
  line=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | "$2" -n 1 | cut -c1-200 || true)
  echo "${line:-(nothing in $1)}"
}

# wait_until <what> <pid> <command...>: polls the command until it succeeds; dies if the daemon
# exits first or READY_TIMEOUT passes.
wait_until() {
  local what=$1 pid=$2; shift 2
  local deadline=$((SECONDS + READY_TIMEOUT))
  local rc=0
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || rc=$?; unset "PID[$what]"
      die "$what: daemon exited (status $rc) before mounting: $(last_line "$WORK/$what.log")"
    fi
    [ "$SECONDS" -lt "$deadline" ] ||
      die "$what: not mounted after ${READY_TIMEOUT}s; last log line: $(last_line "$WORK/$what.log")"
    sleep 0.1
  done
}

start_gocryptfs() {
  local cipher=$WORK/gocryptfs.cipher mnt=$WORK/gocryptfs.mnt
  mkdir -p "$cipher" "$mnt"
  [ -f "$cipher/gocryptfs.conf" ] ||
    gocryptfs -init -q -extpass 'echo benchpass' -scryptn 10 "$cipher" > "$WORK/gocryptfs.log" 2>&1 ||
      die "gocryptfs: -init failed (see $WORK/gocryptfs.log)"
  gocryptfs -fg -q -extpass 'echo benchpass' "$cipher" "$mnt" >> "$WORK/gocryptfs.log" 2>&1 &
  PID[gocryptfs]=$!; MNT[gocryptfs]=$mnt
  wait_until gocryptfs "${PID[gocryptfs]}" mountpoint -q "$mnt"
}

start_space() {
  local mnt=$WORK/space.mnt
  mkdir -p "$WORK/space.data" "$WORK/space.config" "$mnt"
  # shellcheck disable=SC2086 # SPACE_CMD is a command line
  $SPACE_CMD mount "$mnt" --data-dir "$WORK/space.data" \
    --config-dir "$WORK/space.config" --foreground > "$WORK/space.out" 2>> "$WORK/space.log" &
  PID[space]=$!; MNT[space]=$mnt
  wait_until space "${PID[space]}" grep -qsx "mounted $mnt" "$WORK/space.out"
  mountpoint -q "$mnt" || die "space: printed 'mounted' but $mnt is not a mountpoint"
}

# stop_fs <fs>: records peak RSS, then gocryptfs: fusermount -u; ours: SIGTERM (the contract).
# Either way, waits for the daemon and falls back to a lazy unmount + SIGKILL of that pid.
stop_fs() {
  local fs=$1 pid=${PID[$1]} mnt=${MNT[$1]} deadline=$((SECONDS + READY_TIMEOUT))
  unset "PID[$fs]"
  local hwm
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
  [ -z "$hwm" ] || [ "${RSS[$fs]:-0}" -ge "$hwm" ] || RSS[$fs]=$hwm # the peak over all runs
  if [ "$fs" = space ]; then kill -TERM "$pid" 2>/dev/null || true
  else fusermount -u "$mnt" 2>/dev/null || true; fi
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$fs: daemon (pid $pid) still running ${READY_TIMEOUT}s after unmount request; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  RC[$fs]=0; wait "$pid" 2>/dev/null || RC[$fs]=$?
  if mountpoint -q "$mnt"; then
    log "$fs: $mnt still mounted after the daemon exited; lazy unmount"
    fusermount -u -z "$mnt" 2>/dev/null || true
    [ "${RC[$fs]}" != 0 ] || RC[$fs]=still-mounted
  fi
}

# ---------------------------------------------------------------------------------------------
# Workloads. wl_<name> <mountpoint> <scratch-prefix>: the timed part only; its stderr goes to
# <scratch-prefix>.err.
# prep_<name> runs untimed before it (caches are dropped before every step; host-side inputs are
# then read back into the page cache so the host disk is never the bottleneck);
# check_<name> runs untimed after it when BENCH_VERIFY=1.
# ---------------------------------------------------------------------------------------------
WORKLOADS=(write read untar ls md5 rm randread randrw randrw_fsync randrw64 sqlite sync_bulk sync_latency sync_fresh)
declare -A LABEL=(
  [write]="seq write ${SIZE_MB} MiB + fsync"
  [read]="seq read ${SIZE_MB} MiB, cold"
  [untar]="create ${NFILES} files (untar)"
  [ls]="ls -lR, cold"
  [md5]="read all files (md5sum), cold"
  [rm]="rm -rf tree"
  [randread]="fio 4 KiB rand read"
  [randrw]="fio 4 KiB rand r+w (r / w)"
  [randrw_fsync]="fio 4 KiB rand r+w, fsync/32 (r / w)"
  [randrw64]="fio 4k r / 64k w, crc32c, fsync/32"
  [sqlite]="SQLite WAL ${SQL_TXNS} tx x 10 updates"
  [sync_bulk]="replicate ${SYNC_MB} MiB A to B"
  [sync_latency]="close() on A until B shows it"
  [sync_fresh]="${SYNC_FILES} files to a fresh device"
  [memory]="daemon RSS and idle CPU"
  [bigdir]="big folder: create, stat and list cold"
  [scale]="cold mount and RSS vs store size"
)
declare -A KIND=([write]=tput [read]=tput [untar]=time [ls]=time [md5]=time [rm]=time
                 [randread]=fio [randrw]=fio [randrw_fsync]=fio [randrw64]=fio [sqlite]=time
                 [sync_bulk]=sync [sync_latency]=sync [sync_fresh]=sync [memory]=mem [bigdir]=big [scale]=scale)
declare -A LIMIT=([sqlite]=1.0) # time rows: the largest time ratio that meets the target; else 1.5
split_workloads() { # FS_WORKLOADS: those run on one mount at a time; SYNC_WLS: the replication ones
  FS_WORKLOADS=(); SYNC_WLS=(); MEM_WL=0; BIG_WL=0; SCALE_WL=0
  for wl in "${WORKLOADS[@]}"; do
    if [ "${KIND[$wl]}" = sync ]; then SYNC_WLS+=("${wl#sync_}")
    elif [ "${KIND[$wl]}" = mem ]; then MEM_WL=1
    elif [ "${KIND[$wl]}" = big ]; then BIG_WL=1
    elif [ "${KIND[$wl]}" = scale ]; then SCALE_WL=1
    else FS_WORKLOADS+=("$wl"); fi
  done
}
if [ -n "${BENCH_ONLY:-}" ]; then
  read -r -a WORKLOADS <<< "$BENCH_ONLY"
  only=(); for wl in "${WORKLOADS[@]}"; do
    if [ "$wl" = sync ]; then only+=(sync_bulk sync_latency sync_fresh); else only+=("$wl"); fi
  done
  WORKLOADS=("${only[@]}")
  for wl in "${WORKLOADS[@]}"; do
    [ -n "${KIND[$wl]:-}" ] || die "BENCH_ONLY: no workload '$wl' (have: ${!KIND[*]}, or sync for the three sync_ rows)"
  done
fi
split_workloads

prep_write() { cat "$SRC_BIG" > /dev/null; }
wl_write()   { dd if="$SRC_BIG" of="$1/big" bs=1M count="$SIZE_MB" conv=fsync status=none; }
wl_read()    { dd if="$1/big" of=/dev/null bs=1M status=none; }
check_read() { cmp -s "$SRC_BIG" "$1/big" || { log "$1/big differs from what was written"; return 1; }; }
prep_untar() { cat "$SRC_TAR" > /dev/null; }
wl_untar()   { tar --no-same-owner -xf "$SRC_TAR" -C "$1"; }
wl_ls()      { ls -lR "$1/tree" > /dev/null; }
wl_md5()     { (cd "$1/tree" && find . -type f -print0 | xargs -0 md5sum) > "$2.txt"; }
check_md5()  { sort -k2 "$2.txt" | cmp -s - "$SRC_MD5" || { log "file contents under $1/tree differ (see $2.txt)"; return 1; }; }
wl_rm()      { [ -d "$1/tree" ] || { echo "no $1/tree to remove" >&2; return 1; }; rm -rf "$1/tree"; }
check_rm()   { [ ! -e "$1/tree" ] || { log "$1/tree still exists after rm -rf"; return 1; }; }

# Random I/O (issue 10). fio: FIO_JOBS jobs with one FIO_MB MiB file each (MNT/fio.N.0, laid out
# untimed by the first fio row of a mount and shared by the others), psync, buffered, FIO_RUNTIME
# seconds each. A wl_ that leaves "<read MiB/s> <write MiB/s> <read ops> <write ops>" in
# <scratch>.res reports that instead of its wall time.
declare -A FIO_ARGS=(
  [randread]="--rw=randread --bs=4k"
  [randrw]="--rw=randrw --rwmixread=50 --bs=4k"
  [randrw_fsync]="--rw=randrw --rwmixread=50 --bs=4k --fsync=32"
  [randrw64]="--rw=randrw --rwmixread=50 --bs=4k,64k --verify=crc32c --fsync=32"
)
fio_cmd() {
  local dir=$1; shift
  fio --name=fio --directory="$dir" --numjobs="$FIO_JOBS" --size="${FIO_MB}m" --ioengine=psync \
      --group_reporting --verify_state_save=0 "$@" # no verify state files in the working dir
}
prep_fio() {
  # A no-op once the files exist at their size; after laying them out, wait for the store to
  # settle and drop the caches again, so the row starts cold and with no write-back pending.
  local i
  for ((i = 0; i < FIO_JOBS; i++)); do
    [ "$(stat -c %s "$1/fio.$i.0" 2>/dev/null || echo 0)" = $((FIO_MB * 1048576)) ] || break
  done
  [ "$i" -lt "$FIO_JOBS" ] || return 0
  # (fio lays files out only for jobs that read them first: a write job would start from empty files)
  fio_cmd "$1" --rw=read --bs=1m --create_only=1 --output="$2.layout.json" > /dev/null 2> "$2.layout.err" ||
    die "fio layout in $1 failed: $(first_line "$2.layout.err")"
  for ((i = 0; i < FIO_JOBS; i++)); do
    [ "$(stat -c %s "$1/fio.$i.0")" = $((FIO_MB * 1048576)) ] || die "fio layout: $1/fio.$i.0 has the wrong size"
  done
  settle "$CUR_FS"; drop_caches
}
wl_fio() {
  # shellcheck disable=SC2086 # FIO_ARGS holds several options
  fio_cmd "$1" ${FIO_ARGS[$3]} --runtime="$FIO_RUNTIME" --time_based --output-format=json \
      --output="$2.json" > /dev/null && node scripts/bench/fio-result.mjs "$2.json" > "$2.res"
}
for wl in randread randrw randrw_fsync randrw64; do
  eval "prep_$wl() { prep_fio \"\$@\"; }; wl_$wl() { wl_fio \"\$1\" \"\$2\" $wl; }"
done

# SQLite: a SQL_ROWS-row table in WAL mode (created untimed, once per mount), then SRC_SQL with the
# sqlite3 CLI's defaults (synchronous=FULL: the WAL is synced at every commit).
prep_sqlite() {
  [ -f "$1/bench.db" ] || {
    sqlite3 "$1/bench.db" > /dev/null <<SQL
PRAGMA journal_mode = WAL;
CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $SQL_ROWS)
INSERT INTO t SELECT i, hex(randomblob(50)) FROM c;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
    settle "$CUR_FS"; drop_caches
  }
  cat "$SRC_SQL" > /dev/null
}
wl_sqlite() { sqlite3 "$1/bench.db" < "$SRC_SQL" > /dev/null; }
check_sqlite() {
  local got want
  want=$(printf 'ok\n%s\n%s' "$SQL_ROWS" "$SQL_TOUCHED")
  got=$(sqlite3 "$1/bench.db" "PRAGMA integrity_check; SELECT count(*) FROM t; SELECT count(*) FROM t WHERE v LIKE 'u%';")
  [ "$got" = "$want" ] || { log "$1/bench.db: got '${got//$'\n'/ }', want '${want//$'\n'/ }'"; return 1; }
}

# Per-op cost of the random rows. snapshot <fs>: "<cpu ticks> <read_bytes> <write_bytes>
# <store bytes>" of the daemon (all threads; /proc/PID/io counts what reached the disk layer or
# was dirtied in the page cache) and of our data dir (every file's length; 0 for gocryptfs, which
# rewrites in place). settle <fs>: waits until our data dir has stopped growing (the daemon
# commits about once a second; a write ends before its block is sealed and appended).
store_bytes() {
  if [ "$1" = space ]; then find "$WORK/space.data" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'
  else echo 0; fi
}
snapshot() {
  local pid=${PID[$1]}
  printf '%s %s %s %s\n' \
    "$(sed 's/.*) //' "/proc/$pid/stat" | awk '{ printf "%.0f", $12 + $13 }')" \
    "$(awk '/^read_bytes:/ { print $2 }' "/proc/$pid/io")" \
    "$(awk '/^write_bytes:/ { print $2 }' "/proc/$pid/io")" \
    "$(store_bytes "$1")"
}
settle() {
  [ "$1" = space ] || return 0
  local last now same=0 deadline=$((SECONDS + 60))
  last=$(store_bytes space)
  while [ "$same" -lt 3 ] && [ $SECONDS -lt $deadline ]; do
    sleep 0.5; now=$(store_bytes space)
    if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; last=$now; fi
  done
}
# cost <fs> <wl> <before> <after> <ops> <writes>: appends CPU us, disk read and written bytes per
# op and store bytes per write to COST[fs,wl:cpu|rd|wr|app].
cost() {
  local fs=$1 wl=$2 what v i=0 a b
  read -r -a b <<< "$3"; read -r -a a <<< "$4"
  for what in cpu rd wr app; do
    v=$(awk -v d="$(( a[i] - b[i] ))" -v ops="$5" -v w="$6" -v what="$what" -v hz="$(getconf CLK_TCK)" 'BEGIN {
      if (what == "cpu") n = ops; else if (what == "app") n = w; else n = ops
      if (n <= 0) { print "-"; exit }
      printf "%.0f", (what == "cpu" ? d * 1e6 / hz : d) / n }')
    COST[$fs,$wl:$what]="${COST[$fs,$wl:$what]:-}${COST[$fs,$wl:$what]:+ }$v"
    i=$((i + 1))
  done
  COST[$fs,$wl:ops]="${COST[$fs,$wl:ops]:-}${COST[$fs,$wl:ops]:+ }$5"
}
is_random() { case $1 in randread|randrw|randrw_fsync|randrw64|sqlite) return 0 ;; esac; return 1; }

# run_step <fs> <workload>: prep, time, check; appends seconds (or FAIL/BAD) to TIMES[fs,wl].
run_step() {
  local fs=$1 wl=$2 mnt=${MNT[$1]} scratch=$WORK/$1-$2 t0 t1 result before="" after res
  CUR_FS=$fs
  drop_caches
  rm -f "$scratch.res"
  if declare -F "prep_$wl" > /dev/null; then "prep_$wl" "$mnt" "$scratch"; fi
  if is_random "$wl"; then before=$(snapshot "$fs"); fi
  t0=$EPOCHREALTIME
  if "wl_$wl" "$mnt" "$scratch" 2> "$scratch.err"; then
    t1=$EPOCHREALTIME
    result=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [ -n "$before" ]; then settle "$fs"; after=$(snapshot "$fs"); fi
    if [ -s "$scratch.res" ]; then
      read -r -a res < "$scratch.res"
      result=${res[0]}
      TIMES[$fs,$wl:w]="${TIMES[$fs,$wl:w]:-}${TIMES[$fs,$wl:w]:+ }${res[1]}"
      cost "$fs" "$wl" "$before" "$after" $((res[2] + res[3])) "${res[3]}"
    elif [ -n "$before" ]; then
      cost "$fs" "$wl" "$before" "$after" "$SQL_TXNS" "$SQL_TXNS"
    fi
    if [ "$VERIFY" = 1 ] && declare -F "check_$wl" > /dev/null && ! "check_$wl" "$mnt" "$scratch"; then
      result=BAD
    fi
  else
    log "$fs: '$wl' failed: $(first_line "$scratch.err")"; result=FAIL
  fi
  case $result in FAIL|BAD) FAILED=1 ;; esac
  TIMES[$fs,$wl]="${TIMES[$fs,$wl]:-}${TIMES[$fs,$wl]:+ }$result"
  printf 'bench:   %-9s %-38s %s%s\n' "$fs" "${LABEL[$wl]}" "$result" \
    "${res[1]:+ / ${res[1]} MiB/s}" >&2
}

# ---------------------------------------------------------------------------------------------
# Replication (issue 9, point 7): the same workloads on Syncthing (two instances) and on ours (a
# hub and two daemons), each side's processes started and stopped by its script, one side at a
# time; JSON lines per run in $WORK/sync-<side>.jsonl, rows from scripts/bench/sync-report.mjs.
# ---------------------------------------------------------------------------------------------
run_sync() {
  [ ${#SYNC_WLS[@]} -gt 0 ] || return 0
  local run side script dir
  for run in $(seq "$RUNS"); do
    for side in syncthing space; do
      case $side in
        syncthing) script=scripts/bench/syncthing-peer.mjs ;;
        space) script=scripts/bench/sync-space.mjs ;;
      esac
      dir=$WORK/sync-$side
      log "replication run $run of $RUNS: $side (${SYNC_WLS[*]})"
      drop_caches
      echo "$side, run $run: load $(cut -d' ' -f1-3 /proc/loadavg) before" >> "$WORK/sync-load.txt"
      if ! SYNC_BULK_MB=$SYNC_MB SYNC_LATENCY_N=$SYNC_LAT_N SYNC_FRESH_FILES=$SYNC_FILES \
          node "$script" "$dir" "${SYNC_WLS[@]}" > "$WORK/sync-$side.run" 2>> "$WORK/sync-$side.err"; then
        log "$side: replication workloads failed: $(last_line "$WORK/sync-$side.err")"; FAILED=1
      fi
      echo "$side, run $run: load $(cut -d' ' -f1-3 /proc/loadavg) after" >> "$WORK/sync-load.txt"
      sed 's/^/bench:   /' "$WORK/sync-$side.run" >&2
      cat "$WORK/sync-$side.run" >> "$WORK/sync-$side.jsonl"
      if grep -qF " $dir/" /proc/mounts; then log "something is still mounted under $dir; leaving it"
      else cp "$dir"/*.log "$WORK/" 2>/dev/null || true; rm -rf --one-file-system "$dir"; fi
    done
  done
}

# report_sync: the replication table on stdout and appended to $OUT (created if report_fs did not run).
report_sync() {
  local out rows notes
  out=$(node scripts/bench/sync-report.mjs "$WORK/sync-space.jsonl" "$WORK/sync-syncthing.jsonl") || { log "sync-report failed"; FAILED=1; return; }
  rows=$(grep -v '^- ' <<< "$out" || true); notes=$(grep '^- ' <<< "$out" || true)
  # The machine's load around each side's run (1, 5, 15 min): numbers from a loaded machine are noise.
  [ -f "$WORK/sync-load.txt" ] && notes+=$'\n'"- load: $(paste -sd ';' "$WORK/sync-load.txt" | sed 's/;/; /g')"
  grep -q FAIL <<< "$rows" && FAILED=1
  echo
  { echo "replication|ours|Syncthing|ours/Syncthing|target"; echo "$rows"; } | column -t -s '|'
  [ -z "$notes" ] || echo "$notes"
  out_header "Space vs Syncthing (replication)"
  {
    echo
    echo "## Replication: a hub and two daemons vs two Syncthing instances, loopback"
    echo
    echo "| workload | ours | Syncthing | ours/Syncthing | target |"
    echo "|---|---:|---:|---:|---|"
    echo "$rows" | awk -F'|' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }'
    echo
    echo "Bulk: MB/s (10^6 B/s), ratio of throughput; the other rows: ratio of time."
    [ -z "$notes" ] || echo "$notes"
    echo "- ${RUNS} run(s), median shown; $(syncthing --version 2>/dev/null | cut -d' ' -f1-2), node $(node -v)," \
         "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)${STALE:-}; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  } >> "$OUT"
  [ ${#FS_WORKLOADS[@]} -gt 0 ] || echo "table written to $OUT"
}

# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------
# median <values...>: median of numbers; FAIL/BAD if any run was not a number; "-" if none.
median() {
  [ $# -gt 0 ] || { echo -; return; }
  printf '%s\n' "$@" | sort -g | awk '
    !/^[0-9.]+$/ { bad = $0 } { v[NR] = $0 }
    END { if (bad != "") print bad
          else if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]
          else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# row <workload>: prints "label|ours|gocryptfs|ratio|target" with values formatted.
row() {
  local wl=$1 ours gcf ours_w=- gcf_w=-
  # shellcheck disable=SC2086 # word splitting of the per-run lists is intended
  ours=$(median ${TIMES[space,$wl]:-})
  # shellcheck disable=SC2086
  gcf=$(median ${TIMES[gocryptfs,$wl]:-})
  if [ "${KIND[$wl]}" = fio ]; then
    # shellcheck disable=SC2086
    ours_w=$(median ${TIMES[space,$wl:w]:-})
    # shellcheck disable=SC2086
    gcf_w=$(median ${TIMES[gocryptfs,$wl:w]:-})
  fi
  awk -v label="${LABEL[$wl]}" -v kind="${KIND[$wl]}" -v o="$ours" -v g="$gcf" -v ow="$ours_w" -v gw="$gcf_w" \
      -v limit="${LIMIT[$wl]:-1.5}" -v mb="$(awk -v s="$SIZE_MB" 'BEGIN { print s * 1048576 / 1e6 }')" '
    function num(x) { return x ~ /^[0-9.]+$/ }
    function pos(x) { return num(x) && x + 0 > 0 }
    function show(x, w) {
      if (!num(x)) return x
      if (kind == "fio") return num(w) && w + 0 > 0 ? sprintf("%.1f / %.1f MiB/s", x, w) : sprintf("%.1f MiB/s", x)
      return kind == "tput" ? sprintf("%.0f MB/s", mb / x) : sprintf("%.2f s", x)
    }
    BEGIN {
      ratio = "-"; target = "-"
      if (kind == "fio") {
        # read and write MiB/s: the ratio of their sums (fio moves both at once)
        if (num(o) && num(g) && num(ow) && num(gw) && g + gw > 0) {
          ratio = sprintf("%.2f", (o + ow) / (g + gw)); r = ratio + 0
          target = r >= 1.0 ? "ok (>= 1.0)" : "MISS (>= 1.0)"
        }
      } else if (pos(o) && pos(g)) {
        ratio = sprintf("%.2f", kind == "tput" ? g / o : o / g); r = ratio + 0
        if (kind == "tput") target = r >= 1.0 ? "ok (>= 1.0)" : "MISS (>= 1.0)"
        else target = sprintf(r <= limit + 0 ? "ok (<= %.1f)" : "MISS (<= %.1f)", limit)
      }
      printf "%s|%s|%s|%s|%s\n", label, show(o, ow), show(g, gw), ratio, target
    }'
}

# growth_row: bytes appended to our store per 4 KiB random write over the randrw row (issue 10:
# at most 16 KiB). Nothing if that row did not run on our drive.
growth_row() {
  local v
  # shellcheck disable=SC2086
  v=$(median ${COST[space,randrw:app]:-})
  [ "$v" != - ] || return 0
  awk -v v="$v" 'BEGIN {
    if (v !~ /^[0-9.]+$/) { printf "store bytes per 4 KiB rand write (randrw)|%s|-|-|-\n", v; exit }
    printf "store bytes per 4 KiB rand write (randrw)|%.1f KiB|-|-|%s\n", v / 1024, v <= 16384 ? "ok (<= 16 KiB)" : "MISS (<= 16 KiB)" }'
}

# cost_rows: "workload|fs|ops|CPU us/op|disk read KiB/op|disk write KiB/op|store KiB/write" for the
# random rows that ran (medians over runs; SQLite: per transaction).
cost_rows() {
  local wl fs what vals
  for wl in "${FS_WORKLOADS[@]}"; do
    is_random "$wl" || continue
    for fs in "${FSES[@]}"; do
      [ -n "${COST[$fs,$wl:ops]:-}" ] || continue
      vals=""
      for what in ops cpu rd wr app; do
        # shellcheck disable=SC2086
        vals="$vals $(median ${COST[$fs,$wl:$what]})"
      done
      awk -v label="${LABEL[$wl]}" -v fs="$fs" -v vals="$vals" 'BEGIN {
        split(vals, v, " ")
        kib = "%.1f"
        printf "%s|%s|%d|%.0f|" kib "|" kib "|%s\n", label, fs, v[1], v[2], v[3] / 1024, v[4] / 1024,
          fs == "space" && v[5] ~ /^[0-9.]+$/ ? sprintf(kib, v[5] / 1024) : "-" }'
    done
  done
}

mib() { [ -n "${1:-}" ] && awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }' || echo -; }

# Starts $OUT (the latest-results file) with a title, once per run: the first report section to
# write calls it with what the run measured; the sections after it append.
out_header() {
  [ "${OUT_STARTED:-0}" = 1 ] && return 0
  OUT_STARTED=1
  mkdir -p "$(dirname "$OUT")"
  { echo "# $1 — latest run"; echo
    echo "Generated by \`npm run bench\` (scripts/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC');"
    echo "method in [performance.md](performance.md)."; } > "$OUT"
}

report() {
  [ ${#FS_WORKLOADS[@]} -eq 0 ] || { report_fs; OUT_STARTED=1; }
  [ ${#SYNC_WLS[@]} -eq 0 ] || report_sync
  [ "$MEM_WL" = 0 ] || report_memory
  [ "$BIG_WL" = 0 ] || report_bigdir
  [ "$SCALE_WL" = 0 ] || report_scale
}

# Big folders (issue 11 points 3-4): one file system mounted at a time; create, remount cold, stat.
run_bigdir() {
  [ "$BIG_WL" = 1 ] || return 0
  local fs files=${BENCH_BIGDIR_FILES:-100000}
  for fs in "${FSES[@]}"; do
    rm -f "$WORK/bigdir-$fs.json"
    "start_$fs"
    log "bigdir: $fs mounted at ${MNT[$fs]} (pid ${PID[$fs]}); creating $files files in one folder"
    node scripts/bench/bigdir.mjs create "${MNT[$fs]}" --files "$files" --pid "${PID[$fs]}" --json "$WORK/bigdir-$fs.json" >&2 || { log "bigdir: $fs create failed"; FAILED=1; }
    stop_fs "$fs"
    drop_caches
    "start_$fs"
    node scripts/bench/bigdir.mjs stat "${MNT[$fs]}" --files "$files" --json "$WORK/bigdir-$fs.json" >&2 || { log "bigdir: $fs stat failed"; FAILED=1; }
    stop_fs "$fs"
    drop_caches
    "start_$fs"
    node scripts/bench/bigdir.mjs list "${MNT[$fs]}" --files "$files" --json "$WORK/bigdir-$fs.json" >&2 || { log "bigdir: $fs list failed"; FAILED=1; }
    rm -rf "${MNT[$fs]}/bigdir"
    stop_fs "$fs"
  done
}

report_bigdir() {
  local rows
  rows=$(node -e '
    const [ours, theirs] = process.argv.slice(1).map(f => { try { return JSON.parse(require("fs").readFileSync(f, "utf8")) } catch { return {} } })
    const fmt = v => v == null ? "-" : String(v)
    const ratio = (a, b) => a == null || b == null || b === 0 ? "-" : (a / b).toFixed(2)
    const marks = Object.keys(ours.create?.perFileUs ?? {}).map(Number).sort((a, b) => a - b)
    for (const m of marks) {
      const a = ours.create.perFileUs[m], b = theirs.create?.perFileUs?.[m]
      console.log(`create: us/file, files ${m - 999}..${m}|${fmt(a)}|${fmt(b)}|${ratio(a, b)}|${m === marks[0] ? "-" : "<= " + ours.create.perFileUs[marks[0]] + " (first 1,000)"}`)
    }
    for (const r of ours.create?.ranges ?? []) {
      const o = (theirs.create?.ranges ?? []).find(x => x.files === r.files) ?? {}
      console.log(`create: daemon CPU us/file, files ${r.files}|${fmt(r.daemonCpuUs)}|${fmt(o.daemonCpuUs)}|${ratio(r.daemonCpuUs, o.daemonCpuUs)}|-`)
      console.log(`create: caller system CPU us/file, files ${r.files}|${fmt(r.callerSystemUs)}|${fmt(o.callerSystemUs)}|${ratio(r.callerSystemUs, o.callerSystemUs)}|-`)
    }
    console.log(`stat cold, first (ms)|${fmt(ours.stat?.firstMs)}|${fmt(theirs.stat?.firstMs)}|${ratio(ours.stat?.firstMs, theirs.stat?.firstMs)}|< 5`)
    console.log(`stat cold, median of 20 (ms)|${fmt(ours.stat?.medianMs)}|${fmt(theirs.stat?.medianMs)}|${ratio(ours.stat?.medianMs, theirs.stat?.medianMs)}|< 5`)
    console.log(`list cold (opendir), first name (ms)|${fmt(ours.list?.firstMs)}|${fmt(theirs.list?.firstMs)}|${ratio(ours.list?.firstMs, theirs.list?.firstMs)}|-`)
    console.log(`list cold (opendir), all names (ms)|${fmt(ours.list?.totalMs)}|${fmt(theirs.list?.totalMs)}|${ratio(ours.list?.totalMs, theirs.list?.totalMs)}|-`)
  ' "$WORK/bigdir-space.json" "$WORK/bigdir-gocryptfs.json") || { log "bigdir report failed"; FAILED=1; return; }
  echo
  { echo "bigdir|ours|gocryptfs|ours/gocryptfs|target"; echo "$rows"; } | column -t -s '|'
  out_header "Space vs gocryptfs (big folder)"
  {
    echo
    echo "## Big folder: ${BENCH_BIGDIR_FILES:-100000} files created in one folder through the mount, then stat and list cold"
    echo
    echo "| step | ours | gocryptfs | ours/gocryptfs | target |"
    echo "|---|---:|---:|---:|---|"
    echo "$rows" | awk -F'|' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }'
    echo
    echo "- Load before: ${LOAD_START:-?}; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  } >> "$OUT"
}

# Memory (issue 11 point 2): one file system mounted at a time, sampled by scripts/bench/memory.mjs.
run_memory() {
  [ "$MEM_WL" = 1 ] || return 0
  local fs
  for fs in "${FSES[@]}"; do
    "start_$fs"
    log "memory: $fs mounted at ${MNT[$fs]} (pid ${PID[$fs]})"
    node scripts/bench/memory.mjs "${PID[$fs]}" "${MNT[$fs]}" --size-mib "${BENCH_MEMORY_MB:-4096}" \
      --files "${BENCH_MEMORY_FILES:-35000}" --idle-s "${BENCH_MEMORY_IDLE_S:-30}" --cpu-s "${BENCH_MEMORY_CPU_S:-60}" \
      --work "$WORK" --label "$fs" --json "$WORK/memory-$fs.json" >&2 || { log "memory: $fs failed"; FAILED=1; }
    stop_fs "$fs"
  done
  rm -rf "$WORK"/memory-src-*.bin "$WORK"/memory-tree-*
}

# Scale (issue 11 point 4): our daemon only, one mount at a time (scripts/bench/scale.mjs).
run_scale() {
  [ "$SCALE_WL" = 1 ] || return 0
  log "scale: stores ${BENCH_SCALE_SIZES:-0,20000,200000,2000000} blocks (cached under /var/tmp)"
  node scripts/bench/scale.mjs --sizes "${BENCH_SCALE_SIZES:-0,20000,200000,2000000}" --read-files "${BENCH_SCALE_READ:-250}" \
    --json "$WORK/scale.json" > "$WORK/scale.md" || { log "scale failed"; FAILED=1; }
}

report_scale() {
  [ -s "$WORK/scale.md" ] || return 0
  echo; cat "$WORK/scale.md"
  grep -q MISS "$WORK/scale.md" && FAILED=1
  out_header "Space (scale)"
  { echo; echo "## Scale: cold mount and RSS against the store's size (scripts/bench/scale.mjs)"; echo; cat "$WORK/scale.md"; } >> "$OUT"
}

report_memory() {
  local rows
  rows=$(node scripts/bench/memory-report.mjs "$WORK/memory-space.json" "$WORK/memory-gocryptfs.json") || { log "memory-report failed"; FAILED=1; return; }
  grep -q MISS <<< "$rows" && FAILED=1
  echo
  { echo "memory|ours|gocryptfs|ours/gocryptfs|target"; echo "$rows"; } | column -t -s '|'
  out_header "Space vs gocryptfs (memory)"
  {
    echo
    echo "## Memory: daemon RSS (VmRSS sampled every 200 ms) and idle CPU"
    echo
    echo "| step | ours | gocryptfs | ours/gocryptfs | target |"
    echo "|---|---:|---:|---:|---|"
    echo "$rows" | awk -F'|' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }'
    echo
    echo "- Load before: ${LOAD_START:-?}; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  } >> "$OUT"
}

report_fs() {
  local rows wl costs
  rows=$(for wl in "${FS_WORKLOADS[@]}"; do row "$wl"; done; growth_row)
  costs=$(cost_rows)
  echo
  { echo "workload|ours|gocryptfs|ours/gocryptfs|target"; echo "$rows"; } | column -t -s '|'
  if [ -n "$costs" ]; then
    echo
    { echo "per op|fs|ops|CPU us/op|disk read KiB/op|disk write KiB/op|store KiB/write"; echo "$costs"; } | column -t -s '|'
  fi
  echo
  echo "peak RSS (VmHWM): ours $(mib "${RSS[space]:-}"), gocryptfs $(mib "${RSS[gocryptfs]:-}")"

  mkdir -p "$(dirname "$OUT")"
  {
    echo "# Space vs gocryptfs — latest run"
    echo
    echo "Generated by \`npm run bench\` (scripts/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC');"
    echo "method in [performance.md](performance.md)."
    echo
    echo "| workload | ours | gocryptfs | ours/gocryptfs | target |"
    echo "|---|---:|---:|---:|---|"
    echo "$rows" | awk -F'|' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }'
    echo
    echo "Throughput rows: MB/s (10^6 bytes/s), ratio of throughput. Time rows: seconds, ratio of time."
    echo "fio rows: MiB/s read / written (fio's bw), ratio of read+write."
    if [ -n "$costs" ]; then
      echo
      echo "Cost per fio op (SQLite: per transaction), daemon process, all threads, medians:"
      echo
      echo "| workload | fs | ops | daemon CPU us/op | disk read KiB/op | disk write KiB/op | store growth KiB/write |"
      echo "|---|---|---:|---:|---:|---:|---:|"
      echo "$costs" | awk -F'|' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }'
    fi
    echo
    echo "- Peak RSS (VmHWM) of our mount daemon: $(mib "${RSS[space]:-}") (gocryptfs: $(mib "${RSS[gocryptfs]:-}"))"
    if [ -f "$SRC_MD5" ]; then
      echo "- Sizes: ${SIZE_MB} MiB sequential file (random bytes), ${NFILES} files of 1-8 KiB" \
           "($(wc -l < "$SRC_MD5") files, $(du -sm "$SRC_TAR" | cut -f1) MiB tar), ${RUNS} run(s), median shown"
    else
      echo "- Sizes: ${SIZE_MB} MiB sequential file (random bytes), ${RUNS} run(s), median shown"
    fi
    echo "- Random I/O: fio ${FIO_JOBS} jobs x ${FIO_MB} MiB file, psync, ${FIO_RUNTIME} s per row;" \
         "SQLite ${SQL_ROWS} rows, ${SQL_TXNS} transactions x 10 updates ($SQL_TOUCHED distinct rows)"
    echo "- Load before the first mount: ${LOAD_START:-?}; after the last: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
         "kernel $(uname -r), disk $(df --output=source "$WORK" | tail -1) ($(df --output=fstype "$WORK" | tail -1))"
    echo "- Versions: $(gocryptfs -version 2>/dev/null | cut -d';' -f1), node $(node -v)," \
         "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$ROOT" --no-optional-locks status --porcelain 2>/dev/null | grep -q . && echo ' (dirty tree)')${STALE:-}"
    if [ "$RUNS" -gt 1 ]; then
      echo "- Raw seconds (fio rows: read MiB/s) per run:"
      for wl in "${FS_WORKLOADS[@]}"; do
        echo "  - ${LABEL[$wl]}: ours ${TIMES[space,$wl]:--}; gocryptfs ${TIMES[gocryptfs,$wl]:--}" \
             "${TIMES[space,$wl:w]:+(write MiB/s: ours ${TIMES[space,$wl:w]}; gocryptfs ${TIMES[gocryptfs,$wl:w]:--})}"
      done
    fi
  } > "$OUT"
  echo "table written to $OUT"
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
for v in "$SIZE_MB" "$NFILES" "$RUNS" "$FIO_MB" "$FIO_RUNTIME" "$FIO_JOBS" "$SQL_ROWS" "$SQL_TXNS"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_MB, BENCH_FILES, BENCH_RUNS, BENCH_FIO_* and BENCH_SQLITE_* must be positive integers"
done
for wl in "${WORKLOADS[@]}"; do
  case ${KIND[$wl]},$wl in
    fio,*) command -v fio > /dev/null || die "fio not installed (run scripts/setup.sh)" ;;
    *,sqlite) command -v sqlite3 > /dev/null || die "sqlite3 not installed (run scripts/setup.sh)" ;;
  esac
done
if [ ${#SYNC_WLS[@]} -gt 0 ]; then
  command -v syncthing > /dev/null || die "syncthing not installed (Debian package syncthing) for the sync_ rows"
fi
CHECK_FSES=("${FSES[@]}") # the sync_ rows run our CLI from dist/ whatever BENCH_FS says
[ ${#SYNC_WLS[@]} -eq 0 ] || [[ " ${FSES[*]} " == *" space "* ]] || CHECK_FSES+=(space)
[ ${#FS_WORKLOADS[@]} -gt 0 ] || CHECK_FSES=(space)
for fs in "${CHECK_FSES[@]}"; do
  case $fs in
    gocryptfs) command -v gocryptfs > /dev/null || die "gocryptfs not installed (run scripts/setup.sh)" ;;
    space)
      if [ -n "${BENCH_SPACE_CMD:-}" ]; then :
      elif [ ! -f dist/src/cli/main.js ]; then
        log "building (no dist/src/cli/main.js)"
        npm run -s build >&2 || die "build failed"
      elif [ -n "$(find src -newer dist/src/cli/main.js -name '*.ts' -print -quit)" ]; then
        STALE=" (dist/ older than src/)"
        log "warning: dist/ is older than src/; benchmarking the existing build (npm run build refreshes it)"
      fi ;;
    *) die "unknown file system '$fs' in BENCH_FS (known: gocryptfs space)" ;;
  esac
done

make_work_dir
log "work dir $WORK; generating the inputs of: ${WORKLOADS[*]}"
make_sources
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average $LOAD_START"
# One file system mounted at a time, so neither daemon's background work (write-back, commits,
# GC) runs during the other's steps; the order alternates between runs.
order=("${FSES[@]}")
[ ${#FS_WORKLOADS[@]} -gt 0 ] || RUNS_FS=0
for run in $(seq "${RUNS_FS:-$RUNS}"); do
  [ "$RUNS" -eq 1 ] || log "run $run of $RUNS: ${order[*]}"
  for fs in "${order[@]}"; do
    "start_$fs"
    log "$fs mounted at ${MNT[$fs]} (pid ${PID[$fs]})"
    for wl in "${FS_WORKLOADS[@]}"; do run_step "$fs" "$wl"; done
    rm -f "${MNT[$fs]}/big" "${MNT[$fs]}"/fio.*.0 "${MNT[$fs]}"/bench.db* # the next run starts from an empty mount
    stop_fs "$fs"
    if [ "${RC[$fs]}" != 0 ]; then log "$fs: daemon did not exit cleanly (status ${RC[$fs]})"; FAILED=1; fi
  done
  order=("${order[@]:1}" "${order[0]}")
done
run_sync
run_memory
run_bigdir
run_scale
report
exit "$FAILED"
