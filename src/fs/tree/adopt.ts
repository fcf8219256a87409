// Swapping a whole committed tree in under a running mount (a merge with another device's
// changes, src/sync). The root keeps its node object, id and key, and the link table its own:
// what changes is what they point at (their sealed nodes' CIDs), and everything below them
// loads again, lazily, from the new nodes. Files that are open keep their FileNode: when the
// new tree names a file by the same id, the loaded entry updates that node in place (size,
// blocks, attributes), so a handle opened before the swap reads and writes the file it names.
// Only a clean tree (everything committed) is swapped; the caller checks and retries.
import type { CommitRecord } from './format.js'
import { type Node, FileNode, type DirNode, type LinkTable } from './nodes.js'
import { nodeFromEntry } from './codec.js'
import { unloadEntries } from './dir-entries.js'

/** Marks a merge's conflict copy (src/sync/snapshot.ts names it too; the tree imports no sync code). */
const CONFLICT_XATTR = 'user.space.conflict'

export type TreeRef = Pick<CommitRecord, 'root' | 'links'>

/** Points the root and the link table at `ref`'s nodes and drops everything loaded below them. */
export function swapIn (root: DirNode, links: LinkTable, ref: TreeRef): void {
  if (ref.root.d == null) throw new Error('bug: an adopted root must name its directory node')
  const fresh = nodeFromEntry(ref.root)
  root.attrs = fresh.attrs
  root.xattrs = fresh.xattrs
  root.cid = ref.root.d
  unloadEntries(root) // loaded again from the new node on first use
  root.dirty = false
  links.cid = ref.links?.d ?? null
  links.nodes = links.cid == null ? new Map() : null
  links.loading = null
  links.dirty = false
}

/**
 * Open files, by id: a node loaded from an entry with one of these ids is the open node, updated
 * from the entry (the entry is the newer state: the tree was clean when it was swapped in).
 */
export class OpenFiles {
  private readonly byId = new Map<string, WeakRef<FileNode>>()

  constructor (files: Iterable<FileNode> = []) {
    for (const f of files) this.byId.set(f.id.toString('hex'), new WeakRef(f))
  }

  /** The node for a freshly decoded one: the open node with its id (updated), or `fresh` itself. */
  reuse (fresh: Node): Node {
    if (!(fresh instanceof FileNode) || this.byId.size === 0) return fresh
    // A merge's conflict copy keeps its original's file id; the open node stays the original.
    if (fresh.xattrs?.has(CONFLICT_XATTR) === true) return fresh
    const key = fresh.id.toString('hex')
    const open = this.byId.get(key)?.deref()
    if (open == null) return fresh
    this.byId.delete(key) // one node per id: a second name of it is a link, resolved by the table
    open.attrs = fresh.attrs
    open.xattrs = fresh.xattrs
    open.size = fresh.size
    open.blocks = fresh.blocks
    open.blockMap = fresh.blockMap
    open.blockMapDirty = false
    open.lastReadEnd = -1
    open.nlink = fresh.nlink
    open.link = fresh.link
    return open
  }
}
