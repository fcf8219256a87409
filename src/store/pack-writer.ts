// The pack store's write side: blocks put but not yet on disk (readable meanwhile), batched
// appends to the current pack (O_DIRECT for large batches, buffered for small ones), rotation at
// the pack limit, background writeback, and sync(), the durability point a commit records (or
// syncStart(): the same with a CRC-32 of the bytes since the last sync, so the commit record can
// be written while the fdatasync runs). Tells the index of every record appended, and when a
// pack is full or a sync may write its index.
import { crc32 } from 'node:zlib'
import type { CID } from './cid.js'
import { StoreError, ioError } from './errors.js'
import { DirectAppender } from './direct-append.js'
import { copyBytes } from '../crypto/copy.js'
import { PACK_HEADER_LENGTH, encodeRecordHeader } from './record.js'
import type { Location } from './block-index.js'
import type { Pack, PackFiles } from './pack-files.js'
import type { SyncStart, Watermark } from './types.js'

const FLUSH_BYTES = 4 * 1024 * 1024
/** Written bytes after which the disk is asked to start writing them back (without waiting). */
const WRITEBACK_BYTES = 32 * 1024 * 1024
/** Batches at least this big go to the disk with O_DIRECT (direct-append.ts); smaller ones buffered. */
const DIRECT_MIN = 1024 * 1024
/**
 * Bytes since the last sync up to which they are checksummed for syncStart(): such a commit
 * (an fsync of a database, 32 random 64 KiB writes and their folds) then costs one fdatasync in
 * series instead of two; a bigger one (a stream of 128 KiB blocks) gains little from it, and
 * would cost an open that much reading (8 MiB: ~10 ms here).
 */
const CHECK_MAX = 8 * 1024 * 1024
/** Buffered appends are copied into one buffer of this size per write. */
const STAGING = 256 * 1024

/** A block waiting to be appended; `release` hands its memory back once it is on disk. */
interface PendingRecord { key: string, cid: CID, header: Buffer, body: Buffer, release?: () => void }

/** What the writer needs of the index (pack-idx-set.ts). */
export interface WriterIndex {
  add: (key: string, at: Location, digest: Uint8Array, code: number) => void
  /** The pack is full, or the store closes: index all of it. */
  seal: (pack: Pack) => Promise<void>
  /** A sync made the pack durable up to `end`: the index may write what it holds of it. */
  checkpoint: (pack: Pack, end: number) => Promise<void>
}

const recordLength = (r: PendingRecord): number => r.header.length + r.body.length

export class PackWriter {
  /** The last append failed (a full disk): new writes are refused until an append succeeds. */
  writeError: StoreError | null = null
  private pending: PendingRecord[] = []
  private pendingBytes = 0
  private readonly unflushed = new Map<string, Uint8Array>()
  private queue: Promise<void> = Promise.resolve()
  private unsyncedBytes = 0
  private writeback: Promise<void> | null = null

  /**
   * Told of every record appended, in append order, with its body (PackStore.onAppended): a view
   * of the owner's memory, valid only during the call (released right after).
   */
  onAppended: ((cid: CID, at: Location, body: Uint8Array) => void) | null = null
  /**
   * Where the last sync that reached the disk ended, and the CRC-32 of the bytes appended since
   * (null: too many, or another pack). A sync under way only becomes it once its fdatasync has
   * succeeded: until then (and for good, should it fail) the next check also covers its bytes.
   */
  private syncedTo: Watermark
  private sinceCrc: number | null = 0
  /** Syncs started and not yet durable, each with the CRC-32 of the bytes appended since its watermark. */
  private syncing: Array<{ wm: Watermark, crc: number | null }> = []
  /** The buffered appends' staging buffer (appends run one at a time, in the queue). */
  private staging: Buffer | null = null

  constructor (private readonly files: PackFiles, private readonly index: WriterIndex, private current: Pack, private readonly packLimit: number) {
    this.syncedTo = { pack: current.id, offset: current.size }
  }

  /** Where the next record goes: the current pack and its size. */
  get end (): { pack: number, offset: number } { return { pack: this.current.id, offset: this.current.size } }

  /** The pack appends go to. */
  get currentPack (): number { return this.current.id }

  /** The bytes of a block put but not yet written to its pack. */
  unwritten (key: string): Uint8Array | undefined { return this.unflushed.get(key) }

  /** Queues a block (not yet known to the index or to unwritten()) for appending. */
  add (key: string, cid: CID, bytes: Uint8Array, release?: () => void): void {
    const header = encodeRecordHeader(cid, bytes.length)
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    this.pending.push({ key, cid, header, body, release })
    this.pendingBytes += header.length + bytes.length
    this.unflushed.set(key, body)
    if (this.pendingBytes >= FLUSH_BYTES) void this.flush().catch(() => {})
  }

  get backlog (): number { return this.pendingBytes }

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
      if (this.current.size > PACK_HEADER_LENGTH && this.current.size + bytes > this.packLimit) {
        // The batch stays pending until the next pack exists: a failure here loses nothing.
        await this.files.finishDirect(this.current)
        // Durable before its index names it; the index file is the pack's from then on.
        try { await this.current.fh.datasync() } catch (err) { throw ioError(err, `syncing pack ${this.current.id}`) }
        this.current.synced = true
        try { await this.index.seal(this.current) } catch (err) { throw ioError(err, `writing the index of pack ${this.current.id}`) }
        this.current = await this.files.create(this.current.id + 1)
      }
      const batch = this.pending.splice(0, n)
      this.pendingBytes -= bytes
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
      if (this.sinceCrc != null && (pack.id !== this.syncedTo.pack || start + bytes - this.syncedTo.offset > CHECK_MAX)) this.sinceCrc = null
      for (const s of this.syncing) if (s.crc != null && (pack.id !== s.wm.pack || start + bytes - s.wm.offset > CHECK_MAX)) s.crc = null
      let off = start
      for (const r of batch) {
        if (this.sinceCrc != null) this.sinceCrc = crc32(r.body, crc32(r.header, this.sinceCrc))
        for (const s of this.syncing) if (s.crc != null) s.crc = crc32(r.body, crc32(r.header, s.crc))
        const at = { pack: pack.id, offset: off + r.header.length, length: r.body.length }
        this.index.add(r.key, at, r.cid.multihash.digest, r.cid.multihash.code)
        // A listener that throws (an allocation failing under pressure) is dropped, never left
        // between the index and pack.size: the next append would overwrite indexed records.
        try { this.onAppended?.(r.cid, at, r.body) } catch { this.onAppended = null }
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
      // Records copied into one staging buffer, one write: a writev of 64 small buffers cost more
      // on the JS thread (5.8% of it with fsync/32) than copying them. A record larger than the
      // buffer goes alone, as it is.
      let n = 0
      let len = 0
      while (i + n < batch.length && len + recordLength(batch[i + n]) <= STAGING) len += recordLength(batch[i + n++])
      let written: number
      if (n === 0) {
        const r = batch[i]
        len = recordLength(r)
        n = 1
        written = (await pack.fh.writev([r.header, r.body], off)).bytesWritten
      } else {
        const st = this.staging ??= Buffer.allocUnsafeSlow(STAGING)
        let o = 0
        for (let k = i; k < i + n; k++) {
          o += batch[k].header.copy(st, o)
          o += copyBytes(st, o, batch[k].body) // the body may be a sealing slot's shared memory
        }
        written = (await pack.fh.write(st, 0, len, off)).bytesWritten
      }
      if (written !== len) throw Object.assign(new Error('short write'), { code: 'ENOSPC' })
      pack.direct?.invalidate()
      off += len
      buffered += len
      i += n
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
      this.files.directIo = false
      pack.direct = null
      await appender.close()
      return { next: i, bytes: 0 }
    }
  }

  private async directOf (pack: Pack): Promise<DirectAppender | null> {
    if (!this.files.directIo) return null
    if (pack.direct === undefined) {
      pack.direct = await DirectAppender.open(this.files.path(pack.id), pack.fh)
      if (pack.direct == null) this.files.directIo = false
    }
    return pack.direct
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
    const s = await this.syncStart()
    await s.durable
    return s.wm
  }

  /**
   * sync() in two steps: resolves once everything put is written (to the kernel), with the
   * watermark and, when the bytes since the last sync are at most CHECK_MAX in the same pack,
   * their start and CRC-32; `durable` resolves once they are on disk (and rejects as sync would).
   */
  async syncStart (): Promise<SyncStart> {
    await this.flush()
    const pack = this.current
    const wm = { pack: pack.id, offset: pack.size }
    const check = this.sinceCrc != null && wm.pack === this.syncedTo.pack && wm.offset > this.syncedTo.offset ? { from: this.syncedTo.offset, crc: this.sinceCrc } : null
    const started = { wm, crc: 0 as number | null }
    this.syncing.push(started)
    const durable = this.makeDurable(pack, wm).then(() => { this.synced(started) }, err => {
      // Not on disk: the last good sync stays where the next check starts.
      const i = this.syncing.indexOf(started)
      if (i >= 0) this.syncing.splice(i, 1)
      throw err
    })
    durable.catch(() => {}) // the caller's to handle; not an unhandled rejection meanwhile
    return { wm, check, durable }
  }

  /** A sync's fdatasync succeeded: the next check starts at its watermark (syncs started before it are covered by it). */
  private synced (s: { wm: Watermark, crc: number | null }): void {
    const i = this.syncing.indexOf(s)
    if (i < 0) return // a later sync succeeded first and covers it
    this.syncing.splice(0, i + 1)
    this.syncedTo = s.wm
    this.sinceCrc = s.crc
  }

  private async makeDurable (pack: Pack, wm: Watermark): Promise<void> {
    for (const p of [...this.files.packs.values()]) {
      if (p.synced) continue
      const size = p.size
      try { await p.fh.datasync() } catch (err) { throw ioError(err, `syncing pack ${p.id}`) }
      if (p.size === size) p.synced = true
    }
    // The current pack's index file, when its unindexed tail is long. Not the commit's business:
    // the records stay indexed in memory, and the next sync or the pack's seal writes the file
    // again; an open scans the tail meanwhile. So neither this commit nor the appends queued
    // behind it wait for it: in the append queue and awaited, it made the slowest syncs of
    // random writes with fsync (16-124 ms each, 13 in 10 s of fio, every job's fsync behind
    // them). PackIndexes writes one index file at a time, a seal after a checkpoint.
    if (pack === this.current) void this.index.checkpoint(pack, wm.offset).catch(() => {})
  }

  /** Waits for the appends and the writeback under way; hands back the memory of what is left. */
  async close (): Promise<void> {
    await this.queue
    for (const r of this.pending) r.release?.()
    await this.writeback
    await this.index.seal(this.current)
  }
}
