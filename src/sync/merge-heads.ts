// How the engine merges what it holds into the drive (docs/sync-merge.md, "In the engine"): the
// drive's own tree and the newest new entry of each other log are folded in the order of their
// device names, never in arrival order, so devices holding the same heads compute the same tree.
// Each step merges against the common ancestor of what is folded so far and the next head (not
// one base for all: a head that already merged another must not see that one's changes as a
// conflict). Then the drive keeps its own root and link-table ids, and only what differs from
// the drive's tree is a change (another device's root id alone is none).
import type { CID } from 'multiformats/cid'
import { merge3, type Conflict } from './merge.js'
import { ROOT, contentKey, type Snapshot } from './snapshot.js'
import { diffSnapshots, type PathChange } from './snapshot-write.js'

/**
 * One tree to fold: a device's, with the entries whose history it holds (a remote head: its
 * entry; the drive: its own last entry and every head it merged since, published or not).
 */
export interface Head { device: string, key: string, cids: CID[], snapshot: Snapshot }

/** The drive's own root directory and link table ids and keys. */
export interface OwnIds { root: { i: Buffer, k: Buffer }, links: { i: Buffer, k: Buffer } }

/** The base for merging the heads folded so far (their entries) with the next head's entry. */
export type BaseOf = (folded: CID[], next: CID[]) => Promise<Snapshot>

const order = (x: Head, y: Head): number =>
  x.device < y.device ? -1 : x.device > y.device ? 1 : x.key < y.key ? -1 : x.key > y.key ? 1 : 0

export async function foldHeads (heads: Head[], baseOf: BaseOf): Promise<{ snapshot: Snapshot, conflicts: Conflict[] }> {
  const sorted = [...heads].sort(order)
  if (sorted.length === 0) throw new Error('foldHeads: no heads')
  let acc = sorted[0].snapshot
  const folded: CID[] = [...sorted[0].cids]
  const conflicts: Conflict[] = []
  for (const next of sorted.slice(1)) {
    const base = await baseOf(folded, next.cids)
    const r = merge3(base, acc, next.snapshot, { ours: sorted[0].device, theirs: next.device })
    acc = r.snapshot
    conflicts.push(...r.conflicts)
    folded.push(...next.cids)
  }
  return { snapshot: acc, conflicts }
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/**
 * The merged tree as this drive can adopt it, and what changes for the drive. Each device seals
 * its root directory and link table under its own ids and keys (they came from its own store),
 * so the merged tree takes this drive's: another device's sealed root can never be reused here.
 * Changes are counted after that, or every merge with a device whose root id is greater would
 * look like a change, be committed and published, and the devices would never go quiet.
 */
export function adoptable (merged: Snapshot, ours: Snapshot, keys: OwnIds): { snapshot: Snapshot, changes: PathChange[] } {
  const root = merged.nodes.get(ROOT)!
  root.content = { ...root.content, i: keys.root.i, k: keys.root.k }
  merged.sealed.set(ROOT, ours.sealed.get(ROOT) ?? [])
  if (merged.linkTable != null || merged.links.size > 0) {
    merged.linkTable = { i: hexOf(keys.links.i), k: hexOf(keys.links.k) }
    merged.sealed.set('links', ours.sealed.get('links') ?? [])
  }
  return { snapshot: merged, changes: diffSnapshots(ours, merged) }
}

/**
 * Which device each version in the drive's tree came from, as far as this process merged it: a
 * version the drive adopted from another device is still that device's when a later merge makes
 * it a conflict copy (the copy is named after it, the same name every device gives it). Versions
 * the drive wrote itself, or adopted before this process started, are the drive's own.
 */
export class Origins {
  private readonly byId = new Map<string, { key: string, origin: string }>()

  remember (merged: Snapshot): void {
    this.byId.clear()
    for (const n of merged.nodes.values()) if (n.origin != null) this.byId.set(n.id, { key: contentKey(n.content), origin: n.origin })
  }

  /** Marks the nodes of `ours` that still hold a version another device made. */
  apply (ours: Snapshot): void {
    for (const n of ours.nodes.values()) {
      const o = this.byId.get(n.id)
      if (o != null && o.key === contentKey(n.content)) n.origin = o.origin
    }
  }
}
