// The merge's second half: turns the field-by-field result of merge.ts into a valid tree, in this
// order, each step deterministic and blind to which side is "ours":
//   1. conflict copies of linked files go beside the file's first name;
//   2. a folder one side deleted stays when anything the result keeps lives in it (a new or
//      edited file, a conflict copy, a folder that stays), and so does each folder above it up to
//      one that stays anyway; what the deleting side removed from it and the other did not edit
//      stays removed;
//   3. a cycle (each side moved a folder into the other's subtree) is undone by putting the member
//      with the greatest id, of those that moved, back where the base had it;
//   4. in each folder, from the root down: folders of one name that are new on both sides become
//      one (the smallest id stays; their contents merge, and so on down), and so do empty files
//      new on both sides under one name; any other nodes that
//      meet under one name keep one of them there (the one the base had there, else the later
//      mtime, then the greater id) and the others get a conflict name. Names are compared as
//      exact strings: `a` and `A`, or an NFC and an NFD spelling, are different names and both
//      stay as they are;
//   5. link counts follow the names that stay; records with no name left are dropped;
//   6. nodes without an id of their own get the synthetic id of their final place (snapshot.ts).
import { Kind } from '../fs/tree/format.js'
import { type Snapshot, type SnapNode, type SnapLink, ROOT, CONFLICT_XATTR, hasOwnId, synthId, fileNodeId } from './snapshot.js'
import type { Conflict, MergeDevices } from './merge.js'

const NAME_MAX = 255

/** What merge.ts hands over besides the result itself. */
export interface Repair {
  base: Snapshot
  devices: MergeDevices
  /** Folders one side deleted, as the other side has them: they stay only if needed (step 2). */
  tentative: Map<string, SnapNode>
  /** Link records one side removed and the other did not edit: they stay only for a name that stays. */
  tentativeLinks: Map<string, SnapLink>
  /** Losing versions of linked files (step 1). */
  linkCopies?: Array<{ h: string, lose: SnapLink, dev: string, mark: string }>
  /** Conflict copies: the name they were made from, for a fresh conflict name if theirs is taken. */
  copies: Map<string, { stem: string, dev: string, mt: bigint }>
  conflicts: Conflict[]
}

/** `name (conflict from DEVICE YYYY-MM-DD HHMMSS).ext` (UTC; `k` > 1 numbers further copies). */
export function conflictName (name: string, device: string, mtimeNs: bigint, isDir: boolean, k = 1): string {
  const d = new Date(Number(mtimeNs / 1_000_000n))
  const p = (n: number): string => String(n).padStart(2, '0')
  const when = `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
  const dev = device.replace(/[/\0]/g, '-')
  const tag = ` (conflict from ${dev} ${when}${k > 1 ? ` ${k}` : ''})`
  const dot = isDir ? -1 : name.lastIndexOf('.')
  let [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, '']
  if (Buffer.byteLength(ext) > 32) [stem, ext] = [name, '']
  while (stem.length > 1 && Buffer.byteLength(stem + tag + ext) > NAME_MAX) stem = [...stem].slice(0, -1).join('')
  return stem + tag + ext
}

const placeKey = (n: SnapNode): string => `${n.parent ?? ''}\0${n.name}`

export function repairTree (out: Snapshot, r: Repair): void {
  const fallbackDev = [r.devices.ours, r.devices.theirs].sort()[0]
  placeLinkCopies(out, r)
  keepFolders(out, r)
  undoCycles(out, r)
  separateNames(out, r, fallbackDev)
  countLinks(out, r)
  normalizeIds(out, r)
}

function mtimeOf (s: Snapshot, n: SnapNode): bigint {
  return n.attrs?.mt ?? s.links.get(n.content.h as string)?.attrs.mt ?? 0n
}

function placeLinkCopies (out: Snapshot, r: Repair): void {
  for (const { h, lose, dev, mark } of r.linkCopies ?? []) {
    const names = [...out.nodes.values()].filter(n => n.linkName && n.content.h === h).sort((a, b) => placeKey(a) < placeKey(b) ? -1 : 1)
    const at = names[0] ?? { parent: ROOT, name: 'linked file', id: ROOT }
    const attrs = { ...lose.attrs, x: { ...lose.attrs.x } }
    let id = `copy-${mark}`
    if (lose.t === Kind.File) { attrs.x[CONFLICT_XATTR] = mark; id = fileNodeId(lose.content.i as Uint8Array, attrs.x) }
    const name = conflictName(at.name, dev, attrs.mt, false)
    out.nodes.set(id, { id, parent: at.parent, name, t: lose.t, linkName: false, attrs, content: lose.content, origin: dev })
    r.copies.set(id, { stem: at.name, dev, mt: attrs.mt })
    r.conflicts.push({ kind: 'content', id: at.id, path: null, copy: id })
  }
}

function keepFolders (out: Snapshot, r: Repair): void {
  const work = [...out.nodes.keys()]
  while (work.length > 0) {
    const n = out.nodes.get(work.pop()!)!
    if (n.parent == null || out.nodes.has(n.parent)) continue
    const dir = r.tentative.get(n.parent)
    if (dir != null) {
      r.tentative.delete(n.parent)
      out.nodes.set(dir.id, dir)
      r.conflicts.push({ kind: 'kept-folder', id: dir.id, path: null })
      work.push(dir.id)
    } else {
      n.parent = ROOT // its folder is gone on both sides (not reachable from a valid pair of trees)
    }
  }
}

function undoCycles (out: Snapshot, r: Repair): void {
  const undone = new Set<string>()
  for (;;) {
    const cycle = findCycle(out)
    if (cycle == null) return
    const moved = cycle.filter(id => {
      const b = r.base.nodes.get(id)
      return b != null && !undone.has(id) && b.parent != null && out.nodes.has(b.parent) && placeKey(b) !== placeKey(out.nodes.get(id)!)
    }).sort()
    const id = moved.at(-1) ?? [...cycle].sort().at(-1)!
    const n = out.nodes.get(id)!
    const b = r.base.nodes.get(id)
    if (moved.length > 0 && b != null) { n.parent = b.parent; n.name = b.name } else n.parent = ROOT
    undone.add(id)
    r.conflicts.push({ kind: 'cycle', id, path: null })
  }
}

/** The members of one cycle of parent links, or null when every node reaches the root. */
function findCycle (s: Snapshot): string[] | null {
  const good = new Set<string>([ROOT])
  for (const start of [...s.nodes.keys()].sort()) {
    const path: string[] = []
    const on = new Set<string>()
    let id: string | null = start
    while (id != null && !good.has(id)) {
      if (on.has(id)) return path.slice(path.indexOf(id))
      on.add(id)
      path.push(id)
      id = s.nodes.get(id)?.parent ?? null
    }
    for (const p of path) good.add(p)
  }
  return null
}

function separateNames (out: Snapshot, r: Repair, fallbackDev: string): void {
  const kids = new Map<string, Set<string>>()
  for (const n of out.nodes.values()) {
    if (n.parent == null) continue
    let set = kids.get(n.parent)
    if (set == null) kids.set(n.parent, set = new Set())
    set.add(n.id)
  }
  const queue = [ROOT]
  while (queue.length > 0) {
    const dirId = queue.shift()!
    const mine = kids.get(dirId) ?? new Set<string>()
    const groups = new Map<string, string[]>()
    for (const id of mine) {
      const name = out.nodes.get(id)!.name
      groups.set(name, [...(groups.get(name) ?? []), id])
    }
    const taken = new Set(groups.keys())
    for (const name of [...groups.keys()].sort()) {
      let group = groups.get(name)!.sort()
      if (group.length < 2) continue
      // Folders new on both sides under one name: one folder (the smallest id), contents together.
      const fresh = group.filter(id => { const n = out.nodes.get(id)!; return n.t === Kind.Dir && !n.linkName && !r.base.nodes.has(id) && !r.copies.has(id) })
      if (fresh.length > 1) {
        const keep = fresh[0]
        const into = kids.get(keep) ?? new Set<string>()
        kids.set(keep, into)
        for (const other of fresh.slice(1)) {
          for (const c of kids.get(other) ?? []) { out.nodes.get(c)!.parent = keep; into.add(c) }
          kids.delete(other)
          out.nodes.delete(other)
          mine.delete(other)
        }
        r.conflicts.push({ kind: 'merged-folder', id: keep, path: null })
        group = group.filter(id => !fresh.slice(1).includes(id))
        if (group.length < 2) continue
      }
      // Empty files new on both sides under one name (`touch .keep` on two devices) hold the
      // same nothing: one file (the smallest id). Others cannot be compared without reading them.
      const empty = group.filter(id => { const n = out.nodes.get(id)!; return isEmptyFile(n) && !r.base.nodes.has(id) && !r.copies.has(id) })
      if (empty.length > 1) {
        for (const other of empty.slice(1)) { out.nodes.delete(other); mine.delete(other) }
        group = group.filter(id => !empty.slice(1).includes(id))
        if (group.length < 2) continue
      }
      const rank = (id: string): [number, number, bigint, string] => {
        const n = out.nodes.get(id)!
        const b = r.base.nodes.get(id)
        // A folder's mtime moves with whatever any device put in it, so folders rank by id alone.
        const dir = n.t === Kind.Dir && !n.linkName
        return [r.copies.has(id) ? 0 : 1, b != null && placeKey(b) === placeKey(n) ? 1 : 0, dir ? 0n : mtimeOf(out, n), id]
      }
      const sorted = group.map(id => ({ id, k: rank(id) })).sort((x, y) => {
        for (let i = 0; i < 4; i++) if (x.k[i] !== y.k[i]) return x.k[i] > y.k[i] ? -1 : 1
        return 0
      })
      for (const { id } of sorted.slice(1)) {
        const n = out.nodes.get(id)!
        const copy = r.copies.get(id)
        // A folder's mtime moves with what any device puts in it: its name takes the base's.
        const dir = n.t === Kind.Dir && !n.linkName
        const mtime = dir ? (r.base.nodes.get(id)?.attrs?.mt ?? mtimeOf(out, n)) : mtimeOf(out, n)
        const [stem, dev, mt] = copy != null ? [copy.stem, copy.dev, copy.mt] : [n.name, n.origin ?? fallbackDev, mtime]
        let k = 1
        let fresh: string
        do fresh = conflictName(stem, dev, mt, n.t === Kind.Dir && !n.linkName, k++); while (taken.has(fresh))
        taken.add(fresh)
        n.name = fresh
        if (copy == null) r.conflicts.push({ kind: 'name', id, path: null })
      }
    }
    for (const id of [...mine].sort()) {
      const n = out.nodes.get(id)
      if (n != null && n.t === Kind.Dir && !n.linkName) queue.push(id)
    }
  }
}

function isEmptyFile (n: SnapNode): boolean {
  const c = n.content
  return n.t === Kind.File && !n.linkName && c.s === 0 && c.bm == null && (c.b == null || (c.b as unknown[]).length === 0) && n.attrs?.x[CONFLICT_XATTR] == null
}

function countLinks (out: Snapshot, r: Repair): void {
  const counts = new Map<string, number>()
  for (const n of out.nodes.values()) if (n.linkName) counts.set(n.content.h as string, (counts.get(n.content.h as string) ?? 0) + 1)
  for (const [h, rec] of r.tentativeLinks) if (counts.has(h) && !out.links.has(h)) out.links.set(h, rec)
  for (const [h, rec] of out.links) {
    const nl = counts.get(h) ?? 0
    if (nl === 0) out.links.delete(h)
    else out.links.set(h, { ...rec, nl })
  }
}

function normalizeIds (out: Snapshot, r: Repair): void {
  const moved: SnapNode[] = []
  for (const n of [...out.nodes.values()]) {
    if (hasOwnId(n.t, n.linkName) || n.id === ROOT) continue
    const id = synthId(n.parent!, n.name, n.t, n.linkName)
    if (id === n.id) continue
    out.nodes.delete(n.id)
    for (const x of r.conflicts) { if (x.id === n.id) x.id = id; if (x.copy === n.id) x.copy = id }
    moved.push({ ...n, id })
  }
  // Added after every removal, so a new id never meets an old one still in the map.
  for (const n of moved) out.nodes.set(n.id, n)
}
