// The encrypted Merkle tree: path resolution, POSIX-shaped operations on in-memory inodes, and
// commits that seal what changed into blocks and append a new root to the journal. Knows no
// FUSE and no network; it sees the block store through the narrow BlockStore port (ports.ts).
// This class is the facade the FUSE ops and the drive use; each concern lives in its own file:
//   namespace.ts   resolution, create/mkdir/rename/unlink/...     attrs.ts      stat, chmod, xattrs
//   file-read.ts   reads (native run reader, block cache)         file-write.ts write, truncate
//   file-blocks.ts dirty -> sealing -> sealed block states        commit.ts     commits
//   load.ts        opening sealed objects, lazy loading           codec.ts      entries <-> nodes
//   dir-entries.ts the only access to a directory's entries       block-range.ts block arithmetic
//   nodes.ts       inodes and the link table (hard links)         changes.ts    what a change marks dirty
import { randomKey, randomId } from '../../crypto/index.js'
import type { CommitRecord } from './format.js'
import { Node, FileNode, DirNode, SymlinkNode, SpecialNode, LinkTable } from './nodes.js'
import { isLoaded, entryMap, startEmpty, unloadEntries } from './dir-entries.js'
import { nodeFromEntry } from './codec.js'
import { Loader } from './load.js'
import { Namespace, kindOfMode } from './namespace.js'
import { AttrOps, stat, isStatExact } from './attrs.js'
import { FileBlocks } from './file-blocks.js'
import { FileReader, type ReadShortcut } from './file-read.js'
import { FileWriter } from './file-write.js'
import { Committer } from './commit.js'
import { prepare, install, OpenFiles, type TreeRef } from './adopt.js'
import { Edits } from './edits.js'
import type { ListPos } from './dir-shards.js'
import { type ListPage, LetGo } from './dir-listing.js'
import type { BlockStore, BlockCache, BlockSealer, CommitSink, CommitInfo, Stat, Owner } from './ports.js'

export { Node, FileNode, DirNode, SymlinkNode, SpecialNode, kindOfMode }
export type { BlockStore, BlockCache, BlockSealer, CommitSink, CommitInfo, Stat, TreeRef, ReadShortcut, ListPos, ListPage }

/** Files, or how to ask for them when they are needed. */
export type Files = Iterable<FileNode> | (() => Iterable<FileNode>)
const filesOf = (f: Files | undefined): FileNode[] => [...(typeof f === 'function' ? f() : f ?? [])]

export interface TreeOptions {
  store: BlockStore
  cache: BlockCache
  sink: CommitSink
  /** The last committed record, or null for a new, empty tree. */
  head: CommitRecord | null
  log?: (line: string) => void
  /** Plaintext bytes of dirty blocks kept before they are sealed eagerly. */
  dirtyBudget?: number
  /** Block buffers kept for reuse by writes, and seal jobs in flight at most (file-blocks.ts). */
  keptBuffers?: number
  maxSeals?: number
  now?: () => number
  owner?: Owner
  /** Seals full blocks off the event loop; without one they are sealed inline. */
  sealer?: BlockSealer
  /** Called after each commit is durable. */
  onCommit?: (info: CommitInfo) => void
  /** Block references of loaded block maps past which clean, unpinned files' maps are dropped (load.ts MAP_BUDGET_BLOCKS). */
  mapBudgetBlocks?: number
}

export class Tree {
  readonly root: DirNode
  /** The drive's linked nodes (hard links): one record per node however many names it has. */
  readonly links: LinkTable
  private readonly loader: Loader
  private readonly ns: Namespace
  private readonly attrs: AttrOps
  private readonly fileBlocks: FileBlocks
  private readonly reader: FileReader
  private readonly writer: FileWriter
  private readonly committer: Committer
  /**
   * Why the last adopt returned null: 'changed' (a change since `expect` that was not a write to
   * a writer: made again, it may go through) or 'writer' (a file open for writing stands in the
   * way until it is closed).
   */
  refused: 'changed' | 'writer' = 'changed'
  /** Changes since each commit, for adopt (edits.ts). */
  private readonly edits = new Edits()
  /** Leaves listings are past, let go once nothing else runs (dir-listing.ts). */
  private readonly letGo = new LetGo(() => this.edits.quiet(new Set()))
  private commitsRunning = 0
  private lastCommit: Promise<unknown> = Promise.resolve()
  private sharedCommit: { inner: Promise<CommitInfo>, outer: Promise<CommitInfo> } | null = null
  private readonly io: { store: BlockStore, log: (line: string) => void }

  constructor (opts: TreeOptions) {
    const { store, cache } = opts
    const log = opts.log ?? (() => {})
    const now = opts.now ?? Date.now
    const owner = opts.owner ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
    if (opts.head != null) {
      this.root = nodeFromEntry(opts.head.root) as DirNode
    } else {
      const t = now()
      this.root = new DirNode({ mode: 0o755, uid: owner.uid, gid: owner.gid, atime: t, mtime: t, ctime: t }, randomId(), randomKey())
      startEmpty(this.root)
      this.root.dirty = true
    }
    const l = opts.head?.links
    this.links = l != null ? new LinkTable(Buffer.from(l.i), Buffer.from(l.k), l.d) : new LinkTable(randomId(), randomKey(), null)
    this.loader = new Loader(store, log, this.links, opts.mapBudgetBlocks)
    this.io = { store, log }
    this.reader = new FileReader({ store, cache, loader: this.loader })
    this.fileBlocks = new FileBlocks({
      store, cache, log,
      sealer: opts.sealer ?? null,
      readBlock: (f, idx) => this.reader.readBlock(f, idx),
      readSegments: (f, idx, ref, from, to, dst) => this.reader.readSegments(f, idx, ref, from, to, dst),
      dirtyBudget: opts.dirtyBudget ?? 64 * 1024 * 1024,
      keptBuffers: opts.keptBuffers,
      maxSeals: opts.maxSeals
    })
    this.ns = new Namespace({ root: this.root, loadDir: dir => this.loader.loadDir(dir), loadName: (dir, name) => this.loader.loadName(dir, name), loadRoot: dir => this.loader.loadRoot(dir), loadListed: (dir, trie, shards) => this.loader.loadListed(dir, trie, shards), forget: f => this.fileBlocks.forget(f), links: this.links, loadLinks: async () => { await this.loader.linkTable() }, now, owner })
    this.attrs = new AttrOps({ target: t => this.ns.target(t), now })
    this.writer = new FileWriter({ store, fileBlocks: this.fileBlocks, blocks: f => this.loader.blocks(f), now })
    this.committer = new Committer({ root: this.root, links: this.links, store, sink: opts.sink, fileBlocks: this.fileBlocks, now, onCommit: opts.onCommit ?? (() => {}), head: opts.head, log })
    this.edits.committed(this.committer.head.seq, 0)
  }

  get dirty (): boolean { return this.committer.dirty }
  /** How long the last commit held the event loop sealing (ms; commit-policy.ts). */
  get commitBusyMs (): number { return this.committer.busyMs }
  get head (): CommitInfo { return this.committer.head }

  /** Drops the block buffers kept for reuse by writes (the process went quiet). */
  releaseBuffers (): void { this.fileBlocks.releaseBuffers() }

  // ---- loading and resolution ----------------------------------------------------------------

  /** Loads a directory's node once (what its stat counts; a sharded one: its root); its loaded children. */
  async children (dir: DirNode): Promise<ReadonlyMap<string, Node>> {
    if (!isLoaded(dir)) await this.loader.loadRoot(dir)
    return entryMap(dir)
  }

  /**
   * Loads the children of a big sharded folder's root shard (the mount's warm-up, fs/fuse/warm.ts:
   * a cold lookup there then opens one shard fewer). Folders under `minEntries` are left alone
   * (their first level may be leaves: every entry). Returns the shards loaded.
   */
  loadTopShards (path: string, minEntries: number): Promise<number> {
    return this.edits.other(async () => {
      const dir = await this.ns.lookup(path)
      if (!(dir instanceof DirNode)) return 0
      await this.loader.loadRoot(dir)
      const trie = dir.shards
      if (trie == null || trie.count < minEntries) return 0
      const top = [...trie.root.kids?.values() ?? []].filter(s => !s.loaded && s.loading == null)
      await this.loader.loadListed(dir, trie, top)
      return top.length
    }, false)
  }

  // Calls that change the tree, or hand out a node the caller keeps, are told to `edits`: a
  // merge swapped in (adopt) must not fall across one, nor drop what it changed.
  lookup (path: string): Promise<Node> { return this.edits.other(async () => await this.ns.lookup(path), false) }
  readdir (path: string): Promise<Array<[string, Node]>> { return this.edits.other(async () => await this.ns.readdir(path), false) }
  /** One page of a listing, from just after `after` (dir-listing.ts: a sharded directory is listed by pages, in hash order). */
  async readdirPage (path: string, after: ListPos | null, max: number): Promise<ListPage> {
    const page = await this.edits.other(async () => await this.ns.readdirPage(path, after, max), false)
    this.letGo.add(page)
    return page
  }

  // ---- metadata --------------------------------------------------------------------------------

  stat (node: Node): Stat { return stat(node) }

  /**
   * stat() once what it counts is loaded: a directory's children give its link count, a file's
   * block map its st_blocks. Nodes not loaded since the mount would otherwise report nlink 2 and
   * a sparse file with a separate block map its full size as allocated.
   */
  async statLoaded (node: Node): Promise<Stat> {
    if (node instanceof DirNode) await this.children(node)
    else if (node instanceof FileNode && !isStatExact(node)) await this.loader.blocks(node)
    return stat(node)
  }

  /** A file's blocks by index, loading its block map if it is not loaded (or was dropped: load.ts). */
  async blocksOf (f: FileNode): Promise<ReadonlyMap<number, unknown>> { return await this.loader.blocks(f) }

  /**
   * Gives back what loads again on the next use (memory.ts calls it once the daemon is quiet):
   * the block maps of clean files not in use, and with `unloadTree` (the caller knows that no
   * file or directory is open) every node loaded below the root, if everything is committed, no
   * call or commit is running and no hard link is loaded: the root's entries load again from its
   * committed node, as after a merge swapped in (adopt.ts). 35,000 small files copied in kept
   * ~1.2 KB of heap each otherwise. Inode numbers of nodes loaded again are new (as after a merge).
   */
  releaseMemory (opts: { unloadTree?: boolean } = {}): { maps: number, unloaded: boolean } {
    const maps = this.loader.forgetMaps()
    const unloaded = opts.unloadTree === true && this.unloadIdle()
    return { maps, unloaded }
  }

  private unloadIdle (): boolean {
    if (this.root.cid == null || this.dirty || this.commitsRunning > 0 || this.fileBlocks.sealsInFlight > 0) return false
    if (!this.edits.quiet(new Set()) || !isLoaded(this.root)) return false
    if (this.links.nodes != null && this.links.nodes.size > 0) return false // their names are tracked (kernel-names.ts)
    unloadEntries(this.root)
    this.loader.forgetAll()
    this.edits.forgetWritten()
    return true
  }

  /** Whether stat() already says what statLoaded() would, with nothing to load. */
  isStatExact (node: Node): boolean { return isStatExact(node) }

  chmod (target: Node | string, mode: number): Promise<void> { return this.attrChange(target, async n => { await this.attrs.chmod(n, mode) }) }
  chown (target: Node | string, uid: number, gid: number): Promise<void> { return this.attrChange(target, async n => { await this.attrs.chown(n, uid, gid) }) }
  /** Sets either time (undefined leaves it); ctime becomes now, as for any attribute change. */
  utimens (target: Node | string, atime: number | undefined, mtime: number | undefined): Promise<void> { return this.attrChange(target, async n => { await this.attrs.utimens(n, atime, mtime) }) }

  setxattr (target: Node | string, name: string, value: Buffer, flags: number): Promise<void> { return this.attrChange(target, async n => { await this.attrs.setxattr(n, name, value, flags) }) }
  getxattr (target: Node | string, name: string): Promise<Buffer> { return this.attrs.getxattr(target, name) }
  listxattr (target: Node | string): Promise<string[]> { return this.attrs.listxattr(target) }
  /** An attribute change: of a file, told as that file's change (a writer's chmod does not stop a merge). */
  private async attrChange (target: Node | string, run: (n: Node) => Promise<void>): Promise<void> {
    const node = await this.edits.other(async () => await this.ns.target(target), false)
    if (node instanceof FileNode) await this.edits.content(node, async () => { await run(node) })
    else await this.edits.other(async () => { await run(node) }, true, true)
  }

  removexattr (target: Node | string, name: string): Promise<void> { return this.attrChange(target, async n => { await this.attrs.removexattr(n, name) }) }

  // ---- namespace -------------------------------------------------------------------------------

  create (path: string, mode: number, uid?: number, gid?: number): Promise<FileNode> { return this.edits.other(async () => await this.ns.create(path, mode, uid, gid)) }
  mknod (path: string, mode: number, rdev: number, uid?: number, gid?: number): Promise<Node> { return this.edits.other(async () => await this.ns.mknod(path, mode, rdev, uid, gid)) }
  mkdir (path: string, mode: number, uid?: number, gid?: number): Promise<DirNode> { return this.edits.other(async () => await this.ns.mkdir(path, mode, uid, gid)) }
  symlink (target: string, path: string, uid?: number, gid?: number): Promise<SymlinkNode> { return this.edits.other(async () => await this.ns.symlink(target, path, uid, gid)) }
  readlink (path: string): Promise<string> { return this.ns.readlink(path) }
  unlink (path: string): Promise<Node> { return this.edits.other(async () => await this.ns.unlink(path)) }
  rmdir (path: string): Promise<void> { return this.edits.other(async () => { await this.ns.rmdir(path) }) }
  /** A second (third...) name for a non-directory: every name is the one node. */
  link (from: string, to: string): Promise<Node> { return this.edits.other(async () => await this.ns.link(from, to)) }
  /** `noReplace` (RENAME_NOREPLACE): an existing target fails with ERR_EXISTS, checked atomically. */
  rename (from: string, to: string, noReplace = false): Promise<void> { return this.edits.other(async () => { await this.ns.rename(from, to, noReplace) }) }

  // ---- file content ----------------------------------------------------------------------------

  read (f: FileNode, out: Buffer, len: number, pos: number): Promise<number> { return this.reader.read(f, out, len, pos) }
  // Each content change first drops what native reads know of the bytes it changes (file-read.ts).
  write (f: FileNode, src: Buffer, pos: number): Promise<number> {
    const done = this.reader.changing(f, pos, pos + src.length)
    return this.edits.content(f, async () => await this.writer.write(f, src, pos)).finally(done)
  }
  truncate (f: FileNode, size: number): Promise<void> {
    const done = this.reader.changing(f, Math.min(size, f.size), Math.max(size, f.size))
    return this.edits.content(f, async () => { await this.writer.truncate(f, size) }).finally(done)
  }
  /** fallocate(2): modes 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE[|KEEP_SIZE] (file-write.ts). */
  fallocate (f: FileNode, mode: number, offset: number, length: number): Promise<void> {
    const done = this.reader.changing(f, offset, offset + length)
    return this.edits.content(f, async () => { await this.writer.fallocate(f, mode, offset, length) }).finally(done)
  }
  /** Reads of checked blocks may be answered by `s` from now on (the FUSE binding's native reads). */
  setReadShortcut (s: ReadShortcut | null): void { this.reader.setShortcut(s) }

  // ---- commit ----------------------------------------------------------------------------------

  /**
   * Makes every change so far durable. Callers arriving while a commit runs share the next one,
   * so a burst of fsyncs costs one commit.
   */
  commit (): Promise<CommitInfo> {
    const at = this.edits.now() // every change finished by now is in the commit
    const inner = this.committer.commit()
    if (this.sharedCommit?.inner === inner) return this.sharedCommit.outer // the first caller's `at` is the lowest
    this.commitsRunning++
    const outer = inner
      .then(info => { this.edits.committed(info.seq, at); return info })
      .finally(() => { this.commitsRunning-- })
    this.sharedCommit = { inner, outer }
    this.lastCommit = outer
    return outer
  }

  /**
   * Holds changes of names and attributes, and lookups, from now until the returned release or
   * `maxMs` (Edits.hold), once the calls running now have finished; null when a hold is on.
   */
  async hold (maxMs: number): Promise<(() => void) | null> {
    const release = this.edits.hold(maxMs)
    if (release != null) await this.edits.drained(maxMs)
    return release
  }

  /**
   * Swaps in the committed tree `ref` (a merge, src/sync) under the running mount and commits it,
   * if nothing changed since commit `expect` but what `writers` wrote (else null, and nothing
   * happened). The root and link table keep their ids and keys: `ref` must be sealed under them.
   * `open`: the files with open handles, which keep being the nodes of their ids (adopt.ts).
   * `writers`: those open for writing, which `ref` must hold as they were at `expect` (the caller
   * checks: a merge that changes one waits); they keep their state and stay in the tree, so what
   * they write before, during and after the swap is committed. Both are asked again at the swap
   * (as functions): a file opened for writing meanwhile refuses it. `swapped` runs at the swap,
   * before any commit of the new tree.
   */
  async adopt (ref: TreeRef, expect: number, open: Files = [], opts: { writers?: Files, swapped?: () => void } = {}): Promise<CommitInfo | null> {
    if (!Buffer.from(ref.root.i ?? []).equals(this.root.id) || !Buffer.from(ref.root.k ?? []).equals(this.root.key)) {
      throw new Error('bug: an adopted tree must keep the root directory\'s id and key')
    }
    if (ref.links != null && (!Buffer.from(ref.links.i).equals(this.links.id) || !Buffer.from(ref.links.k).equals(this.links.key))) {
      throw new Error('bug: an adopted tree must keep the link table\'s id and key')
    }
    const writers = new Set(filesOf(opts.writers))
    // A linked file's record is in the link table, loaded apart: such a writer waits (the merge with it).
    this.refused = 'writer'
    for (const f of writers) if (f.link != null) return null
    this.refused = 'changed'
    const swappable = (): boolean => this.committer.head.seq >= expect && this.edits.confinedTo(expect, writers)
    if (!swappable()) return null
    const prepared = await prepare(ref, { root: this.root, links: this.links }, writers, this.io)
    if (prepared == null) { this.refused = 'writer'; return null } // a writer's entry is not the same file there
    // No commit may run across the swap (it would record the old tree after it), nor a call
    // holding a node of the old tree. Waits a little for them.
    for (let i = 0; i < 200 && (this.commitsRunning > 0 || !this.edits.quiet(writers)); i++) {
      await (this.commitsRunning > 0 ? this.lastCommit.catch(() => {}) : new Promise(resolve => setImmediate(resolve)))
    }
    if (this.commitsRunning > 0 || !this.edits.quiet(writers) || !swappable()) return null
    if (filesOf(opts.writers).some(f => !writers.has(f))) return null // opened for writing meanwhile: not prepared
    // One synchronous step: the check above, the swap, and the heads the next commit carries.
    const openFiles = new OpenFiles(filesOf(open), writers)
    install(this.root, this.links, prepared, openFiles)
    this.loader.openFiles = openFiles
    this.committer.markAdopted()
    opts.swapped?.()
    return await this.commit()
  }
}
