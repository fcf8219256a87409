// One memory budget for the drive's buffer pools and caches (issue 11 point 2: the daemon stays
// under 256 MiB while copying 4 GiB in and reading it back, or 35,000 small files, or random
// writes). Each pool that holds block-sized buffers gets a share of one number, so their sum is
// bounded and written down in one place: the decrypted-block cache, the sealing slots (sealed
// bytes wait there until they are on disk), the plaintext of dirty blocks before they are sealed,
// the block buffers kept for reuse by writes, and the seal jobs in flight (each holds its block's
// plaintext). The pack writer's backlog is bounded by the writer (file-write.ts MAX_BACKLOG),
// the block maps by load.ts MAP_BUDGET_BLOCKS.
//
// Sizes (BLOCK_SIZE 128 KiB), measured on the 2-core VM: with 32 MiB of cache, 256 slots
// (32 MiB), 64 MiB dirty and up to 512 kept buffers (64 MiB) the random-write fio row peaked at
// 290-480 MiB and the small-file copy at 272-324 MiB. docs/performance.md "Memory".
import { BLOCK_SIZE } from '../fs/tree/format.js'

/** The default budget (bytes): what the pools below may hold together at most. */
export const DEFAULT_MEMORY_BUDGET = 64 * 1024 * 1024

export interface MemoryShares {
  /** Decrypted-block cache (BlockCache), bytes. */
  cacheBytes: number
  /** Sealing slots (SealPool), each one sealed block. */
  sealSlots: number
  /** Plaintext of dirty blocks before they are all sealed at once, bytes (TreeOptions.dirtyBudget). */
  dirtyBudget: number
  /** Block buffers kept for reuse by writes, free or holding a block just sealed as patches. */
  keptBuffers: number
  /** Seal jobs in flight beyond which a writer waits for one to land. */
  maxSeals: number
}

/**
 * Splits `total` bytes: an eighth to the cache (reads of written data and partial writes' old
 * content hit it; a 1 GiB random working set gains little from more), an eighth to the sealing
 * slots (two pack appends' worth, 4 MiB each: the seal of one batch overlaps the write of the
 * last), three eighths each to dirty blocks and kept buffers. Seal jobs in flight are as many
 * as there are slots: beyond that a job only waits for a slot while holding its buffer.
 * `cacheBytes` given (--cache-mb) replaces the cache's share.
 */
export function memoryShares (total = DEFAULT_MEMORY_BUDGET, cacheBytes?: number): MemoryShares {
  const blocks = (bytes: number): number => Math.max(1, Math.floor(bytes / BLOCK_SIZE))
  const sealSlots = Math.max(MIN_SLOTS, blocks(total / 8))
  return {
    cacheBytes: cacheBytes ?? Math.floor(total / 8),
    sealSlots,
    dirtyBudget: Math.floor(total * 3 / 8),
    keptBuffers: blocks(total * 3 / 8),
    maxSeals: sealSlots
  }
}

/**
 * Fewest sealing slots: the pack writer appends once 4 MiB are pending (pack-writer.ts
 * FLUSH_BYTES) and a slot is free again only once its bytes are on disk, so fewer slots than
 * two batches would stall the seals on every append.
 */
const MIN_SLOTS = 64
