// Reading file content. Blocks held in memory (dirty, sealing) are copied at once; whole blocks
// on disk are opened by the native run reader straight from their pack into the reply buffer,
// blocks lying back to back in one pack as one run (readRun); part of a block is read segment
// by segment (readSegments: an object whose nonce is stated, by its seal here, its block map
// entry or an earlier check, is read only by the 4 KiB segments asked for, under that nonce; one
// whose nonce is not is checked whole against its CID once, which states it: block-ref.ts state);
// without the addon or a pack, whole blocks go through the decrypted-block cache (readBlock).
// Every job settles before read() answers.
// Native reads: a v2 block sealed whole, checked here and unchanged since, is offered to the
// ReadShortcut (the FUSE binding's table, native/src/fuse3/fastread.c), which answers later reads
// of it without JS. changing() drops a file's entries before every change to its content (the
// Tree calls it first thing in write, truncate, fallocate; contentReplaced() is a merge's) and
// nothing is offered while a change runs: entries only ever name what a read here would return.
import type { CID } from 'multiformats/cid'
import { adPrefixInto, copyBytes, openRun, readPart, openSegments, nonceOf, plainLength, segmentsOf, segmentOffset, AD_V2_PREFIX, NONCE_LEN, SEAL_V1, SEAL_V2, SEGMENT, SEGMENT_SEALED, type FileRange } from '../../crypto/index.js'
import { BLOCK_SIZE } from './format.js'
import type { TreeError } from './errors.js'
import type { FileNode } from './nodes.js'
import { blockPosition } from './codec.js'
import type { Loader } from './load.js'
import { blockSpan, blockStart, blockEnd, lastBlock } from './block-range.js'
import type { BlockStore, BlockCache } from './ports.js'
import { type BlockRef, type Patch, type PatchedBlock, SEGMENTS, isPatched, sourceRuns, state, statedOf } from './block-ref.js'
import { putAhead } from './stream-ahead.js'

/** One block of a run read straight from its pack (readRun). */
interface RunPart { idx: number, cid: CID, at: FileRange, dst: number, span: number }
/** Bytes between two records that still count as back to back (a record's header). */
const RUN_GAP = 256
/** Blocks per run at most (the addon's scratch buffer per pool thread grows to the largest run). */
const RUN_BLOCKS = 16


/**
 * Where reads of checked blocks can be answered without JS (the FUSE binding's native table).
 * Entries are per file; `drop` and `put` are synchronous, done when they return.
 */
export interface ReadShortcut {
  /** Whether reads of `f` go through the shortcut (a handle of it is bound): else nothing is offered. */
  wants: (f: FileNode) => boolean
  /**
   * Block `idx` of `f` (size `f.size`) reads from these checked v2 objects (`objs`: n x [fd,
   * position, length, first segment] of buffered descriptors, `nonces`: n x 12 bytes), segment s
   * from objs[seg[s]] (SEG_HOLE: zeros; SEG_UNKNOWN: not checked yet, JS answers it).
   */
  put: (f: FileNode, idx: number, adPrefix: Uint8Array, objs: Float64Array, nonces: Uint8Array, seg: Uint8Array) => void
  /** Forget blocks from..to of `f` (the size stays); to = -1: all of them and the size. */
  drop: (f: FileNode, from: number, to: number) => void
  /**
   * Streaming entries: blocks from `first` on of `f`, each one v2 object sealed whole and not
   * checked yet (`objs`: n x [buffered fd, fd to read it whole with, 1 if that one is O_DIRECT,
   * position, length]; all zeros: none for that block), each checked against its digest
   * (`hashes`: n x [multihash code, 32 bytes]) at its first read there. Optional.
   */
  putStream?: (f: FileNode, first: number, adPrefixes: Uint8Array, objs: Float64Array, hashes: Uint8Array) => void
  /** The first block index from which nothing was put ahead for `f` since its entries were last dropped. */
  aheadOf?: (f: FileNode) => number
}

export const SEG_HOLE = 255
export const SEG_UNKNOWN = 254
/** Objects a block is read from at most (a base and its patches; blocks fold at FOLD_SEGMENTS). */
const MAX_OBJECTS = 33

/** What offer() hands the shortcut, in memory reused for every offer (put copies it). */
const offerObjs = new Float64Array(MAX_OBJECTS * 4)
const offerNonces = Buffer.alloc(MAX_OBJECTS * NONCE_LEN)
const offerSeg = new Uint8Array(SEGMENTS)
const offerAd = Buffer.alloc(AD_V2_PREFIX)

/** The sealed length in a stated nonce's string (its last 4 bytes, u32 big-endian). */
const statedLength = (s: string): number => ((s.charCodeAt(12) << 24) | (s.charCodeAt(13) << 16) | (s.charCodeAt(14) << 8) | s.charCodeAt(15)) >>> 0

/** A block index past any file's last (ReadShortcut.drop's `to`: every block from `from` on). */
const TO_THE_END = 2 ** 31 - 1

/** Every reader's shortcut, for contentReplaced (a merge updates open nodes from outside the reader). */
const shortcuts = new Set<ReadShortcut>()

/** `f`'s content is being replaced in place (adopt.ts): every native entry of it goes first. */
export function contentReplaced (f: FileNode): void {
  for (const s of shortcuts) s.drop(f, 0, -1)
}

export interface FileReadDeps {
  store: Pick<BlockStore, 'locate' | 'refuseDirectReads' | 'get' | 'getRange'>
  cache: BlockCache
  loader: Pick<Loader, 'blocks' | 'openSealed' | 'integrityError'>
}

/**
 * The nonce and sealed length (nonce[12] | u32be length) `cid`'s object's segments may be opened
 * under without reading and hashing it whole: stated by its seal here, by the v4 leaf entry that
 * names it, or by an earlier read that checked it whole (block-ref.ts state; docs/format.md,
 * "What a read checks"). A fresh copy: the caller may hold it across awaits.
 */
function knownOf (cid: CID): Buffer | undefined {
  const s = statedOf(cid)
  return s != null ? Buffer.from(s, 'latin1') : undefined
}

export class FileReader {
  private readonly inflight = new Map<string, Promise<Buffer>>()
  private shortcut: ReadShortcut | null = null
  /** Changes to a file's content under way: nothing is offered to the shortcut meanwhile. */
  private readonly busy = new Map<FileNode, number>()

  constructor (private readonly deps: FileReadDeps) {}

  /** Offers checked blocks to `s` from now on (null: to no one). */
  setShortcut (s: ReadShortcut | null): void {
    if (this.shortcut != null) shortcuts.delete(this.shortcut)
    this.shortcut = s
    if (s != null) shortcuts.add(s)
  }

  /**
   * A change to `f`'s bytes [from, to) starts (no range: anything, size included): its native
   * entries go now, before the change is visible, and none is offered until the returned
   * function says the change is over. A range that ends past the file's end also drops the
   * block holding the old end and all after it: the table answers a read that reaches its
   * size only from the block holding the last byte, so no read is cut short at the old end.
   * (A truncate is the range between the two sizes: shrinking drops the block holding the new
   * end and all after it, so a read past the new end finds a block missing and goes to JS.)
   */
  changing (f: FileNode, from?: number, to?: number): () => void {
    this.busy.set(f, (this.busy.get(f) ?? 0) + 1)
    const s = this.shortcut
    if (s?.wants(f) === true) {
      if (from == null || to == null) s.drop(f, 0, -1)
      else if (to > f.size) s.drop(f, Math.min(Math.floor(from / BLOCK_SIZE), Math.floor(Math.max(0, f.size - 1) / BLOCK_SIZE)), TO_THE_END)
      else if (to > from) s.drop(f, Math.floor(from / BLOCK_SIZE), Math.floor((to - 1) / BLOCK_SIZE))
    }
    let done = false
    return () => {
      if (done) return
      done = true
      const n = (this.busy.get(f) ?? 1) - 1
      if (n > 0) this.busy.set(f, n); else this.busy.delete(f)
    }
  }

  /**
   * Block `idx` of `f` was just read as `ref`: offered to the shortcut if `ref` is still what the
   * block map names, the block is clean and no change runs, with each of its objects whose nonce
   * a check against its CID kept (the others' segments stay with JS until a read checks them).
   */
  private offer (f: FileNode, idx: number, ref: BlockRef): void {
    const s = this.shortcut
    if (s == null || this.busy.has(f) || !s.wants(f)) return
    if (f.blocks?.get(idx) !== ref || f.dirty.has(idx) || f.sealing.has(idx) || f.patching.has(idx) || idx * BLOCK_SIZE >= f.size) return
    // Object 0 is the base (if any), then the patches in write order; a segment is read from the
    // last object that holds it (block-ref.ts sourceOf), so painting them in order gives `seg`.
    // The arrays are this module's: put() copies them before it returns.
    const patches = isPatched(ref) ? ref.patches : null
    const base = patches != null ? (ref as PatchedBlock).base : ref as CID
    if ((base != null ? 1 : 0) + (patches?.length ?? 0) > MAX_OBJECTS) return
    let n = 0
    if (base != null) offerSeg.fill(this.offerObject(base, 0, n++) ? 0 : SEG_UNKNOWN)
    else offerSeg.fill(SEG_HOLE)
    for (const p of patches ?? []) {
      const i = n++
      offerSeg.fill(this.offerObject(p.cid, p.first, i) ? i : SEG_UNKNOWN, p.first, p.first + p.count)
    }
    let any = false
    for (let k = 0; k < SEGMENTS && !any; k++) any = offerSeg[k] !== SEG_UNKNOWN
    if (!any) return
    adPrefixInto(blockPosition(f, idx), offerAd)
    s.put(f, idx, offerAd, offerObjs.subarray(0, n * 4), offerNonces.subarray(0, n * NONCE_LEN), offerSeg)
  }

  /** Places object `i` (segments from `first`) in the offer's arrays; false when its nonce is not stated or its record cannot be read natively. */
  private offerObject (cid: CID, first: number, i: number): boolean {
    const stated = statedOf(cid)
    if (stated == null) return false
    const at = this.deps.store.locate?.(cid, true)
    if (at == null || at.direct === true || at.length !== statedLength(stated)) return false
    offerObjs[i * 4] = at.fd
    offerObjs[i * 4 + 1] = at.position
    offerObjs[i * 4 + 2] = at.length
    offerObjs[i * 4 + 3] = first
    offerNonces.write(stated, i * NONCE_LEN, NONCE_LEN, 'latin1')
    return true
  }

  /** Plaintext of one block (BLOCK_SIZE or shorter; a patched block: BLOCK_SIZE), or null for a hole. */
  async readBlock (f: FileNode, idx: number): Promise<Buffer | null> {
    const d = f.dirty.get(idx) ?? f.sealing.get(idx)
    const partial = f.patching.get(idx)
    if (d != null && partial != null && (partial.known >>> 0) !== 0xffffffff) {
      // A dirty block holding only some segments: a copy of the whole, the rest from the store.
      const out = Buffer.alloc(BLOCK_SIZE)
      const pending: Array<Promise<void>> = []
      this.copyPartial(f, idx, d, partial, 0, BLOCK_SIZE, out, pending)
      await Promise.all(pending)
      return out
    }
    if (d != null) return d
    const ref = (await this.deps.loader.blocks(f)).get(idx)
    if (ref == null) return null
    if (!isPatched(ref)) return await this.wholeObject(f, idx, ref)
    // A base (or a hole) with its patches applied in order: a fresh buffer the caller may keep.
    const out = Buffer.alloc(BLOCK_SIZE)
    if (ref.base != null) { const b = await this.wholeObject(f, idx, ref.base); b.copy(out, 0, 0, Math.min(b.length, BLOCK_SIZE)) }
    const plains = await Promise.all(ref.patches.map(async p => await this.wholeObject(f, idx, p.cid, p)))
    ref.patches.forEach((p, i) => plains[i].copy(out, p.first * SEGMENT, 0, Math.min(plains[i].length, p.count * SEGMENT)))
    return out
  }

  /** Plaintext of one sealed object of block `idx` (a patch's when `patch`), through the cache. */
  private async wholeObject (f: FileNode, idx: number, cid: CID, patch?: Patch): Promise<Buffer> {
    const key = cid.toString()
    const hit = this.deps.cache.get(key)
    if (hit != null) return hit
    let p = this.inflight.get(key)
    if (p == null) {
      p = this.openObject(f, idx, cid, patch?.first ?? 0)
        .then(plain => { this.deps.cache.set(key, plain); return plain })
        .finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return await p
  }

  /**
   * The whole plaintext of one object of block `idx` (segments numbered from `first`). From a
   * pack, on the pool: an object whose nonce is stated (sealed here, recorded by its entry, or
   * checked before) by its segments alone, no hash, through the page cache (a block loaded again
   * and again for writes, such as a log's tail, is read from the disk once); else the whole record
   * checked against its CID (O_DIRECT for a large one), which states its nonce. Not in a pack yet, or without the addon:
   * the store's checked get, opened here.
   */
  private async openObject (f: FileNode, idx: number, cid: CID, first: number): Promise<Buffer> {
    const { store, loader } = this.deps
    const what = `file ${f.label()} block ${idx}`
    const known = knownOf(cid)
    const at = readPart != null ? store.locate?.(cid, known != null) : null
    if (at == null) return await loader.openSealed(f.key, blockPosition(f, idx), cid, what, first)
    if (known != null) checkLength(at.length, known, what, cid, loader)
    const room = Math.max(0, plainLength(SEAL_V1, at.length), plainLength(SEAL_V2, at.length))
    const dst = Buffer.allocUnsafe(room)
    let r: Awaited<ReturnType<NonNullable<typeof readPart>>>
    try {
      r = await readPart!(at, f.key, { pos: blockPosition(f, idx), hash: cid.multihash, first, from: first * SEGMENT, to: first * SEGMENT + room }, known?.subarray(0, 12) ?? null, dst)
    } catch (err) {
      throw loader.integrityError(what, cid, err, 'read')
    }
    if (r.n instanceof Error) throw loader.integrityError(what, cid, r.n, 'open')
    if (r.nonce != null && known == null) state(cid, r.nonce, at.length)
    return dst.subarray(0, r.n)
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
    let streamed = false
    const endRun = (): void => { if (run.length > 0) { pending.push(this.readRun(f, run, out)); streamed = true } run = [] }
    // Blocks held in memory are copied before any await: their buffers are recycled once sealed.
    for (let i = first; i <= last; i++) {
      const mem = f.dirty.get(i) ?? f.sealing.get(i)
      const partial = f.dirty.has(i) ? f.patching.get(i) : undefined
      if (mem != null && partial != null && (partial.known >>> 0) !== 0xffffffff) {
        endRun()
        const start = blockStart(i)
        const from = Math.max(pos, start)
        this.copyPartial(f, i, mem, partial, from - start, Math.min(end, blockEnd(i)) - start, out.subarray(from - pos), pending)
        continue
      }
      if (mem != null) { copy(i, mem); continue }
      // A read that takes a whole block (streaming) skips the cache: no allocation per block for
      // the GC to chase, and nothing evicted for it. It is opened from the pack straight into
      // `out` where the plaintext (padding included) fits there, blocks lying back to back in one
      // pack together. Blocks not on disk yet, and reads without the addon, use the cache.
      const ref = f.blocks?.get(i)
      const start = blockStart(i)
      if (ref == null) { endRun(); copy(i, null); continue } // a hole
      const whole = pos <= start && (end >= blockEnd(i) || end === f.size)
      const cid = isPatched(ref) ? null : ref
      const uncached = cid != null && this.deps.cache.get(cid.toString()) == null
      const at = whole && uncached && openRun != null ? this.deps.store.locate?.(cid!) : null
      if (at != null && fitsIn(at.length, out.length - (start - pos))) {
        const prev = run.at(-1)?.at
        const adjacent = prev != null && prev.fd === at.fd && at.position >= prev.position + prev.length &&
          at.position - (prev.position + prev.length) <= RUN_GAP && run.length < RUN_BLOCKS
        if (!adjacent) endRun()
        run.push({ idx: i, cid: cid!, at, dst: start - pos, span: Math.min(end, blockEnd(i)) - start })
        continue
      }
      endRun()
      const from = Math.max(pos, start)
      const to = Math.min(end, blockEnd(i))
      if (cid != null && this.deps.cache.get(cid.toString()) != null) {
        pending.push(this.readBlock(f, i).then(b => copy(i, b)))
        this.offer(f, i, cid) // when a read that kept its nonce checked it
      }
      else pending.push(this.readSegments(f, i, ref, from - start, to - start, out.subarray(from - pos, to - pos)))
    }
    endRun()
    if (streamed) this.putAhead(f, last + 1)
  }

  /** A stream reached JS at block `from`: the clean blocks after it go to the shortcut as streaming entries (stream-ahead.ts). */
  private putAhead (f: FileNode, from: number): void {
    const s = this.shortcut
    if (s?.putStream != null && !this.busy.has(f) && s.wants(f)) putAhead(s, this.deps.store, f, from)
  }

  /**
   * Block bytes [from, to) of a dirty block whose buffer holds only the `known` segments into
   * dst: those copied now (before any await: the buffer is recycled once sealed), the others
   * read from the sealed block it patches (one job per run, pushed to `pending`).
   */
  private copyPartial (f: FileNode, idx: number, buf: Buffer, p: { known: number, over: BlockRef | undefined }, from: number, to: number, dst: Buffer, pending: Array<Promise<void>>): void {
    for (let s = Math.floor(from / SEGMENT); s * SEGMENT < to;) {
      const known = (p.known & (1 << s)) !== 0
      let e = s + 1
      while (e * SEGMENT < to && ((p.known & (1 << e)) !== 0) === known) e++
      const a = Math.max(from, s * SEGMENT)
      const b = Math.min(to, e * SEGMENT)
      const part = dst.subarray(a - from, b - from)
      if (known) copyBytes(part, 0, buf, a, b - a)
      else if (p.over == null) part.fill(0)
      else pending.push(this.readSegments(f, idx, p.over, a, b, part))
      s = e
    }
  }

  /**
   * Bytes [from, to) of block `idx` (block coordinates) into dst, segment by segment from the
   * objects that hold them (the base, or the latest patch over a segment; zeros for a hole).
   */
  async readSegments (f: FileNode, idx: number, ref: BlockRef, from: number, to: number, dst: Buffer): Promise<void> {
    const jobs: Array<Promise<void>> = []
    for (const run of sourceRuns(ref, Math.floor(from / SEGMENT), Math.floor((to - 1) / SEGMENT))) {
      const a = Math.max(from, run.from * SEGMENT)
      const b = Math.min(to, run.to * SEGMENT)
      const part = dst.subarray(a - from, b - from)
      if (run.cid == null) part.fill(0)
      else jobs.push(this.readObjectPart(f, idx, run.cid, run.first, a, b, part))
    }
    const results = await Promise.allSettled(jobs)
    for (const r of results) if (r.status === 'rejected') throw r.reason
    this.offer(f, idx, ref)
  }

  /**
   * Bytes [a, b) of block `idx` from one of its objects (segments numbered from `first`) into
   * dst, zeros past the object's end. An object whose nonce is stated (knownOf) is read by the
   * segments asked for alone, under that nonce; else the read checks it whole against its CID
   * once, which states its nonce (docs/format.md, "What a read checks").
   */
  private async readObjectPart (f: FileNode, idx: number, cid: CID, first: number, a: number, b: number, dst: Buffer): Promise<void> {
    const { store, loader } = this.deps
    const known = knownOf(cid)
    const what = `file ${f.label()} block ${idx}`
    const pos = blockPosition(f, idx)
    const at = readPart != null ? store.locate?.(cid, known != null) : null
    if (at != null) {
      if (known != null) checkLength(at.length, known, what, cid, loader)
      let r: Awaited<ReturnType<NonNullable<typeof readPart>>>
      try {
        r = await readPart!(at, f.key, { pos, hash: cid.multihash, first, from: a, to: b }, known?.subarray(0, 12) ?? null, dst)
      } catch (err) {
        throw loader.integrityError(what, cid, err, 'read')
      }
      if (r.n instanceof Error) throw loader.integrityError(what, cid, r.n, 'open')
      if (r.nonce != null && known == null) state(cid, r.nonce, at.length)
      if (r.n < dst.length) dst.fill(0, r.n)
      return
    }
    // No addon, or the block is not in a pack yet: the same reads in JS.
    if (known == null || store.getRange == null) {
      const sealed = await this.checkedObject(f, idx, cid)
      if (sealed == null) {
        const plain = await this.wholeObject(f, idx, cid, first > 0 ? { cid, first, count: 0 } : undefined)
        copyPlain(plain, first, a, b, dst)
        return
      }
      const nonce = nonceOf(sealed)
      if (nonce != null) state(cid, nonce, sealed.length)
      this.openPart(f, idx, cid, nonce, sealed.length, first, a, b, dst, s => sealed.subarray(s.offset, s.offset + s.length))
      return
    }
    const length = known.readUInt32BE(12)
    const span = partSpan(length, first, a, b)
    if (span == null) { dst.fill(0); return }
    let segs: Uint8Array
    try {
      segs = await store.getRange(cid, span.offset, span.length)
    } catch (err) {
      throw loader.integrityError(what, cid, err, 'read')
    }
    this.openPart(f, idx, cid, known.subarray(0, 12), length, first, a, b, dst, () => segs)
  }

  /** The sealed bytes of a v2 object, checked against its CID (null for a v1 object). */
  private async checkedObject (f: FileNode, idx: number, cid: CID): Promise<Uint8Array | null> {
    let sealed: Uint8Array
    try {
      sealed = await this.deps.store.get(cid) // checks the bytes against the CID
    } catch (err) {
      throw this.deps.loader.integrityError(`file ${f.label()} block ${idx}`, cid, err, 'read')
    }
    return sealed[0] === SEAL_V2 ? sealed : null
  }

  /** Opens the segments of [a, b) of a v2 object (`bytes` hands their sealed bytes) into dst. */
  private openPart (f: FileNode, idx: number, cid: CID, nonce: Uint8Array | null, length: number, first: number, a: number, b: number, dst: Buffer, bytes: (s: { offset: number, length: number }) => Uint8Array): void {
    const span = nonce != null ? partSpan(length, first, a, b) : null
    if (span == null) { dst.fill(0); return }
    let plain: Buffer
    try {
      plain = openSegments(f.key, blockPosition(f, idx), nonce!, span.s0, span.last, bytes(span))
    } catch (err) {
      throw this.deps.loader.integrityError(`file ${f.label()} block ${idx}`, cid, err, 'open')
    }
    const n = Math.max(0, Math.min(b, span.end) - a)
    plain.copy(dst, 0, a - span.s0 * SEGMENT, a - span.s0 * SEGMENT + n)
    if (n < dst.length) dst.fill(0, n)
  }

  /**
   * Opens blocks lying back to back in one pack straight into `out` (one read, one pool job),
   * each at its `dst`, zero-filling past a short plaintext up to its `span`.
   */
  private async readRun (f: FileNode, run: RunPart[], out: Buffer): Promise<void> {
    const nonces = new Uint8Array(run.length * 12)
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
      results = await openRun!({ fd: last.fd, position: start, length: last.position + last.length - start, direct: last.direct }, f.key, blocks, out, nonces)
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
      else {
        if (n < b.span) out.fill(0, b.dst + n, b.dst + b.span)
        const nonce = nonces.subarray(i * 12, i * 12 + 12)
        // v2: its segments can be read alone now. (Not offered to the shortcut: a streaming
        // read would pay for entries it never uses; a later partial read offers the block.)
        if (nonce.some(x => x !== 0) && statedOf(b.cid) == null) state(b.cid, nonce, b.at.length)
      }
    })
    if (failed != null) throw failed
  }

  /** Warms the cache with the `count` blocks from `from` on, within the file. */
  private readAhead (f: FileNode, from: number, count: number): void {
    const lastIdx = lastBlock(f.size)
    for (let i = from; i < from + count && i <= lastIdx; i++) this.readBlock(f, i).catch(() => {})
  }
}

/**
 * Refuses a record whose length in the pack index is not the one stated for its object: the
 * stated length says which segment is the last (and where the plaintext ends), so an index that
 * lied about it could make a read return zeros for segments it never opened.
 */
function checkLength (length: number, known: Buffer, what: string, cid: CID, loader: Pick<Loader, 'integrityError'>): void {
  const want = known.readUInt32BE(12)
  if (length !== want) throw loader.integrityError(what, cid, new Error(`its record is ${length} bytes, not the ${want} its entry states`), 'read')
}

/**
 * Whether a content block of `sealedLen` sealed bytes opens into `room` bytes, whichever version
 * it is (the reader learns that only from its first byte): always with a block's room; else when
 * its plaintext would fit read as either version.
 */
function fitsIn (sealedLen: number, room: number): boolean {
  if (room >= BLOCK_SIZE) return true
  return Math.max(plainLength(SEAL_V1, sealedLen), plainLength(SEAL_V2, sealedLen)) <= room
}

/**
 * The sealed segments of a v2 object of `length` sealed bytes (segments numbered from `first`)
 * that hold block bytes [a, b): their byte span in the object, first segment, the object's final
 * segment number and the block offset where its plaintext ends; null when it holds none of them.
 */
function partSpan (length: number, first: number, a: number, b: number): { offset: number, length: number, s0: number, last: number, end: number } | null {
  const plain = plainLength(SEAL_V2, length)
  if (plain < 0) return null
  const end = first * SEGMENT + plain
  const stop = Math.min(b, end)
  if (stop <= a) return null
  const s0 = Math.floor(a / SEGMENT)
  const s1 = Math.floor((stop - 1) / SEGMENT)
  const offset = segmentOffset(s0 - first)
  return { offset, length: Math.min(length, segmentOffset(s1 - first) + SEGMENT_SEALED) - offset, s0, last: first + segmentsOf(plain) - 1, end }
}

/** Block bytes [a, b) of an object's plaintext (segments from `first`) into dst, zeros past its end. */
function copyPlain (plain: Buffer, first: number, a: number, b: number, dst: Buffer): void {
  const off = a - first * SEGMENT
  const n = Math.max(0, Math.min(b - a, plain.length - off))
  if (n > 0) plain.copy(dst, 0, off, off + n)
  if (n < dst.length) dst.fill(0, n)
}
