// The states of a file's content blocks and the jobs that move them: dirty -> sealing -> sealed.
//
// A block index `i` of file `f` is, from newest content to oldest:
//   dirty    f.dirty.get(i): a plaintext buffer written since the block was last sealed;
//   sealing  f.sealing.get(i): a full block whose seal job runs on the thread pool;
//   sealed   f.blocks.get(i): the CID of its sealed bytes in the store; absent everywhere: a hole.
// Invariants:
//   1. An index is never both dirty and sealing; reads take dirty ?? sealing ?? sealed.
//   2. A seal job's identity is its buffer: it lands (sealing -> sealed) only while
//      f.sealing.get(i) is still that buffer. A write into the block (back to dirty), a truncate
//      or a commit (which takes the block over and seals it inline) supersede it; its result is
//      then dropped. A failed job puts the block back to dirty.
//   3. dirtyFiles holds exactly the files in the tree (parent != null) with dirty blocks, and
//      dirtyBlocks their number: every change of a dirty map goes through markDirty/unmarkDirty,
//      and a file leaving the tree is forgotten (its dirty blocks stay for open handles but are
//      never sealed).
//   4. A dirty buffer holds the file's bytes of its block up to the file's size and zeros after;
//      it is BLOCK_SIZE long or, for a block that starts small, a power of two that grows.
//   5. A buffer goes back to freeBuffers only once its seal landed: reads copy in-memory blocks
//      before any await, so nothing else holds it. A block sealed as patches keeps its buffer
//      (`clean`, with its known segments) for the next write into it, only while the block's
//      reference is the one that seal set.
//   6. A dirty block in f.patching (made dirty by a write into a full block that was sealed, or a
//      hole, not past the fold: block-ref.ts foldsAt) is sealed as patches: one v2 object per
//      run of written segments, numbered by their place in the block, appended to the block's
//      reference (at most FEW_PATCHES patches over every segment drop the base). Its buffer holds only the `known` segments (written, or loaded because
//      a write covered part of one); reads take the others from the sealed block. Anything but
//      write() that changes a dirty block (truncate, zeroing) first completes it (completeDirty)
//      and takes it out of f.patching, so it is sealed whole. A block sealed whole drops its
//      patches.
//   7. A write into a block past the fold makes it dirty in f.patching with `fold` set: its
//      buffer starts from what a kept buffer knows, and the write loads only the segments it
//      does not cover whole (a 64 KiB write at a segment boundary loads the other half, not the
//      block); once every segment is known the block is sealed whole. A commit that finds it
//      incomplete (a load still running) seals it as patches.
import type { CID } from 'multiformats/cid'
import { seal, sealPatchInto, sealedLength, SEGMENT, V2_HEADER, type SealPosition } from '../../crypto/index.js'
import { cidFromBlake3, cidOf } from '../../store/cid.js'
import { SealedBuffers } from './sealed-buffers.js'
import { BLOCK_SIZE } from './format.js'
import type { FileNode } from './nodes.js'
import { blockPosition } from './codec.js'
import { touch } from './changes.js'
import { blockStart, bytesInBlock, bytesOfBlocks, bufferSizeFor, paddedLength } from './block-range.js'
import type { BlockStore, BlockCache, BlockSealer } from './ports.js'
import { FEW_PATCHES, SEGMENTS, foldsAt, patchedMask, patchesAfter, popcount, state, withPatch, type BlockRef } from './block-ref.js'

/** Seal jobs in flight beyond which a write waits for one to land (default; FileBlocksDeps.maxSeals). */
const MAX_SEALS = 192

export interface FileBlocksDeps {
  store: Pick<BlockStore, 'put' | 'putWithCid' | 'putFresh'>
  cache: Pick<BlockCache, 'set'>
  /** Seals full blocks off the event loop; without one they are sealed inline. */
  sealer: BlockSealer | null
  /** Block bytes [from, to) of a sealed block reference into dst (zeros for a hole). */
  readSegments: (f: FileNode, idx: number, ref: BlockRef, from: number, to: number, dst: Buffer) => Promise<void>
  /** Plaintext of one block as stored (or null for a hole): the old content a partial write keeps. */
  readBlock: (f: FileNode, idx: number) => Promise<Buffer | null>
  log: (line: string) => void
  /** Plaintext bytes of dirty blocks kept before they are sealed eagerly. */
  dirtyBudget: number
  /** Block buffers kept for reuse (default: the dirty budget's worth); drive/memory-budget.ts. */
  keptBuffers?: number
  /** Seal jobs in flight beyond which a write waits (default MAX_SEALS). */
  maxSeals?: number
}

export class FileBlocks {
  private readonly dirtyFiles = new Set<FileNode>()
  private dirtyBlocks = 0
  private readonly sealingFiles = new Set<FileNode>()
  private readonly seals = new Set<Promise<void>>()
  /**
   * Block buffers of sealed blocks, reused so writes do not churn the GC: up to the dirty
   * budget's worth, since random writes dirty a whole 128 KiB buffer per block they touch
   * (a fresh one per 4 KiB write made V8's collector 47% of the JS thread's busy time).
   */
  private readonly freeBuffers: Buffer[] = []
  private readonly maxFree: number
  private readonly maxSeals: number
  /**
   * Buffers of blocks just sealed as patches, kept with the segments they hold (all equal to the
   * sealed block's): the next write into the block starts from them and loads nothing it knows
   * (a database log's next frame shares a segment with the last one: each transaction read and
   * hashed the whole re-sealed block to load it). Oldest first; taken as free buffers when none is.
   */
  private readonly clean = new Map<FileNode, Map<number, Clean>>()
  private readonly cleanOrder = new Set<Clean>()
  /** Memory the patches are sealed into, back from the store once written. */
  private readonly sealedBuffers = new SealedBuffers()

  constructor (private readonly deps: FileBlocksDeps) {
    this.maxFree = deps.keptBuffers ?? Math.max(32, Math.floor(deps.dirtyBudget / BLOCK_SIZE))
    this.maxSeals = deps.maxSeals ?? MAX_SEALS
  }

  /** A BLOCK_SIZE buffer from the free list, else the oldest clean block, else new; zeroed when `zero`. */
  private takeBuffer (zero: boolean): Buffer {
    let b = this.freeBuffers.pop()
    if (b == null) {
      const oldest = this.cleanOrder.values().next().value
      if (oldest != null) { this.dropClean(oldest); b = oldest.buf }
    }
    if (b == null) return zero ? Buffer.alloc(BLOCK_SIZE) : Buffer.allocUnsafe(BLOCK_SIZE)
    if (zero) b.fill(0)
    return b
  }

  /** Keeps the buffer of a block just sealed as `ref`, holding segments `known` of it. */
  private keepClean (f: FileNode, idx: number, buf: Buffer, known: number, ref: BlockRef | undefined): void {
    if (buf.length !== BLOCK_SIZE || ref == null || f.parent == null) { this.recycle(buf); return }
    let m = this.clean.get(f)
    if (m == null) { m = new Map(); this.clean.set(f, m) }
    const old = m.get(idx)
    if (old != null) this.dropClean(old)
    const c: Clean = { f, idx, buf, known, ref }
    m.set(idx, c)
    this.cleanOrder.add(c)
    while (this.cleanOrder.size + this.freeBuffers.length > this.maxFree) {
      const oldest = this.cleanOrder.values().next().value!
      this.dropClean(oldest)
      this.recycle(oldest.buf)
    }
  }

  private dropClean (c: Clean): void {
    this.cleanOrder.delete(c)
    const m = this.clean.get(c.f)
    if (m?.get(c.idx) !== c) return
    m.delete(c.idx)
    if (m.size === 0) this.clean.delete(c.f)
  }

  /** The kept buffer of block `idx`, if it still holds segments of the block as it is sealed now; taken out. */
  private takeClean (f: FileNode, idx: number): Clean | null {
    const c = this.clean.get(f)?.get(idx)
    if (c == null) return null
    this.dropClean(c)
    if (c.ref === f.blocks?.get(idx)) return c
    this.recycle(c.buf)
    return null
  }

  /** Gives a buffer nothing references any more back to the free list (reads copied it before any await). */
  private recycle (buf: Buffer): void {
    if (buf.length === BLOCK_SIZE && this.freeBuffers.length + this.cleanOrder.size < this.maxFree) this.freeBuffers.push(buf)
  }

  /** Drops the free and clean buffers (the process went quiet: memory.ts). */
  releaseBuffers (): void {
    this.freeBuffers.length = 0
    this.clean.clear()
    this.cleanOrder.clear()
    this.sealedBuffers.drop()
  }

  /** Plaintext bytes of dirty blocks are over the budget: seal them now. */
  get overBudget (): boolean { return bytesOfBlocks(this.dirtyBlocks) > this.deps.dirtyBudget }

  /** Too many seal jobs in flight: a writer should wait for one. */
  get congested (): boolean { return this.seals.size > this.maxSeals }

  async waitForOneSeal (): Promise<void> { await Promise.race(this.seals) }

  get sealsInFlight (): number { return this.seals.size }

  async waitForAllSeals (): Promise<void> { await Promise.all([...this.seals]) }

  /** A file left the tree: its dirty blocks stay for open handles but are never sealed. */
  forget (f: FileNode): void {
    if (this.dirtyFiles.delete(f)) this.dirtyBlocks -= f.dirty.size
    for (const c of [...this.clean.get(f)?.values() ?? []]) { this.dropClean(c); this.recycle(c.buf) }
  }

  markDirty (f: FileNode, idx: number, buf: Buffer): void {
    const had = f.dirty.has(idx)
    f.setDirty(idx, buf)
    if (f.parent == null) return
    if (!this.dirtyFiles.has(f)) { this.dirtyFiles.add(f); this.dirtyBlocks += f.dirty.size } else if (!had) this.dirtyBlocks++
  }

  unmarkDirty (f: FileNode, idx: number): void {
    f.deletePatching(idx)
    if (!f.deleteDirty(idx) || !this.dirtyFiles.has(f)) return
    this.dirtyBlocks--
    if (f.dirty.size === 0) this.dirtyFiles.delete(f)
  }

  /** Replaces a dirty buffer too short for `need` bytes by a larger copy. */
  growDirty (f: FileNode, idx: number, buf: Buffer, need: number): Buffer {
    const grown = Buffer.alloc(bufferSizeFor(need))
    buf.copy(grown)
    f.setDirty(idx, grown)
    return grown
  }

  /**
   * Segments [inner, inner + n) of dirty block `idx` were written (write() calls it after
   * copying): recorded for a block sealed as patches.
   */
  written (f: FileNode, idx: number, inner: number, n: number): void {
    const p = f.patching.get(idx)
    if (p == null || n <= 0) return
    const s0 = Math.floor(inner / SEGMENT)
    const s1 = Math.floor((inner + n - 1) / SEGMENT)
    for (let s = s0; s <= s1; s++) { p.written |= 1 << s; p.known |= 1 << s }
  }

  /**
   * Before a write of [inner, inner + n) into dirty block `idx`: loads the segments it covers
   * only in part that its buffer does not hold yet. Returns false when it loaded any: the caller
   * must fetch the block's buffer again (it awaited; the block may have been sealed meanwhile).
   */
  async prepareWrite (f: FileNode, idx: number, inner: number, n: number): Promise<boolean> {
    const p = f.patching.get(idx)
    if (p == null || n <= 0) return true
    const s0 = Math.floor(inner / SEGMENT)
    const s1 = Math.floor((inner + n - 1) / SEGMENT)
    const load: number[] = []
    const covers = (s: number): boolean => inner <= s * SEGMENT && inner + n >= (s + 1) * SEGMENT
    // A fold needs every segment: all it does not know and this write does not cover whole.
    for (const s of p.fold === true ? allSegments : s0 === s1 ? [s0] : [s0, s1]) {
      if ((p.known & (1 << s)) === 0 && !covers(s)) load.push(s)
    }
    if (load.length === 0) return true
    await this.loadSegments(f, idx, load)
    return false
  }

  /** Loads segments `segs` of a patching dirty block from its sealed reference, where still unknown. */
  private async loadSegments (f: FileNode, idx: number, segs: number[]): Promise<void> {
    const p = f.patching.get(idx)!
    const buf = f.dirty.get(idx)!
    const over = p.over
    const tmp = Buffer.alloc(segs.length * SEGMENT)
    // One read per run of consecutive segments (a fold loads up to 31 of them).
    const runs: Array<{ k: number, s: number, n: number }> = []
    segs.forEach((s, k) => { const r = runs.at(-1); if (r != null && r.s + r.n === s && r.k + r.n === k) r.n++; else runs.push({ k, s, n: 1 }) })
    if (over != null) await Promise.all(runs.map(async ({ k, s, n }) => await this.deps.readSegments(f, idx, over, s * SEGMENT, (s + n) * SEGMENT, tmp.subarray(k * SEGMENT, (k + n) * SEGMENT))))
    // A write may have filled a segment, or a seal taken the block, while we read.
    if (f.patching.get(idx) !== p || f.dirty.get(idx) !== buf) return
    segs.forEach((s, k) => {
      if ((p.known & (1 << s)) !== 0) return
      tmp.copy(buf, s * SEGMENT, k * SEGMENT, (k + 1) * SEGMENT)
      p.known |= 1 << s
    })
  }

  /**
   * A dirty block about to be changed by something other than write(): its buffer is
   * completed from the sealed block, and it is sealed whole. Returns its buffer (fetch it again
   * after this: the block may have been sealed while segments loaded, then it is loaded anew).
   */
  async completeDirty (f: FileNode, idx: number, need: number): Promise<Buffer> {
    for (;;) {
      const buf = await this.dirtyBlock(f, idx, false, need)
      const p = f.patching.get(idx)
      if (p == null) return buf
      const missing: number[] = []
      for (let s = 0; s < SEGMENTS; s++) if ((p.known & (1 << s)) === 0) missing.push(s)
      if (missing.length > 0) await this.loadSegments(f, idx, missing)
      if (f.dirty.get(idx) === buf && f.patching.get(idx) === p && (p.known >>> 0) === ALL) { f.deletePatching(idx); return buf }
    }
  }

  /**
   * The writable plaintext buffer of one block, loading its sealed content first if needed.
   * `patchable`: a write asks, so a full sealed block (or hole) may be sealed as patches.
   */
  async dirtyBlock (f: FileNode, idx: number, whole: boolean, need = BLOCK_SIZE, patchable = false): Promise<Buffer> {
    for (;;) {
      let buf = f.dirty.get(idx)
      if (buf != null) return buf
      const inSeal = f.sealing.get(idx)
      if (inSeal != null) {
        // Rewritten while its seal is in flight: that seal's result is dropped, the data moves on.
        f.deleteSealing(idx)
        if (inSeal.length === BLOCK_SIZE) { buf = this.takeBuffer(false); inSeal.copy(buf) } else buf = Buffer.from(inSeal)
        this.markDirty(f, idx, buf)
        return buf
      }
      const cid = f.blocks?.get(idx)
      // Patches only over a block the file fills (no padding, no tail to move) and not past the
      // fold; its old content is not loaded (prepareWrite loads what a write covers in part).
      const full = bytesInBlock(f.size, idx) === BLOCK_SIZE
      const kept = full && !whole ? this.takeClean(f, idx) : null
      if (patchable && !whole && full) {
        // Patches while under the fold; past it the block is sealed whole, from what a kept
        // buffer knows, what the write covers and the segments loaded for the rest (invariant 7).
        const fold = foldsAt(cid)
        buf = kept?.buf ?? this.takeBuffer(cid == null)
        this.markDirty(f, idx, buf)
        f.setPatching(idx, { written: 0, known: cid == null ? ALL : kept?.known ?? 0, over: cid, fold }) // a hole's segments are zeros
        return buf
      }
      if (kept != null && (kept.known >>> 0) === ALL) {
        // The fold of a block whose every segment is kept: nothing to load.
        this.markDirty(f, idx, kept.buf)
        return kept.buf
      }
      if (kept != null) this.recycle(kept.buf)
      const old = whole || blockStart(idx) >= f.size ? null : await this.deps.readBlock(f, idx)
      // Another write may have dirtied, sealed or replaced the block while we read: start over.
      if (f.dirty.has(idx) || f.sealing.has(idx) || f.blocks?.get(idx) !== cid) continue
      if (whole) buf = this.takeBuffer(false)
      else if (old != null) {
        buf = this.takeBuffer(false)
        buf.fill(0, old.copy(buf, 0, 0, Math.min(old.length, bytesInBlock(f.size, idx))))
      } else buf = Buffer.alloc(bufferSizeFor(need))
      this.markDirty(f, idx, buf)
      return buf
    }
  }

  /** Seals one dirty block inline (padded if it is the short last one) and caches its plaintext. */
  sealBlock (f: FileNode, idx: number): void {
    const buf = f.dirty.get(idx)
    if (buf == null) return
    const len = bytesInBlock(f.size, idx)
    const patching = f.patching.get(idx)
    this.unmarkDirty(f, idx)
    // Patches unless the block is past the fold or they would hold every segment in more than
    // FEW_PATCHES patches, and the buffer holds all of it: then it is sealed whole. (A partly
    // known buffer is never sealed whole.)
    if (patching != null && ((patching.known >>> 0) !== ALL ||
        (patching.fold !== true && len === BLOCK_SIZE && f.blocks!.get(idx) === patching.over &&
         (popcount(patchedMask(patching.over) | patching.written) < SEGMENTS || patchesAfter(patching.over, patching.written) <= FEW_PATCHES)))) {
      this.sealPatches(f, idx, buf, f.blocks!.get(idx), patching.written)
      this.keepClean(f, idx, buf, patching.known, f.blocks!.get(idx))
      return
    }
    if (len <= 0) return
    const plainLen = paddedLength(len)
    let plain = buf.subarray(0, plainLen)
    if (plain.length < plainLen) { plain = Buffer.alloc(plainLen); buf.copy(plain) }
    const cid = this.putSealed(f, blockPosition(f, idx), 0, plain)
    f.setBlock(idx, cid)
    // Cache an exact-size copy: a view would pin the whole 128 KiB buffer while the LRU counts
    // only the view's length.
    this.deps.cache.set(cid.toString(), len === BLOCK_SIZE ? plain : Buffer.from(plain))
  }

  /**
   * Seals the written segments of dirty block `idx` as patches over `over` (one object per run
   * of consecutive segments), inline: they are small.
   */
  private sealPatches (f: FileNode, idx: number, buf: Buffer, over: BlockRef | undefined, written: number): void {
    let ref = over
    const pos = blockPosition(f, idx)
    for (let s = 0; s < SEGMENTS;) {
      if ((written & (1 << s)) === 0) { s++; continue }
      let e = s
      while (e < SEGMENTS && (written & (1 << e)) !== 0) e++
      let plain = buf.subarray(s * SEGMENT, e * SEGMENT)
      if (plain.length < (e - s) * SEGMENT) { const p = Buffer.alloc((e - s) * SEGMENT); plain.copy(p); plain = p } // a buffer that started small
      const cid = this.putSealed(f, pos, s, plain)
      ref = withPatch(ref, { cid, first: s, count: e - s })
      s = e
    }
    if (ref == null) return // nothing written after all: the block stays as it was
    f.setBlock(idx, ref)
  }

  /**
   * Seals segments first... of a block (0: the whole block) into pooled memory the store hands
   * back once written; their CID, stating the nonce drawn here (block-ref.ts state): reads of it
   * open its segments alone, and its block map entry records the nonce.
   */
  private putSealed (f: FileNode, pos: SealPosition, first: number, plain: Uint8Array): CID {
    const { buf, release } = this.sealedBuffers.take(sealedLength(plain.length))
    sealPatchInto(f.key, pos, first, plain, buf)
    const { store } = this.deps
    const cid = state(cidOf(buf), buf.subarray(1, V2_HEADER), buf.length) // before the store may hand `buf` back
    return store.putFresh != null ? store.putFresh(cid, buf, release) : store.putWithCid(cid, buf, release)
  }

  /** Seals a full block on the thread pool; until it lands, reads see the plaintext buffer. */
  startSeal (f: FileNode, idx: number): void {
    const buf = f.dirty.get(idx)
    if (buf == null) return
    const p = f.patching.get(idx)
    if (p != null && (p.fold !== true || (p.known >>> 0) !== ALL)) { this.sealBlock(f, idx); return } // patches: small, sealed inline
    f.deletePatching(idx) // a complete fold: a whole block, sealed on the pool
    this.unmarkDirty(f, idx)
    f.setSealing(idx, buf)
    this.sealingFiles.add(f)
    const pos = blockPosition(f, idx)
    const { store, sealer } = this.deps
    const job: Promise<void> = (async () => {
      let cid: CID
      if (sealer != null) {
        const s = await sealer.seal(f.key, pos, buf)
        if (f.sealing.get(idx) !== buf) { s.release(); return } // superseded: newer write, truncate or commit
        const stated = state(cidFromBlake3(s.digest), s.sealed.subarray(1, V2_HEADER), s.sealed.length) // before the slot goes back
        cid = store.putWithCid(stated, s.sealed, s.release)
      } else {
        if (f.sealing.get(idx) !== buf) return
        const sealed = seal(f.key, pos, buf)
        cid = state(store.put(sealed), sealed.subarray(1, V2_HEADER), sealed.length)
      }
      f.deleteSealing(idx)
      f.setBlock(idx, cid)
      if (f.parent != null) touch(f)
      this.recycle(buf)
    })().catch(err => {
      this.deps.log(`error: sealing file ${f.label()} block ${idx}: ${(err as Error).message}`)
      if (f.sealing.get(idx) === buf) { f.deleteSealing(idx); this.markDirty(f, idx, buf) }
    }).finally(() => {
      this.seals.delete(job)
      if (f.sealing.size === 0) this.sealingFiles.delete(f)
    })
    this.seals.add(job)
  }

  /** Cuts a file's blocks at `keep` blocks: later dirty and sealing blocks are dropped. */
  dropFrom (f: FileNode, keep: number): void {
    for (const i of [...f.dirty.keys()]) if (i >= keep) this.unmarkDirty(f, i)
    for (const i of [...f.sealing.keys()]) if (i >= keep) f.deleteSealing(i)
  }

  /** Drops one block's dirty or sealing state (it becomes whatever f.blocks says: a hole when absent). */
  dropBlock (f: FileNode, idx: number): void {
    this.unmarkDirty(f, idx)
    f.deleteSealing(idx)
  }

  /** Takes back what is still sealing on the pool as dirty, so a commit seals it inline. */
  takeOverSeals (): void {
    for (const f of [...this.sealingFiles]) {
      for (const [idx, buf] of [...f.sealing]) {
        f.deleteSealing(idx)
        if (f.parent != null) this.markDirty(f, idx, buf)
      }
      this.sealingFiles.delete(f)
    }
  }

  /** Seals every dirty block of the files in the tree inline. */
  sealAllDirty (): void {
    for (const f of [...this.dirtyFiles]) {
      if (f.parent == null) { this.forget(f); continue }
      for (const idx of [...f.dirty.keys()]) this.sealBlock(f, idx)
    }
  }
}

/** Every segment of a block, as a bit mask, and their numbers. */
const ALL = 0xffffffff
const allSegments = Array.from({ length: SEGMENTS }, (_, s) => s)

/** A kept buffer of a block sealed as `ref`: segments `known` hold its bytes. */
interface Clean { f: FileNode, idx: number, buf: Buffer, known: number, ref: BlockRef }
