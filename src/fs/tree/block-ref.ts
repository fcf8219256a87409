// What a file's block map says about one block: a whole sealed block (its CID), or a base (a CID
// or a hole) with sealed patches over some of its 4 KiB segments, later patches winning
// (docs/format.md, "Block map node"). How a block map entry encodes either, which object holds
// each segment, and when a block has collected enough patches to be sealed whole again.
import type { CID } from 'multiformats/cid'
import { NONCE_LEN, SEGMENT, sealedLength } from '../../crypto/index.js'
import { BLOCK_SIZE, type BlockEntry } from './format.js'
import { fail } from './errors.js'
import { compactCid } from '../../store/cid.js'

/** Sealed segments [first, first + count) of a block, in one v2 object whose segments are numbered from `first`. */
export interface Patch { cid: CID, first: number, count: number }

export interface PatchedBlock { base: CID | null, patches: Patch[] }

export type BlockRef = CID | PatchedBlock

/** A patch in a v4 leaf: its CID, segments and nonce (12 bytes, or null: not stated). */
export type NoncedPatch = [CID, number, number, Uint8Array | null]
/** One block in a v4 leaf: [index, CID, nonce] whole, or [index, base | null, patches, base nonce] (docs/format.md, "Block map node"). */
export type NoncedEntry = [number, CID, Uint8Array | null] | [number, CID | null, NoncedPatch[], Uint8Array | null]

/** Segments per block. */
export const SEGMENTS = BLOCK_SIZE / SEGMENT

/**
 * Distinct segments a block's patches hold at which it is sealed whole again at its next seal:
 * the tuning of store bytes per small write against the patch entries a block keeps (in its
 * leaf and in memory) and the reads a patched block costs (docs/performance.md, "Random I/O").
 * 24: under uniform random 4 KiB writes a block folds after ~44 writes (16 with repeats
 * counted: ~22), 7 KiB appended per write on average instead of ~10.
 */
export const FOLD_SEGMENTS = 24

/**
 * Patches a block may keep however many segments they hold: a block written in a few large runs
 * (a database log's frames appended, 64 KiB writes of its halves) stays patched instead of being
 * sealed whole again, which wrote each of its bytes twice (docs/format.md, "Fold").
 */
export const FEW_PATCHES = 4

export const isPatched = (r: BlockRef): r is PatchedBlock => (r as PatchedBlock).patches != null

export const baseOf = (r: BlockRef): CID | null => isPatched(r) ? r.base : r

export const patchesOf = (r: BlockRef): Patch[] => isPatched(r) ? r.patches : []

/** The segments [first, first + count) as a bit mask (bit s: segment s). */
export const segmentMask = (first: number, count: number): number => (count >= 32 ? 0xffffffff : ((1 << count) - 1) << first) >>> 0

/** The segments a block's patches hold, as a bit mask. */
export function patchedMask (r: BlockRef | undefined): number {
  let m = 0
  if (r != null) for (const p of patchesOf(r)) m |= segmentMask(p.first, p.count)
  return m >>> 0
}

/** Distinct segments a block's patches hold. */
export const patchedSegments = (r: BlockRef | undefined): number => popcount(patchedMask(r))

export function popcount (x: number): number {
  let n = 0
  for (let v = x >>> 0; v !== 0; v &= v - 1) n++
  return n
}

/**
 * The block with one more patch (applied over everything before it). Earlier patches that later
 * ones cover entirely are dropped: nothing reads them any more, so a block names at most one
 * patch per segment (32) however often it is rewritten.
 */
export function withPatch (r: BlockRef | undefined, p: Patch): PatchedBlock {
  const all = [...(r != null ? patchesOf(r) : []), p]
  const kept: Patch[] = []
  let covered = 0
  for (let i = all.length - 1; i >= 0; i--) {
    const m = segmentMask(all[i].first, all[i].count)
    if ((m & ~covered) !== 0) kept.push(all[i])
    covered |= m
  }
  kept.reverse()
  // Patches over every segment: nothing reads the base any more (it may be reclaimed).
  return { base: r != null && covered >>> 0 !== 0xffffffff ? baseOf(r) : null, patches: kept }
}

/** Patches block `r` keeps once the runs of `written` (a segment mask) are added over it. */
export function patchesAfter (r: BlockRef | undefined, written: number): number {
  let runs = 0
  for (let s = 0; s < SEGMENTS; s++) if ((written & (1 << s)) !== 0 && (s === 0 || (written & (1 << (s - 1))) === 0)) runs++
  let kept = 0
  if (r != null) for (const p of patchesOf(r)) if ((segmentMask(p.first, p.count) & ~written) !== 0) kept++
  return kept + runs
}

/** Whether the next write into `r` makes the block whole again: its patches hold FOLD_SEGMENTS segments, in more than FEW_PATCHES patches. */
export const foldsAt = (r: BlockRef | undefined): boolean => r != null && patchesOf(r).length > FEW_PATCHES && patchedSegments(r) >= FOLD_SEGMENTS

/** The object segment `s` of a block is read from (a patch's, or the base's; cid null: a hole). */
export function sourceOf (r: BlockRef, s: number): { cid: CID | null, first: number } {
  const ps = patchesOf(r)
  for (let i = ps.length - 1; i >= 0; i--) {
    const p = ps[i]
    if (s >= p.first && s < p.first + p.count) return { cid: p.cid, first: p.first }
  }
  return { cid: baseOf(r), first: 0 }
}

/**
 * Runs of consecutive segments of [s0, s1] that one object holds, in order: what a read of
 * those segments fetches (one read per run).
 */
export function sourceRuns (r: BlockRef, s0: number, s1: number): Array<{ cid: CID | null, first: number, from: number, to: number }> {
  const runs: Array<{ cid: CID | null, first: number, from: number, to: number }> = []
  for (let s = s0; s <= s1; s++) {
    const src = sourceOf(r, s)
    const last = runs.at(-1)
    if (last != null && last.cid === src.cid && last.first === src.first && last.to === s) last.to = s + 1
    else runs.push({ ...src, from: s, to: s + 1 })
  }
  return runs
}

/** Every CID a block names (its base and its patches): what it keeps reachable. */
export const cidsOf = (r: BlockRef): CID[] => isPatched(r) ? [...(r.base != null ? [r.base] : []), ...r.patches.map(p => p.cid)] : [r]

/**
 * What an authenticated source says of the v2 object a CID names: its nonce and sealed length,
 * as the 16 bytes the read path takes (nonce[12] | u32be length) in a latin1 string (no
 * ArrayBuffer per CID for the collector to track). The sources: the seal that made the object in
 * this process, a read that hashed the object whole against the CID, and the block map leaf (v4)
 * that names it (docs/format.md, "Block map node", "Nonces in the entries"). A reader holding it
 * opens the object's segments alone, as for a nonce it remembers from a check.
 */
interface Stated { stated?: string }

/** The nonce and sealed length stated for `cid`'s object (16 bytes as latin1), if any. */
export const statedOf = (cid: CID): string | undefined => (cid as CID & Stated).stated

/** States `cid`'s object's nonce and sealed length (see Stated); only from an authenticated source. */
export function state (cid: CID, nonce: Uint8Array, sealedLen: number): CID {
  const b = Buffer.allocUnsafe(NONCE_LEN + 4)
  b.set(nonce.subarray(0, NONCE_LEN))
  b.writeUInt32BE(sealedLen, NONCE_LEN)
  ;(cid as CID & Stated).stated = b.toString('latin1')
  return cid
}

/** A whole block's sealed length, the only one a v4 entry states a block's nonce for. */
const FULL_BLOCK = sealedLength(BLOCK_SIZE)

/** The nonce a v4 leaf entry records for an object of `full` sealed bytes (a whole block's, or a patch's of its count): only one stated at that length. */
export function entryNonce (cid: CID | null, full: number): Uint8Array | null {
  const s = cid != null ? statedOf(cid) : undefined
  if (s == null) return null
  const b = Buffer.from(s, 'latin1')
  return b.readUInt32BE(NONCE_LEN) === full ? b.subarray(0, NONCE_LEN) : null
}

/** The sealed length of a patch of `count` segments (always full ones: patches are written over blocks the file fills). */
export const patchLength = (count: number): number => sealedLength(count * SEGMENT)

/** Objects of `r` whose nonce is stated (what a v4 entry of it records, when at full length). */
export function statedCount (r: BlockRef): number {
  let n = 0
  for (const c of cidsOf(r)) if (statedOf(c) != null) n++
  return n
}

/** The block map entry of block `idx` (the forms without nonces: directory entries, flat maps, leaves v2). */
export function entryOf (idx: number, r: BlockRef): BlockEntry {
  return isPatched(r) ? [idx, r.base, r.patches.map(p => [p.cid, p.first, p.count])] : [idx, r]
}

/**
 * A block map entry as a block reference. Its CIDs are made compact (store/cid.ts): the decoded
 * ones are views of the whole decoded node, and a file's references stay loaded.
 */
export function fromEntry (e: BlockEntry): [number, BlockRef] {
  if (e.length === 2) return [e[0], compactCid(e[1])]
  if (e.length !== 3 || !Array.isArray(e[2])) fail('ERR_FORMAT', `block ${String(e[0])}: an entry of ${String(e.length)} items`)
  const patches = e[2].map(([cid, first, count]) => {
    checkPatch(e[0], first, count)
    return { cid: compactCid(cid), first, count }
  })
  return [e[0], { base: e[1] != null ? compactCid(e[1]) : null, patches }]
}

function checkPatch (idx: number, first: number, count: number): void {
  if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 1 || first + count > SEGMENTS) fail('ERR_FORMAT', `block ${idx}: a patch of segments ${first} + ${count}`)
}

/** A stated nonce as decoded: 12 bytes, or null. */
function nonceField (idx: number, n: unknown): Uint8Array | null {
  if (n === null) return null
  if (!(n instanceof Uint8Array) || n.length !== NONCE_LEN) return fail('ERR_FORMAT', `block ${idx}: a nonce that is not ${NONCE_LEN} bytes`)
  return n
}

/**
 * An entry of a v4 leaf as a block reference, each object's CID stating the nonce the entry
 * records (at the full length its form implies: a whole block's, or its patch's count).
 */
export function fromNoncedEntry (e: NoncedEntry): [number, BlockRef] {
  const idx = e[0]
  const compact = (cid: CID, nonce: unknown, full: number): CID => {
    const c = compactCid(cid)
    const n = nonceField(idx, nonce)
    return n != null ? state(c, n, full) : c
  }
  if (e.length === 3 && !Array.isArray(e[2])) return [idx, compact(e[1], e[2], FULL_BLOCK)]
  if (e.length !== 4 || !Array.isArray(e[2])) return fail('ERR_FORMAT', `block ${String(idx)}: an entry of ${String(e.length)} items`)
  const patches = e[2].map(p => {
    if (!Array.isArray(p) || p.length !== 4) fail('ERR_FORMAT', `block ${idx}: a patch of ${String((p as unknown[])?.length)} items`)
    const [cid, first, count, nonce] = p
    checkPatch(idx, first, count)
    return { cid: compact(cid, nonce, patchLength(count)), first, count }
  })
  if (e[1] == null && e[3] != null) fail('ERR_FORMAT', `block ${idx}: a nonce for a hole`)
  return [idx, { base: e[1] != null ? compact(e[1], e[3], FULL_BLOCK) : null, patches }]
}

/** Block `idx`'s v4 leaf entry, each object's nonce where stated at its full length (what block-map.ts's entryBody encodes by hand). */
export function noncedEntryOf (idx: number, r: BlockRef): NoncedEntry {
  if (!isPatched(r)) return [idx, r, entryNonce(r, FULL_BLOCK)]
  return [idx, r.base, r.patches.map(p => [p.cid, p.first, p.count, entryNonce(p.cid, patchLength(p.count))]), entryNonce(r.base, FULL_BLOCK)]
}

/** A v4 entry in the forms without nonces (what fsck walks: docs/format.md). */
export function plainEntry (e: NoncedEntry): BlockEntry {
  if (e.length === 3 && !Array.isArray(e[2])) return [e[0], e[1]]
  const p = e as [number, CID | null, Array<[CID, number, number, Uint8Array | null]>, Uint8Array | null]
  return [p[0], p[1], (p[2] ?? []).map(([cid, first, count]) => [cid, first, count])]
}
