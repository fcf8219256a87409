// Listing a directory by pages (readdir through FUSE): what one page holds, where the next one
// starts, and what a listing lets go behind it. A plain directory is listed whole, its entries
// numbered by place in that snapshot. A sharded one (dir-shards.ts) is listed in hash order, each
// entry at a position intrinsic to its name (ListPos), a page from just after a position on: so
// a listing resumed there skips and repeats nothing that stayed in the directory, whatever was
// added, removed or split meanwhile (POSIX readdir), and loads only the shards it reaches; the
// leaves it loaded and has gone past are let go again (dir-entries.ts releaseLeaf), so `ls` of a
// million entries holds a page of them, not the folder.
import type { Node, DirNode } from './nodes.js'
import { entryMap, entries, releaseLeaf } from './dir-entries.js'
import { type DirShards, type ListPos, type Shard, comparePos, posOf, nameHash, nameHashKey } from './dir-shards.js'

/** One page of a listing: entries in order, each entry's position (null: a plain directory's snapshot, numbered 3, 4, ...), and whether the directory ends here. */
export interface ListPage {
  entries: Array<[string, Node]>
  pos: ListPos[] | null
  end: boolean
  /** The leaves this listing loaded and is past now (LetGo releases them). */
  behind?: { dir: DirNode, trie: DirShards, leaves: Shard[] }
}

/** What a listing needs of the loader: the shards given loaded (in parallel), marked as loaded by a listing. */
export type LoadListed = (dir: DirNode, trie: DirShards, shards: Shard[]) => Promise<void>

/** Shards loaded at once while a listing walks (the libuv pool reads them in parallel). */
export const LIST_AHEAD = 32

/**
 * The entries of `dir` after position `after` (null: from the start), at most `max` of them
 * unless the directory is plain (then every entry, `end` true). `dir`'s node is loaded.
 */
export async function listPage (dir: DirNode, after: ListPos | null, max: number, load: LoadListed): Promise<ListPage> {
  const out: Array<[string, Node]> = []
  const pos: ListPos[] = []
  const done: Shard[] = []
  let cursor = after
  for (;;) {
    const trie = dir.shards
    if (trie == null) return plainPage(dir, after)
    const map = entryMap(dir)
    const { stopped, missing } = trie.walk(cursor, leaf => {
      const order = trie.orderOf(leaf)
      let i = cursor == null ? 0 : firstAfter(order, cursor)
      for (; i < order.length && out.length < max; i++) {
        out.push([order[i].name!, map.get(order[i].name!)!])
        pos.push(order[i])
      }
      if (i === order.length && leaf.listed) done.push(leaf)
      return out.length < max
    }, LIST_AHEAD, () => max - out.length)
    if (pos.length > 0) cursor = pos[pos.length - 1]
    // Behind the page now: what this listing loaded and has passed (a rewind loads it again).
    if (stopped || missing.length === 0) return { entries: out, pos, end: !stopped, behind: { dir, trie, leaves: done } }
    await load(dir, trie, missing)
  }
}

/** Index of the first position in `order` after `p`. */
function firstAfter (order: ListPos[], p: ListPos): number {
  let lo = 0
  let hi = order.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (comparePos(order[mid], p) <= 0) lo = mid + 1; else hi = mid
  }
  return lo
}

/**
 * A plain directory: all of it. From the start, a snapshot numbered by place; after a position
 * (a listing begun while the directory was sharded, which merged back since), the rest in hash
 * order, as the listing began.
 */
function plainPage (dir: DirNode, after: ListPos | null): ListPage {
  const all = entries(dir)
  if (after == null) return { entries: all, pos: null, end: true }
  const key = nameHashKey(dir.key)
  const placed = all.map(([n, node]) => ({ p: posOf(nameHash(key, n), n), n, node })).sort((x, y) => comparePos(x.p, y.p))
  const rest = placed.filter(x => comparePos(x.p, after) > 0)
  return { entries: rest.map(x => [x.n, x.node]), pos: rest.map(x => x.p), end: true }
}

/** Leaves waiting to be let go past which no more than this many are kept (the rest just stay loaded). */
const MAX_BEHIND = 65_536

/**
 * Lets go of the leaves listings are past, once no other call of the tree runs (`quiet`): a call
 * may hold a node of such a leaf across an await (rename between its two lookups), and would
 * then change a node the directory no longer holds. Checked on the next turn of the event loop,
 * after the listing's own call is counted out; what cannot go then waits for the next page.
 */
export class LetGo {
  private readonly pending: Array<{ dir: DirNode, trie: DirShards, leaf: Shard }> = []
  private queued = false
  constructor (private readonly quiet: () => boolean) {}

  add (page: ListPage): void {
    const b = page.behind
    if (b != null) for (const leaf of b.leaves) if (this.pending.length < MAX_BEHIND) this.pending.push({ dir: b.dir, trie: b.trie, leaf })
    if (this.queued || this.pending.length === 0) return
    this.queued = true
    setImmediate(() => {
      this.queued = false
      if (!this.quiet()) return
      for (const { dir, trie, leaf } of this.pending.splice(0)) releaseLeaf(dir, trie, leaf)
    })
  }
}
