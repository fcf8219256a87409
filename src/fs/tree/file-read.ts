// Reading file content. Blocks held in memory (dirty, sealing) are copied at once; whole blocks
// on disk are opened by the native run reader straight from their pack into the reply buffer,
// blocks lying back to back in one pack as one run (readRun); the rest go through the
// decrypted-block cache (readBlock). Every job settles before read() answers.
import type { CID } from 'multiformats/cid'
import { copyBytes, openRun, SEAL_OVERHEAD, type FileRange } from '../../crypto/index.js'
import { BLOCK_SIZE } from './format.js'
import type { TreeError } from './errors.js'
import type { FileNode } from './nodes.js'
import { blockPosition } from './codec.js'
import type { Loader } from './load.js'
import { blockSpan, blockStart, blockEnd, lastBlock } from './block-range.js'
import type { BlockStore, BlockCache } from './ports.js'

/** One block of a run read straight from its pack (readRun). */
interface RunPart { idx: number, cid: CID, at: FileRange, dst: number, span: number }
/** Bytes between two records that still count as back to back (a record's header). */
const RUN_GAP = 256
/** Blocks per run at most (the addon's scratch buffer per pool thread grows to the largest run). */
const RUN_BLOCKS = 16

export interface FileReadDeps {
  store: Pick<BlockStore, 'locate' | 'refuseDirectReads'>
  cache: BlockCache
  loader: Pick<Loader, 'blocks' | 'openSealed' | 'integrityError'>
}

export class FileReader {
  private readonly inflight = new Map<string, Promise<Buffer>>()

  constructor (private readonly deps: FileReadDeps) {}

  /** Plaintext of one block (BLOCK_SIZE or shorter), or null for a hole. */
  async readBlock (f: FileNode, idx: number): Promise<Buffer | null> {
    const d = f.dirty.get(idx) ?? f.sealing.get(idx)
    if (d != null) return d
    const cid = (await this.deps.loader.blocks(f)).get(idx)
    if (cid == null) return null
    const key = cid.toString()
    const hit = this.deps.cache.get(key)
    if (hit != null) return hit
    let p = this.inflight.get(key)
    if (p == null) {
      p = this.deps.loader.openSealed(f.key, blockPosition(f, idx), cid, `file ${f.label()} block ${idx}`)
        .then(plain => { this.deps.cache.set(key, plain); return plain })
        .finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return await p
  }

  async read (f: FileNode, out: Buffer, len: number, pos: number): Promise<number> {
    if (pos >= f.size) return 0
    if (f.blocks == null) await this.deps.loader.blocks(f) // so that streaming reads find their blocks' places
    const end = Math.min(f.size, pos + len)
    const { first, last } = blockSpan(pos, end)
    // Every block settles before we answer: `out` is the binding's reply buffer, freed once we
    // answer, so a block still copying after an early failure would write into freed memory.
    const pending: Array<Promise<void>> = []
    try {
      this.startReads(f, out.subarray(0, len), pos, end, first, last, pending)
      // The kernel reads ahead in large requests by itself; small sequential requests get help.
      if (len < 256 * 1024 && f.lastReadEnd === pos && f.dirty.size === 0) this.readAhead(f, last + 1, 4)
      f.lastReadEnd = end
    } finally {
      const results = await Promise.allSettled(pending)
      for (const r of results) if (r.status === 'rejected') throw r.reason
    }
    return end - pos
  }

  /** Starts the reads of blocks first..last of out[0, end - pos), pushing one promise per job. */
  private startReads (f: FileNode, out: Buffer, pos: number, end: number, first: number, last: number, pending: Array<Promise<void>>): void {
    const copy = (i: number, b: Buffer | null): void => {
      const start = blockStart(i)
      const from = Math.max(pos, start)
      const to = Math.min(end, blockEnd(i))
      const dst = from - pos
      const avail = b == null ? 0 : Math.max(0, Math.min(to - start, b.length) - (from - start))
      if (avail > 0) copyBytes(out, dst, b!, from - start, avail) // b may be a shared slot
      if (avail < to - from) out.fill(0, dst + avail, dst + (to - from))
    }
    let run: RunPart[] = []
    const endRun = (): void => { if (run.length > 0) pending.push(this.readRun(f, run, out)); run = [] }
    // Blocks held in memory are copied before any await: their buffers are recycled once sealed.
    for (let i = first; i <= last; i++) {
      const mem = f.dirty.get(i) ?? f.sealing.get(i)
      if (mem != null) { copy(i, mem); continue }
      // A read that takes a whole block (streaming) skips the cache: no allocation per block for
      // the GC to chase, and nothing evicted for it. It is opened from the pack straight into
      // `out` where the plaintext (padding included) fits there, blocks lying back to back in one
      // pack together. Blocks not on disk yet, and reads without the addon, use the cache.
      const cid = f.blocks?.get(i)
      const start = blockStart(i)
      const whole = pos <= start && (end >= blockEnd(i) || end === f.size)
      const uncached = cid != null && this.deps.cache.get(cid.toString()) == null
      const at = whole && uncached && openRun != null ? this.deps.store.locate?.(cid) : null
      if (at != null && at.length - SEAL_OVERHEAD <= out.length - (start - pos)) {
        const prev = run.at(-1)?.at
        const adjacent = prev != null && prev.fd === at.fd && at.position >= prev.position + prev.length &&
          at.position - (prev.position + prev.length) <= RUN_GAP && run.length < RUN_BLOCKS
        if (!adjacent) endRun()
        run.push({ idx: i, cid: cid!, at, dst: start - pos, span: Math.min(end, blockEnd(i)) - start })
        continue
      }
      endRun()
      pending.push(this.readBlock(f, i).then(b => copy(i, b)))
    }
    endRun()
  }

  /**
   * Opens blocks lying back to back in one pack straight into `out` (one read, one pool job),
   * each at its `dst`, zero-filling past a short plaintext up to its `span`.
   */
  private async readRun (f: FileNode, run: RunPart[], out: Buffer): Promise<void> {
    const start = run[0].at.position
    const last = run[run.length - 1].at
    const blocks = run.map(b => ({
      offset: b.at.position - start,
      length: b.at.length,
      pos: blockPosition(f, b.idx),
      at: b.dst,
      room: Math.min(BLOCK_SIZE, out.length - b.dst), // `out` ends where the answer ends
      hash: b.cid.multihash // the addon checks the bytes against it before opening them
    }))
    let results: Array<number | Error>
    try {
      results = await openRun!({ fd: last.fd, position: start, length: last.position + last.length - start, direct: last.direct }, f.key, blocks, out)
    } catch (err) {
      // A file system that opened the pack with O_DIRECT but refuses the aligned read: once for
      // all, reads go through the page cache.
      const store = this.deps.store
      if (last.direct === true && (err as NodeJS.ErrnoException).code === 'EINVAL' && store.refuseDirectReads != null) {
        store.refuseDirectReads()
        const again = run.map(b => ({ ...b, at: store.locate?.(b.cid) ?? b.at }))
        if (again.every(b => b.at.direct !== true)) return await this.readRun(f, again, out)
      }
      throw this.deps.loader.integrityError(`file ${f.label()} block ${run[0].idx}`, run[0].cid, err, 'read')
    }
    let failed: TreeError | null = null
    run.forEach((b, i) => {
      const n = results[i]
      if (n instanceof Error) failed ??= this.deps.loader.integrityError(`file ${f.label()} block ${b.idx}`, b.cid, n, 'open')
      else if (n < b.span) out.fill(0, b.dst + n, b.dst + b.span)
    })
    if (failed != null) throw failed
  }

  /** Warms the cache with the `count` blocks from `from` on, within the file. */
  private readAhead (f: FileNode, from: number, count: number): void {
    const lastIdx = lastBlock(f.size)
    for (let i = from; i < from + count && i <= lastIdx; i++) this.readBlock(f, i).catch(() => {})
  }
}
