// Giving memory back (issue 11 point 2: an idle daemon's RSS does not keep what a burst of work
// used). When the process goes quiet after work, with everything committed, drops the drive's
// caches (decrypted blocks, the sealing slots' pages, block maps and, with nothing open, the
// loaded tree: Drive.releaseMemory) and the CID strings (store/cid.ts), runs V8's last-resort collection and has
// glibc hand its arenas' free memory back to the kernel; while it works, a major collection and
// a malloc_trim each time RSS grew by TRIM_STEP. Also tunes glibc at start (tuneMalloc).
// Without it, a 4 GiB copy left 201-222 MiB resident when idle (and 319 before the CID strings
// were made flat), most of it V8 heap pages kept after collections and free chunks glibc kept.
import v8 from 'node:v8'
import vm from 'node:vm'
import { loadAddon } from './crypto/addon.js'
import { forgetCidStrings } from './store/cid.js'
import { dropPooledBuffers, pooledBytes } from './store/buffer-pool.js'

/** malloc_trim(0) and mallopt (native/src/space_sys.c); null where the addon is not built. */
const mallocTrim = loadAddon<() => boolean>('space_sys', 'mallocTrim')
const mallocTune = loadAddon<(arenas: number, mmapMin: number) => boolean>('space_sys', 'mallocTune')

/** How often activity is looked at (ms). One look costs a few microseconds. */
export const CHECK_MS = 2000
/** CPU time in one CHECK_MS above which the process counts as working (ms: 0.5% of a core). */
const BUSY_CPU_MS = 10
/** CPU time of work (ms) since the last release below which a quiet period releases nothing. */
const WORK_MS = 200
/** While working, RSS growth (bytes) since the last trim that makes glibc give memory back. */
const TRIM_STEP = 24 * 1024 * 1024
/**
 * No trim while working below this RSS: each one is a full collection, and trimming at every
 * 24 MiB from the start cost the 1 GiB streaming rows a quarter of their speed (bench, load ~3:
 * write 287-310 against 422 MB/s, cold read 627-646 against 829), while only the 256 MiB cap
 * needs them.
 */
const TRIM_FLOOR = 160 * 1024 * 1024

type GcFn = (opts?: { type: 'major', execution: 'sync', flavor?: 'last-resort' }) => void
let gcFn: GcFn | null | undefined
/**
 * V8's "last resort" collection: full collections until nothing more is freed, and the emptied
 * pages unmapped. A plain gc() leaves them pooled: in a test of 300 MiB of garbage, RSS went
 * 307 -> 297 MiB with gc(), 293 -> 55 MiB with this (Node 22). V8's gc extension, made
 * reachable at run time where Node was not started with --expose-gc.
 */
export function fullGc (lastResort = true): boolean {
  if (gcFn === undefined) {
    gcFn = (globalThis as { gc?: GcFn }).gc ?? null
    if (gcFn == null) {
      try {
        v8.setFlagsFromString('--expose-gc')
        gcFn = vm.runInNewContext('gc') as GcFn
      } catch { gcFn = null }
    }
  }
  gcFn?.(lastResort ? { type: 'major', execution: 'sync', flavor: 'last-resort' } : { type: 'major', execution: 'sync' })
  return gcFn != null
}

/** Hands glibc's free arena memory back to the kernel; false without the addon or glibc. */
export function trimMalloc (): boolean { return mallocTrim?.() ?? false }

/** After a release, when glibc is asked again: V8 frees array buffers' memory after a collection, off the main thread. */
const SETTLE_MS = 3000

/**
 * glibc tuned for a daemon whose threads (libuv pool, FUSE workers, sealing) each touch a few
 * MiB: at most 2 malloc arenas (default 8 per core: 19-28 MiB resident in 14 arenas after a
 * 4 GiB copy, 2-6 MiB with 2). A fixed 256 KiB mmap threshold as well (1 MiB I/O buffers mapped
 * and unmapped on their own) took the peak of a 1 GiB copy and cold read from 185-193 to
 * 162-187 MiB but made the cold read 10-15% slower (page faults on every buffer), so it is
 * not set. Call before the threads start; false without the addon or glibc.
 */
export function tuneMalloc (): boolean { return mallocTune?.(2, 0) ?? false }

/**
 * Under pressure (RSS above PRESSURE_RSS, MemoryTrim's look), V8's heap is kept near what is
 * live: the young generation at its first size (1 MiB semi-spaces instead of growing to 16 MiB
 * ones: new space was 30-32 MiB resident during any copy, 2 MiB with this) and the old
 * generation growing only to 1.25x what survived its last collection (else V8's own 1.1-4x).
 * Set always, the two took the 35,000-file copy's peak from 235-240 to 194 MiB, but the small
 * young generation alone cost daemon CPU in every streaming and random row (one run each, load
 * ~5, side by side: 1 GiB write 291 -> 261 MB/s, cold read 651 -> 403, 4 KiB r+w 166 -> 221
 * us of CPU per op, with fsync/32 396 -> 519), and the tight old generation a 1 GiB write ~70%
 * more CPU; so only a process near the cap pays for them. Node puts V8's flags back to the
 * command line's whenever a Worker starts, so MemoryTrim applies them again at every look.
 * SPACE_TUNE_HEAP=0 leaves V8's default (to measure against).
 */
function tuneHeap (rss: number, pressureRss = PRESSURE_RSS): boolean {
  if (process.env.SPACE_TUNE_HEAP === '0') return false
  const pressed = rss > pressureRss
  v8.setFlagsFromString(`--semi-space-growth-factor=${pressed ? 1 : 2}`)
  v8.setFlagsFromString(`--heap-growing-percent=${pressed ? 25 : 0}`)
  return pressed
}

/**
 * Bytes of V8's new space (its semi-spaces' capacity) above which a collection under pressure is
 * the last-resort kind: a growth factor of 1 only stops the young generation from growing, it
 * keeps the 16 MiB semi-spaces it grew to before the pressure came (new space 30-32 MiB resident
 * at the 4 GiB copy's peak); a last-resort collection shrinks them to 1 MiB, where the factor
 * then keeps them.
 */
const YOUNG_GROWN = 4 * 1024 * 1024

/**
 * A last-resort collection at most this often (ms): RSS going under the pressure line and back
 * lets the young generation grow again in between (4 shrinks in 20 s of fio random r+w).
 */
const SHRINK_EVERY_MS = 10_000

function youngGrown (): boolean {
  return (v8.getHeapSpaceStatistics().find(s => s.space_name === 'new_space')?.space_size ?? 0) > YOUNG_GROWN
}

/**
 * RSS less the pooled batch buffers (store/buffer-pool.ts): what the heap tuning and the trims
 * weigh. No collection can give pooled memory back, and counting it kept the hub and a
 * downloading device (108 MiB of fetch buffers) under pressure for a whole 1 GiB replication:
 * B ran 59-77 major collections per GiB against 12 without the tuning.
 */
function netRss (): number { return process.memoryUsage.rss() - pooledBytes() }

/** RSS above which tuneHeap keeps V8's heap near what is live. */
const PRESSURE_RSS = 192 * 1024 * 1024

/** What the trimmer empties when the process goes quiet (the drive, drive.ts). */
export interface Releasable {
  releaseMemory: () => void
  /** Changes not committed yet: not quiet (the old version's objects are still referenced). */
  readonly dirty?: boolean
}

export interface MemoryTrimOptions {
  checkMs?: number
  /** CPU ms within one check above which the process counts as working (default BUSY_CPU_MS per CHECK_MS). */
  busyCpuMs?: number
  /** RSS above which V8's heap is kept near what is live (tuneHeap; default 192 MiB). */
  pressureRss?: number
  /** A line per release, e.g. "memory: released after work: rss 274 -> 96 MiB". */
  log?: (line: string) => void
}

export class MemoryTrim {
  private timer: NodeJS.Timeout | null = null
  private lastCpu = 0
  private workMs = 0
  private trimmedAt = 0
  private settle: NodeJS.Timeout | null = null
  private shrunkAt = -Infinity
  /** Releases so far (quiet after work), and trims while working. */
  readonly counts = { releases: 0, trims: 0 }

  constructor (private readonly target: Releasable, private readonly opts: MemoryTrimOptions = {}) {}

  start (): void {
    if (this.timer != null) return
    this.lastCpu = cpuMs()
    this.trimmedAt = netRss()
    this.timer = setInterval(() => this.check(), this.opts.checkMs ?? CHECK_MS)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer != null) clearInterval(this.timer)
    if (this.settle != null) clearTimeout(this.settle)
    this.timer = this.settle = null
  }

  /** Releases everything now (also what a quiet period after work does). */
  release (): void {
    const before = process.memoryUsage.rss()
    this.target.releaseMemory()
    forgetCidStrings()
    dropPooledBuffers()
    fullGc()
    trimMalloc()
    this.trimmedAt = netRss()
    this.lastCpu = cpuMs() // its own CPU is not work
    this.workMs = 0
    this.counts.releases++
    this.opts.log?.(`memory: released after work: rss ${before >> 20} -> ${this.trimmedAt >> 20} MiB`)
    if (this.settle != null) clearTimeout(this.settle)
    this.settle = setTimeout(() => {
      this.settle = null
      trimMalloc()
      this.trimmedAt = netRss()
      this.lastCpu = cpuMs()
      this.workMs = 0
      this.opts.log?.(`memory: settled: rss ${this.trimmedAt >> 20} MiB`)
    }, SETTLE_MS)
    this.settle.unref()
  }

  private check (): void {
    const cpu = cpuMs()
    const used = cpu - this.lastCpu
    const busy = used > (this.opts.busyCpuMs ?? BUSY_CPU_MS * (this.opts.checkMs ?? CHECK_MS) / CHECK_MS)
    this.lastCpu = cpu
    const rss = netRss()
    const pressed = tuneHeap(rss, this.opts.pressureRss) // every look: a Worker started since put V8's flags back (a few microseconds)
    if (busy) {
      this.workMs += used
      const shrink = pressed && Date.now() - this.shrunkAt >= SHRINK_EVERY_MS && youngGrown()
      if ((rss > TRIM_FLOOR && rss > this.trimmedAt + TRIM_STEP) || shrink) {
        // Replication's free batch buffers. Not the tree's block buffers: letting its clean ones go
        // under pressure made random writes read their blocks again (fio r+w: 31 -> 45 KiB read per op).
        if (pressed) dropPooledBuffers()
        if (shrink) this.shrunkAt = Date.now()
        fullGc(shrink)
        trimMalloc()
        this.trimmedAt = netRss()
        this.lastCpu = cpuMs()
        this.counts.trims++
        this.opts.log?.(`memory: trimmed while working${shrink ? ' (young generation shrunk)' : ''}: rss ${rss >> 20} -> ${this.trimmedAt >> 20} MiB`)
      }
      return
    }
    if (this.workMs < WORK_MS || this.target.dirty === true) return
    this.release()
  }
}

function cpuMs (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
