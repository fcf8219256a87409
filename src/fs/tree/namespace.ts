// The namespace: path resolution and the operations that add, remove and move names (create,
// mknod, mkdir, symlink, unlink, rmdir, rename, link), with their POSIX error codes. Entries are
// reached through dir-entries.ts; a directory not loaded yet is loaded on the way (a sharded one:
// the shards on the name's path; a listing: all of them). A node's
// second name moves its record into the link table (nodes.ts); its last name forgets it.
import { randomKey, randomId } from '../../crypto/index.js'
import { type Attrs, Kind } from './format.js'
import { fail } from './errors.js'
import { type Node, type LinkTable, FileNode, DirNode, SymlinkNode, SpecialNode } from './nodes.js'
import { isLoaded, isReady, isComplete, getEntry, hasEntry, entryCount, entries, setEntry, deleteEntry, startEmpty } from './dir-entries.js'
import { MERGE_ENTRIES, type ListPos } from './dir-shards.js'
import { type ListPage, type LoadListed, listPage } from './dir-listing.js'
import { touch, touchDir } from './changes.js'
import type { Owner } from './ports.js'

const NAME_MAX = 255
const MAX_SYMLINK = 4095
/** Names one node may have (Linux's ext4 allows 65000). */
export const LINK_MAX = 65000

export function kindOfMode (mode: number): Kind {
  switch (mode & 0o170000) {
    case 0o100000: case 0: return Kind.File
    case 0o040000: return Kind.Dir
    case 0o120000: return Kind.Symlink
    case 0o010000: return Kind.Fifo
    case 0o020000: return Kind.Char
    case 0o060000: return Kind.Block
    case 0o140000: return Kind.Socket
    default: return fail('ERR_INVALID', `unknown file type in mode ${mode.toString(8)}`)
  }
}

function split (path: string): string[] {
  const parts = path.split('/').filter(p => p.length > 0)
  for (const p of parts) {
    if (Buffer.byteLength(p) > NAME_MAX) fail('ERR_NAME_TOO_LONG', `name longer than ${NAME_MAX} bytes`)
  }
  return parts
}

/** What the namespace needs of the rest of the tree. */
export interface NamespaceDeps {
  root: DirNode
  /** Loads every entry of a directory. */
  loadDir: (dir: DirNode) => Promise<void>
  /** Loads what a lookup of `name` needs (a sharded directory: the shards on its path). */
  loadName: (dir: DirNode, name: string) => Promise<void>
  /** Loads a directory's node (a sharded one: its root, which counts its entries). */
  loadRoot: (dir: DirNode) => Promise<void>
  /** Loads shards for a listing (which lets them go again behind it). */
  loadListed: LoadListed
  /** A file left the tree (unlinked or replaced): its dirty blocks must not be sealed. */
  forget: (f: FileNode) => void
  links: LinkTable
  /** Loads the link table (a drive reopened with linked nodes has it sealed). */
  loadLinks: () => Promise<void>
  now: () => number
  owner: Owner
}

export class Namespace {
  constructor (private readonly deps: NamespaceDeps) {}

  /** `dir` with every entry loaded. */
  private async loaded (dir: DirNode): Promise<DirNode> {
    if (!isComplete(dir)) await this.deps.loadDir(dir)
    return dir
  }

  /** `dir` with what a lookup of `name` needs loaded. */
  private async at (dir: DirNode, name: string): Promise<DirNode> {
    if (!isReady(dir, name)) await this.deps.loadName(dir, name)
    return dir
  }

  /** `dir` with its count of entries known. */
  private async counted (dir: DirNode): Promise<DirNode> {
    if (!isLoaded(dir)) await this.deps.loadRoot(dir)
    return dir
  }

  /**
   * After a removal: a sharded directory down to a few entries loads them all, so the next
   * commit can merge it back into a plain node (dir-shards.ts, MERGE_BYTES). Best effort: the
   * removal has happened by now, so a shard that fails to load (its read logged the error) must
   * not make the call report a failure; the merge back waits for a later complete listing.
   */
  private async shrunk (dir: DirNode): Promise<void> {
    if (dir.shards == null || dir.shards.count > MERGE_ENTRIES || isComplete(dir)) return
    try { await this.deps.loadDir(dir) } catch {}
  }

  async lookup (path: string): Promise<Node> {
    let node: Node = this.deps.root
    for (const part of split(path)) {
      if (!(node instanceof DirNode)) fail('ERR_NOT_DIR', `${node.label()} is not a directory`)
      const child: Node | undefined = getEntry(await this.at(node as DirNode, part), part)
      if (child == null) fail('ERR_NOT_FOUND', `${path} does not exist`)
      node = child!
    }
    return node
  }

  /** The loaded directory a path's last name lives in, and that name. */
  private async parentOf (path: string): Promise<{ dir: DirNode, name: string }> {
    const parts = split(path)
    const name = parts.pop()
    if (name == null) fail('ERR_BUSY', 'the root cannot be replaced')
    const dir = await this.lookup('/' + parts.join('/'))
    if (!(dir instanceof DirNode)) fail('ERR_NOT_DIR', `${dir.label()} is not a directory`)
    return { dir: await this.at(dir as DirNode, name!), name: name! }
  }

  /** A node given as itself (an open file that was unlinked has no path) or by its path. */
  async target (t: Node | string): Promise<Node> {
    return typeof t === 'string' ? await this.lookup(t) : t
  }

  async readdir (path: string): Promise<Array<[string, Node]>> {
    const dir = await this.lookup(path)
    if (!(dir instanceof DirNode)) fail('ERR_NOT_DIR', `${path} is not a directory`)
    return entries(await this.loaded(dir as DirNode))
  }

  /** One page of a listing: the entries after `after` (null: from the start), about `max` of them (dir-listing.ts). */
  async readdirPage (path: string, after: ListPos | null, max: number): Promise<ListPage> {
    const dir = await this.lookup(path)
    if (!(dir instanceof DirNode)) fail('ERR_NOT_DIR', `${path} is not a directory`)
    return await listPage(await this.counted(dir as DirNode), after, max, this.deps.loadListed)
  }

  private newAttrs (mode: number, uid?: number, gid?: number): Attrs {
    const t = this.deps.now()
    const owner = this.deps.owner
    return { mode: mode & 0o7777, uid: uid ?? owner.uid, gid: gid ?? owner.gid, atime: t, mtime: t, ctime: t }
  }

  /** Adds a new node under a free name; its creation time is the directory's new mtime. */
  private async add<T extends Node> (path: string, make: () => T): Promise<T> {
    const { dir, name } = await this.parentOf(path)
    if (hasEntry(dir, name)) fail('ERR_EXISTS', `${path} exists`)
    const node = make()
    setEntry(dir, name, node)
    touchDir(dir, node.attrs.ctime)
    return node
  }

  async create (path: string, mode: number, uid?: number, gid?: number): Promise<FileNode> {
    return await this.add(path, () => new FileNode(this.newAttrs(mode, uid, gid), randomId(), randomKey()))
  }

  async mknod (path: string, mode: number, rdev: number, uid?: number, gid?: number): Promise<Node> {
    const kind = kindOfMode(mode)
    if (kind === Kind.File) return await this.create(path, mode, uid, gid)
    if (kind === Kind.Dir || kind === Kind.Symlink) fail('ERR_INVALID', 'mknod cannot make directories or symlinks')
    return await this.add(path, () => new SpecialNode(this.newAttrs(mode, uid, gid), kind, rdev))
  }

  async mkdir (path: string, mode: number, uid?: number, gid?: number): Promise<DirNode> {
    return await this.add(path, () => {
      const d = new DirNode(this.newAttrs(mode, uid, gid), randomId(), randomKey())
      startEmpty(d)
      d.dirty = true
      return d
    })
  }

  async symlink (target: string, path: string, uid?: number, gid?: number): Promise<SymlinkNode> {
    if (Buffer.byteLength(target) > MAX_SYMLINK) fail('ERR_NAME_TOO_LONG', 'symlink target too long')
    return await this.add(path, () => new SymlinkNode(this.newAttrs(0o777, uid, gid), target))
  }

  async readlink (path: string): Promise<string> {
    const node = await this.lookup(path)
    if (!(node instanceof SymlinkNode)) fail('ERR_INVALID', `${path} is not a symlink`)
    return (node as SymlinkNode).target
  }

  async unlink (path: string): Promise<Node> {
    const { dir, name } = await this.parentOf(path)
    const node = getEntry(dir, name) ?? fail('ERR_NOT_FOUND', `${path} does not exist`)
    if (node.kind === Kind.Dir) fail('ERR_IS_DIR', `${path} is a directory`)
    const t = this.deps.now()
    this.dropName(dir, name, node, t)
    touchDir(dir, t)
    await this.shrunk(dir)
    return node
  }

  /**
   * Takes one name of a non-directory away: its link count and ctime follow; a node losing its
   * last name leaves the link table, and a file's dirty blocks are not sealed any more.
   */
  private dropName (dir: DirNode, name: string, node: Node, t: number): void {
    deleteEntry(dir, name, node)
    node.nlink--
    node.attrs.ctime = t
    if (node.nlink > 0) { touch(node); return }
    if (node.link != null && this.deps.links.nodes?.delete(node.link.id.toString('hex')) === true) this.deps.links.dirty = true
    if (node instanceof FileNode) this.deps.forget(node)
  }

  async rmdir (path: string): Promise<void> {
    const { dir, name } = await this.parentOf(path)
    const node = getEntry(dir, name) ?? fail('ERR_NOT_FOUND', `${path} does not exist`)
    if (!(node instanceof DirNode)) fail('ERR_NOT_DIR', `${path} is not a directory`)
    if (entryCount(await this.counted(node as DirNode)) > 0) fail('ERR_NOT_EMPTY', `${path} is not empty`)
    deleteEntry(dir, name, node)
    touchDir(dir, this.deps.now())
    await this.shrunk(dir)
  }

  /**
   * Gives the node at `from` the name `to` too. Its first extra name moves its record into the
   * link table: its directory entry becomes a name and a link id, like the new one.
   */
  async link (from: string, to: string): Promise<Node> {
    const node = await this.lookup(from)
    if (node.kind === Kind.Dir) fail('ERR_NOT_PERMITTED', `${from} is a directory`)
    const { dir, name } = await this.parentOf(to)
    if (hasEntry(dir, name)) fail('ERR_EXISTS', `${to} exists`)
    if (node.nlink >= LINK_MAX) fail('ERR_TOO_MANY_LINKS', `${from} has ${LINK_MAX} names`)
    if (node.link == null) {
      await this.deps.loadLinks()
      touch(node) // the directory holding its one name now holds a link name
      const id = randomId()
      node.link = { table: this.deps.links, id }
      this.deps.links.nodes!.set(id.toString('hex'), node)
      this.deps.links.addName(node, node.parent!, node.name) // its one name so far
    }
    const t = this.deps.now()
    setEntry(dir, name, node)
    node.nlink++
    node.attrs.ctime = t
    touch(node)
    touchDir(dir, t)
    return node
  }

  /** `noReplace` (RENAME_NOREPLACE): an existing target fails with ERR_EXISTS, checked atomically. */
  async rename (from: string, to: string, noReplace = false): Promise<void> {
    const src = await this.parentOf(from)
    const node = getEntry(src.dir, src.name) ?? fail('ERR_NOT_FOUND', `${from} does not exist`)
    const dst = await this.parentOf(to)
    for (let d: DirNode | null = dst.dir; d != null; d = d.parent) {
      if (d === node) fail('ERR_INVALID', `cannot move ${from} into itself`)
    }
    const existing = getEntry(dst.dir, dst.name)
    if (existing != null && noReplace) fail('ERR_EXISTS', `${to} exists`)
    if (existing === node) return
    if (existing != null) {
      if (node instanceof DirNode) {
        if (!(existing instanceof DirNode)) fail('ERR_NOT_DIR', `${to} is not a directory`)
        if (entryCount(await this.counted(existing as DirNode)) > 0) fail('ERR_NOT_EMPTY', `${to} is not empty`)
      } else if (existing instanceof DirNode) {
        fail('ERR_IS_DIR', `${to} is a directory`)
      }
    }
    const t = this.deps.now()
    if (existing != null) {
      if (existing instanceof DirNode) deleteEntry(dst.dir, dst.name, existing)
      else this.dropName(dst.dir, dst.name, existing, t)
    }
    deleteEntry(src.dir, src.name, node)
    setEntry(dst.dir, dst.name, node)
    node.attrs.ctime = t
    touch(node)
    touchDir(src.dir, t)
    touchDir(dst.dir, t)
    await this.shrunk(src.dir)
  }
}
