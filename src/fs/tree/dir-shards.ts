// Sharded directories (docs/format.md, "Sharded directory node"): a directory whose node would
// outgrow PLAIN_BYTES becomes a hash trie of sealed shards, so a change reseals one leaf and the
// inner nodes above it, and a lookup opens the shards on one name's path. Owns the name hash, the
// shards' positions and bodies, the in-memory trie (which shard holds which name, which shards
// are loaded, which changed), sealing the changed shards, and reading shards back. One codec for
// the tree (dir-entries.ts, load.ts, commit.ts), sync (snapshot*.ts) and fsck: none of them
// decodes a shard itself. Records stay opaque here (the caller turns names into records).
import { createHmac, hash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { decode as cborDecode, type TagDecoder } from 'cborg'
import { decodeOptions as dagCborOptions } from '@ipld/dag-cbor'
import { hkdf, unpadFrame } from '../../crypto/index.js'
import { cidFromBytes } from '../../store/cid.js'
import { type EntryRecord, type LinkNameRecord, FORMAT_VERSION, encode } from './format.js'
import { TreeError, fail } from './errors.js'
import { type KeptBody, type LeafChanges, byName, dropKept, innerBody, keptFromBody, keptSubset, noteAdded, noteChanged, noteRemoved, planLeaf } from './dir-leaf.js'

export type DirRecord = EntryRecord | LinkNameRecord

/** Body version of the shards of a sharded directory (a plain directory node is version 1). */
export const SHARDED = 2
/** Bits of the name hash per level: 16 children per inner node. Why: docs/format.md. */
export const BITS = 4
export const FANOUT = 1 << BITS
/** A plain directory node whose body would be larger than this becomes sharded. */
export const PLAIN_BYTES = 32 * 1024
/** A shard leaf whose body is larger than this splits. Why 16 KiB (and 16 children): docs/format.md. */
export const LEAF_BYTES = 16 * 1024
/** An inner node whose entries would fit in a leaf body this small merges back into one (the root: a plain node). */
export const MERGE_BYTES = 8 * 1024
/** No entry encodes smaller than this (a one-byte name, kind, mode, owner and three times). */
const MIN_ENTRY_BYTES = 24
/** Past this many entries below an inner node, merging back is not even tried. */
export const MERGE_ENTRIES = 256
/** Deepest level: 16^8 leaves; a leaf there never splits (it would take 2^32 names of one hash prefix). */
export const MAX_DEPTH = 8
/** Shard positions: depth * 2^40 + the name-hash prefix of the shard (4 bits per level); the root is 0. */
const LEVEL_STRIDE = 2 ** 40

export const shardIndex = (depth: number, prefix: number): number => depth === 0 ? 0 : depth * LEVEL_STRIDE + prefix

/** The key names are hashed under, from the directory's key (an observer cannot place a name). */
const hashKeys = new WeakMap<Buffer, Buffer>()
export function nameHashKey (dirKey: Buffer): Buffer {
  let k = hashKeys.get(dirKey)
  if (k == null) hashKeys.set(dirKey, k = hkdf(dirKey, 'space/dir-shard/name-hash/v1'))
  return k
}

/**
 * HMAC-SHA256(hashKey, UTF-8 name), from the key's two padded blocks kept per key and two one-shot
 * hashes: a listing hashes every name of each leaf it loads, and createHmac's objects cost twice
 * as much per name (test/tree/dir-shards-listing.test.ts checks the bytes against createHmac).
 */
export function nameHash (hashKey: Buffer, name: string): Buffer {
  if (name.length * 3 > NAME_ROOM) return createHmac('sha256', hashKey).update(name, 'utf8').digest()
  let p = pads.get(hashKey)
  if (p == null) pads.set(hashKey, p = padsOf(hashKey))
  const n = p.inner.write(name, 64, 'utf8')
  p.inner2.set(hash('sha256', p.inner.subarray(0, 64 + n), 'buffer'), 64)
  return hash('sha256', p.inner2, 'buffer')
}

/** Bytes of a name hashed without createHmac (names are at most 255 bytes; longer ones, only from a damaged record, take createHmac). */
const NAME_ROOM = 1024
const pads = new WeakMap<Buffer, { inner: Buffer, inner2: Buffer }>()
function padsOf (key: Buffer): { inner: Buffer, inner2: Buffer } {
  if (key.length > 64) throw new Error('bug: a name-hash key longer than a SHA-256 block')
  const inner = Buffer.alloc(64 + NAME_ROOM)
  const inner2 = Buffer.alloc(64 + 32) // the outer hash's input: key ^ opad, then the inner hash
  for (let i = 0; i < 64; i++) { inner[i] = (key[i] ?? 0) ^ 0x36; inner2[i] = (key[i] ?? 0) ^ 0x5c }
  return { inner, inner2 }
}

/** The child slot of a name's hash at `depth` (the root's children are picked at depth 0). */
export const slotAt = (h: Buffer, depth: number): number => (depth & 1) === 0 ? h[depth >> 1] >> 4 : h[depth >> 1] & 15

/**
 * A name's place in a listing of a sharded directory (readdir's offset, dir-listing.ts): the first
 * 63 bits of its hash as two integers (hi: 31 bits, lo: 32), and the name itself, which orders the
 * rare names of one hash prefix. A place is intrinsic to the name, so a listing resumed after one
 * skips and repeats nothing that stayed in the directory, whatever changed meanwhile. Places 1
 * and 2 are "." and ".."; no name's is below 3. `name` null: after every name of that hash
 * prefix (a position given as a number only, as seekdir gives it).
 */
export interface ListPos { hi: number, lo: number, name: string | null }

export function posOf (h: Buffer, name: string): ListPos {
  const a = h.readUInt32BE(0)
  const hi = a >>> 1
  const lo = (((a & 1) << 31) | (h.readUInt32BE(4) >>> 1)) >>> 0
  return { hi, lo: hi === 0 && lo < 3 ? 3 : lo, name }
}

/** Listing order; a position without a name comes after every name of its prefix. */
export function comparePos (x: ListPos, y: ListPos): number {
  if (x.hi !== y.hi) return x.hi - y.hi
  if (x.lo !== y.lo) return x.lo - y.lo
  if (x.name === y.name) return 0
  if (x.name == null) return 1
  if (y.name == null) return -1
  return byName(x.name, y.name)
}

/** The 8 leading bytes of a hash at position `p` (slotAt reads them: the shard a position falls in). */
function posBytes (p: ListPos): Buffer {
  const b = Buffer.alloc(8)
  b.writeUInt32BE(((p.hi << 1) | (p.lo >>> 31)) >>> 0, 0)
  b.writeUInt32BE((p.lo << 1) >>> 0, 4)
  return b
}

/** One shard in memory: a leaf (names) or an inner node (kids), or neither while not loaded. */
export class Shard implements LeafChanges {
  kids: Map<number, Shard> | null = null
  names: Set<string> | null = null
  /** Must be sealed again at the next commit (its CID is stale). */
  dirty = false
  loading: Promise<void> | null = null
  /** A leaf's names in listing order (dir-listing.ts), made on first use; null again when its names change. */
  order: ListPos[] | null = null
  /** Loaded by a listing (not by a lookup): the listing may let it go once it is past it. */
  listed = false
  /** A leaf's body as last built, and its names added and changed since (dir-leaf.ts). */
  kept: KeptBody | null = null
  fresh: string[] | null = null
  stale: Set<string> | null = null
  gone: Set<string> | null = null
  /** This shard's child entry `[slot, cid, count]` in its parent's body, encoded, and the CID and count it was made for. */
  entry: { cid: CID, count: number, bytes: Uint8Array } | null = null
  constructor (public parent: Shard | null, public readonly depth: number, public readonly prefix: number, public cid: CID | null, public count: number) {}
  get loaded (): boolean { return this.kids != null || this.names != null }
  get index (): number { return shardIndex(this.depth, this.prefix) }
  childPrefix (slot: number): number { return this.prefix * FANOUT + slot }
}

/** The trie of one sharded directory. */
export class DirShards {
  /** Loaded names and the leaf each is in. */
  readonly leafOf = new Map<string, Shard>()
  constructor (readonly hashKey: Buffer, public root: Shard) {}

  get count (): number { return this.root.count }

  /** A trie of one dirty root leaf holding `names` (all loaded): what a plain directory becomes when it grows. */
  static fromNames (hashKey: Buffer, names: Iterable<string>): DirShards {
    const root = new Shard(null, 0, 0, null, 0)
    root.names = new Set(names)
    root.count = root.names.size
    root.dirty = true
    const ds = new DirShards(hashKey, root)
    for (const n of root.names) ds.leafOf.set(n, root)
    return ds
  }

  /**
   * The shard a lookup of `name` stops at: its loaded leaf, the first shard on its path not
   * loaded yet, or an inner node with no child at its slot (the name is not there).
   */
  reach (name: string): Shard {
    const known = this.leafOf.get(name)
    if (known != null) return known
    const h = this.hashOf(name)
    let s = this.root
    while (s.kids != null) {
      const k = s.kids.get(slotAt(h, s.depth))
      if (k == null) return s
      s = k
    }
    return s
  }

  /** A create asks for the hash of one new name three times (lookup, check, add): the last one is kept. */
  private last: { name: string, h: Buffer } | null = null
  hashOf (name: string): Buffer {
    if (this.last?.name !== name) this.last = { name, h: nameHash(this.hashKey, name) }
    return this.last.h
  }

  /** Whether a lookup of `name` needs nothing more loaded. */
  ready (name: string): boolean { return this.reach(name).loaded }

  /** Whether every shard is loaded (a full listing). */
  complete (): boolean { return allLoaded(this.root) }

  /** `name` is new in the directory (its path is loaded). */
  add (name: string): void {
    let s = this.reach(name)
    if (!s.loaded) throw new Error('bug: a name added to a shard not loaded')
    if (s.kids != null) {
      const slot = slotAt(this.hashOf(name), s.depth)
      const leaf = new Shard(s, s.depth + 1, s.childPrefix(slot), null, 0)
      leaf.names = new Set()
      s.kids.set(slot, leaf)
      s = leaf
    }
    s.names!.add(name)
    s.order = null
    this.leafOf.set(name, s)
    noteAdded(s, name)
    for (let x: Shard | null = s; x != null; x = x.parent) x.count++
    markDirty(s)
  }

  remove (name: string): void {
    const s = this.leafOf.get(name)
    if (s == null) throw new Error('bug: a name removed from a shard not loaded')
    s.names!.delete(name)
    s.order = null
    this.leafOf.delete(name)
    noteRemoved(s, name)
    for (let x: Shard | null = s; x != null; x = x.parent) x.count--
    markDirty(s)
  }

  /** The entry `name` changed (its record must be written again). */
  changed (name: string): void {
    const s = this.leafOf.get(name)
    if (s != null) { noteChanged(s, name); markDirty(s) }
  }

  /** The record of `name` must be made again when its leaf is next sealed (another node under it), without resealing it for that. */
  forget (name: string): void {
    const s = this.leafOf.get(name)
    if (s != null) noteChanged(s, name)
  }

  /** Shards on the way to `name` not loaded yet, nearest the root first (load them in order). */
  nextToLoad (name: string): Shard | null {
    const s = this.reach(name)
    return s.loaded ? null : s
  }

  /** Every shard not loaded yet whose parent is loaded. */
  frontier (): Shard[] {
    const out: Shard[] = []
    const walk = (s: Shard): void => {
      if (!s.loaded) { out.push(s); return }
      for (const k of s.kids?.values() ?? []) walk(k)
    }
    walk(this.root)
    return out
  }

  /** The loaded leaves in a stable order (by position): a listing's order. */
  leaves (): Shard[] {
    const out: Shard[] = []
    const walk = (s: Shard): void => {
      if (s.names != null) out.push(s)
      for (const slot of [...(s.kids?.keys() ?? [])].sort((a, b) => a - b)) walk(s.kids!.get(slot)!)
    }
    walk(this.root)
    return out
  }

  /** A loaded leaf's names in listing order (their places computed once, until its names change). */
  orderOf (leaf: Shard): ListPos[] {
    leaf.order ??= [...leaf.names!].map(n => posOf(nameHash(this.hashKey, n), n)).sort(comparePos)
    return leaf.order
  }

  /**
   * Walks the loaded leaves in listing order from the one holding position `after` on (null: from
   * the first), calling `visit` on each until it returns false (`stopped`). Shards on the way not
   * loaded yet end the visits: up to `ahead` of them, in listing order, come back in `missing`
   * (load them, then walk again), fewer once they hold `need` entries between them (a page's
   * first entries come without loading the shards its last ones are in). Neither: the walk
   * reached the end of the directory.
   */
  walk (after: ListPos | null, visit: (leaf: Shard) => boolean, ahead: number, need: () => number = () => Infinity): { stopped: boolean, missing: Shard[] } {
    const missing: Shard[] = []
    const bound = after == null ? null : posBytes(after)
    let stopped = false
    let held = 0
    const go = (s: Shard, onPath: boolean): void => {
      if (!s.loaded) { missing.push(s); if ((held += s.count) >= need()) ahead = missing.length; return }
      if (s.names != null) { if (missing.length === 0 && !visit(s)) stopped = true; return }
      const from = onPath ? slotAt(bound!, s.depth) : -1
      for (const slot of [...s.kids!.keys()].sort((a, b) => a - b)) {
        if (slot < from) continue
        go(s.kids!.get(slot)!, onPath && slot === from)
        if (stopped || missing.length >= ahead) return
      }
    }
    go(this.root, bound != null)
    return { stopped, missing: stopped ? [] : missing }
  }

  /**
   * Installs an opened shard's body: an inner node's children (not loaded), or a leaf's names
   * (each checked to hash into the leaf's place unless `checkPlaces` is false: an HMAC per name,
   * most of a cold lookup's CPU; the tree skips it, fsck and sync check; without it the leaf's
   * body is kept for its next reseal, dir-leaf.ts). Returns the leaf's records, or null.
   */
  install (s: Shard, body: ShardBody, what: string, checkPlaces = true): DirRecord[] | null {
    if (body.c != null) {
      // The counts chain from the root (rmdir and rename-over trust the root's count): an inner
      // node's children must add up to what its parent counts, as a leaf's records must.
      let sum = 0
      for (const [, , n] of body.c) sum += n
      if (sum !== s.count) fail('ERR_FORMAT', `${what}: shard ${s.depth}/${s.prefix} counts ${sum} entries below it, its parent counts ${s.count}`)
      s.kids = new Map()
      for (const [slot, cid, n] of body.c) s.kids.set(slot, new Shard(s, s.depth + 1, s.childPrefix(slot), cid, n))
      return null
    }
    const records = body.e!
    if (records.length !== s.count) fail('ERR_FORMAT', `${what}: shard ${s.depth}/${s.prefix} holds ${records.length} entries, its parent counts ${s.count}`)
    s.names = new Set()
    for (const r of records) {
      if (checkPlaces && !inPlace(this.hashKey, r.n, s)) fail('ERR_FORMAT', `${what}: an entry in shard ${s.depth}/${s.prefix} does not belong there`)
      s.names.add(r.n)
      this.leafOf.set(r.n, s)
    }
    dropKept(s)
    // The tree's loads (the ones that skip the place check) keep the body for the leaf's next
    // reseal, copied out of the read buffer; fsck and sync read a shard once.
    if (!checkPlaces && body.raw != null && s.depth > 0) s.kept = keptFromBody(new Uint8Array(body.raw), records.map(r => r.n)) // a copy, not a view of the read buffer
    return records
  }
}

function allLoaded (s: Shard): boolean {
  if (!s.loaded) return false
  for (const k of s.kids?.values() ?? []) if (!allLoaded(k)) return false
  return true
}

function markDirty (s: Shard): void {
  for (let x: Shard | null = s; x != null && !x.dirty; x = x.parent) x.dirty = true
}

function inPlace (hashKey: Buffer, name: string, s: Shard): boolean {
  const h = nameHash(hashKey, name)
  let p = 0
  for (let d = 0; d < s.depth; d++) p = p * FANOUT + slotAt(h, d)
  return p === s.prefix
}

/** A shard's body, decoded: the root `{ v: 2, c, n, s }`, an inner node `{ v: 2, c }`, a leaf `{ v: 2, e }`; or a plain node `{ v: 1, e }`. */
export interface ShardBody { v: number, c?: Array<[number, CID, number]>, e?: DirRecord[], n?: number, s?: number, raw?: Uint8Array }

/**
 * dag-cbor as @ipld/dag-cbor decodes it (its options, strict), except that a CID (tag 42) comes
 * out compact, straight from its bytes (store/cid.ts cidFromBytes): the child CIDs of the inner
 * shards on a lookup's path were more than half of its decoding (4 inner shards of 16 children
 * per lookup in the 1M folder: 37 -> 12 us each).
 */
const cidTag: TagDecoder = decode => {
  const bytes = decode() as Uint8Array
  if (!(bytes instanceof Uint8Array) || bytes[0] !== 0) throw new Error('Invalid CID for CBOR tag 42; expected leading 0x00')
  return cidFromBytes(bytes.subarray(1))
}
const shardCbor = { ...dagCborOptions, tags: { ...dagCborOptions.tags, 42: cidTag } }

function decodeBody (bytes: Uint8Array, what: string, versions: readonly number[]): ShardBody {
  let value: ShardBody
  try {
    value = cborDecode(bytes, shardCbor) as ShardBody
  } catch (err) {
    throw new TreeError('ERR_INTEGRITY', `${what} does not decode: ${(err as Error).message}`)
  }
  if (typeof value !== 'object' || value == null || !versions.includes(value.v)) {
    throw new TreeError('ERR_FORMAT', `${what} has unknown format version ${String((value as { v?: unknown })?.v)}`)
  }
  return value
}

/** Decodes the framed plaintext of a directory's node (depth 0) or shard, checking its shape. */
export function decodeShard (framed: Buffer, depth: number, what: string): ShardBody {
  const bytes = unpadFrame(framed) ?? fail('ERR_INTEGRITY', `${what}: bad framing`)
  const body = decodeBody(bytes, what, depth === 0 ? [FORMAT_VERSION, SHARDED] : [SHARDED])
  if (body.v === FORMAT_VERSION) {
    if (!Array.isArray(body.e)) fail('ERR_FORMAT', `${what}: no entries`)
    return body
  }
  if ((body.c == null) === (body.e == null) || (depth === 0 && body.c == null)) fail('ERR_FORMAT', `${what}: a shard is either inner or a leaf`)
  if (depth === 0 && (!Number.isInteger(body.n) || !Number.isInteger(body.s))) fail('ERR_FORMAT', `${what}: root shard without counts`)
  if (body.c != null) {
    if (!Array.isArray(body.c) || depth >= MAX_DEPTH) fail('ERR_FORMAT', `${what}: inner shard at depth ${depth}`)
    let last = -1
    for (const ch of body.c) {
      if (!Array.isArray(ch) || !Number.isInteger(ch[0]) || ch[0] <= last || ch[0] >= FANOUT || !Number.isInteger(ch[2]) || ch[2] < 0) fail('ERR_FORMAT', `${what}: child slot ${String(ch?.[0])}`)
      last = ch[0]
    }
  } else if (!Array.isArray(body.e)) fail('ERR_FORMAT', `${what}: no entries`)
  else Object.defineProperty(body, 'raw', { value: bytes, enumerable: false }) // a leaf's records are kept from it (install)
  return body
}

/** A plain directory node's body, `{ v: 1, e }` (the format of every directory before sharding, byte for byte). */
export const plainBody = (records: DirRecord[]): Uint8Array => encode({ v: FORMAT_VERSION, e: records })

/** Seals one shard body at its position and stores it (the tree: seal + put; sync: also reuse a CID read before). */
export type PutShard = (index: number, body: Uint8Array) => CID

/**
 * Seals the changed shards of `ds` bottom-up and returns the root's CID, or null when the whole
 * directory merged back into one plain node (the caller writes `{ v: 1, e }`; `ds` is spent).
 * `recordsOf` gives the records of a leaf's names, sorted by name (sealing dirty subdirectories
 * first); leaves that grew past LEAF_BYTES split, inner nodes whose entries shrank below
 * MERGE_BYTES merge back (when all of their shards are loaded).
 */
export function sealShards (ds: DirShards, recordsOf: (names: string[]) => DirRecord[], put: PutShard, subdirs: number, wasInner: (index: number) => boolean = () => false): CID | null {
  const sealLeaf = (s: Shard): CID | null => {
    // A place that was an inner node stays one until it would merge (the tree's hysteresis).
    const limit = wasInner(s.index) ? MERGE_BYTES : s.depth === 0 ? PLAIN_BYTES : LEAF_BYTES
    if (s.names!.size * MIN_ENTRY_BYTES > limit && s.depth < MAX_DEPTH) { split(ds, s); return sealInner(s) } // too many to fit: no need to encode them to know
    if (s.names!.size === 0 && s.depth > 0) return null
    const plan = planLeaf(s, s.names!, s.depth === 0 ? FORMAT_VERSION : SHARDED, recordsOf)
    // Built either way: a leaf that splits hands its kids the records, encoded.
    s.kept = plan.build()
    s.fresh = s.stale = s.gone = null
    if (plan.length <= limit || s.depth >= MAX_DEPTH) {
      if (s.depth === 0) return null // a plain node: the caller writes it
      return put(s.index, s.kept.body)
    }
    split(ds, s)
    return sealInner(s)
  }
  const sealInner = (s: Shard): CID | null => {
    for (const [slot, k] of [...s.kids!]) {
      if (!k.dirty && k.cid != null) continue
      const cid = k.names != null ? sealLeaf(k) : sealInner(k)
      k.dirty = false
      if (cid == null) s.kids!.delete(slot); else k.cid = cid
    }
    if (s.count <= MERGE_ENTRIES && allLoaded(s) && keptBytes(s) <= MERGE_BYTES) {
      const names = new Set(collectNames(s))
      const plan = planLeaf({ kept: null, fresh: null, stale: null }, names, s.depth === 0 ? FORMAT_VERSION : SHARDED, recordsOf)
      if (plan.length <= MERGE_BYTES) {
        s.kids = null
        s.names = names
        s.order = null
        for (const n of names) ds.leafOf.set(n, s)
        if (s.depth === 0) return null
        if (names.size === 0) return null
        s.kept = plan.build()
        s.fresh = s.stale = s.gone = null
        return put(s.index, s.kept.body)
      }
    }
    if (s.kids!.size === 0 && s.depth > 0) return null
    const kids = [...s.kids!].sort((a, b) => a[0] - b[0])
    if (s.depth > 0) return put(s.index, innerBody(SHARDED, kids))
    const c = kids.map(([slot, k]): [number, CID, number] => [slot, k.cid!, k.count])
    return put(s.index, encode({ v: SHARDED, c, n: s.count, s: subdirs }))
  }
  const root = ds.root
  const cid = root.names != null ? sealLeaf(root) : sealInner(root)
  root.dirty = false
  root.cid = cid
  return cid
}

/** Bytes of the kept, unchanged records below `s` that are still there: at most the body `s` would merge into (all loaded). */
function keptBytes (s: Shard): number {
  if (s.kids != null) { let sum = 0; for (const k of s.kids.values()) sum += keptBytes(k); return sum }
  const k = s.kept
  if (k == null) return 0
  let sum = 0
  for (let i = 0; i < k.names.length; i++) if (s.names!.has(k.names[i]) && s.stale?.has(k.names[i]) !== true) sum += k.ends[i] - k.starts[i]
  return sum
}

function collectNames (s: Shard, out: string[] = []): string[] {
  if (s.names != null) for (const n of s.names) out.push(n)
  for (const k of s.kids?.values() ?? []) collectNames(k, out)
  return out
}

/** Turns a loaded leaf into an inner node whose new leaves (dirty) hold its names by their next hash digit. */
function split (ds: DirShards, s: Shard): void {
  s.kids = new Map()
  for (const n of s.names!) {
    const slot = slotAt(nameHash(ds.hashKey, n), s.depth)
    let k = s.kids.get(slot)
    if (k == null) {
      k = new Shard(s, s.depth + 1, s.childPrefix(slot), null, 0)
      k.names = new Set()
      k.dirty = true
      s.kids.set(slot, k)
    }
    k.names!.add(n)
    k.count++
    ds.leafOf.set(n, k)
  }
  const kept = s.kept
  if (kept != null) {
    // The kids start from the records of the leaf's body (those added or changed since, again).
    for (const k of s.kids.values()) {
      k.kept = keptSubset(kept, k.names!)
      k.fresh = s.fresh?.filter(n => k.names!.has(n)) ?? null
      k.stale = s.stale == null ? null : new Set([...s.stale].filter(n => k.names!.has(n)))
      // A name removed before the split is in no kid's names, so in no kid's kept subset either.
    }
  }
  dropKept(s)
  s.names = null
  s.order = null
}


/** Opens the shard at position `index` with CID `cid`: its framed plaintext, or null (fsck: a problem it recorded). */
export type OpenShard = (cid: CID, index: number) => Promise<Buffer | null>

/**
 * Every record of a directory from its opened node (`framed`), opening each shard of a sharded
 * one through `open` (in parallel per level); `seen` gets each shard's position, CID and body
 * (sync reuses a shard whose body comes out the same). Records sorted by name.
 */
export async function readAllRecords (dirKey: Buffer, framed: Buffer, what: string, open: OpenShard, seen?: (index: number, cid: CID | null, body: Uint8Array, inner: boolean) => void): Promise<DirRecord[]> {
  const top = decodeShard(framed, 0, what)
  seen?.(0, null, unpadFrame(framed)!, top.c != null)
  if (top.v === FORMAT_VERSION) return top.e!
  const ds = new DirShards(nameHashKey(dirKey), new Shard(null, 0, 0, null, top.n!))
  ds.install(ds.root, top, what)
  const out: DirRecord[] = []
  let level = ds.frontier()
  while (level.length > 0) {
    await Promise.all(level.map(async s => {
      const plain = await open(s.cid!, s.index)
      if (plain == null) { s.names = new Set(); return }
      const body = decodeShard(plain, s.depth, `${what} shard ${s.depth}/${s.prefix}`)
      seen?.(s.index, s.cid, unpadFrame(plain) ?? new Uint8Array(), body.c != null)
      const recs = ds.install(s, body, what)
      if (recs != null) out.push(...recs)
    }))
    level = ds.frontier()
  }
  return out.sort((x, y) => byName(x.n, y.n))
}

/**
 * Seals a whole directory from its records (sync writing a merged tree): a plain node when it
 * fits in PLAIN_BYTES, else a trie of shards, split as the tree would split it; `wasInner` names
 * the places that were inner nodes in the versions read (they stay split unless they would
 * merge back), so unchanged shards come out as they were read.
 */
export function sealAllRecords (dirKey: Buffer, records: DirRecord[], put: PutShard, wasInner?: (index: number) => boolean): CID {
  const byN = new Map(records.map(r => [r.n, r]))
  const subdirs = records.filter(r => r.t === 2 && (r as EntryRecord).m != null).length
  const ds = DirShards.fromNames(nameHashKey(dirKey), byN.keys())
  const recordsOf = (names: string[]): DirRecord[] => names.map(n => byN.get(n)!)
  const cid = sealShards(ds, recordsOf, put, subdirs, wasInner)
  return cid ?? put(0, plainBody([...records].sort((x, y) => byName(x.n, y.n))))
}
