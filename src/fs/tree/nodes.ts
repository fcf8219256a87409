// In-memory inodes of the tree and the drive's link table. A node with one name knows its parent
// and name, so a change marks the path to the root dirty and the next commit rewrites exactly that
// path. A node with more names (hard links) lives in the link table: every name resolves to the
// one node object, its `parent`/`name` are one of its names (for log lines), and a change marks
// the table dirty instead (changes.ts). The table also knows every name of each linked node in a
// loaded directory, and which linked nodes changed: the kernel caches attributes per name, so a
// change through one name must reach the others (src/fs/fuse/kernel-names.ts).
import type { CID } from 'multiformats/cid'
import { type Attrs, Kind } from './format.js'
import type { BlockRef } from './block-ref.js'
import type { MapTree } from './block-map.js'
import type { DirShards } from './dir-shards.js'

let nextIno = 2
/** Inode numbers of nodes with an id start here; those below are counted (symlinks, devices). */
const ID_INO_BASE = 2 ** 32

/**
 * A file's or directory's inode number, from its id: the same whenever the node is loaded again
 * (after the quiet daemon unloads the tree, or a merge swaps one in), so `st_ino` stays what git's
 * index, backup tools and `ls -i` saw. 53 bits of the random id (a JS number); two ids sharing
 * them is ~n^2/2^54 for n nodes, and matters only to a tool that takes two names with
 * st_nlink > 1 for one file, which a node with one name is not.
 */
export function inoOfId (id: Buffer): number {
  const n = id.readUIntBE(0, 6) * 32 + (id[6] >> 3)
  return n < ID_INO_BASE ? n + ID_INO_BASE : n
}

/**
 * Log lines and error messages name nodes by label(): their id (files, directories) or inode
 * number, never their path, unless a debug option (`--debug-log-paths`) turned paths on: logs
 * are plaintext on disk, and a path is the user's data.
 */
export const logOptions = { paths: false }

export abstract class Node {
  readonly ino: number
  abstract readonly kind: Kind
  parent: DirNode | null = null
  name = ''
  xattrs: Map<string, Buffer> | null = null
  /** Names this node has (stat's st_nlink for non-directories). */
  nlink = 1
  /** Set once the node has had a second name: its record lives in the link table. */
  link: LinkRef | null = null
  constructor (public attrs: Attrs, id?: Buffer) { this.ino = id != null ? inoOfId(id) : nextIno++ }

  /** How log lines and error messages name this node (logOptions). */
  label (): string {
    if (logOptions.paths) return this.path()
    const id = (this as { id?: Buffer }).id
    return id != null ? `id ${id.subarray(0, 8).toString('hex')}` : `ino ${this.ino}`
  }

  /** Path from the root (one of its names). */
  path (): string {
    const parts: string[] = []
    for (let n: Node | null = this; n?.parent != null; n = n.parent) parts.push(n.name)
    return '/' + parts.reverse().join('/')
  }
}

/** A dirty block sealed as patches: written and known segments (bit masks), and what the patches go over; `fold`: sealed whole once all is known (file-blocks.ts). */
export interface PatchState { written: number, known: number, over: BlockRef | undefined, fold?: boolean }

/** The empty map and set files without such state share; writing to them is a bug, caught. */
class NoEntries extends Map<never, never> { override set (): never { throw new Error('bug: the shared empty map written to') } }
class NoMembers extends Set<never> { override add (): never { throw new Error('bug: the shared empty set written to') } }
const NO_ENTRIES: ReadonlyMap<number, never> = new NoEntries()
const NO_MEMBERS: ReadonlySet<number> = new NoMembers()

export class FileNode extends Node {
  readonly kind = Kind.File
  size = 0
  /** Sealed blocks by index (whole, or a base with patches); null while the block map node is not loaded yet. */
  blocks: Map<number, BlockRef> | null = new Map()
  /** The sealed block map's root (when the list outgrew the entry). */
  blockMap: CID | null = null
  /** The block map must be sealed whole at the next commit (not only the leaves of changedBlocks). */
  blockMapDirty = false
  /** The sealed tree `blockMap` names, as sealed or read (block-map.ts); null: unknown, or a flat map. */
  mapTree: MapTree | null = null
  /**
   * Blocks set or removed since the map was last sealed: the leaves a commit reseals. This and
   * the three maps below are made on first use and given up once empty (clearChanged, the
   * delete methods): a file at rest shares one empty set and map (35,000 idle small files held
   * 175,000 empty Maps and Sets, 35 MiB; docs/performance.md "Scale").
   */
  get changedBlocks (): ReadonlySet<number> { return this.changed ?? NO_MEMBERS }
  private changed: Set<number> | null = null
  clearChanged (): void { this.changed = null }
  /** Plaintext blocks written since they were last sealed (BLOCK_SIZE bytes, or smaller while a block starts small: file-blocks.ts). */
  get dirty (): ReadonlyMap<number, Buffer> { return this.dirtyMap ?? NO_ENTRIES }
  private dirtyMap: Map<number, Buffer> | null = null
  setDirty (idx: number, buf: Buffer): void { (this.dirtyMap ??= new Map()).set(idx, buf) }
  deleteDirty (idx: number): boolean { const m = this.dirtyMap; if (m?.delete(idx) !== true) return false; if (m.size === 0) this.dirtyMap = null; return true }
  /**
   * Dirty blocks that are sealed as patches (file-blocks.ts): segments written since and
   * segments the buffer holds (written or loaded; the others are read from `over`), one bit per
   * 4 KiB segment, and the block reference the patches go over. Absent: sealed whole.
   */
  get patching (): ReadonlyMap<number, PatchState> { return this.patchingMap ?? NO_ENTRIES }
  private patchingMap: Map<number, PatchState> | null = null
  setPatching (idx: number, p: PatchState): void { (this.patchingMap ??= new Map()).set(idx, p) }
  deletePatching (idx: number): boolean { const m = this.patchingMap; if (m?.delete(idx) !== true) return false; if (m.size === 0) this.patchingMap = null; return true }
  /** Full blocks being sealed on the thread pool; the buffer is the job's identity. */
  get sealing (): ReadonlyMap<number, Buffer> { return this.sealingMap ?? NO_ENTRIES }
  private sealingMap: Map<number, Buffer> | null = null
  setSealing (idx: number, buf: Buffer): void { (this.sealingMap ??= new Map()).set(idx, buf) }
  deleteSealing (idx: number): boolean { const m = this.sealingMap; if (m?.delete(idx) !== true) return false; if (m.size === 0) this.sealingMap = null; return true }
  loading: Promise<void> | null = null
  lastReadEnd = -1
  /**
   * Open handles and ops in flight that use the block map: while pinned, a loaded map stays
   * (load.ts drops clean, unpinned files' maps to bound memory).
   */
  pins = 0
  /** The block map last dropped (load.ts) and how many blocks it names: stat's st_blocks while `root` is still the map. */
  droppedMap: { root: CID, blocks: number } | null = null
  readonly id: Buffer
  readonly key: Buffer
  /** `id` and `key` are copied into Node's shared pool: a Buffer of their own each (randomBytes) held ~0.5 KB per file. */
  constructor (attrs: Attrs, id: Buffer, key: Buffer) {
    super(attrs, id)
    this.id = Buffer.from(id)
    this.key = Buffer.from(key)
  }

  /** Block `idx` is sealed as `ref` now, or (undefined) a hole; returns whether anything changed. */
  setBlock (idx: number, ref: BlockRef | undefined): boolean {
    if (ref == null) { if (!this.blocks!.delete(idx)) return false } else this.blocks!.set(idx, ref)
    ;(this.changed ??= new Set()).add(idx)
    return true
  }
}

export class DirNode extends Node {
  readonly kind = Kind.Dir
  /**
   * Children by name; null until the directory node is loaded (a sharded one: its loaded
   * shards' entries). Private to dir-entries.ts by convention: every other module goes through
   * its functions.
   */
  children: Map<string, Node> | null = null
  cid: CID | null = null
  /** A sharded directory's trie (dir-shards.ts): `children` then holds the loaded shards' entries only. */
  shards: DirShards | null = null
  /** The directory node must be rewritten at the next commit. */
  dirty = false
  loading: Promise<void> | null = null
  /** Subdirectories among the children (nlink; a sharded directory's root counts them all); kept by dir-entries.ts. */
  subdirs = 0
  constructor (attrs: Attrs, public readonly id: Buffer, public readonly key: Buffer) { super(attrs, id) }
}

export class SymlinkNode extends Node {
  readonly kind = Kind.Symlink
  constructor (attrs: Attrs, public readonly target: string) { super(attrs) }
}

export class SpecialNode extends Node {
  constructor (attrs: Attrs, public readonly kind: Kind, public readonly rdev: number) { super(attrs) }
}

/** One name of a linked node: the directory holding it and the name there. */
export interface LinkName { readonly dir: DirNode, readonly name: string }

/** A linked node's place in the link table: the table, and the link id its entries name it by. */
export interface LinkRef { readonly table: LinkTable, readonly id: Buffer }

/**
 * The drive's table of linked nodes: a sealed node of its own (random id and key, like a
 * directory), referenced from the commit record. Loaded before any directory that names a link.
 */
export class LinkTable {
  /** Linked nodes by link id (hex); null until the table node is loaded. */
  nodes: Map<string, Node> | null
  cid: CID | null
  /** The table node must be rewritten at the next commit. */
  dirty = false
  loading: Promise<void> | null = null
  /** Each linked node's names in loaded directories (kept by dir-entries.ts and namespace.ts). */
  private readonly names = new Map<Node, LinkName[]>()
  /** Linked nodes changed since takeChanged() last ran (touch() adds them). */
  private readonly changed = new Set<Node>()
  constructor (public readonly id: Buffer, public readonly key: Buffer, cid: CID | null) {
    this.cid = cid
    this.nodes = cid == null ? new Map() : null
  }

  addName (node: Node, dir: DirNode, name: string): void {
    const list = this.names.get(node)
    if (list == null) this.names.set(node, [{ dir, name }])
    else if (!list.some(n => n.dir === dir && n.name === name)) list.push({ dir, name })
  }

  removeName (node: Node, dir: DirNode, name: string): void {
    const list = this.names.get(node)
    if (list == null) return
    const i = list.findIndex(n => n.dir === dir && n.name === name)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.names.delete(node)
  }

  /** The node's names in loaded directories (a directory not loaded has none the kernel knows). */
  namesOf (node: Node): readonly LinkName[] { return this.names.get(node) ?? [] }

  markChanged (node: Node): void { this.changed.add(node) }

  /** The paths of every name of each linked node changed since the last call. */
  takeChanged (): string[] {
    if (this.changed.size === 0) return []
    const paths: string[] = []
    for (const node of this.changed) {
      for (const { dir, name } of this.namesOf(node)) {
        const d = dir.path()
        paths.push(d === '/' ? '/' + name : d + '/' + name)
      }
    }
    this.changed.clear()
    return paths
  }
}
