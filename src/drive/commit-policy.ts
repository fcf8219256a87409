// When a mounted drive commits: about once a second while something changed, so writes without
// fsync become durable within about a second (up to MAX_STRETCH seconds while commits are heavy,
// see below), like a journaling file system. With quick commits
// on (a hub is configured: a commit is what the other devices see), also QUIET_MS after changes
// pause, so a small file saved reaches them in a fraction of the interval; a steady stream of
// writes still commits once per interval. Commits whose sealing holds the event loop long (a
// folder of 100,000 names taking creates: each one lands in a leaf of its own) come less often,
// so that sealing stays under BUSY_SHARE of the time, and at least every MAX_STRETCH intervals:
// the longer the interval, the more of a commit's changes share a leaf. fsync still commits at
// once. Failures are logged once per kind, not once per second.
import v8 from 'node:v8'

export interface Committable {
  readonly dirty: boolean
  commit: () => Promise<unknown>
  /** How long the last commit held the event loop sealing (ms); absent: commits every interval. */
  readonly busyMs?: number
}

/** Quick commits: how long changes must pause before a commit (ms). */
export const QUIET_MS = 100
/** The share of the time the interval's commits may spend sealing before they come less often. */
export const BUSY_SHARE = 0.1
/** Commits of a changed tree come at least every this many intervals. */
export const MAX_STRETCH = 5

export class CommitPolicy {
  private timer: NodeJS.Timeout | null = null
  private quiet: NodeJS.Timeout | null = null
  private quick = false
  private memTimer: NodeJS.Timeout | null = null
  private lastFailure = ''
  private noSpaceLogged = false
  /** When the interval last started a commit (performance.now()). */
  private lastStart = -Infinity

  constructor (private readonly target: Committable, private readonly log: (line: string) => void, private readonly intervalMs = 1000) {}

  start (): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs)
    if (process.env.SPACE_DEBUG_MEMORY === '1') {
      this.memTimer = setInterval(() => {
        const m = process.memoryUsage()
        const sp = Object.fromEntries(v8.getHeapSpaceStatistics().map(s => [s.space_name, s.physical_space_size >> 20]))
        this.log(`memory: rss ${m.rss >> 20} heap ${m.heapUsed >> 20}/${m.heapTotal >> 20} (new ${sp.new_space} old ${sp.old_space} lo ${sp.large_object_space}) external ${m.external >> 20} arrayBuffers ${m.arrayBuffers >> 20} MiB`)
      }, 2000)
    }
  }

  /** Quick commits on or off (see the top of this file). */
  setQuick (on: boolean): void {
    this.quick = on
    if (!on && this.quiet != null) { clearTimeout(this.quiet); this.quiet = null }
  }

  /** Something changed in the tree: with quick commits on, (re)arms the quiet timer. */
  changed (): void {
    if (!this.quick || this.timer == null) return
    if (this.quiet != null) { this.quiet.refresh(); return }
    this.quiet = setTimeout(() => { this.quiet = null; this.commitIfDirty() }, QUIET_MS)
  }

  /** The interval: a commit, unless the last one's sealing would take more than BUSY_SHARE of the time since. */
  private tick (): void {
    const wait = Math.min(this.intervalMs * MAX_STRETCH, (this.target.busyMs ?? 0) / BUSY_SHARE)
    if (performance.now() - this.lastStart < wait - this.intervalMs / 2) return
    this.commitIfDirty()
  }

  private commitIfDirty (): void {
    if (!this.target.dirty) return
    this.lastStart = performance.now()
    this.target.commit().then(() => {
      this.noSpaceLogged = false
      if (this.lastFailure !== '') this.log('commits succeed again')
      this.lastFailure = ''
    }, err => {
      const msg = (err as Error).message
      if (msg !== this.lastFailure) this.log(`commit failed: ${msg}`)
      this.lastFailure = msg
    })
  }

  /** A write refused for a full disk: one log line until a commit succeeds again. */
  noSpace (line: string): void {
    if (!this.noSpaceLogged) this.log(line)
    this.noSpaceLogged = true
  }

  stop (): void {
    if (this.timer != null) clearInterval(this.timer)
    if (this.memTimer != null) clearInterval(this.memTimer)
    if (this.quiet != null) clearTimeout(this.quiet)
    this.timer = this.memTimer = this.quiet = null
  }
}
