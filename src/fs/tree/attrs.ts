// Metadata of nodes: stat (and when it is exact without loading anything), chmod, chown,
// utimens, and the user.* extended attributes. Each change sets ctime and marks the path dirty.
import { BLOCK_SIZE, Kind } from './format.js'
import { fail } from './errors.js'
import { type Node, FileNode, DirNode, SymlinkNode, SpecialNode } from './nodes.js'
import { isLoaded } from './dir-entries.js'
import { touch } from './changes.js'
import { blockCount, sectorsOf, sectorsOfBlocks } from './block-range.js'
import type { Stat } from './ports.js'

const TYPE_BITS: Record<Kind, number> = {
  [Kind.File]: 0o100000,
  [Kind.Dir]: 0o040000,
  [Kind.Symlink]: 0o120000,
  [Kind.Fifo]: 0o010000,
  [Kind.Char]: 0o020000,
  [Kind.Block]: 0o060000,
  [Kind.Socket]: 0o140000
}

const XATTR_NAME_MAX = 255
const XATTR_VALUE_MAX = 64 * 1024
const XATTR_CREATE = 1
const XATTR_REPLACE = 2

export function stat (node: Node): Stat {
  const a = node.attrs
  let size = 0
  let blocks = 0
  let nlink = node.nlink
  let rdev = 0
  if (node instanceof FileNode) {
    size = node.size
    // Blocks still sealing on the thread pool count too: they are stored a moment later.
    const dropped = node.droppedMap?.root === node.blockMap ? node.droppedMap : null // a clean map dropped to save memory (load.ts)
    const stored = node.blocks != null ? node.blocks.size + [...node.dirty.keys(), ...node.sealing.keys()].filter(i => !node.blocks!.has(i)).length : dropped?.blocks ?? blockCount(size)
    blocks = Math.min(sectorsOf(size), sectorsOfBlocks(stored))
  } else if (node instanceof DirNode) {
    size = 4096
    blocks = 8
    nlink = 2 + node.subdirs
  } else if (node instanceof SymlinkNode) {
    size = Buffer.byteLength(node.target)
  } else if (node instanceof SpecialNode) {
    rdev = node.rdev
  }
  return { ino: node.ino, mode: TYPE_BITS[node.kind] | a.mode, nlink, uid: a.uid, gid: a.gid, rdev, size, blocks, blksize: BLOCK_SIZE, atime: a.atime, mtime: a.mtime, ctime: a.ctime }
}

/**
 * Whether stat() already says what a stat after loading would, with nothing to load: a directory
 * not loaded yet does not know its subdirectories (nlink), a file with a separate block map not
 * loaded yet its holes (st_blocks).
 */
export function isStatExact (node: Node): boolean {
  if (node instanceof DirNode) return isLoaded(node)
  if (node instanceof FileNode) return node.blocks != null || (node.droppedMap != null && node.droppedMap.root === node.blockMap)
  return true
}

/** What attribute changes need of the rest of the tree. */
export interface AttrDeps {
  target: (t: Node | string) => Promise<Node>
  now: () => number
}

export class AttrOps {
  constructor (private readonly deps: AttrDeps) {}

  private changed (node: Node): void {
    node.attrs.ctime = this.deps.now()
    touch(node)
  }

  async chmod (target: Node | string, mode: number): Promise<void> {
    const node = await this.deps.target(target)
    node.attrs.mode = mode & 0o7777
    this.changed(node)
  }

  async chown (target: Node | string, uid: number, gid: number): Promise<void> {
    const node = await this.deps.target(target)
    if (uid !== -1 && uid !== 0xffffffff) node.attrs.uid = uid
    if (gid !== -1 && gid !== 0xffffffff) node.attrs.gid = gid
    this.changed(node)
  }

  /** Sets either time (undefined leaves it); ctime becomes now, as for any attribute change. */
  async utimens (target: Node | string, atime: number | undefined, mtime: number | undefined): Promise<void> {
    const node = await this.deps.target(target)
    if (atime !== undefined) node.attrs.atime = atime
    if (mtime !== undefined) node.attrs.mtime = mtime
    this.changed(node)
  }

  async setxattr (target: Node | string, name: string, value: Buffer, flags: number): Promise<void> {
    if (!name.startsWith('user.')) fail('ERR_UNSUPPORTED', 'only user.* extended attributes are supported')
    if (Buffer.byteLength(name) > XATTR_NAME_MAX) fail('ERR_RANGE', 'attribute name too long')
    if (value.length > XATTR_VALUE_MAX) fail('ERR_TOO_BIG', 'attribute value too large')
    const node = await this.deps.target(target)
    const has = node.xattrs?.has(name) ?? false
    if ((flags & XATTR_CREATE) !== 0 && has) fail('ERR_EXISTS', `${name} exists`)
    if ((flags & XATTR_REPLACE) !== 0 && !has) fail('ERR_NO_ATTR', `${name} does not exist`)
    node.xattrs ??= new Map()
    node.xattrs.set(name, Buffer.from(value))
    this.changed(node)
  }

  async getxattr (target: Node | string, name: string): Promise<Buffer> {
    const node = await this.deps.target(target)
    return node.xattrs?.get(name) ?? fail('ERR_NO_ATTR', `${name} is not set`)
  }

  async listxattr (target: Node | string): Promise<string[]> {
    const node = await this.deps.target(target)
    return [...(node.xattrs?.keys() ?? [])]
  }

  async removexattr (target: Node | string, name: string): Promise<void> {
    const node = await this.deps.target(target)
    if (node.xattrs?.delete(name) !== true) fail('ERR_NO_ATTR', `${name} is not set`)
    this.changed(node)
  }
}
