// In-memory parts for fast tests of the tree without a mount, a pack store or a seal pool:
// a real block store behind the tree's BlockStore port (CIDs from the project's cid.ts; no
// locate(), so reads take the decrypted-block cache path) and a commit sink that keeps the
// records it is given, encoded as the journal would, and reopens a Tree from the last one.
import type { CID } from 'multiformats/cid'
import { cidOf } from '../../src/store/cid.js'
import { notFound } from '../../src/store/errors.js'
import { BlockCache } from '../../src/store/block-cache.js'
import { type CommitRecord, encode, decode } from '../../src/fs/tree/format.js'
import { Tree, type TreeOptions, type BlockStore, type CommitSink } from '../../src/fs/tree/tree.js'

export class MemoryBlockStore implements BlockStore {
  private readonly blocks = new Map<string, Uint8Array>()
  private bytesStored = 0
  /** Set it to make writes fail as on a full disk (the tree answers ERR_NO_SPACE). */
  writeError: Error | null = null
  readonly backlog = 0
  /** How many puts stored a new block (repeated puts of the same bytes are not counted). */
  stored = 0

  put (bytes: Uint8Array): CID {
    return this.putWithCid(cidOf(bytes), bytes)
  }

  putWithCid (cid: CID, bytes: Uint8Array, release?: () => void): CID {
    const key = cid.toString()
    if (!this.blocks.has(key)) {
      this.blocks.set(key, Uint8Array.from(bytes)) // a copy: the caller may reuse its buffer
      this.bytesStored += bytes.length
      this.stored++
    }
    release?.()
    return cid
  }

  /** Puts of freshly sealed bytes (putFresh): the pack store skips its dedupe probe for them. */
  fresh = 0

  putFresh (cid: CID, bytes: Uint8Array, release?: () => void): CID {
    if (this.blocks.has(cid.toString())) throw new Error(`bug: putFresh of a block already stored (${cid.toString()})`)
    this.fresh++
    return this.putWithCid(cid, bytes, release)
  }

  async get (cid: CID, scratch?: Buffer): Promise<Uint8Array> {
    const b = this.blocks.get(cid.toString())
    if (b == null) throw notFound(cid.toString())
    const out = scratch != null && scratch.length >= b.length ? scratch.subarray(0, b.length) : Buffer.allocUnsafe(b.length)
    out.set(b)
    return out
  }

  async getRange (cid: CID, offset: number, length: number): Promise<Uint8Array> {
    const b = this.blocks.get(cid.toString())
    if (b == null) throw notFound(cid.toString())
    if (offset < 0 || length < 0 || offset + length > b.length) throw new RangeError('range outside the block')
    return Buffer.from(b.subarray(offset, offset + length))
  }

  /** Replaces a stored block's bytes (an attacker with write access to the packs). */
  replace (cid: CID, bytes: Uint8Array): void { this.blocks.set(cid.toString(), Uint8Array.from(bytes)) }

  async sync (): Promise<{ pack: number, offset: number }> { return { pack: 0, offset: this.bytesStored } }
  async flush (): Promise<void> {}

  has (cid: CID): boolean { return this.blocks.has(cid.toString()) }
  /** Sealed bytes stored in all. */
  get bytes (): number { return this.bytesStored }
  get size (): number { return this.blocks.size }

  /** Flips one bit of a stored block, as a damaged disk would. */
  corrupt (cid: CID, at = 20): void {
    const b = this.blocks.get(cid.toString()) ?? notFoundFail(cid)
    b[at % b.length] ^= 0x01
  }
}

function notFoundFail (cid: CID): never { throw notFound(cid.toString()) }

export class MemoryCommitSink implements CommitSink {
  /** The records as appended, each encoded as the journal encodes it. */
  readonly records: Uint8Array[] = []
  /** Set it to make the next appends fail. */
  failWith: Error | null = null

  async append (record: CommitRecord): Promise<void> {
    if (this.failWith != null) throw this.failWith
    this.records.push(encode(record))
  }

  /** Every record, decoded again (what a reopened drive would read). */
  all (): CommitRecord[] { return this.records.map(r => decode<CommitRecord>(r, 'commit record')) }

  get last (): CommitRecord | null { return this.all().at(-1) ?? null }

  /** A Tree opened from the last record, with a fresh cache so its reads go to the store. */
  reopen (store: MemoryBlockStore, opts: Partial<TreeOptions> = {}): Tree {
    return new Tree({ store, cache: new BlockCache(32 * 1024 * 1024), sink: this, head: this.last, ...opts })
  }
}

/** A new, empty tree over fresh memory parts (no sealer: full blocks are sealed inline). */
export function memoryTree (opts: Partial<TreeOptions> = {}): { tree: Tree, store: MemoryBlockStore, sink: MemoryCommitSink } {
  const store = new MemoryBlockStore()
  const sink = new MemoryCommitSink()
  const tree = new Tree({ store, cache: new BlockCache(32 * 1024 * 1024), sink, head: null, ...opts })
  return { tree, store, sink }
}

/**
 * Another device's edit of the drive in `store`: a tree opened at `head`, changed by `edit`,
 * committed; its commit record (what a merge swaps in).
 */
export async function otherDevice (store: BlockStore, head: CommitRecord, edit: (t: Tree) => Promise<void>): Promise<CommitRecord> {
  const sink = new MemoryCommitSink()
  const t = new Tree({ store, cache: new BlockCache(1 << 20), sink, head })
  await edit(t)
  await t.commit()
  return sink.last!
}
