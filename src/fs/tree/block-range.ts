// All block-offset arithmetic of file content: which block an offset falls in, where in it, which
// blocks a byte range spans, how many bytes a file keeps in a block, and the buffer and padded
// lengths of a block. Every `* BLOCK_SIZE`, `/ BLOCK_SIZE` and `% BLOCK_SIZE` of the tree lives
// here (test/tree/block-range.test.ts checks each against a naive walk over every offset).
import { padme } from '../../crypto/index.js'
import { BLOCK_SIZE } from './format.js'

/** Index of the block holding byte `offset`. */
export const blockOf = (offset: number): number => Math.floor(offset / BLOCK_SIZE)

/** Position of byte `offset` inside its block. */
export const offsetInBlock = (offset: number): number => offset % BLOCK_SIZE

/** Bytes from `offset` to the end of its block. */
export const roomInBlock = (offset: number): number => BLOCK_SIZE - offsetInBlock(offset)

/** File offset of the first byte of block `idx`. */
export const blockStart = (idx: number): number => idx * BLOCK_SIZE

/** File offset just past block `idx`. */
export const blockEnd = (idx: number): number => (idx + 1) * BLOCK_SIZE

/** Blocks a file of `size` bytes spans (the first `blockCount(size)` indices). */
export const blockCount = (size: number): number => Math.ceil(size / BLOCK_SIZE)

/** Index of the last block of a file of `size` bytes; -1 when it is empty. */
export const lastBlock = (size: number): number => blockCount(size) - 1

/** First and last block of the non-empty byte range [pos, end). */
export function blockSpan (pos: number, end: number): { first: number, last: number } {
  return { first: blockOf(pos), last: blockOf(end - 1) }
}

/** Bytes of block `idx` inside a file of `size` bytes (0 past its end). */
export function bytesInBlock (size: number, idx: number): number {
  return Math.max(0, Math.min(BLOCK_SIZE, size - blockStart(idx)))
}

/** Plaintext bytes of `count` whole blocks. */
export const bytesOfBlocks = (count: number): number => count * BLOCK_SIZE

/** 512-byte sectors (st_blocks units) of `bytes`, and of `count` whole blocks. */
export const sectorsOf = (bytes: number): number => Math.ceil(bytes / 512)
export const sectorsOfBlocks = (count: number): number => count * (BLOCK_SIZE / 512)

/** Buffer size for a new dirty block holding `need` bytes: small files get small buffers. */
export function bufferSizeFor (need: number): number {
  return need > BLOCK_SIZE / 2 ? BLOCK_SIZE : Math.max(4096, 2 ** Math.ceil(Math.log2(need)))
}

/** Plaintext length a block of `len` content bytes is sealed at: full blocks as they are, a short
 * last block padded (padme) so its ciphertext hides the exact length. */
export function paddedLength (len: number): number {
  return len === BLOCK_SIZE ? BLOCK_SIZE : Math.min(BLOCK_SIZE, padme(len))
}
