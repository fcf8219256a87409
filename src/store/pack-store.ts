// Log-structured block store: sealed blocks are appended to pack files and found through a CID
// index kept in one index file per pack (read on demand, not at open); every block read from a pack is checked against the CID it is fetched
// by. `sync()` makes everything written so far durable and returns a watermark that a commit
// records, so on open anything past the last committed watermark (a torn or uncommitted tail) is
// cut off. Sees only sealed bytes. A facade: the record format is record.ts's, the index
// pack-idx-set.ts's, the files pack-files.ts's, the appends pack-writer.ts's.
import { mkdir } from 'node:fs/promises'
import { type CID, cidOf, checkCid } from './cid.js'
import { StoreError, corrupt, notFound } from './errors.js'
import type { PackDamage, Location } from './block-index.js'
import { PackIndexes, type IndexStats } from './pack-idx-set.js'
import { PackFiles } from './pack-files.js'
import { PackWriter } from './pack-writer.js'
import { copyBytes } from '../crypto/copy.js'
import type { FileRange } from '../crypto/open-file.js'
import type { BlockStore, SyncStart, Watermark } from './types.js'

export type { Watermark } from './types.js'

const DEFAULT_PACK_LIMIT = 512 * 1024 * 1024
/**
 * Records at least this big are read with O_DIRECT by locate()'s readers: streaming reads. Here
 * a cold 1 GiB read took 0.59-0.61 s that way, and 0.46-1.9 s through the page cache: the copy
 * out of freshly read page-cache pages was up to half of all CPU in the slow runs.
 */
const DIRECT_READ_MIN = 64 * 1024

export interface PackStoreOptions {
  packLimit?: number
  /** O_DIRECT, where the file system allows it, for large appends and large records' reads (default true). */
  directIo?: boolean
  /** Told of each stretch of a pack whose framing is bad (skipped: its blocks read as missing). */
  onDamage?: (d: PackDamage) => void
  /** Where `index: pack N ...` lines go (an index file rebuilt, extended or cut). */
  log?: (line: string) => void
}

export class PackStore implements BlockStore {
  private readonly index: PackIndexes
  private readonly files: PackFiles
  private writer!: PackWriter
  private directReads = true

  private constructor (dir: string, private readonly opts: PackStoreOptions) {
    this.files = new PackFiles(dir, opts.directIo ?? true)
    this.index = new PackIndexes(this.files, opts.log ?? (() => {}), opts.onDamage ?? (() => {}))
  }

  /** Opens (or creates) the store in `dir`, cutting every pack back to `committed`. */
  static async open (dir: string, committed: Watermark | null, opts: PackStoreOptions = {}): Promise<PackStore> {
    const s = new PackStore(dir, opts)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    try {
      await s.load(committed)
    } catch (err) {
      await s.index.close()
      await s.files.closeAll()
      throw err
    }
    return s
  }

  /** What the open cost: packs opened, indexes used as they were or rebuilt, records scanned. */
  get indexStats (): IndexStats { return { ...this.index.stats } }
  /** Resolves once the index files a sync or a rotation started are written (they go after the sync returns). */
  indexesWritten (): Promise<void> { return this.index.written() }

  /** Resolves once index rebuilds started by lookups (a damaged index file) are done. */
  async settled (): Promise<void> { await this.index.rebuilding }

  private async load (committed: Watermark | null): Promise<void> {
    for (const id of await this.files.list()) {
      if (committed == null || id > committed.pack) {
        // Written after the last commit: nothing references it.
        await this.files.remove(id)
        continue
      }
      const pack = await this.files.open(id)
      const end = id === committed.pack ? committed.offset : pack.size
      if (pack.size < end) throw corrupt(`pack ${id} is shorter (${pack.size}) than its committed length ${end}`)
      // Indexed before anything is cut: a pack that cannot be read stops the open unchanged.
      await this.index.openPack(pack, end, id === committed.pack)
      if (pack.size !== end) {
        await pack.fh.truncate(end) // uncommitted writes past the last commit's watermark
        pack.size = end
      }
    }
    await this.files.removeStrayIndexes()
    const last = committed != null ? this.files.packs.get(committed.pack) : undefined
    if (committed != null && last == null) throw corrupt(`pack ${committed.pack} named by the last commit is missing`)
    this.writer = new PackWriter(this.files, this.index, last ?? await this.files.create(1), this.opts.packLimit ?? DEFAULT_PACK_LIMIT)
  }

  has (cid: CID): boolean {
    const k = cid.toString()
    return this.writer.unwritten(k) != null || this.index.has(cid, k)
  }

  /**
   * Stores sealed bytes; returns their CID. Idempotent; a block already in the current pack or
   * not yet written is not written again. Older packs are not searched: sealed bytes carry fresh
   * nonces, so a repeat is rare and costs one duplicate record, where a search would cost a probe
   * of every pack's index per put.
   */
  put (bytes: Uint8Array): CID {
    return this.putWithCid(cidOf(bytes), bytes)
  }

  /**
   * put() for bytes whose CID the caller computed (off the event loop). With `release`, the
   * store does not copy `bytes` and calls `release` once it no longer needs them.
   */
  putWithCid (cid: CID, bytes: Uint8Array, release?: () => void): CID {
    const key = cid.toString()
    if (this.writer.unwritten(key) != null || this.index.hasIn(this.writer.currentPack, cid, key)) { release?.(); return cid }
    this.writer.add(key, cid, bytes, release)
    return cid
  }

  /**
   * putWithCid() for bytes sealed just now under a fresh random nonce (the tree's patches, blocks
   * and map nodes): no other record can hold them, so the dedupe probe of the current pack (a
   * lookup in its index, 3-4% of the JS thread under random writes) is skipped.
   */
  putFresh (cid: CID, bytes: Uint8Array, release?: () => void): CID {
    this.writer.add(cid.toString(), cid, bytes, release)
    return cid
  }

  /**
   * Tells `fn` of every record appended from now on, in append order (sync lists a commit's new
   * blocks from this instead of reading them back, and uploads their bytes from `body`, which is
   * valid only during the call); returns where the next record will go.
   */
  onAppended (fn: (cid: CID, at: Location, body: Uint8Array) => void): Watermark {
    this.writer.onAppended = fn
    return this.writer.end
  }

  /** The last append failed (a full disk): new writes are refused until an append succeeds. */
  get writeError (): StoreError | null { return this.writer.writeError }

  /** Bytes appended but not yet handed to the kernel; callers use it for back-pressure. */
  get backlog (): number { return this.writer.backlog }

  /** Resolves once the current backlog has been written to pack files. */
  flush (): Promise<void> { return this.writer.flush() }

  /** Makes every put so far durable; returns the watermark a commit records. */
  async sync (): Promise<Watermark> { return await this.writer.sync() }

  /** sync() that returns before the fdatasync ends, with a check of the new bytes (types.ts). */
  async syncStart (): Promise<SyncStart> { return await this.writer.syncStart() }

  /**
   * The sealed bytes of a block; read into `scratch` (and a view of it returned) when it fits.
   * Bytes read from a pack are checked against `cid`: a record holding other bytes than its CID
   * names (an older version of the block, another node) is refused with ERR_CID_MISMATCH.
   */
  async get (cid: CID, scratch?: Buffer): Promise<Uint8Array> {
    const key = cid.toString()
    const mem = this.writer.unwritten(key)
    // A copy: the original may be released to its owner while the caller awaits.
    if (mem != null) { const c = Buffer.allocUnsafe(mem.length); copyBytes(c, 0, mem); return c }
    const loc = this.index.get(cid, key)
    if (loc == null) throw notFound(key)
    const pack = this.files.packs.get(loc.pack)!
    const buf = scratch != null && scratch.length >= loc.length ? scratch.subarray(0, loc.length) : Buffer.allocUnsafe(loc.length)
    let done = 0
    while (done < loc.length) {
      const { bytesRead } = await pack.fh.read(buf, done, loc.length - done, loc.offset + done)
      if (bytesRead === 0) throw corrupt(`block ${key} is cut short in pack ${loc.pack}`)
      done += bytesRead
    }
    checkCid(cid, buf)
    return buf
  }

  /**
   * Where a block's sealed bytes lie in its pack, for a reader that reads them itself and checks
   * them against the CID (the descriptor stays open until close()); null while the block is
   * only in memory.
   */
  locate (cid: CID, buffered = false): FileRange | null {
    const key = cid.toString()
    if (this.writer.unwritten(key) != null) return null
    const loc = this.index.get(cid, key)
    const pack = loc != null ? this.files.packs.get(loc.pack) : undefined
    if (loc == null || pack == null) return null // closed
    // Large records skip the page cache: the disk writes them straight into the reader's memory,
    // where a buffered read costs a kernel copy. Small ones stay cached for the next reader.
    if (!buffered && pack.directRead != null && this.directReads && loc.length >= DIRECT_READ_MIN) return { fd: pack.directRead.fd, position: loc.offset, length: loc.length, direct: true }
    return { fd: pack.fh.fd, position: loc.offset, length: loc.length }
  }

  /** Part of a block's sealed bytes (unchecked: see BlockStore.getRange). */
  async getRange (cid: CID, offset: number, length: number): Promise<Uint8Array> {
    const key = cid.toString()
    const mem = this.writer.unwritten(key)
    if (mem != null) { const c = Buffer.allocUnsafe(length); copyBytes(c, 0, mem, offset, length); return c }
    const loc = this.index.get(cid, key)
    if (loc == null) throw notFound(key)
    if (offset < 0 || length < 0 || offset + length > loc.length) throw new RangeError(`bytes ${offset} + ${length} of a ${loc.length}-byte block`)
    const pack = this.files.packs.get(loc.pack)!
    const buf = Buffer.allocUnsafe(length)
    let done = 0
    while (done < length) {
      const { bytesRead } = await pack.fh.read(buf, done, length - done, loc.offset + offset + done)
      if (bytesRead === 0) throw corrupt(`block ${key} is cut short in pack ${loc.pack}`)
      done += bytesRead
    }
    return buf
  }

  /** locate() names buffered descriptors only from now on: the kernel refused an O_DIRECT read. */
  refuseDirectReads (): void { this.directReads = false }

  /** Bytes used by pack files. */
  get size (): number { return this.files.size }

  async close (): Promise<void> {
    await this.writer?.close()
    for (const p of this.files.packs.values()) await this.files.finishDirect(p).catch(() => {})
    await this.index.close()
    await this.files.closeAll()
  }
}
