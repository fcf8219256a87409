// The pack index file format (docs/format.md "Pack index files"): one `NNNNNNNN.idx` beside each
// pack, listing where every record of a stretch of the pack lies, sorted by digest, in the spirit
// of git's pack .idx. Building one (entries in any order -> file bytes), checking its header, and
// looking a digest up by binary search over one fanout bucket read from the file: entries are
// never parsed into objects, so a store's index costs a few bytes of memory per 16 blocks.
//
//   header  (64)  magic "SPACEIX1" | version u8 | fanout bits u8 | 0 0 | pack u32 | from u64 |
//                 to u64 | count u32 | 0 (4) | first skipped byte u64 | skipped bytes u64 |
//                 0 (4) | CRC-32 of the header's first 60 bytes, the fanout and the bucket CRCs
//   fanout  2^bits x u32: entries whose digest's top `bits` bits are <= i (cumulative)
//   crcs    2^bits x u32: CRC-32 of each bucket's entry bytes
//   entries count x 48: digest (32) | multihash code u8 | 0 0 0 | length u32 | offset u64
//   trailer BLAKE3-256 of every byte before it
import { promises as fsp, readSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import { blake3 } from '../crypto/blake3.js'
import { StoreError } from './errors.js'

export const IDX_VERSION = 1
const IDX_MAGIC = Buffer.from('SPACEIX1')
export const IDX_HEADER = 64
export const ENTRY = 48
export const TRAILER = 32
const DIGEST = 32
const MIN_BITS = 8
const MAX_BITS = 16
/** Average entries per bucket the fanout is sized for: one bucket is one small read. */
const BUCKET_TARGET = 16

/** Why an index file cannot be used; the store rebuilds it from its pack. */
export class IndexDamaged extends StoreError {
  constructor (readonly pack: number, readonly reason: string) {
    super('ERR_STORE_CORRUPT', `index of pack ${pack}: ${reason}`)
    this.name = 'IndexDamaged'
  }
}

/** Where a record's sealed bytes lie in its pack, as an index entry names it. */
export interface IdxHit { offset: number, length: number }

/** Bytes of bad framing skipped while the index was built (their blocks read as missing). */
export interface IdxDamage { offset: number, skipped: number }

/** Entries gathered in any order (48 bytes each, the file's layout), for writeIndex. */
export class EntryList {
  private buf = Buffer.alloc(ENTRY * 1024)
  count = 0
  /** The first entries, read from an index file, are in (digest, code) order (sorted() checks). */
  inOrder = 0

  push (digest: Uint8Array, code: number, offset: number, length: number): void {
    if (digest.length !== DIGEST || code > 0xff) return // no 32-byte digest: the store cannot check it anyway
    if ((this.count + 1) * ENTRY > this.buf.length) {
      const next = Buffer.alloc(this.buf.length * 2)
      this.buf.copy(next)
      this.buf = next
    }
    const at = this.count * ENTRY
    this.buf.set(digest, at)
    this.buf.fill(0, at + DIGEST, at + DIGEST + 4)
    this.buf[at + DIGEST] = code
    this.buf.writeUInt32BE(length, at + 36)
    writeU64(this.buf, at + 40, offset)
    this.count++
  }

  /**
   * Appends raw entries (an index file's entry section, laid out as push() lays them), in one
   * copy: entry by entry, each checkpoint of the current pack's index made a view per entry it
   * already held (~17% of all allocation under small random commits).
   */
  pushRaw (entries: Buffer): void {
    const n = Math.floor(entries.length / ENTRY)
    if ((this.count + n) * ENTRY > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, (this.count + n) * ENTRY))
      this.buf.copy(next, 0, 0, this.count * ENTRY)
      this.buf = next
    }
    entries.copy(this.buf, this.count * ENTRY, 0, n * ENTRY)
    this.count += n
  }

  /** Entry `i` (its digest copied). */
  at (i: number): { digest: Uint8Array, code: number, offset: number, length: number } {
    const at = i * ENTRY
    return { digest: Uint8Array.prototype.slice.call(this.buf, at, at + DIGEST), code: this.buf[at + DIGEST], offset: readU64(this.buf, at + 40), length: this.buf.readUInt32BE(at + 36) }
  }

  /** Entry `i`'s end in the pack (offset + length). */
  endOf (i: number): number { return readU64(this.buf, i * ENTRY + 40) + this.buf.readUInt32BE(i * ENTRY + 36) }

  /** The entries whose records end at or before `end`. */
  keepBefore (end: number): EntryList {
    const out = new EntryList()
    for (let i = 0; i < this.count; i++) if (this.endOf(i) <= end) out.pushRaw(this.buf.subarray(i * ENTRY, (i + 1) * ENTRY))
    return out
  }

  /**
   * The entries sorted by (digest, code), one buffer. Those an index file held (entriesOf) come
   * first and are in order already: only the rest are sorted, then the two runs merged. A
   * checkpoint of the current pack adds a few thousand entries to tens of thousands, and sorting
   * them all again held the event loop 16-124 ms per checkpoint under random writes.
   */
  sorted (): Buffer {
    const n = this.count
    const b = this.buf
    // A 48-bit prefix orders random digests almost always; ties fall back to the full compare.
    const keys = new Float64Array(n)
    for (let i = 0; i < n; i++) keys[i] = b.readUIntBE(i * ENTRY, 6)
    const cmp = (x: number, y: number): number => (keys[x] - keys[y]) || b.compare(b, y * ENTRY, y * ENTRY + DIGEST + 1, x * ENTRY, x * ENTRY + DIGEST + 1) // source x against target y
    let head = Math.min(this.inOrder, n)
    for (let i = 1; i < head; i++) if (cmp(i - 1, i) > 0) { head = 0; break } // not in order after all: sort everything
    const rest = Array.from({ length: n - head }, (_, i) => head + i)
    rest.sort(cmp)
    const out = Buffer.allocUnsafe(n * ENTRY)
    let o = 0
    let h = 0
    for (const r of rest) {
      // The head's entries before r, copied as one run.
      let end = h
      while (end < head && cmp(end, r) <= 0) end++
      if (end > h) { b.copy(out, o, h * ENTRY, end * ENTRY); o += (end - h) * ENTRY; h = end }
      b.copy(out, o, r * ENTRY, (r + 1) * ENTRY); o += ENTRY
    }
    if (h < head) b.copy(out, o, h * ENTRY, head * ENTRY)
    return out
  }
}

/** Fanout bits for `n` entries: buckets of about BUCKET_TARGET entries, 2^8 .. 2^16 of them. */
export function fanoutBits (n: number): number {
  return Math.min(MAX_BITS, Math.max(MIN_BITS, Math.ceil(Math.log2(Math.max(1, n) / BUCKET_TARGET))))
}

const bucketOf = (digest: Uint8Array, bits: number): number => ((digest[0] << 8) | digest[1]) >> (16 - bits)

export interface IdxMeta { pack: number, from: number, to: number, damage: IdxDamage | null }

/** The bytes of an index file over `entries` (any order): header, fanout, CRCs, entries, trailer. */
export function encodeIndex (meta: IdxMeta, entries: EntryList): Buffer {
  const sorted = entries.sorted()
  const n = entries.count
  const bits = fanoutBits(n)
  const buckets = 1 << bits
  const start = IDX_HEADER + 8 * buckets
  const out = Buffer.alloc(start + n * ENTRY + TRAILER)
  IDX_MAGIC.copy(out, 0)
  out[8] = IDX_VERSION
  out[9] = bits
  out.writeUInt32BE(meta.pack, 12)
  writeU64(out, 16, meta.from)
  writeU64(out, 24, meta.to)
  out.writeUInt32BE(n, 32)
  writeU64(out, 40, meta.damage?.offset ?? 0)
  writeU64(out, 48, meta.damage?.skipped ?? 0)
  sorted.copy(out, start)
  const shift = 16 - bits
  let i = 0
  for (let b = 0; b < buckets; b++) {
    const lo = i
    while (i < n && (((sorted[i * ENTRY] << 8) | sorted[i * ENTRY + 1]) >> shift) === b) i++ // bucketOf, without a view per entry
    out.writeUInt32BE(i, IDX_HEADER + 4 * b)
    out.writeUInt32BE(lo === i ? 0 : crc32(sorted.subarray(lo * ENTRY, i * ENTRY)), IDX_HEADER + 4 * buckets + 4 * b) // an empty bucket's CRC-32 is 0
  }
  out.writeUInt32BE(headCrc(out, bits), 60)
  out.set(blake3(out.subarray(0, out.length - TRAILER)), out.length - TRAILER)
  return out
}

function headCrc (head: Buffer, bits: number): number {
  return crc32(head.subarray(IDX_HEADER, IDX_HEADER + 8 * (1 << bits)), crc32(head.subarray(0, 60)))
}

/**
 * Writes an index file durably: to `path`.tmp, fsync'd, then renamed over `path`. A crash leaves
 * the old file or the new one, never half of one (a lost rename only costs a rebuild).
 */
export async function writeIndex (path: string, meta: IdxMeta, entries: EntryList): Promise<void> {
  const bytes = encodeIndex(meta, entries)
  const tmp = path + '.tmp'
  const fh = await fsp.open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(bytes)
    await fh.datasync()
  } finally { await fh.close() }
  await fsp.rename(tmp, path)
}

/** A small LRU of checked buckets, shared by a store's index files, bounded in bytes. */
export class BucketCache {
  private readonly map = new Map<number, Buffer>()
  private bytes = 0
  constructor (private readonly limit = 4 * 1024 * 1024) {}
  /** Keys: pack * 65536 + bucket. */
  get (k: number): Buffer | undefined {
    const v = this.map.get(k)
    if (v !== undefined) { this.map.delete(k); this.map.set(k, v) }
    return v
  }

  set (k: number, v: Buffer): void {
    this.map.set(k, v)
    this.bytes += v.length
    for (const [old, b] of this.map) {
      if (this.bytes <= this.limit) break
      this.map.delete(old)
      this.bytes -= b.length
    }
  }

  drop (pack: number): void {
    for (const [k, b] of this.map) if (Math.floor(k / 65536) === pack) { this.map.delete(k); this.bytes -= b.length }
  }
}

/**
 * One open index file: its header, fanout and bucket CRCs in memory (8 bytes per bucket), the
 * entries on disk. A bucket is read when a lookup needs it and checked against its CRC before
 * use; a mismatch throws IndexDamaged (the store rebuilds the file), never a wrong answer.
 */
export class IdxFile {
  private constructor (
    private readonly fh: FileHandle,
    readonly meta: IdxMeta,
    readonly count: number,
    private readonly bits: number,
    private readonly fanout: Uint32Array,
    private readonly crcs: Uint32Array,
    private readonly cache: BucketCache
  ) {}

  /** Opens and checks an index file of pack `pack`: magic, version, header CRC, fanout, length. */
  static async open (path: string, pack: number, cache: BucketCache): Promise<IdxFile> {
    const fh = await fsp.open(path, 'r')
    try {
      const size = (await fh.stat()).size
      const head = Buffer.alloc(IDX_HEADER)
      const { bytesRead } = await fh.read(head, 0, IDX_HEADER, 0)
      if (bytesRead < IDX_HEADER) throw new IndexDamaged(pack, `truncated (${size} bytes)`)
      if (!IDX_MAGIC.equals(head.subarray(0, 8))) throw new IndexDamaged(pack, 'no index header')
      if (head[8] !== IDX_VERSION) throw new IndexDamaged(pack, `unknown version ${head[8]}`)
      const bits = head[9]
      if (bits < MIN_BITS || bits > MAX_BITS) throw new IndexDamaged(pack, `bad fanout size ${bits}`)
      const buckets = 1 << bits
      const full = Buffer.alloc(IDX_HEADER + 8 * buckets)
      head.copy(full)
      const tables = await fh.read(full, IDX_HEADER, 8 * buckets, IDX_HEADER)
      if (tables.bytesRead < 8 * buckets) throw new IndexDamaged(pack, `truncated (${size} bytes)`)
      if (headCrc(full, bits) !== full.readUInt32BE(60)) throw new IndexDamaged(pack, 'bad checksum')
      const count = full.readUInt32BE(32)
      if (size !== IDX_HEADER + 8 * buckets + count * ENTRY + TRAILER) throw new IndexDamaged(pack, `length ${size} is not that of ${count} entries`)
      if (full.readUInt32BE(12) !== pack) throw new IndexDamaged(pack, `names pack ${full.readUInt32BE(12)}`)
      const fanout = new Uint32Array(buckets)
      const crcs = new Uint32Array(buckets)
      for (let b = 0; b < buckets; b++) {
        fanout[b] = full.readUInt32BE(IDX_HEADER + 4 * b)
        crcs[b] = full.readUInt32BE(IDX_HEADER + 4 * buckets + 4 * b)
        if (fanout[b] < (b === 0 ? 0 : fanout[b - 1])) throw new IndexDamaged(pack, 'fanout not ascending')
      }
      if (fanout[buckets - 1] !== count) throw new IndexDamaged(pack, 'fanout does not end at the entry count')
      const skipped = readU64(full, 48)
      const meta: IdxMeta = { pack, from: readU64(full, 16), to: readU64(full, 24), damage: skipped > 0 ? { offset: readU64(full, 40), skipped } : null }
      return new IdxFile(fh, meta, count, bits, fanout, crcs, cache)
    } catch (err) {
      await fh.close()
      throw err
    }
  }

  private get entriesAt (): number { return IDX_HEADER + 8 * (1 << this.bits) }

  /**
   * Where the record of `digest` (multihash `code`) lies, or null. Synchronous: one pread of the
   * bucket (about BUCKET_TARGET entries) on the calling thread when it is not cached, as a page
   * fault of a mapped file would be.
   */
  lookup (digest: Uint8Array, code: number): IdxHit | null {
    if (digest.length !== DIGEST) return null
    const b = bucketOf(digest, this.bits)
    const lo = b === 0 ? 0 : this.fanout[b - 1]
    const hi = this.fanout[b]
    if (lo === hi) return null
    const key = this.meta.pack * 65536 + b
    let bucket = this.cache.get(key)
    if (bucket === undefined) {
      bucket = Buffer.allocUnsafeSlow((hi - lo) * ENTRY) // its own memory: a cached slice would pin a pool chunk
      let done = 0
      while (done < bucket.length) {
        const n = readSync(this.fh.fd, bucket, done, bucket.length - done, this.entriesAt + lo * ENTRY + done)
        if (n === 0) throw new IndexDamaged(this.meta.pack, 'truncated')
        done += n
      }
      if (crc32(bucket) !== this.crcs[b]) throw new IndexDamaged(this.meta.pack, `bucket ${b} fails its checksum`)
      this.cache.set(key, bucket)
    }
    let l = 0
    let h = hi - lo
    while (l < h) {
      const m = (l + h) >>> 1
      let c = bucket.compare(digest, 0, DIGEST, m * ENTRY, m * ENTRY + DIGEST)
      if (c === 0) c = bucket[m * ENTRY + DIGEST] - code
      if (c === 0) return { offset: readU64(bucket, m * ENTRY + 40), length: bucket.readUInt32BE(m * ENTRY + 36) }
      if (c < 0) l = m + 1
      else h = m
    }
    return null
  }

  /** Every entry (the file's entry section), for merging into a new index of the same pack. */
  async entries (): Promise<EntryList> {
    const raw = Buffer.allocUnsafe(this.count * ENTRY)
    const { bytesRead } = await this.fh.read(raw, 0, raw.length, this.entriesAt)
    if (bytesRead !== raw.length) throw new IndexDamaged(this.meta.pack, 'truncated')
    const out = new EntryList()
    out.pushRaw(raw)
    out.inOrder = out.count // encodeIndex wrote them sorted
    return out
  }

  async close (): Promise<void> {
    this.cache.drop(this.meta.pack)
    await this.fh.close().catch(() => {})
  }
}

/** Checks a whole index file's bytes (trailer and every bucket CRC), for fsck; returns its entries. */
export async function verifyIndexFile (path: string, pack: number): Promise<{ meta: IdxMeta, entries: Buffer }> {
  const f = await IdxFile.open(path, pack, new BucketCache(0))
  await f.close()
  const bytes = await fsp.readFile(path)
  if (!Buffer.from(blake3(bytes.subarray(0, bytes.length - TRAILER))).equals(bytes.subarray(bytes.length - TRAILER))) throw new IndexDamaged(pack, 'bad checksum (trailer)')
  const bits = bytes[9]
  const buckets = 1 << bits
  const start = IDX_HEADER + 8 * buckets
  const entries = bytes.subarray(start, bytes.length - TRAILER)
  for (let b = 0, lo = 0; b < buckets; b++) {
    const hi = bytes.readUInt32BE(IDX_HEADER + 4 * b)
    if (crc32(entries.subarray(lo * ENTRY, hi * ENTRY)) !== bytes.readUInt32BE(IDX_HEADER + 4 * buckets + 4 * b)) throw new IndexDamaged(pack, `bucket ${b} fails its checksum`)
    lo = hi
  }
  return { meta: f.meta, entries }
}

/** Entry `i` of an entry section: digest (a view), code, offset, length. */
export function entryAt (entries: Buffer, i: number): { digest: Buffer, code: number, offset: number, length: number } {
  const at = i * ENTRY
  return { digest: entries.subarray(at, at + DIGEST), code: entries[at + DIGEST], offset: readU64(entries, at + 40), length: entries.readUInt32BE(at + 36) }
}

function writeU64 (b: Buffer, at: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x100000000), at)
  b.writeUInt32BE(v >>> 0, at + 4)
}

function readU64 (b: Buffer, at: number): number {
  return b.readUInt32BE(at) * 0x100000000 + b.readUInt32BE(at + 4)
}
