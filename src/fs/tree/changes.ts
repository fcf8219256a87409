// Change tracking: a changed entry marks every directory on its path dirty, so the next commit
// rewrites exactly that path (directories already dirty stop the walk: their parents are too).
import { type Node, DirNode } from './nodes.js'

/** The node's entry changed: every directory on its path must be rewritten. */
export function touch (node: Node): void {
  for (let d: DirNode | null = node instanceof DirNode ? node : node.parent; d != null && !d.dirty; d = d.parent) d.dirty = true
}

/** A directory's entries changed at `t`: its mtime and ctime follow. */
export function touchDir (dir: DirNode, t: number): void {
  dir.attrs.mtime = t
  dir.attrs.ctime = t
  touch(dir)
}
