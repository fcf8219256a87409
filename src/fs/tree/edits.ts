// What changed in the tree since a commit, as far as swapping a merged tree in needs to know
// (Tree.adopt, adopt.ts): a merge is computed against one commit, and may be swapped in over
// later changes only when they are all writes to files open for writing (which keep their nodes
// across the swap). Every call of the Tree facade that changes the tree, or hands out a node a
// caller keeps, goes through here; a clock orders them against commits.
import type { FileNode } from './nodes.js'

/** Commits whose clock is kept (an older `expect` is refused: the merge is made again). */
const KEEP_COMMITS = 64

export class Edits {
  private clock = 0
  /** The clock when the last change of names or attributes of something not written here finished. */
  private lastOther = 0
  /** Files whose content (or attributes) changed, by the clock of their last change. */
  private readonly written = new Map<FileNode, number>()
  /** Name or attribute changes, and resolutions, still running (their nodes may be of the tree before a swap). */
  private running = 0
  /** Content changes still running, by file. */
  private readonly writing = new Map<FileNode, number>()
  /**
   * A lower bound of the clock at each commit's snapshot: every change finished before it is in
   * that commit. The highest known: a commit asked for while another runs takes its snapshot
   * later than it was asked for, so writes finishing meanwhile are in it but count as after it;
   * a later call that finds nothing left to commit moves the bound past them (else, once the
   * drive is idle and clean, every merge would be refused for good).
   */
  private readonly atCommit = new Map<number, number>()

  now (): number { return this.clock }

  /** Set while a merge holds the tree still (hold): new calls of `other` wait for it. */
  private held: { until: Promise<void>, release: () => void } | null = null

  /**
   * Makes calls that change names or attributes, or resolve nodes, wait from now until the
   * returned release is called (or `maxMs` passed): calls already running finish, writes to open
   * files go on. For a merge whose swap kept being refused because such changes landed first
   * (src/sync/engine.ts): without it a device that keeps creating files never takes the other
   * devices' changes in. Releasing twice is harmless. Null when a hold is on already.
   */
  hold (maxMs: number): (() => void) | null {
    if (this.held != null) return null
    let release!: () => void
    const until = new Promise<void>(resolve => {
      const timer = setTimeout(() => { release() }, maxMs) // kept ref'd: calls wait on it
      release = () => {
        clearTimeout(timer)
        if (this.held?.until === until) this.held = null
        resolve()
      }
    })
    this.held = { until, release }
    return release
  }

  /**
   * A call that changes names or attributes, or resolves a node its caller keeps (lookup: open()
   * adds a handle to it). Counted as running until the caller's continuation has run (the next
   * turn of the event loop), so a swap never falls between a lookup and the handle made of it.
   */
  async other<T> (run: () => Promise<T>, changes = true, admitted = false): Promise<T> {
    // `admitted`: the second step of a call whose first step ran (resolve, then change): it
    // must not wait for a hold taken in between, or the swap could fall between the two and
    // the change go to a node of the tree before it.
    while (this.held != null && !admitted) await this.held.until
    this.running++
    try {
      return await run()
    } finally {
      if (changes) this.lastOther = ++this.clock
      this.release()
    }
  }

  /** Calls finished, to be counted out at the next turn; one timer for all of them. */
  private finished = 0
  private release (): void {
    if (this.finished++ > 0) return
    setImmediate(() => { this.running -= this.finished; this.finished = 0 })
  }

  /**
   * Resolves once no call of `other` runs (those running when a hold was taken have finished and
   * been counted out), or after `maxMs`. A commit asked for before then would count their
   * changes as after it, and the swap be refused although the tree was held.
   */
  async drained (maxMs: number): Promise<void> {
    const until = Date.now() + maxMs
    while ((this.running > 0 || this.finished > 0) && Date.now() < until) await new Promise(resolve => setImmediate(resolve))
  }

  /** A change of one file's content or attributes (write, truncate, chmod of the file...). */
  async content<T> (f: FileNode, run: () => Promise<T>): Promise<T> {
    this.writing.set(f, (this.writing.get(f) ?? 0) + 1)
    this.written.set(f, ++this.clock)
    try {
      return await run()
    } finally {
      this.written.set(f, ++this.clock)
      const n = this.writing.get(f)! - 1
      if (n === 0) this.writing.delete(f)
      else this.writing.set(f, n)
    }
  }

  /**
   * Forgets the files written (the tree below the root is unloaded: Tree.releaseMemory), which
   * kept every file written in the last KEEP_COMMITS commits loaded. Their last changes count as
   * changes of names: confinedTo answers the same for no writers, and refuses where it allowed
   * writers (the merge is made again).
   */
  forgetWritten (): void {
    for (const [f, c] of this.written) {
      if (this.writing.has(f)) continue
      this.lastOther = Math.max(this.lastOther, c)
      this.written.delete(f)
    }
  }

  /** Commit `seq` took its snapshot at clock `at` or later (or, asked for again at `at`, found nothing left to commit). */
  committed (seq: number, at: number): void {
    this.atCommit.set(seq, Math.max(this.atCommit.get(seq) ?? -Infinity, at))
    for (const s of this.atCommit.keys()) {
      if (this.atCommit.size <= KEEP_COMMITS) break
      this.atCommit.delete(s)
    }
    let oldest = Infinity
    for (const c of this.atCommit.values()) oldest = Math.min(oldest, c)
    for (const [f, c] of this.written) if (c <= oldest && !this.writing.has(f)) this.written.delete(f)
  }

  /**
   * Whether every change since commit `expect` (finished or running) is a change of one of
   * `writers`: then a tree merged against `expect` can be swapped in, the writers keeping their
   * nodes (once quiet()). False too when `expect` is not known (too old).
   */
  confinedTo (expect: number, writers: ReadonlySet<FileNode>): boolean {
    const since = this.atCommit.get(expect)
    if (since == null || this.lastOther > since) return false
    for (const f of this.writing.keys()) if (!writers.has(f)) return false
    for (const [f, c] of this.written) if (c > since && !writers.has(f)) return false
    return true
  }

  /** Nothing but writes to `writers` runs (the last check before a swap waits for this). */
  quiet (writers: ReadonlySet<FileNode>): boolean {
    if (this.running > 0) return false
    for (const f of this.writing.keys()) if (!writers.has(f)) return false
    return true
  }
}
