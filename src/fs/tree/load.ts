// Reading sealed objects back: fetches a block or node from the store and opens it under its
// node's key, turning a failed read or a failed authentication into ERR_INTEGRITY with a log
// line; loads a directory's entries, the link table and a file's separate block map once, on
// first use (the link table before the first directory that names a linked node). A sharded
// directory loads by shard: its root, then the shards on a name's path (loadName), or all of
// them for a listing (loadDir). Separate block maps loaded here are dropped again, least
// recently used first, once more than MAP_BUDGET_BLOCKS references are loaded, from files that
// are clean and not pinned (open, or an op in flight), and all of them when the daemon goes quiet
// (forgetMaps): a file's block map, once read, otherwise stayed for the life of the process (250
// files of 1,000 blocks read: 72 -> 466 MiB). A dropped map loads again on the next use.
import type { CID } from 'multiformats/cid'
import { open, openPatch, sealedLength, AuthError, type SealPosition } from '../../crypto/index.js'
import { BLOCK_SIZE, isLinkName } from './format.js'
import { TreeError } from './errors.js'
import type { Node, DirNode, FileNode, LinkTable } from './nodes.js'
import { loadEntries, installShard } from './dir-entries.js'
import { type DirRecord, type Shard, DirShards, Shard as TrieNode, decodeShard, nameHashKey } from './dir-shards.js'
import type { OpenFiles } from './adopt.js'
import { nodeFromEntry, nodeFromLinked, decodeLinkTable, dirPosition, shardPosition, blockMapPosition, linkTablePosition } from './codec.js'
import { readMapTree } from './block-map.js'
import type { BlockStore } from './ports.js'
import type { BlockRef } from './block-ref.js'

/** Block references of loaded block maps past which clean, unpinned files' maps are dropped (~370 B each, store/cid.ts). */
export const MAP_BUDGET_BLOCKS = 65_536

/** Whether `f`'s block map can be dropped now: everything in it is sealed and committed, and nothing uses it. */
export function canDropMap (f: FileNode): boolean {
  return f.blocks != null && f.blockMap != null && f.pins === 0 && f.loading == null && !f.blockMapDirty &&
    f.changedBlocks.size === 0 && f.dirty.size === 0 && f.sealing.size === 0 && f.patching.size === 0
}

/** Objects above this size read with no scratch free add one to the pool (smaller ones are read into their own small buffer). */
const SCRATCH_MIN = 16 * 1024
/** A scratch buffer holds a whole sealed block (BLOCK_SIZE + 64 held no format 2 block: each was read into a fresh one). */
const SCRATCH_SIZE = sealedLength(BLOCK_SIZE)

export class Loader {
  /** Scratch buffers the sealed bytes land in; only the plaintext (what the cache keeps) is new. */
  private readonly readBuffers: Buffer[] = []
  /** After a tree was swapped in (adopt.ts): the open files that loaded entries update in place. */
  openFiles: OpenFiles | null = null

  /** Files whose separate block map was loaded here, least recently used first, and its size then. */
  private readonly maps = new Map<FileNode, number>()
  private mapBlocks = 0

  constructor (private readonly store: Pick<BlockStore, 'get'>, private readonly log: (line: string) => void, private readonly links: LinkTable, private readonly mapBudget = MAP_BUDGET_BLOCKS) {}

  /** Block references held by the loaded block maps counted here. */
  get loadedMapBlocks (): number { return this.mapBlocks }

  /** Drops the block maps that can be dropped (canDropMap), least recently used first, until at most `budget` references stay. */
  shedMaps (budget = this.mapBudget): number {
    let dropped = 0
    for (const [f, n] of this.maps) {
      if (this.mapBlocks <= budget) break
      if (f.blocks == null || f.blockMap == null) { this.untrack(f, n); continue } // replaced, or held inline now
      if (!canDropMap(f)) continue
      f.droppedMap = { root: f.blockMap, blocks: f.blocks.size }
      f.blocks = null
      f.mapTree = null
      this.untrack(f, n)
      dropped++
    }
    return dropped
  }

  /** Drops every block map that can be dropped (the daemon went quiet). */
  forgetMaps (): number { return this.shedMaps(0) }

  /** Forgets every file and swap it knows of (the tree below the root was unloaded: nothing is open). */
  forgetAll (): void {
    this.maps.clear()
    this.mapBlocks = 0
    this.openFiles = null
  }

  private untrack (f: FileNode, n: number): void {
    this.maps.delete(f)
    this.mapBlocks -= n
  }

  /** The error (and log line) for a block that cannot be read or fails authentication. */
  integrityError (what: string, cid: CID, err: unknown, stage: 'read' | 'open'): TreeError {
    const mismatch = (err as { code?: string })?.code === 'ERR_CID_MISMATCH' // older or other sealed bytes
    const reason = mismatch
      ? 'does not match its CID'
      : stage === 'read'
        ? `cannot be read: ${(err as Error).message}`
        : err instanceof AuthError ? 'authentication failed' : (err as Error).message
    this.log(`integrity: ${what}: block ${cid.toString()}${stage === 'read' || mismatch ? ' ' : ': '}${reason}`)
    return new TreeError('ERR_INTEGRITY', `${what}: ${reason}`, { cause: err })
  }

  /** The plaintext of the sealed object `cid`, opened under `key` at `pos` (a patch: its segments numbered from `first`). */
  async openSealed (key: Buffer, pos: SealPosition, cid: CID, what: string, first = 0): Promise<Buffer> {
    // No scratch free: the store's buffer of the object's own size. A block map node is ~1 KiB,
    // and a map level is read at once: a 128 KiB scratch for each (B: ~2,200 per GiB replicated)
    // was short-lived external memory that starts V8's full collections. The pool grows on
    // large objects only, up to 16.
    const scratch = this.readBuffers.pop()
    let grow = false
    try {
      let sealed: Uint8Array
      try {
        sealed = await this.store.get(cid, scratch)
      } catch (err) {
        throw this.integrityError(what, cid, err, 'read')
      }
      grow = scratch == null && sealed.length > SCRATCH_MIN
      try {
        return first === 0 ? open(key, pos, sealed) : openPatch(key, pos, first, sealed)
      } catch (err) {
        throw this.integrityError(what, cid, err, 'open')
      }
    } finally {
      if (this.readBuffers.length < 16 && (scratch != null || grow)) this.readBuffers.push(scratch ?? Buffer.allocUnsafe(SCRATCH_SIZE))
    }
  }

  private reuse (fresh: Node): Node { return this.openFiles?.reuse(fresh) ?? fresh }

  /** Loads every entry of a directory (a sharded one: every shard); concurrent callers share the loads. */
  async loadDir (dir: DirNode): Promise<void> {
    for (;;) {
      await this.loadRoot(dir)
      const trie = dir.shards
      if (trie == null) return
      const next = trie.frontier()
      if (next.length === 0) return
      // A level at a time, 32 shards in flight: bounded memory for the sealed bytes.
      for (let i = 0; i < next.length; i += 32) await Promise.all(next.slice(i, i + 32).map(async s => { await this.loadShard(dir, trie, s) }))
    }
  }

  /** Loads what a lookup of `name` in `dir` needs: the node (a plain directory: every entry), or the shards on its path. */
  async loadName (dir: DirNode, name: string): Promise<void> {
    for (;;) {
      await this.loadRoot(dir)
      const trie = dir.shards
      const s = trie?.nextToLoad(name)
      if (trie == null || s == null) return
      await this.loadShard(dir, trie, s)
    }
  }

  /** Loads a directory's node: a plain one's entries, or a sharded one's root (its counts). */
  async loadRoot (dir: DirNode): Promise<void> {
    await loadEntries(dir, async d => {
      const what = `directory ${d.label()}`
      const framed = await this.openSealed(d.key, dirPosition(d), d.cid!, what)
      const body = decodeShard(framed, 0, what)
      if (body.c == null) return { named: await this.named(d, body.e!), shards: null }
      const trie = new DirShards(nameHashKey(d.key), new TrieNode(null, 0, 0, d.cid, body.n!))
      trie.install(trie.root, body, what)
      return { named: [], shards: { trie, subdirs: body.s! } }
    })
  }

  /** Loads shards of a sharded directory for a listing (dir-listing.ts: it lets them go again once past them). */
  async loadListed (dir: DirNode, trie: DirShards, shards: Shard[]): Promise<void> {
    await Promise.all(shards.map(async s => { await this.loadShard(dir, trie, s, true) }))
  }

  /** Opens one shard of a sharded directory and installs it (once; concurrent callers share it). */
  private async loadShard (dir: DirNode, trie: DirShards, s: Shard, listed = false): Promise<void> {
    s.loading ??= (async () => {
      const what = `directory ${dir.label()} shard ${s.depth}/${s.prefix}`
      const framed = await this.openSealed(dir.key, shardPosition(dir, s.index), s.cid!, what)
      const body = decodeShard(framed, s.depth, what)
      if (s.loaded || dir.shards !== trie) return
      s.listed = listed
      if (body.c != null) { trie.install(s, body, what); return }
      const named = await this.named(dir, body.e!)
      if (s.loaded || dir.shards !== trie) return
      trie.install(s, body, what, false)
      installShard(dir, trie, named)
    })().finally(() => { s.loading = null })
    await s.loading
  }

  /** Nodes for a directory's records (link names resolved through the link table). */
  private async named (d: DirNode, records: DirRecord[]): Promise<Array<[string, Node]>> {
    const linked = records.some(isLinkName) ? await this.linkTable() : null
    return records.map((e): [string, Node] => {
      if (!isLinkName(e)) return [e.n, this.reuse(nodeFromEntry(e))]
      const node = linked!.get(Buffer.from(e.h).toString('hex'))
      if (node == null) {
        this.log(`integrity: directory ${d.label()}: ${e.n} names link ${Buffer.from(e.h).toString('hex')}, which the link table does not hold`)
        throw new TreeError('ERR_INTEGRITY', `directory ${d.label()}: ${e.n} names a missing link`)
      }
      return [e.n, node]
    })
  }

  /** The link table's nodes by link id, loading the table node once. */
  async linkTable (): Promise<Map<string, Node>> {
    const t = this.links
    if (t.nodes != null) return t.nodes
    t.loading ??= (async () => {
      const framed = await this.openSealed(t.key, linkTablePosition(t), t.cid!, 'link table')
      const map = new Map<string, Node>()
      for (const e of decodeLinkTable(framed)) map.set(Buffer.from(e.h).toString('hex'), this.reuse(nodeFromLinked(e, t)))
      if (t.nodes == null) t.nodes = map
    })().finally(() => { t.loading = null })
    await t.loading
    return t.nodes!
  }

  /** A file's blocks by index, loading its separate block map on first use. */
  async blocks (f: FileNode): Promise<Map<number, BlockRef>> {
    if (f.blocks != null) {
      const n = this.maps.get(f)
      if (n !== undefined) { this.maps.delete(f); this.maps.set(f, n) } // most recently used
      return f.blocks
    }
    f.loading ??= (async () => {
      const root = f.blockMap!
      const framed = await this.openSealed(f.key, blockMapPosition(f), root, `file ${f.label()} block map`)
      const { pairs, tree } = await readMapTree(f.label(), root, framed, async (cid, index) =>
        await this.openSealed(f.key, { ...blockMapPosition(f), index }, cid, `file ${f.label()} block map`))
      if (f.blocks == null) {
        f.blocks = new Map(pairs)
        f.mapTree = f.blockMap === root ? tree : null
        f.clearChanged()
        const had = this.maps.get(f)
        if (had !== undefined) this.untrack(f, had)
        this.maps.set(f, f.blocks.size)
        this.mapBlocks += f.blocks.size
        if (this.mapBlocks > this.mapBudget) this.shedMaps() // not this one: it is still loading
      }
    })().finally(() => { f.loading = null })
    await f.loading
    // Another file's load may have shed this map between the load and here: load it again.
    return f.blocks ?? await this.blocks(f)
  }
}
