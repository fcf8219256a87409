// Writing file content: write() splits a range over blocks, fills their dirty buffers and starts
// sealing each block written to its end; truncate() cuts or extends a file. The block states
// these move through are file-blocks.ts's; back pressure (dirty budget, seal jobs in flight,
// the store's backlog) is applied here, after the bytes are in.
import type { CID } from 'multiformats/cid'
import { TreeError, fail } from './errors.js'
import type { FileNode } from './nodes.js'
import { touch } from './changes.js'
import { blockOf, offsetInBlock, roomInBlock, blockCount } from './block-range.js'
import { BLOCK_SIZE } from './format.js'
import type { FileBlocks } from './file-blocks.js'
import type { BlockStore } from './ports.js'

const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER
/** Unwritten store bytes beyond which a writer waits for the store to flush. */
const MAX_BACKLOG = 16 * 1024 * 1024

export interface FileWriteDeps {
  store: Pick<BlockStore, 'writeError' | 'flush' | 'backlog'>
  fileBlocks: FileBlocks
  blocks: (f: FileNode) => Promise<Map<number, CID>>
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
      let buf = f.dirty.get(idx) ?? await fileBlocks.dirtyBlock(f, idx, inner === 0 && n === BLOCK_SIZE, inner + n)
      if (buf.length < inner + n) buf = fileBlocks.growDirty(f, idx, buf, inner + n)
      src.copy(buf, inner, off, off + n)
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
    if (size > MAX_FILE_SIZE) fail('ERR_TOO_BIG', 'file too large')
    const blocks = await this.deps.blocks(f)
    if (size < f.size) {
      const keep = blockCount(size)
      for (const i of [...blocks.keys()]) if (i >= keep) { blocks.delete(i); f.blockMapDirty = true }
      this.deps.fileBlocks.dropFrom(f, keep)
      const inner = offsetInBlock(size)
      if (inner !== 0) {
        const idx = keep - 1
        // A block still sealing must be cut too, or its seal lands later with the old tail.
        if (blocks.has(idx) || f.dirty.has(idx) || f.sealing.has(idx)) {
          const b = await this.deps.fileBlocks.dirtyBlock(f, idx, false, inner)
          if (inner < b.length) b.fill(0, inner)
        }
      }
    }
    f.size = size
    this.changed(f)
  }

  private changed (f: FileNode): void {
    const t = this.deps.now()
    f.attrs.mtime = t
    f.attrs.ctime = t
    touch(f)
  }
}
