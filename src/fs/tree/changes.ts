// Change tracking: a changed entry marks every directory on its path dirty, so the next commit
// rewrites exactly that path (directories already dirty stop the walk: their parents are too);
// a linked node marks the link table instead, and is noted there as changed (every other name of
// it shows stale attributes in the kernel until told: src/fs/fuse/kernel-names.ts).
import { type Node, DirNode } from './nodes.js'
import { isLoaded, entryChanged } from './dir-entries.js'

/**
 * The node's entry changed: every directory on its path must be rewritten. A linked node's
 * record is in the link table, so the table is rewritten instead (no directory holds it).
 */
export function touch (node: Node): void {
  if (node.link != null) {
    node.link.table.dirty = true
    node.link.table.markChanged(node)
    return
  }
  // A directory not loaded yet has an unchanged node (its entry, in the parent, changed): it
  // cannot and need not be rewritten. Each parent is told which entry changed (a sharded one
  // reseals only the shard holding it), also when it is dirty already.
  let child: Node | null = node instanceof DirNode && isLoaded(node) ? null : node
  for (let d: DirNode | null = child == null ? node as DirNode : node.parent; d != null; child = d, d = d.parent) {
    if (child != null) entryChanged(d, child.name)
    if (d.dirty) break
    d.dirty = true
  }
}

/** A directory's entries changed at `t`: its mtime and ctime follow. */
export function touchDir (dir: DirNode, t: number): void {
  dir.attrs.mtime = t
  dir.attrs.ctime = t
  touch(dir)
}
