// The encrypted Merkle tree: path resolution, POSIX-shaped operations on in-memory inodes, and
// commits that seal what changed into blocks and append a new root to the journal. Knows no
// FUSE and no network; it sees the block store through the narrow BlockStore interface.
import type { CID } from 'multiformats/cid'
import { seal, open, randomKey, randomId, SealType, AuthError, padFrame, unpadFrame, padme, copyBytes, openRun, SEAL_OVERHEAD, type FileRange, type SealPosition, type SealedSlot } from '../../crypto/index.js'
import { cidFromBlake3 } from '../../store/cid.js'
import {
  type Attrs, type EntryRecord, type DirNodeRecord, type BlockMapRecord, type CommitRecord,
  BLOCK_SIZE, INLINE_BLOCKS, FORMAT_VERSION, Kind, encode, decode, msToNs, nsToMs
} from './format.js'
import { TreeError, fail } from './errors.js'
import { Node, FileNode, DirNode, SymlinkNode, SpecialNode } from './nodes.js'

export { Node, FileNode, DirNode, SymlinkNode, SpecialNode }

/** One block of a run read straight from its pack (Tree.readRun). */
interface RunPart { idx: number, cid: CID, at: FileRange, dst: number, span: number }
/** Bytes between two records that still count as back to back (a record's header). */
const RUN_GAP = 256
/** Blocks per run at most (the addon's scratch buffer per pool thread grows to the largest run). */
const RUN_BLOCKS = 16

/** What the tree needs of a block store. */
export interface BlockStore {
  put: (bytes: Uint8Array) => CID
  putWithCid: (cid: CID, bytes: Uint8Array, release?: () => void) => CID
  get: (cid: CID, scratch?: Buffer) => Promise<Uint8Array>
  /** Where a block's sealed bytes lie on disk (null: only in memory, or not a file store). */
  locate?: (cid: CID) => FileRange | null
  /** From now on locate() names buffered descriptors only (O_DIRECT reads were refused). */
  refuseDirectReads?: () => void
  sync: () => Promise<{ pack: number, offset: number }>
  flush: () => Promise<void>
  readonly backlog: number
  /** Set while appends fail (a full disk); writes are refused with it. */
  readonly writeError: Error | null
}

/** What the tree needs of the decrypted-block cache. */
export interface BlockCache {
  get: (key: string) => Buffer | undefined
  set: (key: string, value: Buffer) => void
}

/** Seals full blocks off the event loop (SealPool). */
export interface BlockSealer {
  seal: (key: Uint8Array, pos: SealPosition, plain: Uint8Array) => Promise<SealedSlot>
}

/** Where commits go: the journal's append, sealed by the caller's commit key. */
export interface CommitSink {
  append: (record: CommitRecord) => Promise<void>
}

export interface TreeOptions {
  store: BlockStore
  cache: BlockCache
  sink: CommitSink
  /** The last committed record, or null for a new, empty tree. */
  head: CommitRecord | null
  log?: (line: string) => void
  /** Plaintext bytes of dirty blocks kept before they are sealed eagerly. */
  dirtyBudget?: number
  now?: () => number
  owner?: { uid: number, gid: number }
  /** Seals full blocks off the event loop; without one they are sealed inline. */
  sealer?: BlockSealer
  /** Called after each commit is durable. */
  onCommit?: (info: CommitInfo) => void
}

export interface Stat {
  ino: number
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev: number
  size: number
  blocks: number
  blksize: number
  atime: number
  mtime: number
  ctime: number
}

export interface CommitInfo { seq: number, root: CID | null, time: number }

const NAME_MAX = 255
const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER
const MAX_SYMLINK = 4095
const TYPE_BITS: Record<Kind, number> = {
  [Kind.File]: 0o100000,
  [Kind.Dir]: 0o040000,
  [Kind.Symlink]: 0o120000,
  [Kind.Fifo]: 0o010000,
  [Kind.Char]: 0o020000,
  [Kind.Block]: 0o060000,
  [Kind.Socket]: 0o140000
}

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

export class Tree {
  readonly root: DirNode
  private readonly store: BlockStore
  private readonly cache: BlockCache
  private readonly sink: CommitSink
  private readonly log: (line: string) => void
  private readonly now: () => number
  private readonly owner: { uid: number, gid: number }
  private readonly dirtyFiles = new Set<FileNode>()
  private dirtyBlocks = 0
  private readonly sealingFiles = new Set<FileNode>()
  private readonly seals = new Set<Promise<void>>()
  /** Block buffers of sealed blocks, reused so a long write does not churn the GC. */
  private readonly freeBuffers: Buffer[] = []
  private readonly readBuffers: Buffer[] = []
  private readonly inflight = new Map<string, Promise<Buffer>>()
  private readonly dirtyBudget: number
  private seq: number
  private headRoot: CID | null
  private pendingCommit: Promise<CommitInfo> | null = null
  private commitChain: Promise<unknown> = Promise.resolve()
  private commitFailed = false
  private readonly onCommit: (info: CommitInfo) => void
  private readonly sealer: BlockSealer | null

  constructor (opts: TreeOptions) {
    this.store = opts.store
    this.cache = opts.cache
    this.sink = opts.sink
    this.log = opts.log ?? (() => {})
    this.now = opts.now ?? Date.now
    this.owner = opts.owner ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
    this.dirtyBudget = opts.dirtyBudget ?? 64 * 1024 * 1024
    this.onCommit = opts.onCommit ?? (() => {})
    this.sealer = opts.sealer ?? null
    this.seq = opts.head?.seq ?? 0
    if (opts.head != null) {
      this.root = this.nodeFromEntry(opts.head.root) as DirNode
      this.headRoot = this.root.cid
    } else {
      const t = this.now()
      this.root = new DirNode({ mode: 0o755, uid: this.owner.uid, gid: this.owner.gid, atime: t, mtime: t, ctime: t }, randomId(), randomKey())
      this.root.children = new Map()
      this.root.dirty = true
      this.headRoot = null
    }
  }

  get dirty (): boolean { return this.root.dirty || this.commitFailed }
  get head (): CommitInfo { return { seq: this.seq, root: this.headRoot, time: this.now() } }

  // ---- loading -----------------------------------------------------------------------------

  private nodeFromEntry (e: EntryRecord): Node {
    const attrs: Attrs = { mode: e.m & 0o7777, uid: e.u, gid: e.g, atime: nsToMs(e.a), mtime: nsToMs(e.mt), ctime: nsToMs(e.c) }
    let node: Node
    switch (e.t) {
      case Kind.File: {
        const f = new FileNode(attrs, Buffer.from(e.i!), Buffer.from(e.k!))
        f.size = e.s ?? 0
        if (e.bm != null) { f.blocks = null; f.blockMap = e.bm } else f.blocks = new Map(e.b ?? [])
        node = f
        break
      }
      case Kind.Dir: {
        const d = new DirNode(attrs, Buffer.from(e.i!), Buffer.from(e.k!))
        d.cid = e.d ?? null
        if (d.cid == null) d.children = new Map()
        node = d
        break
      }
      case Kind.Symlink: node = new SymlinkNode(attrs, e.l ?? ''); break
      case Kind.Fifo: case Kind.Char: case Kind.Block: case Kind.Socket:
        node = new SpecialNode(attrs, e.t, e.r ?? 0); break
      default: return fail('ERR_FORMAT', `unknown entry type ${String(e.t)}`)
    }
    if (e.x != null) node.xattrs = new Map(Object.entries(e.x).map(([k, v]) => [k, Buffer.from(v)]))
    node.name = e.n
    return node
  }

  /** The error (and log line) for a block that cannot be read or fails authentication. */
  private integrityError (what: string, cid: CID, err: unknown, stage: 'read' | 'open'): TreeError {
    const mismatch = (err as { code?: string }).code === 'ERR_CID_MISMATCH' // older or other sealed bytes
    const reason = mismatch
      ? 'does not match its CID'
      : stage === 'read'
      ? `cannot be read: ${(err as Error).message}`
      : err instanceof AuthError ? 'authentication failed' : (err as Error).message
    this.log(`integrity: ${what}: block ${cid.toString()}${stage === 'read' || mismatch ? ' ' : ': '}${reason}`)
    return new TreeError('ERR_INTEGRITY', `${what}: ${reason}`, { cause: err })
  }

  private async openSealed (key: Buffer, type: SealType, id: Buffer, index: number, cid: CID, what: string): Promise<Buffer> {
    // Sealed bytes land in a reused buffer; only the plaintext (what the cache keeps) is new.
    const scratch = this.readBuffers.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE + 64)
    try {
      let sealed: Uint8Array
      try {
        sealed = await this.store.get(cid, scratch)
      } catch (err) {
        throw this.integrityError(what, cid, err, 'read')
      }
      try {
        return open(key, { type, objectId: id, index }, sealed)
      } catch (err) {
        throw this.integrityError(what, cid, err, 'open')
      }
    } finally {
      if (this.readBuffers.length < 16) this.readBuffers.push(scratch)
    }
  }

  /** Loads a directory's children once; concurrent callers share the load. */
  async children (dir: DirNode): Promise<Map<string, Node>> {
    if (dir.children != null) return dir.children
    dir.loading ??= (async () => {
      const framed = await this.openSealed(dir.key, SealType.Dir, dir.id, 0, dir.cid!, `directory ${dir.path()}`)
      const body = unpadFrame(framed) ?? fail('ERR_INTEGRITY', `directory ${dir.path()}: bad framing`)
      const rec = decode<DirNodeRecord>(body, `directory ${dir.path()}`)
      const map = new Map<string, Node>()
      let subdirs = 0
      for (const e of rec.e) {
        const child = this.nodeFromEntry(e)
        child.parent = dir
        if (child.kind === Kind.Dir) subdirs++
        map.set(child.name, child)
      }
      if (dir.children == null) { dir.children = map; dir.subdirs = subdirs }
    })().finally(() => { dir.loading = null })
    await dir.loading
    return dir.children!
  }

  private async blocks (f: FileNode): Promise<Map<number, CID>> {
    if (f.blocks != null) return f.blocks
    f.loading ??= (async () => {
      const framed = await this.openSealed(f.key, SealType.BlockMap, f.id, 0, f.blockMap!, `file ${f.path()} block map`)
      const body = unpadFrame(framed) ?? fail('ERR_INTEGRITY', `file ${f.path()}: bad block map framing`)
      const rec = decode<BlockMapRecord>(body, `file ${f.path()} block map`)
      if (f.blocks == null) f.blocks = new Map(rec.b)
    })().finally(() => { f.loading = null })
    await f.loading
    return f.blocks!
  }

  // ---- resolution --------------------------------------------------------------------------

  private static split (path: string): string[] {
    const parts = path.split('/').filter(p => p.length > 0)
    for (const p of parts) {
      if (Buffer.byteLength(p) > NAME_MAX) fail('ERR_NAME_TOO_LONG', `name longer than ${NAME_MAX} bytes`)
    }
    return parts
  }

  async lookup (path: string): Promise<Node> {
    let node: Node = this.root
    for (const part of Tree.split(path)) {
      if (!(node instanceof DirNode)) fail('ERR_NOT_DIR', `${node.path()} is not a directory`)
      const child: Node | undefined = (await this.children(node as DirNode)).get(part)
      if (child == null) fail('ERR_NOT_FOUND', `${path} does not exist`)
      node = child!
    }
    return node
  }

  private async parentOf (path: string): Promise<{ dir: DirNode, name: string, children: Map<string, Node> }> {
    const parts = Tree.split(path)
    const name = parts.pop()
    if (name == null) fail('ERR_BUSY', 'the root cannot be replaced')
    const dir = await this.lookup('/' + parts.join('/'))
    if (!(dir instanceof DirNode)) fail('ERR_NOT_DIR', `${dir.path()} is not a directory`)
    return { dir: dir as DirNode, name: name!, children: await this.children(dir as DirNode) }
  }

  // ---- change tracking ---------------------------------------------------------------------

  /** The node's entry changed: every directory on its path must be rewritten. */
  private touch (node: Node): void {
    for (let d: DirNode | null = node instanceof DirNode ? node : node.parent; d != null && !d.dirty; d = d.parent) d.dirty = true
  }

  private touchDir (dir: DirNode, t = this.now()): void {
    dir.attrs.mtime = t
    dir.attrs.ctime = t
    this.touch(dir)
  }

  private attach (dir: DirNode, children: Map<string, Node>, name: string, node: Node): void {
    node.parent = dir
    node.name = name
    children.set(name, node)
    if (node.kind === Kind.Dir) dir.subdirs++
  }

  private detach (dir: DirNode, children: Map<string, Node>, node: Node): void {
    children.delete(node.name)
    if (node.kind === Kind.Dir) dir.subdirs--
    node.parent = null
  }

  private newAttrs (mode: number, uid?: number, gid?: number): Attrs {
    const t = this.now()
    return { mode: mode & 0o7777, uid: uid ?? this.owner.uid, gid: gid ?? this.owner.gid, atime: t, mtime: t, ctime: t }
  }

  // ---- metadata ----------------------------------------------------------------------------

  stat (node: Node): Stat {
    const a = node.attrs
    let size = 0
    let blocks = 0
    let nlink = 1
    let rdev = 0
    if (node instanceof FileNode) {
      size = node.size
      // Blocks still sealing on the thread pool count too: they are stored a moment later.
      const stored = node.blocks != null ? node.blocks.size + [...node.dirty.keys(), ...node.sealing.keys()].filter(i => !node.blocks!.has(i)).length : Math.ceil(size / BLOCK_SIZE)
      blocks = Math.min(Math.ceil(size / 512), stored * (BLOCK_SIZE / 512))
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
   * stat() once what it counts is loaded: a directory's children give its link count, a file's
   * block map its st_blocks. Nodes not loaded since the mount would otherwise report nlink 2 and
   * a sparse file with a separate block map its full size as allocated.
   */
  async statLoaded (node: Node): Promise<Stat> {
    if (node instanceof DirNode) await this.children(node)
    else if (node instanceof FileNode && node.blocks == null) await this.blocks(node)
    return this.stat(node)
  }

  /**
   * Whether stat() already says what statLoaded() would, with nothing to load: a directory not
   * loaded yet does not know its subdirectories (nlink), a file with a separate block map not
   * loaded yet its holes (st_blocks).
   */
  isStatExact (node: Node): boolean {
    if (node instanceof DirNode) return node.children != null
    if (node instanceof FileNode) return node.blocks != null
    return true
  }

  async readdir (path: string): Promise<Array<[string, Node]>> {
    const dir = await this.lookup(path)
    if (!(dir instanceof DirNode)) fail('ERR_NOT_DIR', `${path} is not a directory`)
    return [...(await this.children(dir as DirNode)).entries()]
  }

  /** A node given as itself (an open file that was unlinked has no path) or by its path. */
  private async target (t: Node | string): Promise<Node> {
    return typeof t === 'string' ? await this.lookup(t) : t
  }

  async chmod (target: Node | string, mode: number): Promise<void> {
    const node = await this.target(target)
    node.attrs.mode = mode & 0o7777
    node.attrs.ctime = this.now()
    this.touch(node)
  }

  async chown (target: Node | string, uid: number, gid: number): Promise<void> {
    const node = await this.target(target)
    if (uid !== -1 && uid !== 0xffffffff) node.attrs.uid = uid
    if (gid !== -1 && gid !== 0xffffffff) node.attrs.gid = gid
    node.attrs.ctime = this.now()
    this.touch(node)
  }

  /** Sets either time (undefined leaves it); ctime becomes now, as for any attribute change. */
  async utimens (target: Node | string, atime: number | undefined, mtime: number | undefined): Promise<void> {
    const node = await this.target(target)
    if (atime !== undefined) node.attrs.atime = atime
    if (mtime !== undefined) node.attrs.mtime = mtime
    node.attrs.ctime = this.now()
    this.touch(node)
  }

  // ---- namespace ---------------------------------------------------------------------------

  async create (path: string, mode: number, uid?: number, gid?: number): Promise<FileNode> {
    const { dir, name, children } = await this.parentOf(path)
    if (children.has(name)) fail('ERR_EXISTS', `${path} exists`)
    const f = new FileNode(this.newAttrs(mode, uid, gid), randomId(), randomKey())
    this.attach(dir, children, name, f)
    this.touchDir(dir, f.attrs.ctime)
    return f
  }

  async mknod (path: string, mode: number, rdev: number, uid?: number, gid?: number): Promise<Node> {
    const kind = kindOfMode(mode)
    if (kind === Kind.File) return await this.create(path, mode, uid, gid)
    if (kind === Kind.Dir || kind === Kind.Symlink) fail('ERR_INVALID', 'mknod cannot make directories or symlinks')
    const { dir, name, children } = await this.parentOf(path)
    if (children.has(name)) fail('ERR_EXISTS', `${path} exists`)
    const n = new SpecialNode(this.newAttrs(mode, uid, gid), kind, rdev)
    this.attach(dir, children, name, n)
    this.touchDir(dir, n.attrs.ctime)
    return n
  }

  async mkdir (path: string, mode: number, uid?: number, gid?: number): Promise<DirNode> {
    const { dir, name, children } = await this.parentOf(path)
    if (children.has(name)) fail('ERR_EXISTS', `${path} exists`)
    const d = new DirNode(this.newAttrs(mode, uid, gid), randomId(), randomKey())
    d.children = new Map()
    d.dirty = true
    this.attach(dir, children, name, d)
    this.touchDir(dir, d.attrs.ctime)
    return d
  }

  async symlink (target: string, path: string, uid?: number, gid?: number): Promise<SymlinkNode> {
    if (Buffer.byteLength(target) > MAX_SYMLINK) fail('ERR_NAME_TOO_LONG', 'symlink target too long')
    const { dir, name, children } = await this.parentOf(path)
    if (children.has(name)) fail('ERR_EXISTS', `${path} exists`)
    const s = new SymlinkNode(this.newAttrs(0o777, uid, gid), target)
    this.attach(dir, children, name, s)
    this.touchDir(dir, s.attrs.ctime)
    return s
  }

  async readlink (path: string): Promise<string> {
    const node = await this.lookup(path)
    if (!(node instanceof SymlinkNode)) fail('ERR_INVALID', `${path} is not a symlink`)
    return (node as SymlinkNode).target
  }

  async unlink (path: string): Promise<Node> {
    const { dir, name, children } = await this.parentOf(path)
    const node = children.get(name) ?? fail('ERR_NOT_FOUND', `${path} does not exist`)
    if (node.kind === Kind.Dir) fail('ERR_IS_DIR', `${path} is a directory`)
    this.detach(dir, children, node)
    if (node instanceof FileNode) this.forget(node)
    node.attrs.ctime = this.now()
    this.touchDir(dir)
    return node
  }

  async rmdir (path: string): Promise<void> {
    const { dir, name, children } = await this.parentOf(path)
    const node = children.get(name) ?? fail('ERR_NOT_FOUND', `${path} does not exist`)
    if (!(node instanceof DirNode)) fail('ERR_NOT_DIR', `${path} is not a directory`)
    if ((await this.children(node as DirNode)).size > 0) fail('ERR_NOT_EMPTY', `${path} is not empty`)
    this.detach(dir, children, node)
    this.touchDir(dir)
  }

  async link (_from: string, _to: string): Promise<never> {
    // A folder's key opens exactly its subtree; a file reachable from two folders would leak
    // through either and leave the other entry stale after a write. See docs/format.md.
    return fail('ERR_NOT_PERMITTED', 'hard links are not supported')
  }

  /** `noReplace` (RENAME_NOREPLACE): an existing target fails with ERR_EXISTS, checked atomically. */
  async rename (from: string, to: string, noReplace = false): Promise<void> {
    const src = await this.parentOf(from)
    const node = src.children.get(src.name) ?? fail('ERR_NOT_FOUND', `${from} does not exist`)
    const dst = await this.parentOf(to)
    for (let d: DirNode | null = dst.dir; d != null; d = d.parent) {
      if (d === node) fail('ERR_INVALID', `cannot move ${from} into itself`)
    }
    const existing = dst.children.get(dst.name)
    if (existing != null && noReplace) fail('ERR_EXISTS', `${to} exists`)
    if (existing === node) return
    if (existing != null) {
      if (node instanceof DirNode) {
        if (!(existing instanceof DirNode)) fail('ERR_NOT_DIR', `${to} is not a directory`)
        if ((await this.children(existing as DirNode)).size > 0) fail('ERR_NOT_EMPTY', `${to} is not empty`)
      } else if (existing instanceof DirNode) {
        fail('ERR_IS_DIR', `${to} is a directory`)
      }
      this.detach(dst.dir, dst.children, existing)
      if (existing instanceof FileNode) this.forget(existing)
    }
    this.detach(src.dir, src.children, node)
    this.attach(dst.dir, dst.children, dst.name, node)
    const t = this.now()
    node.attrs.ctime = t
    this.touch(node)
    this.touchDir(src.dir, t)
    this.touchDir(dst.dir, t)
  }

  /** A file left the tree: its dirty blocks stay for open handles but are never sealed. */
  private forget (f: FileNode): void {
    if (this.dirtyFiles.delete(f)) this.dirtyBlocks -= f.dirty.size
  }

  // dirtyFiles holds the files in the tree with dirty blocks, dirtyBlocks counts those blocks:
  // every change to a file's dirty map goes through these two, so the count stays exact.
  private markDirty (f: FileNode, idx: number, buf: Buffer): void {
    const had = f.dirty.has(idx)
    f.dirty.set(idx, buf)
    if (f.parent == null) return
    if (!this.dirtyFiles.has(f)) { this.dirtyFiles.add(f); this.dirtyBlocks += f.dirty.size } else if (!had) this.dirtyBlocks++
  }

  private unmarkDirty (f: FileNode, idx: number): void {
    if (!f.dirty.delete(idx) || !this.dirtyFiles.has(f)) return
    this.dirtyBlocks--
    if (f.dirty.size === 0) this.dirtyFiles.delete(f)
  }

  // ---- extended attributes -----------------------------------------------------------------

  async setxattr (target: Node | string, name: string, value: Buffer, flags: number): Promise<void> {
    if (!name.startsWith('user.')) fail('ERR_UNSUPPORTED', 'only user.* extended attributes are supported')
    if (Buffer.byteLength(name) > 255) fail('ERR_RANGE', 'attribute name too long')
    if (value.length > 64 * 1024) fail('ERR_TOO_BIG', 'attribute value too large')
    const node = await this.target(target)
    const has = node.xattrs?.has(name) ?? false
    if ((flags & 1) !== 0 && has) fail('ERR_EXISTS', `${name} exists`)
    if ((flags & 2) !== 0 && !has) fail('ERR_NO_ATTR', `${name} does not exist`)
    node.xattrs ??= new Map()
    node.xattrs.set(name, Buffer.from(value))
    node.attrs.ctime = this.now()
    this.touch(node)
  }

  async getxattr (target: Node | string, name: string): Promise<Buffer> {
    const node = await this.target(target)
    return node.xattrs?.get(name) ?? fail('ERR_NO_ATTR', `${name} is not set`)
  }

  async listxattr (target: Node | string): Promise<string[]> {
    const node = await this.target(target)
    return [...(node.xattrs?.keys() ?? [])]
  }

  async removexattr (target: Node | string, name: string): Promise<void> {
    const node = await this.target(target)
    if (node.xattrs?.delete(name) !== true) fail('ERR_NO_ATTR', `${name} is not set`)
    node.attrs.ctime = this.now()
    this.touch(node)
  }

  // ---- file content ------------------------------------------------------------------------

  /** Plaintext of one block (BLOCK_SIZE or shorter), or null for a hole. */
  private async readBlock (f: FileNode, idx: number): Promise<Buffer | null> {
    const d = f.dirty.get(idx) ?? f.sealing.get(idx)
    if (d != null) return d
    const cid = (await this.blocks(f)).get(idx)
    if (cid == null) return null
    const key = cid.toString()
    const hit = this.cache.get(key)
    if (hit != null) return hit
    let p = this.inflight.get(key)
    if (p == null) {
      p = this.openSealed(f.key, SealType.Block, f.id, idx, cid, `file ${f.path()} block ${idx}`)
        .then(plain => { this.cache.set(key, plain); return plain })
        .finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return await p
  }

  async read (f: FileNode, out: Buffer, len: number, pos: number): Promise<number> {
    if (pos >= f.size) return 0
    if (f.blocks == null) await this.blocks(f) // so that streaming reads find their blocks' places
    const end = Math.min(f.size, pos + len)
    const first = Math.floor(pos / BLOCK_SIZE)
    const last = Math.floor((end - 1) / BLOCK_SIZE)
    // Every block settles before we answer: `out` is the binding's reply buffer, freed once we
    // answer, so a block still copying after an early failure would write into freed memory.
    const pending: Array<Promise<void>> = []
    try {
      this.startReads(f, out.subarray(0, len), pos, end, first, last, pending)
      // The kernel reads ahead in large requests by itself; small sequential requests get help.
      if (len < 256 * 1024 && f.lastReadEnd === pos && f.dirty.size === 0) this.readAhead(f, last + 1, 4)
      f.lastReadEnd = end
    } finally {
      const results = await Promise.allSettled(pending)
      for (const r of results) if (r.status === 'rejected') throw r.reason
    }
    return end - pos
  }

  /** Starts the reads of blocks first..last of out[0, end - pos), pushing one promise per job. */
  private startReads (f: FileNode, out: Buffer, pos: number, end: number, first: number, last: number, pending: Array<Promise<void>>): void {
    const copy = (i: number, b: Buffer | null): void => {
      const blockStart = i * BLOCK_SIZE
      const from = Math.max(pos, blockStart)
      const to = Math.min(end, blockStart + BLOCK_SIZE)
      const dst = from - pos
      const avail = b == null ? 0 : Math.max(0, Math.min(to - blockStart, b.length) - (from - blockStart))
      if (avail > 0) copyBytes(out, dst, b!, from - blockStart, avail) // b may be a shared slot
      if (avail < to - from) out.fill(0, dst + avail, dst + (to - from))
    }
    let run: RunPart[] = []
    const endRun = (): void => { if (run.length > 0) pending.push(this.readRun(f, run, out)); run = [] }
    // Blocks held in memory are copied before any await: their buffers are recycled once sealed.
    for (let i = first; i <= last; i++) {
      const mem = f.dirty.get(i) ?? f.sealing.get(i)
      if (mem != null) { copy(i, mem); continue }
      // A read that takes a whole block (streaming) skips the cache: no allocation per block for
      // the GC to chase, and nothing evicted for it. It is opened from the pack straight into
      // `out` where the plaintext (padding included) fits there, blocks lying back to back in one
      // pack together. Blocks not on disk yet, and reads without the addon, use the cache.
      const cid = f.blocks?.get(i)
      const blockStart = i * BLOCK_SIZE
      const whole = pos <= blockStart && (end >= blockStart + BLOCK_SIZE || end === f.size)
      const uncached = cid != null && this.cache.get(cid.toString()) == null
      const at = whole && uncached && openRun != null ? this.store.locate?.(cid) : null
      if (at != null && at.length - SEAL_OVERHEAD <= out.length - (blockStart - pos)) {
        const prev = run.at(-1)?.at
        const adjacent = prev != null && prev.fd === at.fd && at.position >= prev.position + prev.length &&
          at.position - (prev.position + prev.length) <= RUN_GAP && run.length < RUN_BLOCKS
        if (!adjacent) endRun()
        run.push({ idx: i, cid: cid!, at, dst: blockStart - pos, span: Math.min(end, blockStart + BLOCK_SIZE) - blockStart })
        continue
      }
      endRun()
      pending.push(this.readBlock(f, i).then(b => copy(i, b)))
    }
    endRun()
  }

  /**
   * Opens blocks lying back to back in one pack straight into `out` (one read, one pool job),
   * each at its `dst`, zero-filling past a short plaintext up to its `span`.
   */
  private async readRun (f: FileNode, run: RunPart[], out: Buffer): Promise<void> {
    const start = run[0].at.position
    const last = run[run.length - 1].at
    const blocks = run.map(b => ({
      offset: b.at.position - start,
      length: b.at.length,
      pos: { type: SealType.Block, objectId: f.id, index: b.idx },
      at: b.dst,
      room: Math.min(BLOCK_SIZE, out.length - b.dst), // `out` ends where the answer ends
      hash: b.cid.multihash // the addon checks the bytes against it before opening them
    }))
    let results: Array<number | Error>
    try {
      results = await openRun!({ fd: last.fd, position: start, length: last.position + last.length - start, direct: last.direct }, f.key, blocks, out)
    } catch (err) {
      // A file system that opened the pack with O_DIRECT but refuses the aligned read: once for
      // all, reads go through the page cache.
      if (last.direct === true && (err as NodeJS.ErrnoException).code === 'EINVAL' && this.store.refuseDirectReads != null) {
        this.store.refuseDirectReads()
        const again = run.map(b => ({ ...b, at: this.store.locate?.(b.cid) ?? b.at }))
        if (again.every(b => b.at.direct !== true)) return await this.readRun(f, again, out)
      }
      throw this.integrityError(`file ${f.path()} block ${run[0].idx}`, run[0].cid, err, 'read')
    }
    let failed: TreeError | null = null
    run.forEach((b, i) => {
      const n = results[i]
      if (n instanceof Error) failed ??= this.integrityError(`file ${f.path()} block ${b.idx}`, b.cid, n, 'open')
      else if (n < b.span) out.fill(0, b.dst + n, b.dst + b.span)
    })
    if (failed != null) throw failed
  }


  private readAhead (f: FileNode, from: number, count: number): void {
    const lastIdx = Math.floor((f.size - 1) / BLOCK_SIZE)
    for (let i = from; i < from + count && i <= lastIdx; i++) this.readBlock(f, i).catch(() => {})
  }

  /** Buffer size for a new block holding `need` bytes: small files get small buffers. */
  private static sizeFor (need: number): number {
    return need > BLOCK_SIZE / 2 ? BLOCK_SIZE : Math.max(4096, 2 ** Math.ceil(Math.log2(need)))
  }

  private growDirty (f: FileNode, idx: number, buf: Buffer, need: number): Buffer {
    const grown = Buffer.alloc(Tree.sizeFor(need))
    buf.copy(grown)
    f.dirty.set(idx, grown)
    return grown
  }

  /** The writable plaintext buffer of one block, loading its sealed content first if needed. */
  private async dirtyBlock (f: FileNode, idx: number, whole: boolean, need = BLOCK_SIZE): Promise<Buffer> {
    for (;;) {
      let buf = f.dirty.get(idx)
      if (buf != null) return buf
      const inSeal = f.sealing.get(idx)
      if (inSeal != null) {
        // Rewritten while its seal is in flight: that seal's result is dropped, the data moves on.
        f.sealing.delete(idx)
        buf = Buffer.from(inSeal)
        this.markDirty(f, idx, buf)
        return buf
      }
      const cid = f.blocks?.get(idx)
      const old = whole || idx * BLOCK_SIZE >= f.size ? null : await this.readBlock(f, idx)
      // Another write may have dirtied, sealed or replaced the block while we read: start over.
      if (f.dirty.has(idx) || f.sealing.has(idx) || f.blocks?.get(idx) !== cid) continue
      if (whole) buf = this.freeBuffers.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE)
      else if (old != null) buf = Buffer.alloc(BLOCK_SIZE)
      else buf = Buffer.alloc(Tree.sizeFor(need))
      if (old != null) old.copy(buf, 0, 0, Math.min(old.length, Math.max(0, f.size - idx * BLOCK_SIZE)))
      this.markDirty(f, idx, buf)
      return buf
    }
  }


  async write (f: FileNode, src: Buffer, pos: number): Promise<number> {
    if (this.store.writeError != null) {
      // Give the disk a chance to have room again before refusing.
      await this.store.flush().catch(() => {})
      if (this.store.writeError != null) throw new TreeError('ERR_NO_SPACE', this.store.writeError.message)
    }
    const len = src.length
    if (pos + len > MAX_FILE_SIZE) fail('ERR_TOO_BIG', 'file too large')
    if (f.blocks == null) await this.blocks(f)
    let off = 0
    while (off < len) {
      const p = pos + off
      const idx = Math.floor(p / BLOCK_SIZE)
      const inner = p % BLOCK_SIZE
      const n = Math.min(BLOCK_SIZE - inner, len - off)
      let buf = f.dirty.get(idx) ?? await this.dirtyBlock(f, idx, inner === 0 && n === BLOCK_SIZE, inner + n)
      if (buf.length < inner + n) buf = this.growDirty(f, idx, buf, inner + n)
      src.copy(buf, inner, off, off + n)
      off += n
      if (p + n > f.size) f.size = p + n
      // A block filled to its end is final for now: seal it at once so memory stays bounded.
      if (inner + n === BLOCK_SIZE && f.parent != null) this.startSeal(f, idx)
    }
    const t = this.now()
    f.attrs.mtime = t
    f.attrs.ctime = t
    this.touch(f)
    if (this.dirtyBlocks * BLOCK_SIZE > this.dirtyBudget) this.sealAllDirty()
    if (this.seals.size > 192) await Promise.race(this.seals)
    if (this.store.backlog > 16 * 1024 * 1024) await this.store.flush()
    return len
  }

  async truncate (f: FileNode, size: number): Promise<void> {
    if (size > MAX_FILE_SIZE) fail('ERR_TOO_BIG', 'file too large')
    const blocks = await this.blocks(f)
    if (size < f.size) {
      const keep = Math.ceil(size / BLOCK_SIZE)
      for (const i of [...blocks.keys()]) if (i >= keep) { blocks.delete(i); f.blockMapDirty = true }
      for (const i of [...f.dirty.keys()]) if (i >= keep) this.unmarkDirty(f, i)
      for (const i of [...f.sealing.keys()]) if (i >= keep) f.sealing.delete(i)
      const inner = size % BLOCK_SIZE
      if (inner !== 0) {
        const idx = keep - 1
        // A block still sealing must be cut too, or its seal lands later with the old tail.
        if (blocks.has(idx) || f.dirty.has(idx) || f.sealing.has(idx)) {
          const b = await this.dirtyBlock(f, idx, false, inner)
          if (inner < b.length) b.fill(0, inner)
        }
      }
    }
    f.size = size
    const t = this.now()
    f.attrs.mtime = t
    f.attrs.ctime = t
    this.touch(f)
  }

  private sealBlock (f: FileNode, idx: number): void {
    const buf = f.dirty.get(idx)
    if (buf == null) return
    const len = Math.min(BLOCK_SIZE, f.size - idx * BLOCK_SIZE)
    this.unmarkDirty(f, idx)
    if (len <= 0) return
    const plainLen = len === BLOCK_SIZE ? BLOCK_SIZE : Math.min(BLOCK_SIZE, padme(len))
    let plain = buf.subarray(0, plainLen)
    if (plain.length < plainLen) { plain = Buffer.alloc(plainLen); buf.copy(plain) }
    const cid = this.store.put(seal(f.key, { type: SealType.Block, objectId: f.id, index: idx }, plain))
    f.blocks!.set(idx, cid)
    f.blockMapDirty = true
    // Cache an exact-size copy: a view would pin the whole 128 KiB buffer while the LRU counts
    // only the view's length.
    this.cache.set(cid.toString(), len === BLOCK_SIZE ? plain : Buffer.from(plain))
  }

  /** Seals a full block on the thread pool; until it lands, reads see the plaintext buffer. */
  private startSeal (f: FileNode, idx: number): void {
    const buf = f.dirty.get(idx)
    if (buf == null) return
    this.unmarkDirty(f, idx)
    f.sealing.set(idx, buf)
    this.sealingFiles.add(f)
    const pos = { type: SealType.Block, objectId: f.id, index: idx }
    const job: Promise<void> = (async () => {
      let cid: CID
      if (this.sealer != null) {
        const s = await this.sealer.seal(f.key, pos, buf)
        if (f.sealing.get(idx) !== buf) { s.release(); return } // superseded: newer write, truncate or commit
        cid = this.store.putWithCid(cidFromBlake3(s.digest), s.sealed, s.release)
      } else {
        if (f.sealing.get(idx) !== buf) return
        cid = this.store.put(seal(f.key, pos, buf))
      }
      f.sealing.delete(idx)
      f.blocks!.set(idx, cid)
      f.blockMapDirty = true
      if (f.parent != null) this.touch(f)
      // Nothing else holds `buf` now (reads copy in-memory blocks synchronously): reuse it.
      if (this.freeBuffers.length < 32 && buf.length === BLOCK_SIZE) this.freeBuffers.push(buf)
    })().catch(err => {
      this.log(`error: sealing file ${f.path()} block ${idx}: ${(err as Error).message}`)
      if (f.sealing.get(idx) === buf) { f.sealing.delete(idx); this.markDirty(f, idx, buf) }
    }).finally(() => {
      this.seals.delete(job)
      if (f.sealing.size === 0) this.sealingFiles.delete(f)
    })
    this.seals.add(job)
  }

  /** Seals synchronously what is still in flight, so a commit snapshot is complete. */
  private takeOverSeals (): void {
    for (const f of [...this.sealingFiles]) {
      for (const [idx, buf] of [...f.sealing]) {
        f.sealing.delete(idx)
        if (f.parent != null) this.markDirty(f, idx, buf)
      }
      this.sealingFiles.delete(f)
    }
  }

  private sealAllDirty (): void {
    for (const f of [...this.dirtyFiles]) {
      if (f.parent == null) { this.forget(f); continue }
      for (const idx of [...f.dirty.keys()]) this.sealBlock(f, idx)
    }
  }

  // ---- commit ------------------------------------------------------------------------------

  private entryOf (node: Node): EntryRecord {
    const a = node.attrs
    const e: EntryRecord = { n: node.name, t: node.kind, m: a.mode, u: a.uid, g: a.gid, a: msToNs(a.atime), mt: msToNs(a.mtime), c: msToNs(a.ctime) }
    if (node.xattrs != null && node.xattrs.size > 0) e.x = Object.fromEntries(node.xattrs)
    if (node instanceof FileNode) {
      e.i = node.id
      e.k = node.key
      e.s = node.size
      if (node.blocks == null) {
        e.bm = node.blockMap!
      } else if (node.blocks.size <= INLINE_BLOCKS) {
        e.b = [...node.blocks.entries()].sort((x, y) => x[0] - y[0])
      } else {
        if (node.blockMapDirty || node.blockMap == null) {
          const rec: BlockMapRecord = { v: FORMAT_VERSION, b: [...node.blocks.entries()].sort((x, y) => x[0] - y[0]) }
          node.blockMap = this.store.put(seal(node.key, { type: SealType.BlockMap, objectId: node.id, index: 0 }, padFrame(encode(rec))))
          node.blockMapDirty = false
        }
        e.bm = node.blockMap
      }
    } else if (node instanceof DirNode) {
      e.i = node.id
      e.k = node.key
      e.d = node.cid!
    } else if (node instanceof SymlinkNode) {
      e.l = node.target
    } else if (node instanceof SpecialNode) {
      e.r = node.rdev
    }
    return e
  }

  /** Seals one dirty directory (children first) and returns its new CID. */
  private sealDir (dir: DirNode): void {
    const children = dir.children!
    for (const c of children.values()) if (c instanceof DirNode && c.dirty) this.sealDir(c)
    const names = [...children.keys()].sort()
    const rec: DirNodeRecord = { v: FORMAT_VERSION, e: names.map(n => this.entryOf(children.get(n)!)) }
    dir.cid = this.store.put(seal(dir.key, { type: SealType.Dir, objectId: dir.id, index: 0 }, padFrame(encode(rec))))
    dir.dirty = false
  }

  /**
   * Makes every change so far durable. Callers arriving while a commit runs share the next one,
   * so a burst of fsyncs costs one commit.
   */
  commit (): Promise<CommitInfo> {
    if (this.pendingCommit != null) return this.pendingCommit
    const run = this.commitChain.then(async () => {
      this.pendingCommit = null
      return await this.commitNow()
    })
    this.pendingCommit = run
    this.commitChain = run.catch(() => {})
    return run
  }

  private async commitNow (): Promise<CommitInfo> {
    if (this.seals.size > 0) await Promise.all([...this.seals])
    if (!this.root.dirty && !this.commitFailed) return this.head
    // Everything up to the journal append is synchronous: the snapshot is consistent.
    this.takeOverSeals()
    this.sealAllDirty()
    if (this.root.dirty) this.sealDir(this.root)
    const rootEntry = this.entryOf(this.root)
    const rootCid = this.root.cid
    try {
      const wm = await this.store.sync()
      const rec: CommitRecord = { v: FORMAT_VERSION, seq: this.seq + 1, time: this.now(), root: rootEntry, pack: [wm.pack, wm.offset] }
      await this.sink.append(rec)
      this.seq = rec.seq
      this.headRoot = rootCid
      this.commitFailed = false
      const info = { seq: rec.seq, root: rootCid, time: rec.time }
      this.onCommit(info)
      return info
    } catch (err) {
      this.commitFailed = true
      throw err
    }
  }

}
