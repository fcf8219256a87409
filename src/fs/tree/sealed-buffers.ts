// Reused memory for sealed patches on their way to the store: a fresh Buffer per patch (4-128 KiB,
// external memory to V8) is what made the garbage collector 28-42% of the JS thread's busy time
// under random writes (docs/performance.md, "Random I/O"). One free list per length (a patch of n
// segments always seals to the same length, a whole block nearly always), each buffer handed back by the
// store once it is written (putWithCid's `release`). A buffer that is never handed back only costs
// the reuse.
/** Free bytes kept at most, over all sizes. */
const KEEP_BYTES = 8 * 1024 * 1024

export class SealedBuffers {
  private readonly free = new Map<number, Buffer[]>()
  private freeBytes = 0

  constructor (private readonly keepBytes = KEEP_BYTES) {}

  /** A buffer of exactly `length` bytes, and the function that hands it back (once). */
  take (length: number): { buf: Buffer, release: () => void } {
    const list = this.free.get(length)
    let buf = list?.pop()
    if (buf != null) this.freeBytes -= buf.length
    else buf = Buffer.allocUnsafeSlow(length)
    const b = buf
    let done = false
    return { buf: b, release: () => { if (!done) { done = true; this.give(b) } } }
  }

  private give (buf: Buffer): void {
    if (this.freeBytes + buf.length > this.keepBytes) return
    let list = this.free.get(buf.length)
    if (list == null) { list = []; this.free.set(buf.length, list) }
    list.push(buf)
    this.freeBytes += buf.length
  }

  /** Lets go of every free buffer (the process went quiet). */
  drop (): void {
    this.free.clear()
    this.freeBytes = 0
  }

  /** Free bytes held (for tests). */
  get idleBytes (): number { return this.freeBytes }
}
