// Reused buffers for the replication paths' batches (a fetched or uploaded CAR, a run of blocks
// read from a pack): each fresh multi-MiB Buffer is memory V8 counts as external, and every
// ~20 MiB of it started a full garbage collection (the hub ran ~150 per GiB replicated, B ~100),
// besides the kernel's page faults and zeroing of fresh pages. A lease goes back to the pool
// once every holder has released it: the creator (done()) and each holder it handed a view to
// (hold()). A holder that never releases only costs the reuse: the buffer is then freed by GC.
export class BufferPool {
  private readonly free: Buffer[] = []
  /** Pooled buffers made and not let go of: free, or leased (a lease never released counts until GC frees it). */
  private made = 0

  /**
   * `size`: the pooled buffers' size (bigger requests get a buffer of their own); `keep`: free
   * ones kept at most; `aligned`: the pooled buffers start on a page (O_DIRECT reads into them).
   */
  constructor (readonly size: number, private readonly keep: number, readonly aligned = false) { pools.add(new WeakRef(this)) }

  private readonly self = new WeakRef(this)

  /** Lets go of the free buffers (the next leases allocate again). */
  drop (): void {
    for (const w of this.free) uncounted.unregister(w.buffer)
    this.made -= this.free.length
    this.free.length = 0
  }

  /** A buffer of `n` bytes, pooled when n <= size. */
  lease (n: number): Lease {
    if (n > this.size) return new Lease(Buffer.allocUnsafe(n), null)
    let whole = this.free.pop()
    if (whole === undefined) {
      whole = this.aligned ? pageAligned(this.size) : Buffer.allocUnsafeSlow(this.size)
      this.made++
      // A lease never released is counted until its memory is collected, not for good.
      uncounted.register(whole.buffer, this.self, whole.buffer)
    }
    const w = whole
    return new Lease(w.subarray(0, n), () => {
      if (this.free.length < this.keep) this.free.push(w)
      else { uncounted.unregister(w.buffer); this.made-- }
    })
  }

  /** A pooled buffer of a lease never released was collected (the registry's callback). */
  onCollected (): void { this.made-- }

  /** Bytes of the pooled buffers this pool holds, free or leased. */
  get bytes (): number { return this.made * this.size }

  /** Free buffers held (for tests and status). */
  get idle (): number { return this.free.length }
}

/** `n` bytes starting on a page: WebAssembly memory is page-aligned by construction (as store/direct-append.ts's). */
function pageAligned (n: number): Buffer {
  return Buffer.from(new WebAssembly.Memory({ initial: Math.ceil(n / 65536) }).buffer, 0, n)
}

const pools = new Set<WeakRef<BufferPool>>()
/** Pooled buffers' memory, until it is let go of by the pool or collected while still leased. */
const uncounted = new FinalizationRegistry<WeakRef<BufferPool>>(r => { r.deref()?.onCollected() })

/**
 * Every pool lets go of its free buffers: what an idle process does before it collects and
 * trims (src/memory.ts), so a burst of replication does not stay resident as pooled buffers.
 */
export function dropPooledBuffers (): void {
  for (const r of pools) {
    const p = r.deref()
    if (p == null) pools.delete(r)
    else p.drop()
  }
}

/**
 * Bytes every pool holds, free or leased: memory that no garbage collection can give back while
 * it is in use, which src/memory.ts leaves out of the RSS it weighs V8's heap against.
 */
export function pooledBytes (): number {
  let n = 0
  for (const r of pools) n += r.deref()?.bytes ?? 0
  return n
}

export class Lease {
  private holders = 1
  private finished = false

  constructor (readonly buf: Buffer, private readonly back: (() => void) | null) {}

  /** One more holder of (views of) buf; the function it gets releases it, once. */
  hold (): () => void {
    this.holders++
    let released = false
    return () => { if (!released) { released = true; this.release() } }
  }

  /** The creator is done with buf (its holders may still read their views). */
  done (): void { if (!this.finished) { this.finished = true; this.release() } }

  private release (): void {
    if (--this.holders === 0) this.back?.()
  }
}
