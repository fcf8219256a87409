// When a mounted drive commits: about once a second while something changed, so writes without
// fsync become durable within about a second, like a journaling file system. Failures are
// logged once per kind, not once per second.
export interface Committable {
  readonly dirty: boolean
  commit: () => Promise<unknown>
}

export class CommitPolicy {
  private timer: NodeJS.Timeout | null = null
  private memTimer: NodeJS.Timeout | null = null
  private lastFailure = ''
  private noSpaceLogged = false

  constructor (private readonly target: Committable, private readonly log: (line: string) => void, private readonly intervalMs = 1000) {}

  start (): void {
    this.timer = setInterval(() => {
      if (!this.target.dirty) return
      this.target.commit().then(() => {
        this.noSpaceLogged = false
        if (this.lastFailure !== '') this.log('commits succeed again')
        this.lastFailure = ''
      }, err => {
        const msg = (err as Error).message
        if (msg !== this.lastFailure) this.log(`commit failed: ${msg}`)
        this.lastFailure = msg
      })
    }, this.intervalMs)
    if (process.env.SPACE_DEBUG_MEMORY === '1') {
      this.memTimer = setInterval(() => {
        const m = process.memoryUsage()
        this.log(`memory: rss ${m.rss >> 20} heap ${m.heapUsed >> 20} external ${m.external >> 20} arrayBuffers ${m.arrayBuffers >> 20} MiB`)
      }, 2000)
    }
  }

  /** A write refused for a full disk: one log line until a commit succeeds again. */
  noSpace (line: string): void {
    if (!this.noSpaceLogged) this.log(line)
    this.noSpaceLogged = true
  }

  stop (): void {
    if (this.timer != null) clearInterval(this.timer)
    if (this.memTimer != null) clearInterval(this.memTimer)
    this.timer = this.memTimer = null
  }
}
