// Three-way merge of two devices' trees against their common ancestor (issue 9, point 4), by node
// id, never by path: a pure function of (base, ours, theirs, device names) over snapshots
// (snapshot.ts), with no I/O; materialize() (snapshot-write.ts) seals the result.
//
// Per node, each field merges on its own: where one side changed it, that change; where both
// made the same change, it; where both changed it differently, a rule that depends only on the
// two values (never on which side is "ours"), so merge3(b, x, y) and merge3(b, y, x) agree:
//   place (parent, name)   the greater (parent id, name): one deterministic choice, no duplicate
//   mode, uid, gid, times  the greater value (times: the later one)
//   each xattr             the greater value; a set beats a removal
//   content (files, symlinks, device nodes)  the later mtime wins (then the greater content); the
//                          other version is kept as a conflict copy next to it
// A node one side deleted stays when the other changed it at all (an edit, a rename, a chmod beat
// a delete). Then merge-tree.ts makes the result a valid
// tree: folders deleted on one side stay for what still lives in them, cycles are undone, names
// that meet in one folder are told apart (new folders of one name are merged into one).
import { createHash } from 'node:crypto'
import { Kind } from '../fs/tree/format.js'
import {
  type Snapshot, type SnapNode, type SnapLink, type SnapAttrs, type Content, type Sealed,
  ROOT, CONFLICT_XATTR, contentKey, hasOwnId, cloneSnapshot, fileNodeId, pathOf, invalidReason
} from './snapshot.js'
import { SnapshotError } from './snapshot-errors.js'
import { conflictName, repairTree, type Repair } from './merge-tree.js'

/** The names of the devices whose trees are merged (conflict copies are named after them). */
export interface MergeDevices { ours: string, theirs: string }

export type ConflictKind =
  | 'content' // both changed a file's content: the loser is a conflict copy
  | 'edit-delete' // one side deleted what the other changed: the changed node stays
  | 'rename' // both moved or renamed one node differently: one place chosen
  | 'name' // two nodes met under one name in one folder: one renamed
  | 'kept-folder' // a folder one side deleted stays for what the other put in it
  | 'merged-folder' // both made a folder of one name: one folder
  | 'cycle' // each side moved a folder into the other's: one move undone

/** One thing the merge resolved (for logs and `space sync status`). Paths are in the merged tree: user data, not for plaintext logs. */
export interface Conflict { kind: ConflictKind, id: string, path: string | null, copy?: string | null }

export interface MergeResult { snapshot: Snapshot, conflicts: Conflict[] }

type Pick3 = 'ours' | 'theirs' | 'same' | 'conflict'

/** Which side's value a three-way merge of one field takes (by keys; `b` undefined: not in the base). */
function pick3 (b: string | undefined, o: string, t: string): Pick3 {
  if (o === t) return 'same'
  if (o === b) return 'theirs'
  if (t === b) return 'ours'
  return 'conflict'
}

const max = <T>(x: T, y: T): T => x > y ? x : y
const placeKey = (n: SnapNode): string => `${n.parent ?? ''}\0${n.name}`

function mergeAttrs (b: SnapAttrs | null | undefined, o: SnapAttrs, t: SnapAttrs): SnapAttrs {
  const field = <K extends 'm' | 'u' | 'g' | 'a' | 'mt' | 'c'>(k: K): SnapAttrs[K] => {
    const r = pick3(b != null ? String(b[k]) : undefined, String(o[k]), String(t[k]))
    return r === 'theirs' ? t[k] : r === 'conflict' ? max(o[k], t[k]) : o[k]
  }
  const x: Record<string, string> = {}
  for (const k of new Set([...Object.keys(o.x), ...Object.keys(t.x)])) {
    const ov = o.x[k] ?? ''
    const tv = t.x[k] ?? ''
    const r = pick3(b != null ? b.x[k] ?? '' : undefined, ov, tv)
    const v = r === 'theirs' ? tv : r === 'conflict' ? max(ov, tv) : ov
    if (v !== '') x[k] = v
  }
  return { m: field('m'), u: field('u'), g: field('g'), a: field('a'), mt: field('mt'), c: field('c'), x }
}

/** The order of two content versions: the later mtime wins, then the greater content. */
const versionOrder = (v: { mt: bigint, key: string }): [bigint, string] => [v.mt, v.key]
function laterVersion (x: { mt: bigint, key: string }, y: { mt: bigint, key: string }): boolean {
  const [a, b] = [versionOrder(x), versionOrder(y)]
  return a[0] !== b[0] ? a[0] > b[0] : a[1] > b[1]
}

/** A content-free mark for a conflict copy, the same on every device that makes this merge. */
function copyMark (id: string, key: string): string {
  return createHash('sha256').update(`space-merge/mark\0${id}\0${key}`).digest('hex').slice(0, 32)
}

/**
 * Renames of nodes without an id (symlinks, device nodes, linked nodes' names) look like a removal
 * and an addition; a removed base node and an added node on one side holding the same (kind,
 * target or link, mode, owner, mtime) are taken as one node renamed. Pairs in id order.
 */
function alignIdless (base: Snapshot, side: Snapshot): Snapshot {
  const sig = (n: SnapNode): string => n.linkName
    ? `h:${String(n.content.h)}`
    : `${n.t}:${contentKey(n.content)}:${n.attrs!.m}:${n.attrs!.u}:${n.attrs!.g}:${n.attrs!.mt}`
  const removed = new Map<string, string[]>()
  for (const n of base.nodes.values()) {
    if (hasOwnId(n.t, n.linkName) || n.id === ROOT || side.nodes.has(n.id)) continue
    const k = sig(n)
    removed.set(k, [...(removed.get(k) ?? []), n.id])
  }
  if (removed.size === 0) return side
  const added = new Map<string, string[]>()
  for (const n of side.nodes.values()) {
    if (hasOwnId(n.t, n.linkName) || base.nodes.has(n.id)) continue
    const k = sig(n)
    if (removed.has(k)) added.set(k, [...(added.get(k) ?? []), n.id])
  }
  if (added.size === 0) return side
  const out = cloneSnapshot(side)
  for (const [k, ids] of added) {
    const from = ids.sort()
    const to = removed.get(k)!.sort()
    for (let i = 0; i < Math.min(from.length, to.length); i++) {
      const n = out.nodes.get(from[i])!
      out.nodes.delete(from[i])
      out.nodes.set(to[i], { ...n, id: to[i] })
    }
  }
  return out
}

interface Side { s: Snapshot, dev: string }

/** Merges `ours` and `theirs`, both descended from `base`. Pure; the inputs are not changed. */
export function merge3 (base: Snapshot, ours: Snapshot, theirs: Snapshot, devices: MergeDevices): MergeResult {
  for (const [what, s] of [['base', base], ['ours', ours], ['theirs', theirs]] as const) {
    const why = invalidReason(s)
    if (why != null) throw new SnapshotError('ERR_SNAPSHOT_INVALID', `${what}: ${why}`)
  }
  const O: Side = { s: alignIdless(base, ours), dev: devices.ours }
  const T: Side = { s: alignIdless(base, theirs), dev: devices.theirs }
  const B = base
  const out: Snapshot = { nodes: new Map(), links: new Map(), linkTable: null, sealed: mergeSealed(B, O.s, T.s) }
  const repair: Repair = { tentative: new Map(), tentativeLinks: new Map(), copies: new Map(), conflicts: [], base: B, devices }
  const conflicts = repair.conflicts
  const baseOf = (id: string): SnapNode | undefined => B.nodes.get(id)
  // A linked file's name stays against a delete when its content changed (a new name for it or
  // a chmod changes the record, not this name).
  const linkChanged = (side: Snapshot, h: string): boolean => {
    const l = side.links.get(h)
    const b = B.links.get(h)
    return l != null && (b == null || contentKey(b.content) !== contentKey(l.content))
  }

  const ids = [...new Set([...B.nodes.keys(), ...O.s.nodes.keys(), ...T.s.nodes.keys()])].sort()
  for (const id of ids) {
    const b = baseOf(id)
    const o = O.s.nodes.get(id)
    const t = T.s.nodes.get(id)
    if (o == null && t == null) continue
    if (o != null && t != null) {
      if (o.t !== t.t || o.linkName !== t.linkName) {
        // One id, two kinds: two nodes (defensive: synthetic ids hash the kind in). The second
        // gets a temporary id; the name step tells the two apart and the ids follow the place.
        out.nodes.set(id, withOrigin(o, O.dev))
        out.nodes.set(`${id}~`, { ...withOrigin(t, T.dev), id: `${id}~` })
        continue
      }
      mergeBoth(id, b, o, t)
      continue
    }
    const [x, side] = o != null ? [o, O] : [t!, T]
    if (b == null) { out.nodes.set(id, withOrigin(x, side.dev)); continue } // new on one side
    // Deleted on the other side. Any change beats a delete, so that a delete never hides from a later merge a change a third
    // device made (the fold stays order-free). A folder's times move with its entries: they do
    // not count, and a folder that only lost entries stays only for what still lives in it.
    const dir = x.t === Kind.Dir && !x.linkName
    const changed = placeKey(x) !== placeKey(b) || (dir ? ownChanged(b.attrs!, x.attrs!) : x.linkName ? linkChanged(side.s, x.content.h as string) : recordChanged(b, x))
    if (dir && !changed) { repair.tentative.set(id, withOrigin(x, side.dev)); continue }
    if (changed) {
      out.nodes.set(id, withOrigin(x, side.dev))
      conflicts.push({ kind: 'edit-delete', id, path: null })
    }
  }

  mergeLinks()
  out.linkTable = mergeTable(B.linkTable, O.s.linkTable, T.s.linkTable)
  repairTree(out, repair)
  const why = invalidReason(out)
  if (why != null) throw new SnapshotError('ERR_MERGE_BUG', `the merged tree is not valid: ${why}`)
  for (const c of conflicts) {
    c.path = pathOf(out, c.id)
    if (c.copy != null) c.copy = pathOf(out, c.copy)
  }
  return { snapshot: out, conflicts }

  function withOrigin<T extends SnapNode | SnapLink> (n: T, dev: string): T { return { ...n, origin: n.origin ?? dev } }

  /** A node both sides hold: field by field. */
  function mergeBoth (id: string, b: SnapNode | undefined, o: SnapNode, t: SnapNode): void {
    let origin: string | undefined
    const place = pick3(b != null ? placeKey(b) : undefined, placeKey(o), placeKey(t))
    let placed: SnapNode = place === 'theirs' ? t : o
    if (place === 'conflict') {
      placed = placeKey(o) > placeKey(t) ? o : t
      if (id !== ROOT) conflicts.push({ kind: 'rename', id, path: null })
    }
    if (place === 'ours' || place === 'conflict') origin = placed === o ? o.origin ?? O.dev : t.origin ?? T.dev
    if (place === 'theirs') origin = t.origin ?? T.dev
    const attrs = o.attrs != null && t.attrs != null ? mergeAttrs(b?.attrs, o.attrs, t.attrs) : null
    const [ok, tk] = [contentKey(o.content), contentKey(t.content)]
    const c = pick3(b != null ? contentKey(b.content) : undefined, ok, tk)
    let content: Content = c === 'theirs' ? t.content : o.content
    if (c === 'ours') origin = o.origin ?? O.dev
    if (c === 'theirs') origin = t.origin ?? T.dev
    if (c === 'conflict') {
      if (o.t === Kind.Dir && !o.linkName) {
        content = ok > tk ? o.content : t.content // a root made on each device: one id and key
      } else {
        const ov = { mt: o.attrs?.mt ?? linkMtime(o), key: ok }
        const tv = { mt: t.attrs?.mt ?? linkMtime(t), key: tk }
        const [win, lose, loseSide] = laterVersion(ov, tv) ? [o, t, T] : [t, o, O]
        content = win.content
        origin = win.origin ?? (win === o ? O.dev : T.dev)
        // The copy goes where the file was in the base (where it was before anyone moved it): the
        // same place whichever device's merge makes it.
        const copy = copyOf(id, lose, lose.origin ?? loseSide.dev, b != null && b.parent != null ? b : placed)
        out.nodes.set(copy.id, copy)
        conflicts.push({ kind: 'content', id, path: null, copy: copy.id })
      }
    }
    out.nodes.set(id, { id, parent: placed.parent, name: placed.name, t: o.t, linkName: o.linkName, attrs, content, origin })
  }

  function linkMtime (n: SnapNode): bigint {
    const h = n.content.h as string
    return (O.s.links.get(h) ?? T.s.links.get(h) ?? B.links.get(h))?.attrs.mt ?? 0n
  }

  /** The losing version `lose` of node `id` as a node of its own at `at`'s place, under a conflict name. */
  function copyOf (id: string, lose: SnapNode, dev: string, at: SnapNode): SnapNode {
    const key = contentKey(lose.content)
    const mark = copyMark(id, key)
    const attrs = lose.attrs != null ? { ...lose.attrs, x: { ...lose.attrs.x } } : null
    let cid = `copy-${mark}`
    if (attrs != null && lose.t === Kind.File && !lose.linkName) {
      attrs.x[CONFLICT_XATTR] = mark
      cid = fileNodeId(lose.content.i as Uint8Array, attrs.x)
    }
    const mt = attrs?.mt ?? linkMtime(lose)
    repair.copies.set(cid, { stem: at.name, dev, mt })
    return { ...lose, id: cid, parent: at.parent, name: conflictName(at.name, dev, mt, lose.t === Kind.Dir), attrs, origin: dev }
  }

  /** The link table's records, by link id, like nodes by id. */
  function mergeLinks (): void {
    const hs = [...new Set([...B.links.keys(), ...O.s.links.keys(), ...T.s.links.keys()])].sort()
    for (const h of hs) {
      const b = B.links.get(h)
      const o = O.s.links.get(h)
      const t = T.s.links.get(h)
      if (o == null && t == null) continue
      if (o == null || t == null) {
        const [x, side] = o != null ? [o, O] : [t!, T]
        const rec = { ...x, origin: x.origin ?? side.dev }
        // New, or changed while the other side removed every name: it stays. Otherwise it stays
        // only for a name that stays (merge-tree.ts).
        if (b == null || recordChanged(b, x)) out.links.set(h, rec)
        else repair.tentativeLinks.set(h, rec)
        continue
      }
      const attrs = mergeAttrs(b?.attrs, o.attrs, t.attrs)
      const [ok, tk] = [contentKey(o.content), contentKey(t.content)]
      const c = pick3(b != null ? contentKey(b.content) : undefined, ok, tk)
      let content = c === 'theirs' ? t.content : o.content
      let origin = c === 'theirs' ? t.origin ?? T.dev : c === 'ours' ? o.origin ?? O.dev : undefined
      if (c === 'conflict') {
        const [win, lose, loseDev] = laterVersion({ mt: o.attrs.mt, key: ok }, { mt: t.attrs.mt, key: tk }) ? [o, t, t.origin ?? T.dev] : [t, o, o.origin ?? O.dev]
        content = win.content
        origin = win === o ? o.origin ?? O.dev : t.origin ?? T.dev
        repair.linkCopies ??= []
        repair.linkCopies.push({ h, lose, dev: loseDev, mark: copyMark(h, lose === o ? ok : tk) })
      }
      out.links.set(h, { h, t: o.t, nl: 0, attrs, content, origin })
    }
  }
}

const attrKey = (a: SnapAttrs | null): string => a == null ? '' : JSON.stringify([a.m, a.u, a.g, String(a.a), String(a.mt), String(a.c), Object.entries(a.x).sort()])

/** Content or any attribute differs. */
function recordChanged (b: { attrs: SnapAttrs | null, content: Content }, x: { attrs: SnapAttrs | null, content: Content }): boolean {
  return contentKey(b.content) !== contentKey(x.content) || attrKey(b.attrs) !== attrKey(x.attrs)
}

/** Mode, owner or xattrs differ (not times). */
function ownChanged (b: SnapAttrs, x: SnapAttrs): boolean {
  return b.m !== x.m || b.u !== x.u || b.g !== x.g || JSON.stringify(Object.entries(b.x).sort()) !== JSON.stringify(Object.entries(x.x).sort())
}

function mergeTable (b: Snapshot['linkTable'], o: Snapshot['linkTable'], t: Snapshot['linkTable']): Snapshot['linkTable'] {
  const key = (v: Snapshot['linkTable']): string => v == null ? '' : `${v.i}:${v.k}`
  const r = pick3(key(b), key(o), key(t))
  if (r === 'theirs') return t
  if (r === 'conflict') return key(o) > key(t) ? o : t
  return o
}

function mergeSealed (...snaps: Snapshot[]): Map<string, Sealed[]> {
  const out = new Map<string, Sealed[]>()
  for (const s of snaps) {
    for (const [id, list] of s.sealed) {
      const have = out.get(id) ?? []
      for (const x of list) if (!have.some(y => y.cid.equals(x.cid))) have.push(x)
      out.set(id, have)
    }
  }
  return out
}

/** One device's tree among several concurrent ones. */
export interface DeviceTree { device: string, snapshot: Snapshot }

/**
 * Merges several devices' concurrent trees from their common ancestor, folding them in the order
 * of their device names rather than the order they arrived in: devices that hold the same
 * entries compute the same tree, however the entries reached them (docs/sync-merge.md). The
 * device named in a conflict copy is the one whose tree held the losing version.
 */
export function mergeMany (base: Snapshot, trees: DeviceTree[]): MergeResult {
  const sorted = [...trees].sort((x, y) => x.device < y.device ? -1 : x.device > y.device ? 1 : 0)
  if (sorted.length === 0) return { snapshot: base, conflicts: [] }
  let acc = sorted[0].snapshot
  const conflicts: Conflict[] = []
  for (const t of sorted.slice(1)) {
    const r = merge3(base, acc, t.snapshot, { ours: sorted[0].device, theirs: t.device })
    acc = r.snapshot
    conflicts.push(...r.conflicts)
  }
  return { snapshot: acc, conflicts }
}
