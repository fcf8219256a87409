// Swapping a whole committed tree in under a running mount (a merge with another device's
// changes, src/sync). The root keeps its node object, id and key, and the link table its own:
// what changes is what they point at (their sealed nodes' CIDs), and everything below them
// loads again, lazily, from the new nodes.
// Files open for writing that the merge leaves as they are keep writing across the swap: the
// folders on their paths in the new tree are loaded first (prepare, off to the side: nothing
// live changes while it awaits), then in one synchronous step (install) the new tree goes in
// with each writer's node in place of its entry, keeping what it wrote (its state is the newer:
// the entry is the one the merge started from), and marked changed so the next commit records
// it. Other open files keep their node too: when the new tree names a file by the same id, the
// loaded entry updates that node in place (size, blocks, attributes), so a handle opened before
// the swap reads the file it names.
import type { CommitRecord } from './format.js'
import { type Node, FileNode, DirNode, LinkTable } from './nodes.js'
import { nodeFromEntry } from './codec.js'
import { unloadEntries, isLoaded, getEntry, entries, moveEntries, replaceEntry } from './dir-entries.js'
import { touch } from './changes.js'
import { Loader } from './load.js'
import type { BlockStore } from './ports.js'
import { contentReplaced } from './file-read.js'

/** Marks a merge's conflict copy (src/sync/snapshot.ts names it too; the tree imports no sync code). */
const CONFLICT_XATTR = 'user.space.conflict'

export type TreeRef = Pick<CommitRecord, 'root' | 'links'>

/** A tree to swap in, loaded as far as the open writers' folders. */
export interface Prepared {
  /** The new root node (a separate object: install gives its attributes and entries to the live root). */
  root: DirNode
  /** The new link table (its nodes when a folder on a writer's path named a link). */
  links: LinkTable
  /** The directories loaded, the new root first when it was. */
  loaded: DirNode[]
  /** Each writer and the entry of the new tree it takes the place of. */
  places: Array<{ file: FileNode, dir: DirNode, name: string }>
}

/** The names from the root down to `node`, or null when the node is in no folder of the tree under `root`. */
export function namesOnPath (node: Node, root: DirNode): string[] | null {
  const names: string[] = []
  let n: Node = node
  while (n !== root) {
    if (n.parent == null) return null // unlinked, or in a folder an earlier swap cut loose
    if (!isLoaded(n.parent) || getEntry(n.parent, n.name) !== n) return null
    names.push(n.name)
    n = n.parent
  }
  return names.reverse()
}

/**
 * Loads the folders of `ref` on the paths of `writers` (their paths now: the caller checked
 * that the merge moves none of them), with a loader of its own, so no live node changes. Null
 * when a writer's entry is not there as the same file (the tree must not be swapped in).
 * Writers in no folder (unlinked while open) need no place.
 */
export async function prepare (ref: TreeRef, live: { root: DirNode, links: LinkTable }, writers: Iterable<FileNode>, io: { store: Pick<BlockStore, 'get'>, log: (line: string) => void }): Promise<Prepared | null> {
  if (ref.root.d == null) throw new Error('bug: an adopted root must name its directory node')
  const root = nodeFromEntry(ref.root) as DirNode
  const links = new LinkTable(live.links.id, live.links.key, ref.links?.d ?? null)
  const loader = new Loader(io.store, io.log, links)
  const loaded = new Set<DirNode>()
  const places: Prepared['places'] = []
  const load = async (d: DirNode, name: string): Promise<void> => { await loader.loadName(d, name); loaded.add(d) }
  for (const file of writers) {
    const names = namesOnPath(file, live.root)
    if (names == null) continue
    let dir = root
    for (const name of names.slice(0, -1)) {
      await load(dir, name)
      const next = getEntry(dir, name)
      if (!(next instanceof DirNode)) return null
      dir = next
    }
    const name = names[names.length - 1]
    await load(dir, name)
    const entry = getEntry(dir, name)
    if (!(entry instanceof FileNode) || !entry.id.equals(file.id) || entry.xattrs?.has(CONFLICT_XATTR) === true || entry.link != null) return null
    places.push({ file, dir, name })
  }
  return { root, links, loaded: [...loaded], places }
}

/**
 * Points the live root and link table at the prepared tree, synchronously: the root's old
 * entries are dropped (they load again from the new node, or are the prepared ones), each writer
 * takes its entry's place and is marked changed, and open files met in the prepared folders are
 * updated from their entries (`open`; the others update when their folder loads).
 */
export function install (root: DirNode, links: LinkTable, p: Prepared, open: OpenFiles): void {
  root.attrs = p.root.attrs
  root.xattrs = p.root.xattrs
  root.cid = p.root.cid
  unloadEntries(root) // loaded again from the new node on first use, unless prepared
  const dirs = p.loaded.map(d => d === p.root ? root : d)
  if (isLoaded(p.root)) moveEntries(p.root, root)
  // The prepared table's nodes (when a prepared folder named a link) become the live table's.
  const kept = new Map<Node, Node>()
  if (p.links.nodes != null && p.links.cid != null) {
    for (const [h, n] of p.links.nodes) {
      const names = p.links.namesOf(n)
      n.link = { table: links, id: n.link!.id }
      for (const { dir, name } of names) links.addName(n, dir === p.root ? root : dir, name)
      const k = open.reuse(n)
      if (k !== n) { p.links.nodes.set(h, k); kept.set(n, k) }
    }
    links.nodes = p.links.nodes
  } else {
    links.nodes = p.links.cid == null ? new Map() : null
  }
  links.cid = p.links.cid
  links.loading = null
  links.dirty = false
  root.dirty = false
  // Open files (not writers) named in the prepared folders: updated now, as a lazy load would.
  for (const d of dirs) {
    for (const [name, node] of entries(d)) {
      const k = kept.get(node) ?? (node.link == null ? open.reuse(node) : node)
      if (k !== node) replaceEntry(d, name, k)
    }
  }
  for (const { file, dir, name } of p.places) {
    replaceEntry(dir === p.root ? root : dir, name, file)
    touch(file) // its state is newer than the entry: the next commit records it
  }
}

/**
 * Open files, by id: a node loaded from an entry with one of these ids is the open node, updated
 * from the entry (the entry is the newer state). Never a writer's: a writer keeps its own state
 * (install puts it in place), so what it wrote is never overwritten by an older entry.
 */
export class OpenFiles {
  private readonly byId = new Map<string, WeakRef<FileNode>>()

  constructor (files: Iterable<FileNode> = [], writers: ReadonlySet<FileNode> = new Set()) {
    for (const f of files) if (!writers.has(f)) this.byId.set(f.id.toString('hex'), new WeakRef(f))
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
    contentReplaced(open) // before its blocks change: native reads must not answer from the old ones
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
