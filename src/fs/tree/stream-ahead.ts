// Streaming entries: what a stream's read that reached JS puts ahead of the stream in the native
// read table (ReadShortcut.putStream, native/src/fuse3/fastread.c): the blocks after it that are
// sealed whole, clean and in a pack, each with where its record lies (the O_DIRECT descriptor to
// read it whole, the buffered one for later partial reads) and its CID's digest, which the worker
// checks the record against before opening it. The stream's next reads then never reach JS.
import { positionData } from '../../crypto/index.js'
import type { FileNode } from './nodes.js'
import { blockPosition } from './codec.js'
import { lastBlock } from './block-range.js'
import { isPatched } from './block-ref.js'
import type { BlockStore } from './ports.js'
import type { ReadShortcut } from './file-read.js'

/**
 * Blocks put ahead at a time: 128 MiB of a stream for ~110 bytes of table each. Put again once a
 * read that reaches JS comes within half of it of the end of what was put.
 */
export const STREAM_AHEAD = 1024

/** positionData(): v1's associated data (30 bytes), then v2's prefix (29, what native reads take). */
const AD_V1_LEN = 30
const AD_V2_PREFIX = 29
const HASH_ENTRY = 33
const BLAKE3 = 0x1e
const SHA2_256 = 0x12

/** Puts blocks from `from` on of `f` (up to STREAM_AHEAD, skipping what was put since the last drop) into `s`. */
export function putAhead (s: Pick<ReadShortcut, 'putStream' | 'aheadOf'>, store: Pick<BlockStore, 'locate'>, f: FileNode, from: number): void {
  if (s.putStream == null) return
  const start = Math.max(from, s.aheadOf?.(f) ?? 0)
  const end = Math.min(lastBlock(f.size) + 1, from + STREAM_AHEAD)
  if (start >= end || start - from > STREAM_AHEAD / 2) return
  const n = end - start
  const ads = new Uint8Array(n * AD_V2_PREFIX)
  const objs = new Float64Array(n * 5) // all zeros: no entry for that block
  const hashes = new Uint8Array(n * HASH_ENTRY)
  for (let k = 0; k < n; k++) {
    const i = start + k
    const ref = f.blocks?.get(i)
    if (ref == null || isPatched(ref) || f.dirty.has(i) || f.sealing.has(i) || f.patching.has(i)) continue
    const mh = ref.multihash
    if ((mh.code !== BLAKE3 && mh.code !== SHA2_256) || mh.digest.length !== 32) continue
    const whole = store.locate?.(ref)
    const buffered = whole?.direct === true ? store.locate?.(ref, true) : whole
    if (whole == null || buffered == null || buffered.direct === true || buffered.position !== whole.position || buffered.length !== whole.length) continue
    objs.set([buffered.fd, whole.fd, whole.direct === true ? 1 : 0, whole.position, whole.length], k * 5)
    hashes[k * HASH_ENTRY] = mh.code
    hashes.set(mh.digest, k * HASH_ENTRY + 1)
    ads.set(positionData(blockPosition(f, i)).subarray(AD_V1_LEN), k * AD_V2_PREFIX)
  }
  s.putStream(f, start, ads, objs, hashes)
}
