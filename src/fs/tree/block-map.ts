// A file's block map as a tree of sealed nodes (docs/format.md, "Block map node"), so a commit
// re-encodes and re-seals only the leaves whose blocks changed and the path above them, not the
// whole map. Owns the tree's shape (which node holds which block, node positions), sealing the
// changed nodes of a file at a commit, and reading a tree (or an old flat map) back into the
// file's in-memory block list. The in-memory list (FileNode.blocks) stays whole: only the sealed
// form is split.
import type { CID } from 'multiformats/cid'
import { seal, SealType, padFrame, unpadFrame, type SealPosition } from '../../crypto/index.js'
import { type BlockEntry, BLOCK_SIZE, encode, decodeAny } from './format.js'
import { fail } from './errors.js'
import { type BlockRef, fromEntry, isPatched } from './block-ref.js'
import type { FileNode } from './nodes.js'
import type { BlockStore } from './ports.js'

/** Blocks per leaf: 2 MiB of file. Why 16: docs/performance.md, "Block map tree". */
export const LEAF_BLOCKS = 16
/** Children per inner node. */
export const FANOUT = 64
/** Body version of the flat map (format 1 and early format 2) and of tree nodes. */
export const FLAT_MAP = 1
export const TREE_MAP = 2
/** Tallest tree a reader accepts: 16 x 64^6 blocks is more than any file can have (2^36). */
const MAX_HEIGHT = 6
/** Node positions: level (0 = leaves) and number within the level; the root is index 0. */
const LEVEL_STRIDE = 2 ** 40

/** The sealed tree of a file's block map as last sealed or read: its root and every other node by position index. */
export interface MapTree { root: CID, height: number, nodes: Map<number, CID> }

/** Bodies of the three node kinds (dag-cbor, padded frame). */
interface RootBody { v: number, h: number, c: Array<[number, CID]> }
interface InnerBody { v: number, c: Array<[number, CID]> }
interface LeafBody { v: number, b: BlockEntry[] }
interface FlatBody { v: number, b: BlockEntry[] }

/** The position index of node `k` of level `level` (the root is not one of them: index 0). */
export const nodeIndex = (level: number, k: number): number => (level + 1) * LEVEL_STRIDE + k

const position = (f: FileNode, index: number): SealPosition => ({ type: SealType.BlockMap, objectId: f.id, index })

/** Levels below the root a file of `blocks` blocks needs (at least 1: the root lists leaves). */
export function heightFor (blocks: number): number {
  let h = 1
  for (let span = LEAF_BLOCKS * FANOUT; span < blocks; span *= FANOUT) h++
  return h
}

/**
 * Seals what changed of `f`'s block map into `store` and returns the new root's CID: the leaves
 * holding `f.changedBlocks` and their ancestors, or every node when the map must be rewritten
 * whole (`f.blockMapDirty`, no tree known for the current root, the tree's height changed).
 */
export function sealMapTree (f: FileNode, store: Pick<BlockStore, 'put'>): CID {
  const blocks = f.blocks!
  const old = f.mapTree
  const whole = f.blockMapDirty || old == null || f.blockMap == null || !old.root.equals(f.blockMap)
  let top = Math.ceil(f.size / BLOCK_SIZE)
  for (const i of whole ? blocks.keys() : f.changedBlocks) if (i + 1 > top && blocks.has(i)) top = i + 1
  const height = heightFor(top)
  const nodes = whole ? new Map<number, CID>() : old.nodes
  let dirty = new Set<number>()
  for (const i of whole ? blocks.keys() : f.changedBlocks) dirty.add(Math.floor(i / LEAF_BLOCKS))
  for (const k of dirty) {
    const body = leafBody(blocks, k)
    const index = nodeIndex(0, k)
    if (body == null) nodes.delete(index)
    else nodes.set(index, store.put(seal(f.key, position(f, index), padFrame(body))))
  }
  if (!whole && old.height !== height) {
    // The tree grew or shrank: inner nodes are rebuilt from the leaves (they keep their positions).
    dirty = new Set()
    for (const index of [...nodes.keys()]) {
      if (index < nodeIndex(1, 0)) dirty.add(index - nodeIndex(0, 0))
      else nodes.delete(index)
    }
  }
  for (let level = 1; level < height; level++) {
    const up = new Set<number>()
    for (const k of dirty) up.add(Math.floor(k / FANOUT))
    for (const k of up) {
      const c = children(nodes, level - 1, k)
      const index = nodeIndex(level, k)
      if (c.length === 0) nodes.delete(index)
      else nodes.set(index, store.put(sealBody(f, index, nodeBody(c, null))))
    }
    dirty = up
  }
  const root = store.put(sealBody(f, 0, nodeBody(children(nodes, height - 1, 0), height)))
  f.mapTree = { root, height, nodes }
  f.clearChanged()
  return root
}

/** The non-empty children of node `k` one level above `level`: [slot, CID], by slot. */
function children (nodes: Map<number, CID>, level: number, k: number): Array<[number, CID]> {
  const c: Array<[number, CID]> = []
  for (let s = 0; s < FANOUT; s++) { const cid = nodes.get(nodeIndex(level, k * FANOUT + s)); if (cid != null) c.push([s, cid]) }
  return c
}

/**
 * Encoded block entries by block reference (a reference object is replaced, never changed, when
 * its block changes): a leaf is resealed when one of its blocks changed, and its other blocks
 * are not encoded again (dag-cbor of CIDs is most of a commit's CPU otherwise).
 */
const entryBytes = new WeakMap<BlockRef, { idx: number, bytes: Uint8Array }>()

function encodedEntry (idx: number, r: BlockRef): Uint8Array {
  const c = entryBytes.get(r)
  if (c?.idx === idx) return c.bytes
  const bytes = entryBody(idx, r)
  entryBytes.set(r, { idx, bytes })
  return bytes
}

/** dag-cbor of a CID, cached per CID object (a CID is never changed). */
function cidCbor (cid: CID): Uint8Array {
  let e = cidBytes.get(cid)
  if (e == null) { e = encode(cid); cidBytes.set(cid, e) }
  return e
}

/** Bytes of a CBOR unsigned integer (major type 0) of `n` < 2^53. */
function cborUint (n: number): number[] {
  if (n < 24) return [n]
  if (n < 0x100) return [0x18, n]
  if (n < 0x10000) return [0x19, n >> 8, n & 0xff]
  if (n < 0x100000000) return [0x1a, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
  const hi = Math.floor(n / 0x100000000)
  return [0x1b, hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
}

/** CBOR array head of `n` items. */
const arrayHead = (n: number): number[] => { const u = cborUint(n); u[0] |= 0x80; return u }

/**
 * The dag-cbor of block `idx`'s map entry, `[idx, cid]` or `[idx, base | null, [[cid, first,
 * count], ...]]`, from the cached encodings of its CIDs: the bytes encode() writes
 * (test/tree/block-map.test.ts) at a fraction of its cost (a commit encodes every changed block's entry).
 */
export function entryBody (idx: number, r: BlockRef): Uint8Array {
  const parts: Array<Uint8Array | number[]> = []
  if (!isPatched(r)) parts.push([0x82], cborUint(idx), cidCbor(r))
  else {
    parts.push([0x83], cborUint(idx), r.base != null ? cidCbor(r.base) : [0xf6], arrayHead(r.patches.length))
    for (const p of r.patches) parts.push([0x83], cidCbor(p.cid), cborUint(p.first), cborUint(p.count))
  }
  let len = 0
  for (const x of parts) len += x.length
  const out = new Uint8Array(len)
  let o = 0
  for (const x of parts) { out.set(x, o); o += x.length }
  return out
}

/**
 * The dag-cbor body of leaf `k`, `{ v: 2, b: [...] }` with its keys in canonical order (b, v),
 * built from the encoded entries; null when the leaf holds no block.
 */
export function leafBody (blocks: Map<number, BlockRef>, k: number): Uint8Array | null {
  const parts: Uint8Array[] = []
  let len = 0
  for (let i = k * LEAF_BLOCKS; i < (k + 1) * LEAF_BLOCKS; i++) {
    const r = blocks.get(i)
    if (r == null) continue
    const e = encodedEntry(i, r)
    parts.push(e)
    len += e.length
  }
  if (parts.length === 0) return null
  const out = new Uint8Array(4 + len + 3)
  out.set([0xa2, 0x61, 0x62, 0x80 | parts.length]) // map(2), "b", array(n): n <= 16 < 24 fits the head byte
  let o = 4
  for (const e of parts) { out.set(e, o); o += e.length }
  out.set([0x61, 0x76, TREE_MAP], o) // "v", 2
  return out
}

function sealBody (f: FileNode, index: number, body: Uint8Array): Uint8Array {
  return seal(f.key, position(f, index), padFrame(body))
}

/** dag-cbor of each child CID (a CID object is never changed): inner nodes are rebuilt from them. */
const cidBytes = new WeakMap<CID, Uint8Array>()

/**
 * The dag-cbor body of an inner node, `{ c, v: 2 }`, or of the root, `{ c, h, v: 2 }` (keys in
 * canonical order), from the cached encodings of its children's CIDs: the same bytes as
 * encode() of the object (test/tree/block-map.test.ts), without encoding 64 CIDs per node per commit.
 */
export function nodeBody (c: Array<[number, CID]>, height: number | null): Uint8Array {
  const parts: Uint8Array[] = []
  let len = 0
  for (const [slot, cid] of c) {
    const e = cidCbor(cid)
    parts.push(e)
    len += 2 + (slot < 24 ? 0 : 1) + e.length
  }
  const n = c.length // at most FANOUT (64) < 256
  const out = new Uint8Array(1 + 2 + (n < 24 ? 1 : 2) + len + (height != null ? 3 : 0) + 3)
  let o = 0
  out[o++] = height != null ? 0xa3 : 0xa2 // map(3) / map(2)
  out[o++] = 0x61; out[o++] = 0x63 // "c"
  if (n < 24) out[o++] = 0x80 | n
  else { out[o++] = 0x98; out[o++] = n }
  c.forEach(([slot], i) => {
    out[o++] = 0x82 // [slot, CID]
    if (slot < 24) out[o++] = slot
    else { out[o++] = 0x18; out[o++] = slot }
    out.set(parts[i], o); o += parts[i].length
  })
  if (height != null) { out[o++] = 0x61; out[o++] = 0x68; out[o++] = height } // "h": height <= MAX_HEIGHT < 24
  out[o++] = 0x61; out[o++] = 0x76; out[o++] = TREE_MAP // "v", 2
  return out
}

/** Opens the sealed node at position `index` of a file's block map: its plaintext, still framed. */
export type OpenMapNode = (cid: CID, index: number) => Promise<Buffer>

/**
 * Reads a file's block map from its root (`framed`: the opened root, still framed): a flat map
 * (tree null) or a tree, every node opened through `openNode` (in parallel per level).
 */
export async function readMapTree (label: string, root: CID, framed: Buffer, openNode: OpenMapNode): Promise<{ pairs: Array<[number, BlockRef]>, tree: MapTree | null }> {
  const body = bodyOf<RootBody & FlatBody>(framed, `file ${label} block map`)
  if (body.v === FLAT_MAP) return { pairs: checkedEntries(body.b, 0, Infinity, label), tree: null }
  const height = body.h
  if (!Number.isInteger(height) || height < 1 || height > MAX_HEIGHT) fail('ERR_FORMAT', `file ${label} block map: height ${String(height)}`)
  const nodes = new Map<number, CID>()
  const pairs: Array<[number, BlockRef]> = []
  let level: Array<{ k: number, c: Array<[number, CID]> }> = [{ k: 0, c: checkedChildren(body.c, label) }]
  for (let l = height - 1; l >= 0; l--) {
    const next: typeof level = []
    await Promise.all(level.flatMap(({ k, c }) => c.map(async ([s, cid]) => {
      const n = k * FANOUT + s
      const index = nodeIndex(l, n)
      nodes.set(index, cid)
      const what = `file ${label} block map node ${l}/${n}`
      if (l === 0) {
        const leaf = bodyOf<LeafBody>(await openNode(cid, index), what)
        pairs.push(...checkedEntries(leaf.b, n * LEAF_BLOCKS, (n + 1) * LEAF_BLOCKS, label))
      } else {
        next.push({ k: n, c: checkedChildren(bodyOf<InnerBody>(await openNode(cid, index), what).c, label) })
      }
    })))
    level = next
  }
  pairs.sort((x, y) => x[0] - y[0])
  return { pairs, tree: { root, height, nodes } }
}

/**
 * Every CID a file's block map reaches, for fsck: `visit` gets each node (its CID and position
 * index) and returns its plaintext or null (it could not be read: a problem it recorded), and
 * `entries` gets the block entries of each leaf (or of a flat map).
 */
export async function walkMapTree (rootPlain: Buffer, what: string, visit: (cid: CID, index: number) => Promise<Buffer | null>, entries: (b: BlockEntry[]) => Promise<void>): Promise<void> {
  const body = bodyOf<RootBody & FlatBody>(rootPlain, what)
  if (body.v === FLAT_MAP) { await entries(body.b ?? []); return }
  const walk = async (level: number, k: number, c: Array<[number, CID]>): Promise<void> => {
    for (const [s, cid] of c ?? []) {
      const n = k * FANOUT + s
      const plain = await visit(cid, nodeIndex(level, n))
      if (plain == null) continue
      if (level === 0) await entries(bodyOf<LeafBody>(plain, what).b ?? [])
      else await walk(level - 1, n, bodyOf<InnerBody>(plain, what).c)
    }
  }
  await walk(body.h - 1, 0, body.c)
}

function bodyOf<T extends { v: number }> (framed: Buffer, what: string): T {
  const body = unpadFrame(framed) ?? fail('ERR_INTEGRITY', `${what}: bad framing`)
  return decodeAny<T>(body, what, [FLAT_MAP, TREE_MAP])
}

function checkedChildren (c: unknown, label: string): Array<[number, CID]> {
  if (!Array.isArray(c)) fail('ERR_FORMAT', `file ${label} block map: a node without children`)
  let last = -1
  for (const e of c as Array<[number, CID]>) {
    if (!Array.isArray(e) || !Number.isInteger(e[0]) || e[0] <= last || e[0] >= FANOUT) fail('ERR_FORMAT', `file ${label} block map: child slot ${String(e?.[0])}`)
    last = e[0]
  }
  return c as Array<[number, CID]>
}

function checkedEntries (b: BlockEntry[] | undefined, from: number, to: number, label: string): Array<[number, BlockRef]> {
  if (!Array.isArray(b)) return fail('ERR_FORMAT', `file ${label} block map: a leaf without blocks`)
  const pairs = b.map(fromEntry)
  let last = from - 1
  for (const [i] of pairs) {
    if (!Number.isInteger(i) || i <= last || i >= to) fail('ERR_FORMAT', `file ${label} block map: block ${String(i)} out of place`)
    last = i
  }
  return pairs
}
