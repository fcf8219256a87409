// Writing a snapshot back as a committed tree: materialize() seals its directory nodes and link
// table into the store with codec.ts and returns the new root entry and link table reference,
// for the caller to commit. A directory whose records are exactly those of a node it was read
// from keeps that node's CID (sealing is randomized, so resealing would make a new one): a merge
// writes only the directories it changed and those above them. Also the list of what changed
// against the tree the mount shows, so it can invalidate its kernel caches.
import type { CID } from 'multiformats/cid'
import { LinkTable } from '../fs/tree/nodes.js'
import { sealDirShard, sealLinkTable } from '../fs/tree/codec.js'
import { sealAllRecords } from '../fs/tree/dir-shards.js'
import { type EntryRecord, type LinkNameRecord, type LinkedRecord, type CommitRecord, Kind } from '../fs/tree/format.js'
import type { BlockStore } from '../fs/tree/ports.js'
import { type Snapshot, type SnapNode, type SnapAttrs, type Sealed, ROOT, childrenOf, digestOf, bodyDigest, contentKey, pathOf, invalidReason } from './snapshot.js'
import { SnapshotError } from './snapshot-errors.js'

/** One node whose place, attributes or content differ between two snapshots; a path is null where it is not in that tree. */
export interface PathChange { id: string, old: string | null, new: string | null }

export interface Materialized {
  root: EntryRecord
  links?: CommitRecord['links']
  /** Directory nodes (and the link table) sealed anew; the others kept their CIDs. */
  written: number
  /** Against `before` (the tree the mount shows), when given. */
  changes: PathChange[]
}

const bytes = (h: string): Uint8Array => Buffer.from(h, 'hex')

function attrFields (a: SnapAttrs): Pick<EntryRecord, 'm' | 'u' | 'g' | 'a' | 'mt' | 'c' | 'x'> {
  const e: Pick<EntryRecord, 'm' | 'u' | 'g' | 'a' | 'mt' | 'c' | 'x'> = { m: a.m, u: a.u, g: a.g, a: a.a, mt: a.mt, c: a.c }
  const names = Object.keys(a.x)
  if (names.length > 0) e.x = Object.fromEntries(names.map(k => [k, bytes(a.x[k])]))
  return e
}

/** The sealed node among `candidates` whose body is this one, if any (the smallest CID: deterministic). */
function reusable (candidates: Sealed[] | undefined, digest: string): CID | null {
  return reuseTable(candidates).get(`0/${digest}`) ?? null
}

/** Sealed nodes and shards by place and body digest (`index/digest`), the smallest CID of each. */
function reuseTable (candidates: Sealed[] | undefined): Map<string, CID> {
  const out = new Map<string, CID>()
  for (const c of candidates ?? []) {
    const key = `${c.index ?? 0}/${c.digest}`
    const have = out.get(key)
    if (have == null || c.cid.toString() < have.toString()) out.set(key, c.cid)
  }
  return out
}

/**
 * Seals `s` into `store`: every directory from the leaves up (or keeps its CID), then the link
 * table. Nothing is made durable: the caller syncs the store and appends the commit.
 */
export function materialize (s: Snapshot, store: Pick<BlockStore, 'put'>, opts: { before?: Snapshot } = {}): Materialized {
  const why = invalidReason(s)
  if (why != null) throw new SnapshotError('ERR_SNAPSHOT_INVALID', `cannot write a tree that is not valid: ${why}`)
  const kids = childrenOf(s)
  let written = 0
  const entryOf = (n: SnapNode): EntryRecord | LinkNameRecord => {
    if (n.linkName) return { n: n.name, t: n.t, h: bytes(n.content.h as string) }
    const e = { n: n.name, t: n.t, ...attrFields(n.attrs!), ...n.content } as EntryRecord
    if (n.t === Kind.Dir) e.d = seal(n)
    return e
  }
  const seal = (dir: SnapNode): CID => {
    const names = (kids.get(dir.id) ?? []).map(id => s.nodes.get(id)!).sort((x, y) => x.name < y.name ? -1 : x.name > y.name ? 1 : 0)
    const records = names.map(entryOf)
    const sealed = s.sealed.get(dir.id)
    const table = reuseTable(sealed)
    const i = Buffer.from(dir.content.i as Uint8Array)
    const k = Buffer.from(dir.content.k as Uint8Array)
    const node = { id: i, key: k }
    const inner = new Set((sealed ?? []).filter(c => c.inner === true).map(c => c.index ?? 0))
    // A plain node, or (a big directory) its shards: each one whose body comes out as read keeps its CID.
    return sealAllRecords(k, records, (index, body) => {
      const kept = table.get(`${index}/${bodyDigest(body)}`)
      if (kept != null) return kept
      written++
      return store.put(sealDirShard(node, index, body))
    }, index => inner.has(index))
  }
  const root = s.nodes.get(ROOT)!
  if (root.content.i == null || root.content.k == null) throw new SnapshotError('ERR_SNAPSHOT_INVALID', 'the root has no id and key (an empty base is not a tree to write)')
  const rootEntry = { n: '', t: Kind.Dir, ...attrFields(root.attrs!), ...root.content } as EntryRecord
  rootEntry.d = seal(root)
  const out: Materialized = { root: rootEntry, written: 0, changes: opts.before != null ? diffSnapshots(opts.before, s) : [] }
  if (s.linkTable != null) {
    const records: LinkedRecord[] = [...s.links.values()]
      .map(l => ({ n: '', t: l.t, ...attrFields(l.attrs), ...l.content, h: bytes(l.h), nl: l.nl }) as LinkedRecord)
      .sort((x, y) => Buffer.compare(x.h, y.h))
    const table = new LinkTable(Buffer.from(bytes(s.linkTable.i)), Buffer.from(bytes(s.linkTable.k)), null)
    let d = reusable(s.sealed.get('links'), digestOf(records))
    if (d == null) { d = store.put(sealLinkTable(table, records)); written++ }
    out.links = { i: table.id, k: table.key, d }
  } else if (s.links.size > 0) {
    throw new SnapshotError('ERR_SNAPSHOT_INVALID', 'linked nodes but no link table')
  }
  out.written = written
  return out
}

/**
 * What differs from `before` to `after`: nodes added, removed, moved or renamed, or with other
 * attributes or content (a linked node's change lists each of its names). Sorted by id.
 */
export function diffSnapshots (before: Snapshot, after: Snapshot): PathChange[] {
  const out: PathChange[] = []
  const linkDiffers = (h: string): boolean => {
    const x = before.links.get(h)
    const y = after.links.get(h)
    return x == null || y == null || contentKey(x.content) !== contentKey(y.content) || JSON.stringify(attrFields(x.attrs), big) !== JSON.stringify(attrFields(y.attrs), big)
  }
  for (const id of [...new Set([...before.nodes.keys(), ...after.nodes.keys()])].sort()) {
    const x = before.nodes.get(id)
    const y = after.nodes.get(id)
    const old = x != null ? pathOf(before, id) : null
    const now = y != null ? pathOf(after, id) : null
    let differs = old !== now
    if (!differs && x != null && y != null) {
      differs = contentKey(x.content) !== contentKey(y.content) ||
        JSON.stringify(x.attrs != null ? attrFields(x.attrs) : null, big) !== JSON.stringify(y.attrs != null ? attrFields(y.attrs) : null, big) ||
        (y.linkName && linkDiffers(y.content.h as string))
    }
    if (differs) out.push({ id, old, new: now })
  }
  return out
}

function big (_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
  return v
}
