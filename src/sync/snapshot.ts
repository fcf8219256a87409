// Snapshots of committed trees for the merge: a tree read from its root entry through the store
// (directory nodes, the link table) into a flat form keyed by node id, and the helpers every
// merge step shares (content keys, synthetic ids, paths, the valid-tree check, equality).
// A file's content is opaque here: every field of its entry other than the name, kind and
// attributes (id, key, size, block list or block map, and whatever later formats add) is carried
// as it was read, so a snapshot never depends on the content-block format.
//
// Identity. Files and directories are keyed by their 16-byte id (hex). The root is keyed ROOT
// whatever its id: two devices' roots have different ids today (each store makes its own), and
// the root's id and key are then an ordinary field of it, merged like any other. Symlinks, device
// nodes and the names of linked nodes have no id in the format: they are keyed by a synthetic id,
// a hash of (parent id, name, kind), so the merge matches them by place (and pairs a rename by
// what they hold, merge.ts). A conflict copy shares its original's file id (its sealed blocks are
// bound to it); its CONFLICT_XATTR tells it apart, and its id is a hash of both.
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { Loader } from '../fs/tree/load.js'
import { DirNode, LinkTable } from '../fs/tree/nodes.js'
import { decodeLinkTable, dirPosition, shardPosition, linkTablePosition } from '../fs/tree/codec.js'
import { readAllRecords } from '../fs/tree/dir-shards.js'
import { unpadFrame } from '../crypto/index.js'
import { type EntryRecord, type LinkNameRecord, type CommitRecord, Kind, FORMAT_VERSION, isLinkName, encode } from '../fs/tree/format.js'
import type { BlockStore } from '../fs/tree/ports.js'
import { SnapshotError } from './snapshot-errors.js'

export const ROOT = 'root'
/** The xattr that marks a conflict copy (value: 16 bytes); it keeps the copy's identity apart from its original's. */
export const CONFLICT_XATTR = 'user.space.conflict'

/** Attributes as stored: times in nanoseconds; xattrs by name, values in hex. */
export interface SnapAttrs { m: number, u: number, g: number, a: bigint, mt: bigint, c: bigint, x: Record<string, string> }

/** The fields of an entry that are not its name, kind or attributes (a directory's `d` left out: it follows from the children). */
export type Content = Record<string, unknown>

export interface SnapNode {
  id: string
  /** The parent directory's id; null only for the root. */
  parent: string | null
  name: string
  t: Kind
  /** True for the name of a linked node (hard links): `content` is { h }, the record is in `links`. */
  linkName: boolean
  attrs: SnapAttrs | null // null for a link name
  content: Content
  /** In memory only: the device whose change this node's content (or place) last took. Names conflict copies in later merges of merged snapshots; never stored. */
  origin?: string
}

/** A linked node's record in the link table, by link id. */
export interface SnapLink { h: string, t: Kind, nl: number, attrs: SnapAttrs, content: Content, origin?: string }

/**
 * How a directory node (or the link table) was sealed when read: reused while its records stay
 * the same. A sharded directory has one per shard, at its position `index` (absent: 0, the node).
 */
export interface Sealed { cid: CID, digest: string, index?: number, inner?: boolean }

export interface Snapshot {
  nodes: Map<string, SnapNode>
  links: Map<string, SnapLink>
  /** The link table's own id and key (hex), once the tree has one. */
  linkTable: { i: string, k: string } | null
  /**
   * How directory nodes were sealed when read, by directory id (`links`: the link table); a merge
   * keeps every side's, so materialize() finds the one that still matches.
   */
  sealed: Map<string, Sealed[]>
}

/** What a snapshot is read from: a commit record's root entry and link table reference. */
export type TreeRef = Pick<CommitRecord, 'root' | 'links'>

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const bigNs = (v: bigint | number): bigint => typeof v === 'bigint' ? v : BigInt(v)

/** What a sealed directory node (or link table) held: a hash of its body, `{ v, e }` in dag-cbor. */
export function digestOf (records: unknown[]): string { return bodyDigest(encode({ v: FORMAT_VERSION, e: records })) }
export const bodyDigest = (body: Uint8Array): string => createHash('sha256').update(body).digest('hex')

/** The body of an opened node's framed plaintext (the codec has checked the framing already). */
const bodyOf = (framed: Buffer): Uint8Array => unpadFrame(framed) ?? new Uint8Array()

const keys = new WeakMap<Content, string>()

/** Equal contents have equal keys (dag-cbor is canonical). Contents are never changed in place, so keys are kept per object. */
export function contentKey (c: Content): string {
  let k = keys.get(c)
  if (k == null) keys.set(c, k = Buffer.from(encode(c)).toString('hex'))
  return k
}

/** The id of a node the format gives no id (symlink, device node, linked node's name): its place. */
export function synthId (parent: string, name: string, t: Kind, linkName: boolean): string {
  return createHash('sha256').update(`space-merge/name\0${parent}\0${t}\0${linkName ? 'h' : 'n'}\0${name}`).digest('hex').slice(0, 32)
}

/** The id of a file or directory: its own, or for a conflict copy, its own and its mark together. */
export function fileNodeId (i: Uint8Array, x: Record<string, string>): string {
  const mark = x[CONFLICT_XATTR]
  if (mark == null) return hex(i)
  return createHash('sha256').update(`space-merge/copy\0${hex(i)}\0${mark}`).digest('hex').slice(0, 32)
}

export const hasOwnId = (t: Kind, linkName: boolean): boolean => !linkName && (t === Kind.File || t === Kind.Dir)

function attrsOf (e: EntryRecord): SnapAttrs {
  const x: Record<string, string> = {}
  for (const [k, v] of Object.entries(e.x ?? {})) x[k] = hex(v)
  return { m: e.m, u: e.u, g: e.g, a: bigNs(e.a), mt: bigNs(e.mt), c: bigNs(e.c), x }
}

const ATTR_FIELDS = new Set(['n', 't', 'm', 'u', 'g', 'a', 'mt', 'c', 'x'])

function contentOf (e: EntryRecord | LinkNameRecord, drop: string[] = []): Content {
  const out: Content = {}
  for (const [k, v] of Object.entries(e)) if (!ATTR_FIELDS.has(k) && !drop.includes(k) && v !== undefined) out[k] = v
  return out
}

/** An empty tree: the base of two devices that share no history yet. */
export function emptySnapshot (): Snapshot {
  const root: SnapNode = { id: ROOT, parent: null, name: '', t: Kind.Dir, linkName: false, attrs: { m: 0o755, u: 0, g: 0, a: 0n, mt: 0n, c: 0n, x: {} }, content: {} }
  return { nodes: new Map([[ROOT, root]]), links: new Map(), linkTable: null, sealed: new Map() }
}

/**
 * Directory nodes opened and decoded, by CID and the id and key they were opened with: a merge
 * reads the same trees again (their side, the base, ours, then the background download's scan),
 * and a CID names its sealed bytes forever. Bounded by records held; the oldest go first.
 * Records are shared between snapshots, never changed (nodeOf copies what a merge may change).
 */
const openedDirs = new Map<string, { records: Array<EntryRecord | LinkNameRecord>, sealed: Sealed[] }>()
let openedRecords = 0
const MAX_OPENED_RECORDS = 200_000

function rememberDir (key: string, v: { records: Array<EntryRecord | LinkNameRecord>, sealed: Sealed[] }): void {
  openedDirs.set(key, v)
  openedRecords += v.records.length
  for (const [k, old] of openedDirs) {
    if (openedRecords <= MAX_OPENED_RECORDS || k === key) break
    openedDirs.delete(k)
    openedRecords -= old.records.length
  }
}

/**
 * Shards of big directories opened, by CID, place, id and key (their framed plaintext): a merge
 * reads the base, ours and theirs of a big folder, which share every shard neither side changed;
 * each such shard is opened once, not once per tree. Bounded by bytes; the oldest go first.
 */
const openedShards = new Map<string, Buffer>()
let openedShardBytes = 0
const MAX_OPENED_SHARD_BYTES = 32 * 1024 * 1024

function rememberShard (key: string, framed: Buffer): void {
  openedShards.set(key, framed)
  openedShardBytes += framed.length
  for (const [k, old] of openedShards) {
    if (openedShardBytes <= MAX_OPENED_SHARD_BYTES || k === key) break
    openedShards.delete(k)
    openedShardBytes -= old.length
  }
}

/** Forgets every opened directory and shard (an idle daemon gives the memory back, src/memory.ts); records held now. */
export function forgetOpenedDirs (): number {
  const held = openedRecords
  openedDirs.clear()
  openedRecords = 0
  openedShards.clear()
  openedShardBytes = 0
  return held
}

/**
 * Reads the committed tree `ref` (root entry, link table) through `store` into a snapshot.
 * Every directory node and the link table are opened and checked (ERR_INTEGRITY as the tree's
 * loader gives it); file contents are not read.
 */
export async function readSnapshot (ref: TreeRef, store: Pick<BlockStore, 'get'>, log: (line: string) => void = () => {}): Promise<Snapshot> {
  const table = ref.links != null ? new LinkTable(Buffer.from(ref.links.i), Buffer.from(ref.links.k), ref.links.d) : new LinkTable(Buffer.alloc(16), Buffer.alloc(32), null)
  const loader = new Loader(store, log, table)
  const snap: Snapshot = { nodes: new Map(), links: new Map(), linkTable: null, sealed: new Map() }
  if (ref.links != null) {
    snap.linkTable = { i: hex(ref.links.i), k: hex(ref.links.k) }
    const framed = await loader.openSealed(table.key, linkTablePosition(table), ref.links.d, 'link table')
    const records = decodeLinkTable(framed)
    snap.sealed.set('links', [{ cid: ref.links.d, digest: bodyDigest(bodyOf(framed)) }])
    for (const r of records) {
      const h = hex(r.h)
      snap.links.set(h, { h, t: r.t, nl: r.nl, attrs: attrsOf(r), content: contentOf(r, ['h', 'nl']) })
    }
  }
  const root = ref.root
  if (root.t !== Kind.Dir) throw new SnapshotError('ERR_SNAPSHOT_INVALID', 'the root entry is not a directory')
  snap.nodes.set(ROOT, { id: ROOT, parent: null, name: '', t: Kind.Dir, linkName: false, attrs: attrsOf(root), content: contentOf(root, ['d']) })
  const walk = async (id: string, e: EntryRecord): Promise<void> => {
    if (e.d == null) return // a directory stored without a node is empty
    const dir = new DirNode({ mode: e.m, uid: e.u, gid: e.g, atime: 0, mtime: 0, ctime: 0 }, Buffer.from(e.i!), Buffer.from(e.k!))
    dir.cid = e.d
    const cacheKey = `${e.d.toString()}/${hex(e.i!)}/${hex(e.k!)}`
    let opened = openedDirs.get(cacheKey)
    if (opened == null) {
      const what = `directory ${dir.label()}`
      const framed = await loader.openSealed(dir.key, dirPosition(dir), e.d, what)
      const sealed: Sealed[] = []
      // A sharded directory: every shard, each kept with its place and body digest for reuse.
      const records = await readAllRecords(dir.key, framed, what,
        async (cid, index) => {
          const key = `${cid.toString()}/${index}/${hex(e.i!)}/${hex(e.k!)}`
          const known = openedShards.get(key)
          if (known != null) return known
          const framed = await loader.openSealed(dir.key, shardPosition(dir, index), cid, `${what} shard`)
          rememberShard(key, framed)
          return framed
        },
        (index, cid, body, inner) => sealed.push({ cid: cid ?? e.d!, digest: bodyDigest(body), index, inner }))
      opened = { records, sealed }
      rememberDir(cacheKey, opened)
    }
    const { records } = opened
    snap.sealed.set(id, opened.sealed)
    for (const r of records) {
      const node = nodeOf(id, r)
      if (snap.nodes.has(node.id)) throw new SnapshotError('ERR_SNAPSHOT_INVALID', `node ${node.id.slice(0, 16)} appears twice in the tree`)
      if (node.linkName && !snap.links.has(node.content.h as string)) throw new SnapshotError('ERR_SNAPSHOT_INVALID', `a name in directory ${dir.label()} names a link the link table does not hold`)
      snap.nodes.set(node.id, node)
      if (node.t === Kind.Dir && !node.linkName) await walk(node.id, r as EntryRecord)
    }
  }
  await walk(ROOT, root)
  return snap
}

function nodeOf (parent: string, r: EntryRecord | LinkNameRecord): SnapNode {
  if (isLinkName(r)) {
    const h = hex(r.h)
    return { id: synthId(parent, r.n, r.t, true), parent, name: r.n, t: r.t, linkName: true, attrs: null, content: { h } }
  }
  const attrs = attrsOf(r)
  const own = hasOwnId(r.t, false)
  const id = own ? fileNodeId(r.i!, attrs.x) : synthId(parent, r.n, r.t, false)
  return { id, parent, name: r.n, t: r.t, linkName: false, attrs, content: contentOf(r, r.t === Kind.Dir ? ['d'] : []) }
}

/** A deep copy (the merge never changes its inputs). */
export function cloneSnapshot (s: Snapshot): Snapshot {
  const nodes = new Map<string, SnapNode>()
  for (const [id, n] of s.nodes) nodes.set(id, { ...n, attrs: n.attrs != null ? { ...n.attrs, x: { ...n.attrs.x } } : null })
  const links = new Map<string, SnapLink>()
  for (const [h, l] of s.links) links.set(h, { ...l, attrs: { ...l.attrs, x: { ...l.attrs.x } } })
  return { nodes, links, linkTable: s.linkTable != null ? { ...s.linkTable } : null, sealed: new Map(s.sealed) }
}

/** Children ids by parent id. */
export function childrenOf (s: Snapshot): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const n of s.nodes.values()) {
    if (n.parent == null) continue
    let list = out.get(n.parent)
    if (list == null) out.set(n.parent, list = [])
    list.push(n.id)
  }
  return out
}

/** The node's path from the root ('/' for the root), or null when it does not reach the root. */
export function pathOf (s: Snapshot, id: string): string | null {
  const parts: string[] = []
  const seen = new Set<string>()
  for (let n = s.nodes.get(id); n != null; n = n.parent != null ? s.nodes.get(n.parent) : undefined) {
    if (n.id === ROOT) return '/' + parts.reverse().join('/')
    if (seen.has(n.id)) return null
    seen.add(n.id)
    parts.push(n.name)
  }
  return null
}

/**
 * Why `s` is not a valid tree, or null: one root, every node reaches it through directories (no
 * cycles), unique names per folder, link names name records and link counts match their names.
 */
export function invalidReason (s: Snapshot): string | null {
  const root = s.nodes.get(ROOT)
  if (root == null || root.parent != null || root.t !== Kind.Dir) return 'no root directory'
  const names = new Set<string>()
  const counts = new Map<string, number>()
  const reaches = new Set<string>([ROOT])
  const reachesRoot = (id: string): boolean => {
    const path: string[] = []
    for (let at: string | null | undefined = id; at != null && !reaches.has(at); at = s.nodes.get(at)?.parent) {
      if (path.includes(at) || !s.nodes.has(at)) return false
      path.push(at)
    }
    for (const p of path) reaches.add(p)
    return true
  }
  for (const n of s.nodes.values()) {
    if (n.id === ROOT) continue
    const p = n.parent != null ? s.nodes.get(n.parent) : undefined
    if (p == null) return `node ${n.id} has no parent in the tree`
    if (p.t !== Kind.Dir || p.linkName) return `node ${n.id}'s parent is not a directory`
    if (n.name === '' || n.name.includes('/') || n.name === '.' || n.name === '..') return `node ${n.id} has a bad name`
    const key = `${n.parent}\0${n.name}`
    if (names.has(key)) return `two entries named ${JSON.stringify(n.name)} in ${pathOf(s, n.parent!) ?? n.parent}`
    names.add(key)
    if (!reachesRoot(n.id)) return `node ${n.id} does not reach the root (a cycle)`
    if (n.linkName) {
      const h = n.content.h as string
      if (!s.links.has(h)) return `name ${n.name} names a missing link`
      counts.set(h, (counts.get(h) ?? 0) + 1)
    } else if (!hasOwnId(n.t, false) && n.id !== synthId(n.parent!, n.name, n.t, false)) {
      return `node ${n.name} has an id that is not its place's`
    }
  }
  for (const [h, l] of s.links) if ((counts.get(h) ?? 0) !== l.nl) return `link ${h} counts ${l.nl} names, has ${counts.get(h) ?? 0}`
  return null
}

/** A canonical text of the tree: ids, places, kinds, attributes, contents and links. Leaves out how it was sealed and `origin`. */
export function canonical (s: Snapshot): string {
  const big = (_k: string, v: unknown): unknown => typeof v === 'bigint' ? v.toString() : v
  const nodes = [...s.nodes.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    .map(n => [n.id, n.parent, n.name, n.t, n.linkName, n.attrs != null ? attrText(n.attrs) : null, contentKey(n.content)])
  const links = [...s.links.values()].sort((a, b) => a.h < b.h ? -1 : 1).map(l => [l.h, l.t, l.nl, attrText(l.attrs), contentKey(l.content)])
  return JSON.stringify({ nodes, links, table: s.linkTable }, big)
}

function attrText (a: SnapAttrs): unknown[] {
  return [a.m, a.u, a.g, String(a.a), String(a.mt), String(a.c), Object.entries(a.x).sort(([x], [y]) => x < y ? -1 : 1)]
}
