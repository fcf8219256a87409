// Writing file content: write() splits a range over blocks, fills their dirty buffers and starts
// sealing each block written to its end; truncate() cuts or extends a file; fallocate() extends
// it or zeroes a range (whole blocks become holes). The block states
// these move through are file-blocks.ts's; back pressure (dirty budget, seal jobs in flight,
// the store's backlog) is applied here, after the bytes are in.
import type { BlockRef } from './block-ref.js'
import { TreeError, fail } from './errors.js'
import type { FileNode } from './nodes.js'
import { touch } from './changes.js'
import { blockOf, offsetInBlock, roomInBlock, blockCount, blockStart, blockEnd, blockSpan } from './block-range.js'
import { BLOCK_SIZE } from './format.js'
import type { FileBlocks } from './file-blocks.js'
import type { BlockStore } from './ports.js'

const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER

/** fallocate(2) mode bits (linux/falloc.h). */
export const FALLOC_KEEP_SIZE = 0x01
export const FALLOC_PUNCH_HOLE = 0x02
export const FALLOC_ZERO_RANGE = 0x10
/** Unwritten store bytes beyond which a writer waits for the store to flush. */
const MAX_BACKLOG = 16 * 1024 * 1024

export interface FileWriteDeps {
  store: Pick<BlockStore, 'writeError' | 'flush' | 'backlog'>
  fileBlocks: FileBlocks
  blocks: (f: FileNode) => Promise<Map<number, BlockRef>>
  now: () => number
}

export class FileWriter {
  constructor (private readonly deps: FileWriteDeps) {}

  async write (f: FileNode, src: Buffer, pos: number): Promise<number> {
    const { store, fileBlocks } = this.deps
    if (store.writeError != null) {
      // Give the disk a chance to have room again before refusing.
      await store.flush().catch(() => {})
      if (store.writeError != null) throw new TreeError('ERR_NO_SPACE', store.writeError.message)
    }
    const len = src.length
    if (pos + len > MAX_FILE_SIZE) fail('ERR_TOO_BIG', 'file too large')
    if (f.blocks == null) await this.deps.blocks(f)
    let off = 0
    while (off < len) {
      const p = pos + off
      const idx = blockOf(p)
      const inner = offsetInBlock(p)
      const n = Math.min(roomInBlock(p), len - off)
      let buf = f.dirty.get(idx) ?? await fileBlocks.dirtyBlock(f, idx, inner === 0 && n === BLOCK_SIZE, inner + n, true)
      if (!await fileBlocks.prepareWrite(f, idx, inner, n)) continue // it loaded segments: fetch the buffer again
      if (buf.length < inner + n) buf = fileBlocks.growDirty(f, idx, buf, inner + n)
      src.copy(buf, inner, off, off + n)
      fileBlocks.written(f, idx, inner, n)
      off += n
      if (p + n > f.size) f.size = p + n
      // A block filled to its end is final for now: seal it at once so memory stays bounded.
      if (inner + n === BLOCK_SIZE && f.parent != null) fileBlocks.startSeal(f, idx)
    }
    this.changed(f)
    if (fileBlocks.overBudget) fileBlocks.sealAllDirty()
    if (fileBlocks.congested) await fileBlocks.waitForOneSeal()
    if (store.backlog > MAX_BACKLOG) await store.flush()
    return len
  }

  async truncate (f: FileNode, size: number): Promise<void> {
    f.pins++ // truncate(2) by path has no open handle: its block map must stay while it awaits (load.ts)
    try { await this.truncatePinned(f, size) } finally { f.pins-- }
  }

  private async truncatePinned (f: FileNode, size: number): Promise<void> {
    if (size > MAX_FILE_SIZE) fail('ERR_TOO_BIG', 'file too large')
    const blocks = await this.deps.blocks(f)
    if (size < f.size) {
      const keep = blockCount(size)
      for (const i of [...blocks.keys()]) if (i >= keep) f.setBlock(i, undefined)
      this.deps.fileBlocks.dropFrom(f, keep)
      const inner = offsetInBlock(size)
      if (inner !== 0) {
        const idx = keep - 1
        // A block still sealing must be cut too, or its seal lands later with the old tail.
        if (blocks.has(idx) || f.dirty.has(idx) || f.sealing.has(idx)) {
          const b = await this.deps.fileBlocks.completeDirty(f, idx, inner)
          if (inner < b.length) b.fill(0, inner)
        }
      }
    }
    f.size = size
    this.changed(f)
  }

  /**
   * fallocate(2), modes 0 and KEEP_SIZE (nothing is reserved ahead: a copy-on-write store cannot
   * promise room for later writes; the size grows unless KEEP_SIZE), PUNCH_HOLE|KEEP_SIZE and
   * ZERO_RANGE (with or without KEEP_SIZE). Zeroed whole blocks become holes, so they cost no
   * store space; partly covered blocks are rewritten with zeros. Other modes: ERR_UNSUPPORTED.
   */
  async fallocate (f: FileNode, mode: number, offset: number, length: number): Promise<void> {
    const keep = (mode & FALLOC_KEEP_SIZE) !== 0
    const op = mode & ~FALLOC_KEEP_SIZE
    if (op !== 0 && op !== FALLOC_PUNCH_HOLE && op !== FALLOC_ZERO_RANGE) fail('ERR_UNSUPPORTED', `fallocate mode 0x${mode.toString(16)} is not supported`)
    if (op === FALLOC_PUNCH_HOLE && !keep) fail('ERR_UNSUPPORTED', 'PUNCH_HOLE needs KEEP_SIZE')
    if (offset < 0 || length <= 0) fail('ERR_INVALID', 'fallocate needs offset >= 0 and length > 0')
    const end = offset + length
    if (end > MAX_FILE_SIZE) fail('ERR_TOO_BIG', 'file too large')
    if (f.blocks == null) await this.deps.blocks(f)
    let changed = false
    if (op !== 0) changed = await this.zeroRange(f, offset, Math.min(end, f.size))
    if (!keep && end > f.size) {
      f.size = end
      changed = true
    }
    if (changed) this.changed(f)
  }

  /** Zeroes [start, end) of a file (end <= size); returns whether there was anything to zero. */
  private async zeroRange (f: FileNode, start: number, end: number): Promise<boolean> {
    if (start >= end) return false
    const { fileBlocks } = this.deps
    const { first, last } = blockSpan(start, end)
    for (let idx = first; idx <= last; idx++) {
      const from = Math.max(start, blockStart(idx))
      const to = Math.min(end, blockEnd(idx))
      const stored = f.blocks!.has(idx) || f.dirty.has(idx) || f.sealing.has(idx)
      if (!stored) continue // a hole reads as zeros already
      if (from === blockStart(idx) && (to === blockEnd(idx) || to === f.size)) {
        // The whole block (or all of it the file keeps) goes: a hole.
        f.setBlock(idx, undefined)
        fileBlocks.dropBlock(f, idx)
        continue
      }
      const buf = await fileBlocks.completeDirty(f, idx, offsetInBlock(to - 1) + 1)
      buf.fill(0, offsetInBlock(from), Math.min(buf.length, offsetInBlock(from) + (to - from)))
    }
    return true
  }

  private changed (f: FileNode): void {
    const t = this.deps.now()
    f.attrs.mtime = t
    f.attrs.ctime = t
    touch(f)
  }
}
