// The common ancestor of two states in the entry DAG: an entry's parents are its log's previous
// entry and the heads it merged. Of the entries both states descend from, the one furthest from
// the start (generation: 1 + the largest generation of its parents) is the merge base; ties go to
// the smaller CID, so every device picks the same base for the same pair of states.
import type { CID } from 'multiformats/cid'
import type { SignedEntry } from './entry.js'

export interface EntrySource { get: (cid: CID) => Promise<SignedEntry | null> }

const parents = (s: SignedEntry): CID[] => [...(s.entry.prev != null ? [s.entry.prev] : []), ...s.entry.heads.map(h => h.cid)]

/** Every ancestor of `from` this device holds (itself included), by CID string. */
async function ancestors (src: EntrySource, from: CID): Promise<Map<string, SignedEntry>> {
  const seen = new Map<string, SignedEntry>()
  const todo: CID[] = [from]
  while (todo.length > 0) {
    const cid = todo.pop()!
    const key = cid.toString()
    if (seen.has(key)) continue
    const s = await src.get(cid)
    if (s == null) continue // history this device never had: the search stops there
    seen.set(key, s)
    todo.push(...parents(s))
  }
  return seen
}


/**
 * Generation numbers over `all` (1 + the largest of the parents'; 0 for an entry not held),
 * memoized, computed without recursion: long logs must not overflow the stack.
 */
function generations (all: Map<string, SignedEntry>): (key: string) => number {
  const gen = new Map<string, number>()
  return key => {
    const stack = [key]
    while (stack.length > 0) {
      const k = stack[stack.length - 1]
      if (gen.has(k)) { stack.pop(); continue }
      const s = all.get(k)
      if (s == null) { gen.set(k, 0); stack.pop(); continue }
      const ps = parents(s).map(c => c.toString())
      const missing = ps.filter(p => !gen.has(p))
      if (missing.length > 0) { stack.push(...missing); continue }
      gen.set(k, 1 + Math.max(0, ...ps.map(p => gen.get(p)!)))
      stack.pop()
    }
    return gen.get(key)!
  }
}

/**
 * The base of `a` and `b`. Each may be several states (a tree that merged several heads): their
 * ancestors together are its history.
 */
export async function commonAncestor (src: EntrySource, a: CID | CID[], b: CID | CID[]): Promise<SignedEntry | null> {
  const history = async (xs: CID | CID[]): Promise<Map<string, SignedEntry>> => {
    const all = new Map<string, SignedEntry>()
    for (const x of Array.isArray(xs) ? xs : [xs]) for (const [k, s] of await ancestors(src, x)) all.set(k, s)
    return all
  }
  const left = await history(a)
  const right = await history(b)
  const generation = generations(left)
  let best: { key: string, g: number, s: SignedEntry } | null = null
  for (const [key, s] of right) {
    if (!left.has(key)) continue
    const g = generation(key)
    if (best == null || g > best.g || (g === best.g && key < best.key)) best = { key, g, s }
  }
  return best?.s ?? null
}

/**
 * Every best common ancestor of `a` and `b`: the entries both descend from that no other such
 * entry descends from, by generation (highest first), then CID. One in a plain history; several
 * after a criss-cross (each device merged the other's entry), where no single one is the base:
 * the caller merges them into one (merge-heads.ts), as git's recursive strategy does.
 */
export async function commonAncestors (src: EntrySource, a: CID[], b: CID[]): Promise<SignedEntry[]> {
  const all = new Map<string, SignedEntry>()
  const history = async (xs: CID[]): Promise<Set<string>> => {
    const keys = new Set<string>()
    for (const x of xs) for (const [k, s] of await ancestors(src, x)) { keys.add(k); all.set(k, s) }
    return keys
  }
  const left = await history(a)
  const right = await history(b)
  const common = [...left].filter(k => right.has(k))
  const generation = generations(all)
  common.sort((x, y) => generation(y) - generation(x) || (x < y ? -1 : x > y ? 1 : 0))
  const covered = new Set<string>()
  const out: SignedEntry[] = []
  for (const k of common) {
    if (covered.has(k)) continue
    out.push(all.get(k)!)
    // Its own ancestors are not best.
    const todo = parents(all.get(k)!).map(c => c.toString())
    while (todo.length > 0) {
      const p = todo.pop()!
      if (covered.has(p)) continue
      covered.add(p)
      const s = all.get(p)
      if (s != null) todo.push(...parents(s).map(c => c.toString()))
    }
  }
  return out
}
