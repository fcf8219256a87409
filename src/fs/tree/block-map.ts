// A file's block map as a tree of sealed nodes (docs/format.md, "Block map node"), so a commit
// re-encodes and re-seals only the leaves whose blocks changed and the path above them, not the
// whole map. Owns the tree's shape (which node holds which block, node positions), sealing the
// changed nodes of a file at a commit, and reading a tree (or an old flat map) back into the
// file's in-memory block list. The in-memory list (FileNode.blocks) stays whole: only the sealed
// form is split.
import type { CID } from 'multiformats/cid'
import { seal, sealedLength, NONCE_LEN, SealType, padFrame, unpadFrame, type SealPosition } from '../../crypto/index.js'
import { type BlockEntry, BLOCK_SIZE, decodeAny } from './format.js'
import { fail } from './errors.js'
import { type BlockRef, type NoncedEntry, type PatchedBlock, fromEntry, fromNoncedEntry, isPatched, patchLength, plainEntry, statedCount, statedOf } from './block-ref.js'
import type { FileNode } from './nodes.js'
import type { BlockStore } from './ports.js'
import { cidOf } from '../../store/cid.js'

/** Blocks per leaf of the wide shape: 2 MiB of file. Why 16: docs/performance.md, "Block map tree". */
export const LEAF_BLOCKS = 16
/** Children per inner node of the wide shape. */
export const FANOUT = 64
/** Body version of the flat map (format 1 and early format 2) and of tree nodes. */
export const FLAT_MAP = 1
export const TREE_MAP = 2
/** Body version of a narrow tree's root, which names its shape (its other nodes are TREE_MAP). */
export const SHAPED_MAP = 3
/**
 * Body version of a leaf whose entries state each object's nonce (docs/format.md, "Nonces in
 * the entries"): what every leaf is sealed as now. Leaves of TREE_MAP still read, in any tree.
 */
export const NONCED_LEAF = 4
/** Most blocks a file can have (2^36: 8 PiB): what bounds a tree's height. */
const MAX_BLOCKS = 2 ** 36
/** Node positions: level (0 = leaves) and number within the level; the root is index 0. */
const LEVEL_STRIDE = 2 ** 40

/**
 * A tree's shape: blocks per leaf and children per inner node. Wide trees (the default) keep a
 * big sequentially written file's map to few objects; a file with many patched blocks (random
 * small writes: a database, a VM image) gets narrow ones, whose leaves hold its long patch
 * lists two blocks at a time, so a commit after a few random writes reseals a few small leaves
 * and inner nodes instead of 16 blocks' lists per write (docs/performance.md, "Random I/O").
 */
export interface MapShape { readonly leaf: number, readonly fanout: number }
export const WIDE: MapShape = { leaf: LEAF_BLOCKS, fanout: FANOUT }
export const NARROW: MapShape = { leaf: 2, fanout: 16 }

/**
 * The sealed tree of a file's block map as last sealed or read: its root, every other node by
 * position index, its shape, and how many of its blocks are patched (in all, and per leaf that
 * holds any): what chooses the shape of the next seal.
 */
export interface MapTree {
  root: CID
  height: number
  nodes: Map<number, CID>
  shape: MapShape
  patched: number
  leafPatched: Map<number, number> | null
  /** Commits in a row that resealed at most 1 leaf in 8 (small commits: fsyncs between few writes). */
  small: number
}

/** Bodies of the three node kinds (dag-cbor, padded frame); a narrow root has `l` and `f`. */
interface RootBody { v: number, h: number, c: Array<[number, CID]>, l?: number, f?: number }
interface InnerBody { v: number, c: Array<[number, CID]> }
interface LeafBody { v: number, b: BlockEntry[] | NoncedEntry[] }
interface FlatBody { v: number, b: BlockEntry[] }

/** The position index of node `k` of level `level` (the root is not one of them: index 0). */
export const nodeIndex = (level: number, k: number): number => (level + 1) * LEVEL_STRIDE + k

const position = (f: FileNode, index: number): SealPosition => ({ type: SealType.BlockMap, objectId: f.id, index })

/** Levels below the root a file of `blocks` blocks needs (at least 1: the root lists leaves). */
export function heightFor (blocks: number, shape: MapShape = WIDE): number {
  let h = 1
  for (let span = shape.leaf * shape.fanout; span < blocks; span *= shape.fanout) h++
  return h
}

/** Small commits in a row before a wide map turns narrow (a switch reseals the whole map once). */
export const SMALL_COMMITS = 8

/**
 * The shape the next seal of a map of `blocks` blocks, `patched` of them patched, should have,
 * given its current one, the leaves this commit reseals (`touched` of `leaves`) and the small
 * commits before it. Narrow pays where commits are small and patch lists long: from 1 patched
 * block in 16 on, after SMALL_COMMITS commits in a row that resealed at most 1 leaf in 8. Wide
 * again below 1 patched block in 64, or at a commit that reseals more than 1 narrow leaf in 4 (a
 * commit once a second under random writes reseals most leaves: as many bytes either way, 8x the
 * objects narrow, and the switch costs about what the commit would anyway).
 */
export function shapeFor (blocks: number, patched: number, current: MapShape, touched = 0, leaves = 1, small = SMALL_COMMITS): MapShape {
  if (current === NARROW) return patched * 64 < blocks || touched * 4 > leaves ? WIDE : NARROW
  return patched * 16 >= blocks && patched >= 8 && small >= SMALL_COMMITS ? NARROW : WIDE
}

/** Patched blocks of leaf `k`. */
function patchedIn (blocks: Map<number, BlockRef>, k: number, leaf: number): number {
  let n = 0
  for (let i = k * leaf; i < (k + 1) * leaf; i++) { const r = blocks.get(i); if (r != null && isPatched(r)) n++ }
  return n
}

/**
 * Seals what changed of `f`'s block map into `store` and returns the new root's CID: the leaves
 * holding `f.changedBlocks` and their ancestors, or every node when the map must be rewritten
 * whole (`f.blockMapDirty`, no tree known for the current root, the tree's height changed).
 */
export function sealMapTree (f: FileNode, to: Pick<BlockStore, 'put'> & Partial<Pick<BlockStore, 'putFresh'>>): CID {
  // Every node is sealed here under a fresh nonce: stored without a dedupe probe where the store can.
  const store = to.putFresh != null ? { put: (b: Uint8Array) => to.putFresh!(cidOf(b), b) } : to
  const blocks = f.blocks!
  const old = f.mapTree
  let whole = f.blockMapDirty || old == null || f.blockMap == null || !old.root.equals(f.blockMap)
  let shape = old?.shape ?? WIDE
  let patched = 0
  let leafPatched: Map<number, number> | null = null
  let small = 0
  let dirty = new Set<number>()
  if (!whole) {
    // The patched count after this commit, from the changed leaves: it may call for the other shape.
    for (const i of f.changedBlocks) dirty.add(Math.floor(i / shape.leaf))
    patched = old!.patched
    leafPatched = old!.leafPatched
    for (const k of dirty) {
      const n = patchedIn(blocks, k, shape.leaf)
      patched += n - (leafPatched?.get(k) ?? 0)
      if (n > 0) (leafPatched ??= new Map()).set(k, n)
      else leafPatched?.delete(k)
    }
    const leaves = Math.max(1, Math.ceil(Math.max(f.size / BLOCK_SIZE, 1) / shape.leaf))
    small = dirty.size * 8 <= leaves ? old!.small + 1 : 0
    const want = shapeFor(blocks.size, patched, shape, dirty.size, leaves, small)
    if (want !== shape) { whole = true; shape = want; small = 0 }
  } else {
    // Rewritten whole (a truncate, a first seal, a map read without its tree): a narrow map stays
    // narrow while it has the patches for it; nothing turns narrow without small commits seen.
    for (const r of blocks.values()) if (isPatched(r)) patched++
    shape = shape === NARROW && shapeFor(blocks.size, patched, NARROW) === NARROW ? NARROW : WIDE
  }
  if (whole) {
    dirty = new Set()
    for (const i of blocks.keys()) dirty.add(Math.floor(i / shape.leaf))
    leafPatched = null
    for (const k of dirty) { const n = patchedIn(blocks, k, shape.leaf); if (n > 0) (leafPatched ??= new Map()).set(k, n) }
  }
  let top = Math.ceil(f.size / BLOCK_SIZE)
  for (const i of whole ? blocks.keys() : f.changedBlocks) if (i + 1 > top && blocks.has(i)) top = i + 1
  const height = heightFor(top, shape)
  const nodes = whole ? new Map<number, CID>() : old!.nodes
  for (const k of dirty) {
    const body = leafBody(blocks, k, shape.leaf)
    const index = nodeIndex(0, k)
    if (body == null) nodes.delete(index)
    else nodes.set(index, store.put(seal(f.key, position(f, index), padFrame(body))))
  }
  if (!whole && old!.height !== height) {
    // The tree grew or shrank: inner nodes are rebuilt from the leaves (they keep their positions).
    dirty = new Set()
    for (const index of [...nodes.keys()]) {
      if (index < nodeIndex(1, 0)) dirty.add(index - nodeIndex(0, 0))
      else nodes.delete(index)
    }
  }
  for (let level = 1; level < height; level++) {
    const up = new Set<number>()
    for (const k of dirty) up.add(Math.floor(k / shape.fanout))
    for (const k of up) {
      const n = gather(nodes, level - 1, k, shape.fanout)
      const index = nodeIndex(level, k)
      if (n === 0) nodes.delete(index)
      else nodes.set(index, store.put(sealBody(f, index, gatheredBody(n, null, WIDE))))
    }
    dirty = up
  }
  const root = store.put(sealBody(f, 0, gatheredBody(gather(nodes, height - 1, 0, shape.fanout), height, shape)))
  f.mapTree = { root, height, nodes, shape, patched, leafPatched, small }
  f.clearChanged()
  return root
}

/**
 * The non-empty children of node `k` one level above `level`, by slot, into gatheredSlots and
 * gatheredCids (reused: a [slot, CID] pair per child per commit was garbage); their number.
 */
function gather (nodes: Map<number, CID>, level: number, k: number, fanout: number): number {
  let n = 0
  for (let s = 0; s < fanout; s++) {
    const cid = nodes.get(nodeIndex(level, k * fanout + s))
    if (cid != null) { gatheredSlots[n] = s; gatheredCids[n] = cid; n++ }
  }
  return n
}
const gatheredSlots: number[] = []
const gatheredCids: CID[] = []

/**
 * Encoded block entries by block reference (a reference object is replaced, never changed, when
 * its block changes): a leaf is resealed when one of its blocks changed, and its other blocks
 * are not encoded again (dag-cbor of CIDs is most of a commit's CPU otherwise).
 */
const entryBytes = new WeakMap<BlockRef, { idx: number, stated: number, bytes: Uint8Array }>()

function encodedEntry (idx: number, r: BlockRef): Uint8Array {
  const c = entryBytes.get(r)
  // A read that checked an object whole since states its nonce: the entry records it now.
  const stated = statedCount(r)
  if (c?.idx === idx && c.stated === stated) return c.bytes
  const bytes = entryBody(idx, r)
  entryBytes.set(r, { idx, stated, bytes })
  return bytes
}

/**
 * dag-cbor of a CID, cached per CID object (a CID is never changed): tag 42 over a byte string
 * of 0x00 and the CID's bytes, written here (the library's encode() took ~10 us per CID, and a
 * commit encodes the CID of every node it seals; test/tree/block-map.test.ts compares the bytes).
 */
function cidCbor (cid: CID): Uint8Array {
  let e = cidBytes.get(cid)
  if (e == null) {
    const b = cid.bytes
    const n = b.length + 1
    const head = n < 24 ? 1 : n < 0x100 ? 2 : 3
    e = new Uint8Array(2 + head + n)
    e[0] = 0xd8; e[1] = 42 // tag(42)
    if (head === 1) e[2] = 0x40 | n
    else if (head === 2) { e[2] = 0x58; e[3] = n } else { e[2] = 0x59; e[3] = n >> 8; e[4] = n & 0xff }
    e[2 + head] = 0 // the multibase identity prefix
    e.set(b, 3 + head)
    cidBytes.set(cid, e)
  }
  return e
}

/** Bytes of the head of a CBOR item of major type `major` (0: unsigned, 0x80: array) and argument `n` < 2^53. */
const headLen = (n: number): number => n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9

/** Writes that head at out[o]; returns the offset after it. */
function putHead (out: Uint8Array, o: number, major: number, n: number): number {
  if (n < 24) { out[o] = major | n; return o + 1 }
  if (n < 0x100) { out[o] = major | 24; out[o + 1] = n; return o + 2 }
  if (n < 0x10000) { out[o] = major | 25; out[o + 1] = n >> 8; out[o + 2] = n & 0xff; return o + 3 }
  const hi = Math.floor(n / 0x100000000)
  if (hi === 0) { out[o++] = major | 26 } else {
    out[o++] = major | 27
    out[o++] = hi >>> 24; out[o++] = (hi >>> 16) & 0xff; out[o++] = (hi >>> 8) & 0xff; out[o++] = hi & 0xff
  }
  out[o++] = n >>> 24; out[o++] = (n >>> 16) & 0xff; out[o++] = (n >>> 8) & 0xff; out[o++] = n & 0xff
  return o
}

/** The stated nonce of `cid` (as its latin1 string) if stated at sealed length `full`, the only one a v4 entry records. */
function recordedNonce (cid: CID | null, full: number): string | null {
  const s = cid != null ? statedOf(cid) : undefined
  return s != null && ((s.charCodeAt(12) << 24) | (s.charCodeAt(13) << 16) | (s.charCodeAt(14) << 8) | s.charCodeAt(15)) >>> 0 === full ? s : null
}

/** Writes a recorded nonce (a byte string of 12) or null at out[o]; returns the offset after it. */
function putNonce (out: Uint8Array, o: number, n: string | null): number {
  if (n == null) { out[o] = 0xf6; return o + 1 }
  out[o++] = 0x40 | NONCE_LEN
  for (let i = 0; i < NONCE_LEN; i++) out[o++] = n.charCodeAt(i)
  return o
}

/**
 * The dag-cbor of block `idx`'s v4 leaf entry, `[idx, cid, nonce]` or `[idx, base | null,
 * [[cid, first, count, nonce], ...], base nonce]` (a nonce: 12 bytes or null), from the cached
 * encodings of its CIDs, written once into its own buffer: the bytes encode() writes
 * (test/tree/block-map.test.ts) at a fraction of its cost (a commit encodes every changed block's entry).
 */
export function entryBody (idx: number, r: BlockRef): Uint8Array {
  const patches = isPatched(r) ? r.patches : null
  const base = patches != null ? (r as PatchedBlock).base : r as CID
  const baseNonce = recordedNonce(base, FULL_BLOCK)
  const nonces = patches?.map(p => recordedNonce(p.cid, patchLength(p.count)))
  let len = 1 + headLen(idx) + (base != null ? cidCbor(base).length : 1) + (baseNonce != null ? 1 + NONCE_LEN : 1)
  if (patches != null) {
    len += headLen(patches.length)
    patches.forEach((p, i) => { len += 1 + cidCbor(p.cid).length + headLen(p.first) + headLen(p.count) + (nonces![i] != null ? 1 + NONCE_LEN : 1) })
  }
  const out = new Uint8Array(len)
  out[0] = patches == null ? 0x83 : 0x84
  let o = putHead(out, 1, 0, idx)
  if (base != null) { const c = cidCbor(base); out.set(c, o); o += c.length } else out[o++] = 0xf6
  if (patches != null) {
    o = putHead(out, o, 0x80, patches.length)
    patches.forEach((p, i) => {
      out[o++] = 0x84
      const c = cidCbor(p.cid)
      out.set(c, o); o += c.length
      o = putHead(out, o, 0, p.first)
      o = putHead(out, o, 0, p.count)
      o = putNonce(out, o, nonces![i])
    })
  }
  putNonce(out, o, baseNonce)
  return out
}

/** Sealed length of a whole block: the only one whose nonce a v4 entry records for a block. */
const FULL_BLOCK = sealedLength(BLOCK_SIZE)

/**
 * The dag-cbor body of leaf `k`, `{ v: 4, b: [...] }` with its keys in canonical order (b, v),
 * built from the encoded entries; null when the leaf holds no block.
 */
export function leafBody (blocks: Map<number, BlockRef>, k: number, leaf = LEAF_BLOCKS): Uint8Array | null {
  const parts: Uint8Array[] = []
  let len = 0
  for (let i = k * leaf; i < (k + 1) * leaf; i++) {
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
  out.set([0x61, 0x76, NONCED_LEAF], o) // "v", 4
  return out
}

function sealBody (f: FileNode, index: number, body: Uint8Array): Uint8Array {
  return seal(f.key, position(f, index), padFrame(body))
}

/** dag-cbor of each child CID (a CID object is never changed): inner nodes are rebuilt from them. */
const cidBytes = new WeakMap<CID, Uint8Array>()

/**
 * The dag-cbor body of an inner node, `{ c, v: 2 }`, of a wide root, `{ c, h, v: 2 }`, or of a
 * narrow root, `{ c, f, h, l, v: 3 }` (keys in canonical order), from the cached encodings of its
 * children's CIDs: the same bytes as encode() of the object (test/tree/block-map.test.ts),
 * without encoding up to 64 CIDs per node per commit.
 */
export function nodeBody (c: Array<[number, CID]>, height: number | null, shape: MapShape = WIDE): Uint8Array {
  c.forEach(([slot, cid], i) => { gatheredSlots[i] = slot; gatheredCids[i] = cid })
  return gatheredBody(c.length, height, shape)
}

/** nodeBody() of the first `n` gathered children (gather()). */
function gatheredBody (n: number, height: number | null, shape: MapShape): Uint8Array {
  let len = 0
  for (let i = 0; i < n; i++) len += 2 + (gatheredSlots[i] < 24 ? 0 : 1) + cidCbor(gatheredCids[i]).length
  const shaped = height != null && shape !== WIDE
  // n is at most FANOUT (64) < 256
  const out = new Uint8Array(1 + 2 + (n < 24 ? 1 : 2) + len + (height != null ? 3 : 0) + (shaped ? 6 : 0) + 3)
  let o = 0
  out[o++] = height == null ? 0xa2 : shaped ? 0xa5 : 0xa3 // map(2) / map(5) / map(3)
  out[o++] = 0x61; out[o++] = 0x63 // "c"
  if (n < 24) out[o++] = 0x80 | n
  else { out[o++] = 0x98; out[o++] = n }
  for (let i = 0; i < n; i++) {
    const slot = gatheredSlots[i]
    out[o++] = 0x82 // [slot, CID]
    if (slot < 24) out[o++] = slot
    else { out[o++] = 0x18; out[o++] = slot }
    const e = cidCbor(gatheredCids[i])
    out.set(e, o); o += e.length
  }
  gatheredCids.fill(undefined as unknown as CID, 0, n) // holds no CID past its commit
  if (shaped) { out[o++] = 0x61; out[o++] = 0x66; out[o++] = shape.fanout } // "f": fanout (16) < 24
  if (height != null) { out[o++] = 0x61; out[o++] = 0x68; out[o++] = height } // "h": height (<= 11) < 24
  if (shaped) { out[o++] = 0x61; out[o++] = 0x6c; out[o++] = shape.leaf } // "l": blocks per leaf (2) < 24
  out[o++] = 0x61; out[o++] = 0x76; out[o++] = shaped ? SHAPED_MAP : TREE_MAP // "v"
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
  const { shape, height } = rootShape(body, `file ${label} block map`)
  const nodes = new Map<number, CID>()
  const pairs: Array<[number, BlockRef]> = []
  let level: Array<{ k: number, c: Array<[number, CID]> }> = [{ k: 0, c: checkedChildren(body.c, label, shape.fanout) }]
  for (let l = height - 1; l >= 0; l--) {
    const next: typeof level = []
    await Promise.all(level.flatMap(({ k, c }) => c.map(async ([s, cid]) => {
      const n = k * shape.fanout + s
      const index = nodeIndex(l, n)
      nodes.set(index, cid)
      const what = `file ${label} block map node ${l}/${n}`
      if (l === 0) {
        const leaf = bodyOf<LeafBody>(await openNode(cid, index), what)
        pairs.push(...checkedEntries(leaf.b, n * shape.leaf, (n + 1) * shape.leaf, label, leafVersion(leaf, what)))
      } else {
        const inner = bodyOf<InnerBody>(await openNode(cid, index), what)
        if (inner.v !== TREE_MAP) fail('ERR_FORMAT', `${what}: an inner node of version ${inner.v}`)
        next.push({ k: n, c: checkedChildren(inner.c, label, shape.fanout) })
      }
    })))
    level = next
  }
  pairs.sort((x, y) => x[0] - y[0])
  let patched = 0
  let leafPatched: Map<number, number> | null = null
  for (const [i, r] of pairs) {
    if (!isPatched(r)) continue
    patched++
    const k = Math.floor(i / shape.leaf)
    ;(leafPatched ??= new Map()).set(k, (leafPatched.get(k) ?? 0) + 1)
  }
  return { pairs, tree: { root, height, nodes, shape, patched, leafPatched, small: 0 } }
}

/** A tree root's shape (wide for version 2; named in a version 3 root, one of the known ones) and height, checked. */
function rootShape (body: RootBody, what: string): { shape: MapShape, height: number } {
  let shape = WIDE
  if (body.v === SHAPED_MAP) {
    if (body.l !== NARROW.leaf || body.f !== NARROW.fanout) fail('ERR_FORMAT', `${what}: unknown shape (${String(body.l)} blocks per leaf, ${String(body.f)} children)`)
    shape = NARROW
  } else if (body.v !== TREE_MAP) fail('ERR_FORMAT', `${what}: a root of version ${body.v}`)
  const height = body.h
  if (!Number.isInteger(height) || height < 1 || height > heightFor(MAX_BLOCKS, shape)) fail('ERR_FORMAT', `${what}: height ${String(height)}`)
  return { shape, height }
}

/**
 * Every CID a file's block map reaches, for fsck: `visit` gets each node (its CID and position
 * index) and returns its plaintext or null (it could not be read: a problem it recorded), and
 * `entries` gets the block entries of each leaf (or of a flat map).
 */
export async function walkMapTree (rootPlain: Buffer, what: string, visit: (cid: CID, index: number) => Promise<Buffer | null>, entries: (b: BlockEntry[], nonced?: NoncedEntry[]) => Promise<void>): Promise<void> {
  const body = bodyOf<RootBody & FlatBody>(rootPlain, what)
  if (body.v === FLAT_MAP) { await entries(body.b ?? []); return }
  const { shape, height } = rootShape(body, what)
  const walk = async (level: number, k: number, c: Array<[number, CID]>): Promise<void> => {
    for (const [s, cid] of c ?? []) {
      const n = k * shape.fanout + s
      const plain = await visit(cid, nodeIndex(level, n))
      if (plain == null) continue
      if (level === 0) {
        const leaf = bodyOf<LeafBody>(plain, what)
        const b = leaf.b ?? []
        await entries(leafVersion(leaf, what) === NONCED_LEAF ? (b as NoncedEntry[]).map(plainEntry) : b as BlockEntry[], leaf.v === NONCED_LEAF ? b as NoncedEntry[] : undefined)
      } else await walk(level - 1, n, bodyOf<InnerBody>(plain, what).c)
    }
  }
  await walk(height - 1, 0, body.c)
}

function bodyOf<T extends { v: number }> (framed: Buffer, what: string): T {
  const body = unpadFrame(framed) ?? fail('ERR_INTEGRITY', `${what}: bad framing`)
  return decodeAny<T>(body, what, [FLAT_MAP, TREE_MAP, SHAPED_MAP, NONCED_LEAF])
}

/** A leaf's body version: TREE_MAP (entries without nonces) or NONCED_LEAF; anything else is refused. */
function leafVersion (leaf: LeafBody, what: string): number {
  if (leaf.v !== TREE_MAP && leaf.v !== NONCED_LEAF) fail('ERR_FORMAT', `${what}: a leaf of version ${leaf.v}`)
  return leaf.v
}

function checkedChildren (c: unknown, label: string, fanout: number): Array<[number, CID]> {
  if (!Array.isArray(c)) fail('ERR_FORMAT', `file ${label} block map: a node without children`)
  let last = -1
  for (const e of c as Array<[number, CID]>) {
    if (!Array.isArray(e) || !Number.isInteger(e[0]) || e[0] <= last || e[0] >= fanout) fail('ERR_FORMAT', `file ${label} block map: child slot ${String(e?.[0])}`)
    last = e[0]
  }
  return c as Array<[number, CID]>
}

function checkedEntries (b: BlockEntry[] | NoncedEntry[] | undefined, from: number, to: number, label: string, version = FLAT_MAP): Array<[number, BlockRef]> {
  if (!Array.isArray(b)) return fail('ERR_FORMAT', `file ${label} block map: a leaf without blocks`)
  const pairs = version === NONCED_LEAF ? (b as NoncedEntry[]).map(fromNoncedEntry) : (b as BlockEntry[]).map(fromEntry)
  let last = from - 1
  for (const [i] of pairs) {
    if (!Number.isInteger(i) || i <= last || i >= to) fail('ERR_FORMAT', `file ${label} block map: block ${String(i)} out of place`)
    last = i
  }
  return pairs
}
