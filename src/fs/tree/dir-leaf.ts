// A shard leaf's body kept between commits (dir-shards.ts): the dag-cbor body it was last sealed
// with, and where each record's encoding lies in it. A leaf resealed because a few of its names
// changed copies the unchanged records in runs from that body and encodes only the changed ones:
// at 100,000 entries and more, nearly every create of a commit lands in a leaf of its own, and
// sorting, looking up and copying every record of each leaf one by one was most of a commit's CPU
// (docs/performance.md, "Big folders: the create curve"). Owns that bookkeeping and the bodies'
// byte layout (byte for byte what encode() makes of `{ v, e }`, and of an inner node's `{ v, c }`
// from its children's entries, each encoded once per CID and count: dag-cbor of CIDs is slow).
import type { CID } from 'multiformats/cid'
import { encode } from './format.js'

/** A leaf's last sealed body: `names` sorted (byName), record `i` at body[starts[i], ends[i]). */
export interface KeptBody { names: string[], body: Uint8Array, starts: number[], ends: number[] }

/** What changed in a leaf since its kept body: names added since (not in it), names whose record changed, names of it removed. */
export interface LeafChanges { kept: KeptBody | null, fresh: string[] | null, stale: Set<string> | null, gone?: Set<string> | null }

export const byName = (x: string, y: string): number => x < y ? -1 : x > y ? 1 : 0

/** Whether `name` is in a sorted list of names. */
export function sortedHas (names: string[], name: string): boolean {
  let lo = 0
  let hi = names.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (names[mid] < name) lo = mid + 1; else hi = mid
  }
  return lo < names.length && names[lo] === name
}

/** `name` joined the leaf. */
export function noteAdded (l: LeafChanges, name: string): void {
  if (l.kept == null) return
  // A name removed and added again is in the kept body: its record is another node's now.
  if (sortedHas(l.kept.names, name)) { l.gone?.delete(name); (l.stale ??= new Set()).add(name) } else (l.fresh ??= []).push(name)
}

/** `name` left the leaf (the leaf's name set no longer has it: the merge walk drops it). */
export function noteRemoved (l: LeafChanges, name: string): void {
  if (l.kept == null) return
  if (sortedHas(l.kept.names, name)) { (l.gone ??= new Set()).add(name); return }
  const i = l.fresh?.indexOf(name) ?? -1
  if (i >= 0) l.fresh!.splice(i, 1)
}

/** The record of `name` must be encoded again. */
export function noteChanged (l: LeafChanges, name: string): void {
  if (l.kept != null) (l.stale ??= new Set()).add(name)
}

/** Forgets the kept body (the leaf's names were replaced wholesale: split, merge, let go). */
export function dropKept (l: LeafChanges): void { l.kept = null; l.fresh = null; l.stale = null; l.gone = null }

/**
 * Plans the body of a leaf holding `names` (its current name set): the kept body's records that
 * are still there and unchanged, and the encodings of the others (`recordsOf` makes their
 * records, given the names sorted). Returns the body's length (a leaf past its limit splits
 * instead of being built) and `build`, which copies the kept records in runs.
 */
export function planLeaf (l: LeafChanges, names: ReadonlySet<string>, v: number, recordsOf: (names: string[]) => object[]): { length: number, build: () => KeptBody } {
  const out: string[] = []
  const src: number[] = [] // per name of `out`: its index in the kept body, or -1 - its index in `encoded`
  const toEncode: string[] = []
  let kept = l.kept
  const fresh = (n: string): void => { src.push(-1 - toEncode.length); toEncode.push(n); out.push(n) }
  if (kept != null) {
    // The kept names, less the removed ones, merged with the added ones; the changed ones encoded again.
    const added = (l.fresh ?? []).filter(n => names.has(n)).sort(byName)
    const stale = l.stale != null && l.stale.size > 0 ? l.stale : null
    const gone = l.gone != null && l.gone.size > 0 ? l.gone : null
    const old = kept.names
    let f = 0
    for (let k = 0; k < old.length; k++) {
      const n = old[k]
      while (f < added.length && added[f] < n) fresh(added[f++])
      if (gone?.has(n) === true) continue
      if (stale?.has(n) === true) { fresh(n); continue }
      src.push(k)
      out.push(n)
    }
    while (f < added.length) fresh(added[f++])
    // Bookkeeping that does not add up (a name that came or went unnoted): every record made again.
    if (out.length !== names.size) { kept = null; out.length = src.length = toEncode.length = 0 }
  }
  if (kept == null) for (const n of [...names].sort(byName)) fresh(n)
  const encoded = toEncode.length === 0 ? [] : recordsOf(toEncode).map(r => encode(r))
  const n = out.length
  const head = n < 24 ? [0x80 | n] : n < 256 ? [0x98, n] : n < 65536 ? [0x99, n >> 8, n & 255] : [0x9a, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255]
  let length = 3 + head.length + 3
  for (const e of encoded) length += e.length
  for (const k of src) if (k >= 0) length += kept!.ends[k] - kept!.starts[k]
  const build = (): KeptBody => {
    const body = new Uint8Array(length)
    body.set([0xa2, 0x61, 0x65], 0) // map(2), "e"
    body.set(head, 3)
    const starts: number[] = new Array(n)
    const ends: number[] = new Array(n)
    let o = 3 + head.length
    let i = 0
    while (i < n) {
      const s = src[i]
      if (s < 0) {
        const b = encoded[-1 - s]
        body.set(b, o)
        starts[i] = o
        o += b.length
        ends[i++] = o
        continue
      }
      // A run of kept records that lie back to back in the kept body: one copy.
      const k = kept!
      let j = i + 1
      while (j < n && src[j] === src[j - 1] + 1 && k.starts[src[j]] === k.ends[src[j - 1]]) j++
      const a = k.starts[s]
      const z = k.ends[src[j - 1]]
      body.set(k.body.subarray(a, z), o)
      const shift = o - a
      for (; i < j; i++) { starts[i] = k.starts[src[i]] + shift; ends[i] = k.ends[src[i]] + shift }
      o += z - a
    }
    body.set([0x61, 0x76, v], o) // "v", v
    return { names: out, body, starts, ends }
  }
  return { length, build }
}

/** The part of a kept body holding `names` (a subset of its names, in its order): what a leaf split off it starts from. */
export function keptSubset (kept: KeptBody, names: ReadonlySet<string>): KeptBody {
  const out: KeptBody = { names: [], body: kept.body, starts: [], ends: [] }
  for (let k = 0; k < kept.names.length; k++) {
    if (!names.has(kept.names[k])) continue
    out.names.push(kept.names[k])
    out.starts.push(kept.starts[k])
    out.ends.push(kept.ends[k])
  }
  return out
}

/** A child of an inner node as innerBody needs it: its CID and count, and its entry as last encoded. */
export interface ChildShard { cid: CID | null, count: number, entry: { cid: CID, count: number, bytes: Uint8Array } | null }

/** The dag-cbor of `{ v, c: [[slot, cid, count], ...] }` (an inner node below the root; `kids` sorted by slot, v < 24). */
export function innerBody (v: number, kids: Array<[number, ChildShard]>): Uint8Array {
  const parts: Uint8Array[] = new Array(kids.length)
  let length = 4 + 3 // map(2), "c", array(n); "v", v
  for (let i = 0; i < kids.length; i++) {
    const [slot, k] = kids[i]
    let e = k.entry
    if (e == null || e.count !== k.count || !e.cid.equals(k.cid!)) {
      // The slot is part of the bytes: a shard keeps its slot for life (a new one is made at another).
      e = k.entry = { cid: k.cid!, count: k.count, bytes: encode([slot, k.cid!, k.count]) }
    }
    parts[i] = e.bytes
    length += e.bytes.length
  }
  const n = kids.length // at most 16: a one-byte array head
  const body = new Uint8Array(length)
  body.set([0xa2, 0x61, 0x63, 0x80 | n], 0) // map(2), "c", array(n)
  let o = 4
  for (const p of parts) { body.set(p, o); o += p.length }
  body.set([0x61, 0x76, v], o) // "v", v
  return body
}

/**
 * The kept body of a leaf as read from the store (`body`: its dag-cbor, `names`: its records'
 * names in body order), so that its first reseal after a load copies the records it does not
 * change instead of encoding all of them again. Null when the body is not laid out as this module
 * writes it (map of "e" then "v", names in byName order): the leaf is then encoded whole.
 */
export function keptFromBody (body: Uint8Array, names: string[]): KeptBody | null {
  if (body[0] !== 0xa2 || body[1] !== 0x61 || body[2] !== 0x65) return null
  if (!itemHead(body, 3) || hMajor !== 4 || hArg !== names.length) return null
  const starts: number[] = new Array(names.length)
  const ends: number[] = new Array(names.length)
  let o = hNext
  for (let i = 0; i < names.length; i++) {
    if (i > 0 && !(names[i - 1] < names[i])) return null
    starts[i] = o
    const end = skipItem(body, o, 0)
    if (end < 0) return null
    ends[i] = o = end
  }
  if (o + 3 !== body.length || body[o] !== 0x61 || body[o + 1] !== 0x76) return null
  return { names, body, starts, ends }
}

// itemHead's answer (module state: no object per CBOR item; the walk is not reentrant).
let hMajor = 0
let hArg = 0
let hNext = 0

/** Reads the CBOR item head at `o` into hMajor, hArg (length or value) and hNext (its content). False: not definite-length, or past the end. */
function itemHead (b: Uint8Array, o: number): boolean {
  if (o >= b.length) return false
  hMajor = b[o] >> 5
  const info = b[o] & 31
  if (info < 24) { hArg = info; hNext = o + 1; return true }
  const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0
  if (size === 0 || o + 1 + size > b.length) return false
  let arg = 0
  for (let i = 0; i < size; i++) arg = arg * 256 + b[o + 1 + i]
  hArg = arg
  hNext = o + 1 + size
  return true
}

/** The end of the CBOR item at `o`, or -1 (malformed, indefinite, or nested past a sane depth). */
function skipItem (b: Uint8Array, o: number, depth: number): number {
  if (!itemHead(b, o) || depth > 16) return -1
  const major = hMajor
  const arg = hArg
  const next = hNext
  switch (major) {
    case 0: case 1: case 7: return next
    case 2: case 3: return next + arg <= b.length ? next + arg : -1
    case 4: case 5: {
      let p = next
      for (let i = 0; i < arg * (major === 5 ? 2 : 1); i++) { p = skipItem(b, p, depth + 1); if (p < 0) return -1 }
      return p
    }
    case 6: return skipItem(b, next, depth + 1)
    default: return -1
  }
}
