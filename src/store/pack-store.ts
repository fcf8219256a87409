// Log-structured block store: sealed blocks are appended to pack files and found through an
// in-memory CID index rebuilt on open. Appends are batched; `sync()` makes everything written so
// far durable and returns a watermark that a commit records, so on open anything past the last
// committed watermark (a torn or uncommitted tail) is cut off. Sees only sealed bytes.
import { promises as fsp, constants as FS } from 'node:fs'
import { join } from 'node:path'
import type { FileHandle } from 'node:fs/promises'
import { CID, cidOf } from './cid.js'
import { StoreError, ioError, notFound } from './errors.js'
import { DirectAppender } from './direct-append.js'
import { copyBytes } from '../crypto/copy.js'
import type { FileRange } from '../crypto/open-file.js'

export const PACK_VERSION = 1
const PACK_MAGIC = Buffer.from('SPACEPK1')
const DEFAULT_PACK_LIMIT = 512 * 1024 * 1024
const FLUSH_BYTES = 4 * 1024 * 1024
/** Written bytes after which the disk is asked to start writing them back (without waiting). */
const WRITEBACK_BYTES = 32 * 1024 * 1024
/** Batches at least this big go to the disk with O_DIRECT (direct-append.ts); smaller ones buffered. */
const DIRECT_MIN = 1024 * 1024
/**
 * Records at least this big are read with O_DIRECT by locate()'s readers: streaming reads. Here
 * a cold 1 GiB read took 0.59-0.61 s that way, and 0.46-1.9 s through the page cache: the copy
 * out of freshly read page-cache pages was up to half of all CPU in the slow runs.
 */
const DIRECT_READ_MIN = 64 * 1024

/** Where the committed data ends: every byte before it is durable. */
export interface Watermark { pack: number, offset: number }

interface Location { pack: number, offset: number, length: number }

interface Pack {
  id: number
  fh: FileHandle
  /** The logical end; with direct appends the file can run up to a page past it until cut. */
  size: number
  synced: boolean
  /** O_DIRECT appender of the current pack; undefined until first needed, null where refused. */
  direct?: DirectAppender | null
  /** O_DIRECT read-only handle for large records (locate()); null where refused. */
  directRead: FileHandle | null
}

/** A block waiting to be appended; `release` hands its memory back once it is on disk. */
interface PendingRecord { key: string, header: Buffer, body: Buffer, release?: () => void }

const recordLength = (r: PendingRecord): number => r.header.length + r.body.length

export interface PackStoreOptions {
  packLimit?: number
  /** O_DIRECT, where the file system allows it, for large appends and large records' reads (default true). */
  directIo?: boolean
}

export class PackStore {
  private readonly dir: string
  private readonly packLimit: number
  private readonly index = new Map<string, Location>()
  private readonly packs = new Map<number, Pack>()
  private current!: Pack
  private pending: PendingRecord[] = []
  /** The last append failed (a full disk): new writes are refused until an append succeeds. */
  writeError: StoreError | null = null
  private pendingBytes = 0
  private readonly unflushed = new Map<string, Uint8Array>()
  private queue: Promise<void> = Promise.resolve()
  private unsyncedBytes = 0
  private writeback: Promise<void> | null = null
  private directIo: boolean
  private directReads = true

  private constructor (dir: string, opts: PackStoreOptions) {
    this.dir = dir
    this.packLimit = opts.packLimit ?? DEFAULT_PACK_LIMIT
    this.directIo = opts.directIo ?? true
  }

  /** Opens (or creates) the store in `dir`, cutting every pack back to `committed`. */
  static async open (dir: string, committed: Watermark | null, opts: PackStoreOptions = {}): Promise<PackStore> {
    const s = new PackStore(dir, opts)
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
    try {
      await s.load(committed)
    } catch (err) {
      await s.closeHandles()
      throw err
    }
    return s
  }

  private packPath (id: number): string { return join(this.dir, `${String(id).padStart(8, '0')}.pack`) }

  private async load (committed: Watermark | null): Promise<void> {
    const ids = (await fsp.readdir(this.dir)).filter(n => /^\d{8}\.pack$/.test(n)).map(n => parseInt(n, 10)).sort((a, b) => a - b)
    for (const id of ids) {
      if (committed == null || id > committed.pack) {
        // Written after the last commit: nothing references it.
        await fsp.rm(this.packPath(id), { force: true })
        continue
      }
      const fh = await fsp.open(this.packPath(id), FS.O_RDWR)
      const pack: Pack = { id, fh, size: 0, synced: true, directRead: null }
      this.packs.set(id, pack) // from here closeHandles() closes it if opening fails
      pack.size = (await fh.stat()).size
      if (id === committed.pack && pack.size !== committed.offset) {
        if (pack.size < committed.offset) throw new StoreError('ERR_CORRUPT_STORE', `pack ${id} is shorter (${pack.size}) than its committed length ${committed.offset}`)
        await fh.truncate(committed.offset)
        pack.size = committed.offset
      }
      pack.directRead = await this.openDirectRead(id)
      await this.scan(pack)
    }
    const last = committed != null ? this.packs.get(committed.pack) : undefined
    if (committed != null && last == null) throw new StoreError('ERR_CORRUPT_STORE', `pack ${committed.pack} named by the last commit is missing`)
    this.current = last ?? await this.createPack(1)
  }

  private async createPack (id: number): Promise<Pack> {
    const fh = await fsp.open(this.packPath(id), FS.O_RDWR | FS.O_CREAT | FS.O_TRUNC, 0o600)
    const header = Buffer.alloc(PACK_MAGIC.length + 1)
    PACK_MAGIC.copy(header)
    header[PACK_MAGIC.length] = PACK_VERSION
    await fh.write(header, 0, header.length, 0)
    const pack: Pack = { id, fh, size: header.length, synced: false, directRead: await this.openDirectRead(id) }
    this.packs.set(id, pack)
    return pack
  }

  private async openDirectRead (id: number): Promise<FileHandle | null> {
    if (!this.directIo) return null
    return await fsp.open(this.packPath(id), FS.O_RDONLY | FS.O_DIRECT).catch(() => null)
  }

  /** Rebuilds index entries of one pack from its record headers. */
  private async scan (pack: Pack): Promise<void> {
    const head = Buffer.alloc(PACK_MAGIC.length + 1)
    await pack.fh.read(head, 0, head.length, 0)
    if (!head.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC)) throw new StoreError('ERR_CORRUPT_STORE', `pack ${pack.id} has no pack header`)
    if (head[PACK_MAGIC.length] !== PACK_VERSION) throw new StoreError('ERR_FORMAT', `pack ${pack.id} has unknown version ${head[PACK_MAGIC.length]}`)
    let off = head.length
    const buf = Buffer.alloc(1 + 1 + 64 + 4)
    while (off < pack.size) {
      const { bytesRead } = await pack.fh.read(buf, 0, buf.length, off)
      const cidLen = buf[1]
      if (bytesRead < 2 || buf[0] !== 1 || 2 + cidLen + 4 > bytesRead) throw new StoreError('ERR_CORRUPT_STORE', `pack ${pack.id}: bad record at offset ${off}`)
      const cid = CID.decode(buf.subarray(2, 2 + cidLen))
      const length = buf.readUInt32BE(2 + cidLen)
      const dataOff = off + 2 + cidLen + 4
      if (dataOff + length > pack.size) throw new StoreError('ERR_CORRUPT_STORE', `pack ${pack.id}: record at ${off} runs past the end`)
      this.index.set(cid.toString(), { pack: pack.id, offset: dataOff, length })
      off = dataOff + length
    }
  }

  has (cid: CID): boolean {
    const k = cid.toString()
    return this.index.has(k) || this.unflushed.has(k)
  }

  /** Stores sealed bytes; returns their CID. Idempotent: a block already present is not rewritten. */
  put (bytes: Uint8Array): CID {
    return this.putWithCid(cidOf(bytes), bytes)
  }

  /**
   * put() for bytes whose CID the caller computed (off the event loop). With `release`, the
   * store does not copy `bytes` and calls `release` once it no longer needs them.
   */
  putWithCid (cid: CID, bytes: Uint8Array, release?: () => void): CID {
    const key = cid.toString()
    if (this.index.has(key) || this.unflushed.has(key)) { release?.(); return cid }
    const cidBytes = cid.bytes
    const header = Buffer.allocUnsafe(2 + cidBytes.length + 4)
    header[0] = 1
    header[1] = cidBytes.length
    header.set(cidBytes, 2)
    header.writeUInt32BE(bytes.length, 2 + cidBytes.length)
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    this.pending.push({ key, header, body, release })
    this.pendingBytes += header.length + bytes.length
    this.unflushed.set(key, body)
    if (this.pendingBytes >= FLUSH_BYTES) void this.flush().catch(() => {})
    return cid
  }

  /** Bytes appended but not yet handed to the kernel; callers use it for back-pressure. */
  get backlog (): number { return this.pendingBytes }

  /** Resolves once the current backlog has been written to pack files. */
  flush (): Promise<void> {
    const run = this.queue.then(async () => { await this.writePending() })
    this.queue = run.catch(() => {})
    return run
  }

  private async writePending (): Promise<void> {
    while (this.pending.length > 0) {
      // Records never straddle packs: a batch ends before a record that would cross the limit.
      let n = 0
      let bytes = 0
      for (; n < this.pending.length; n++) {
        const rec = recordLength(this.pending[n])
        if (bytes > 0 && this.current.size + bytes + rec > this.packLimit) break
        bytes += rec
      }
      const batch = this.pending.splice(0, n)
      this.pendingBytes -= bytes
      if (this.current.size > PACK_MAGIC.length + 1 && this.current.size + bytes > this.packLimit) {
        await this.finishDirect(this.current)
        this.current = await this.createPack(this.current.id + 1)
      }
      const pack = this.current
      const start = pack.size
      let buffered: number
      try {
        buffered = await this.appendBatch(pack, start, batch, bytes >= DIRECT_MIN)
      } catch (err) {
        // Put the pack back to its last good length; the failed records stay pending for a retry,
        // in memory of their own so that their owners (the sealing slots) are not held up.
        await pack.fh.truncate(start).catch(() => {})
        pack.direct?.invalidate()
        for (const r of batch) {
          if (r.release == null) continue
          r.body = Buffer.from(r.body)
          if (this.unflushed.has(r.key)) this.unflushed.set(r.key, r.body)
          r.release()
          r.release = undefined
        }
        this.pending.unshift(...batch)
        this.pendingBytes += bytes
        this.writeError = ioError(err, `appending to pack ${pack.id}`)
        throw this.writeError
      }
      this.writeError = null
      let off = start
      for (const r of batch) {
        this.index.set(r.key, { pack: pack.id, offset: off + r.header.length, length: r.body.length })
        this.unflushed.delete(r.key)
        r.release?.()
        off += recordLength(r)
      }
      pack.size = off
      pack.synced = false
      this.unsyncedBytes += buffered
      if (this.unsyncedBytes >= WRITEBACK_BYTES && this.writeback == null) this.startWriteback(pack)
    }
  }

  /**
   * Writes `batch` at `start` of `pack`: with O_DIRECT in staging-sized runs when `direct` (and
   * the file system takes it), else buffered 32 records per writev. Returns the bytes that went
   * through the page cache.
   */
  private async appendBatch (pack: Pack, start: number, batch: PendingRecord[], direct: boolean): Promise<number> {
    let off = start
    let buffered = 0
    let i = 0
    while (i < batch.length) {
      const appender = direct ? await this.directOf(pack) : null
      if (appender != null) {
        const done = await this.appendDirect(pack, appender, off, batch, i)
        if (done.next > i) { off += done.bytes; i = done.next; continue }
      }
      const part = batch.slice(i, i + 32).flatMap(r => [r.header, r.body])
      const len = part.reduce((sum, b) => sum + b.length, 0)
      const { bytesWritten } = await pack.fh.writev(part, off)
      if (bytesWritten !== len) throw Object.assign(new Error('short write'), { code: 'ENOSPC' })
      pack.direct?.invalidate()
      off += len
      buffered += len
      i += 32
    }
    return buffered
  }

  /**
   * Appends records from batch[i] on, as many as fit the staging buffer, with O_DIRECT; returns
   * the index after the last one and their bytes. None (next = i) when the record is larger than
   * the staging buffer, or when the kernel refused the alignment (EINVAL): the store stays
   * buffered from then on.
   */
  private async appendDirect (pack: Pack, appender: DirectAppender, off: number, batch: PendingRecord[], i: number): Promise<{ next: number, bytes: number }> {
    const parts: Buffer[] = []
    let bytes = 0
    let j = i
    for (; j < batch.length && bytes + recordLength(batch[j]) <= appender.capacity; j++) {
      parts.push(batch[j].header, batch[j].body)
      bytes += recordLength(batch[j])
    }
    if (j === i) return { next: i, bytes: 0 }
    try {
      await appender.append(off, parts)
      return { next: j, bytes }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
      this.directIo = false
      pack.direct = null
      await appender.close()
      return { next: i, bytes: 0 }
    }
  }

  private async directOf (pack: Pack): Promise<DirectAppender | null> {
    if (!this.directIo) return null
    if (pack.direct === undefined) {
      pack.direct = await DirectAppender.open(this.packPath(pack.id), pack.fh)
      if (pack.direct == null) this.directIo = false
    }
    return pack.direct
  }

  /** Cuts a pack that had direct appends back to its logical end and closes the appender. */
  private async finishDirect (pack: Pack): Promise<void> {
    if (pack.direct == null) return
    await pack.direct.close()
    pack.direct = undefined
    try { await pack.fh.truncate(pack.size) } catch (err) { throw ioError(err, `cutting pack ${pack.id}`) }
    pack.synced = false
  }

  /**
   * Streams buffered data to the disk while more is being written: the kernel would otherwise
   * keep it all dirty in the page cache until the next commit's fdatasync, which then waits for
   * the whole backlog at once. Not a durability point (sync() is); errors surface there.
   * Direct appends do not count: they are on the disk already.
   */
  private startWriteback (pack: Pack): void {
    this.unsyncedBytes = 0
    this.writeback = pack.fh.datasync().catch(() => {}).finally(() => { this.writeback = null })
  }

  /**
   * Makes every put so far durable; returns the watermark a commit records. The fdatasync runs
   * outside the append queue, so appends go on while the disk catches up.
   */
  async sync (): Promise<Watermark> {
    await this.flush()
    const wm = { pack: this.current.id, offset: this.current.size }
    for (const p of [...this.packs.values()]) {
      if (p.synced) continue
      const size = p.size
      try { await p.fh.datasync() } catch (err) { throw ioError(err, `syncing pack ${p.id}`) }
      if (p.size === size) p.synced = true
    }
    return wm
  }

  /** The sealed bytes of a block; read into `scratch` (and a view of it returned) when it fits. */
  async get (cid: CID, scratch?: Buffer): Promise<Uint8Array> {
    const key = cid.toString()
    const mem = this.unflushed.get(key)
    // A copy: the original may be released to its owner while the caller awaits.
    if (mem != null) { const c = Buffer.allocUnsafe(mem.length); copyBytes(c, 0, mem); return c }
    const loc = this.index.get(key)
    if (loc == null) throw notFound(key)
    const pack = this.packs.get(loc.pack)!
    const buf = scratch != null && scratch.length >= loc.length ? scratch.subarray(0, loc.length) : Buffer.allocUnsafe(loc.length)
    let done = 0
    while (done < loc.length) {
      const { bytesRead } = await pack.fh.read(buf, done, loc.length - done, loc.offset + done)
      if (bytesRead === 0) throw new StoreError('ERR_CORRUPT_STORE', `block ${key} is cut short in pack ${loc.pack}`)
      done += bytesRead
    }
    return buf
  }

  /**
   * Where a block's sealed bytes lie in its pack, for a reader that reads them itself (the
   * descriptor stays open until close()); null while the block is only in memory.
   */
  locate (cid: CID): FileRange | null {
    const key = cid.toString()
    if (this.unflushed.has(key)) return null
    const loc = this.index.get(key)
    const pack = loc != null ? this.packs.get(loc.pack) : undefined
    if (loc == null || pack == null) return null // closed
    // Large records skip the page cache: the disk writes them straight into the reader's memory,
    // where a buffered read costs a kernel copy. Small ones stay cached for the next reader.
    if (pack.directRead != null && this.directReads && loc.length >= DIRECT_READ_MIN) return { fd: pack.directRead.fd, position: loc.offset, length: loc.length, direct: true }
    return { fd: pack.fh.fd, position: loc.offset, length: loc.length }
  }

  /** locate() names buffered descriptors only from now on: the kernel refused an O_DIRECT read. */
  refuseDirectReads (): void { this.directReads = false }

  /** Bytes used by pack files. */
  get size (): number {
    let n = 0
    for (const p of this.packs.values()) n += p.size
    return n
  }


  async close (): Promise<void> {
    await this.queue
    for (const r of this.pending) r.release?.()
    await this.writeback
    for (const p of this.packs.values()) await this.finishDirect(p).catch(() => {})
    await this.closeHandles()
  }

  private async closeHandles (): Promise<void> {
    for (const p of this.packs.values()) {
      await p.fh.close().catch(() => {})
      await p.directRead?.close().catch(() => {})
    }
    this.packs.clear()
  }
}
