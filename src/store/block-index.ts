// Where blocks lie: the Location of a record, the BlockIndex a store looks CIDs up in
// (pack-idx-set.ts implements it over per-pack index files), and the scan of a pack's record
// headers an index is built from. An index only says where a record claiming a CID lies; reads
// check the bytes against the CID (cid.ts checkCid).
import type { FileHandle } from 'node:fs/promises'
import type { CID } from './cid.js'
import { PACK_HEADER_LENGTH, MAX_RECORD_HEADER, checkPackHeader, parseRecordHeader, type RecordHeader } from './record.js'
import { EntryList, type IdxDamage } from './pack-idx.js'

/** Where a block's sealed bytes lie: `length` bytes at `offset` of pack `pack`. */
export interface Location { pack: number, offset: number, length: number }

/** `key` is the CID's string form (the caller has both). */
export interface BlockIndex {
  get: (cid: CID, key: string) => Location | undefined
  has: (cid: CID, key: string) => boolean
}

/** Bytes of a pack whose framing is bad, skipped by scanRecords (their blocks read as missing). */
export interface PackDamage { pack: number, offset: number, skipped: number, reason: string }

const SCAN_CHUNK = 1024 * 1024

/** What a scan of a stretch of a pack found: its records as index entries, and its bad framing. */
export interface PackRecords { entries: EntryList, damage: IdxDamage | null, records: number }

/**
 * Reads the records of pack `pack` (open as `fh`) in [from, to), in 1 MiB reads. A bad record
 * header does not stop it: the bytes up to the next plausible record are skipped and reported to
 * `onDamage`, so one bad spot costs the blocks in it and nothing after (every read is checked
 * against its CID, so a record found by the search can never pass off wrong bytes).
 */
export async function scanRecords (pack: number, fh: FileHandle, from: number, to: number, onDamage: (d: PackDamage) => void = () => {}): Promise<PackRecords> {
  if (from <= PACK_HEADER_LENGTH) {
    const head = Buffer.alloc(PACK_HEADER_LENGTH)
    const { bytesRead } = await fh.read(head, 0, head.length, 0)
    checkPackHeader(head.subarray(0, bytesRead), pack)
    from = PACK_HEADER_LENGTH
  }
  const out: PackRecords = { entries: new EntryList(), damage: null, records: 0 }
  const buf = Buffer.alloc(SCAN_CHUNK)
  let off = from
  while (off < to) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - off), off)
    if (bytesRead === 0) break
    let p = 0
    // Every record whose header lies whole in this read; the next read starts at the first that does not.
    while (off + p < to && (p === 0 || p + MAX_RECORD_HEADER <= bytesRead || off + bytesRead === to) && p < bytesRead) {
      const rec = plausibleRecord(buf.subarray(p, bytesRead), to - off - p)
      if (rec == null) break
      out.entries.push(rec.cid.multihash.digest, rec.cid.multihash.code, off + p + rec.headerLength, rec.length)
      out.records++
      p += rec.headerLength + rec.length
    }
    if (p > 0) { off += p; continue }
    // No record starts at `off`. Zeros past the last record are what an O_DIRECT append leaves until the pack is cut.
    if (await allZero(fh, off, to)) break
    const next = await nextRecord(fh, off + 1, to)
    const skipped = (next ?? to) - off
    onDamage({ pack, offset: off, skipped, reason: 'bad record header' })
    out.damage = out.damage == null ? { offset: off, skipped } : { offset: out.damage.offset, skipped: out.damage.skipped + skipped }
    if (next == null) break
    off = next
  }
  return out
}

/** The record header at the start of `b`, if it parses, names a CIDv1 and fits in `left` bytes. */
export function plausibleRecord (b: Buffer, left: number): RecordHeader | null {
  let rec
  try { rec = parseRecordHeader(b, 0, 0) } catch { return null }
  if (rec.cid.version !== 1 || rec.length === 0 || rec.headerLength + rec.length > left) return null
  return rec
}

const SEARCH_WINDOW = 1024 * 1024

/** The next offset from `from` (below `size`) where a plausible record starts, or null. */
export async function nextRecord (fh: FileHandle, from: number, size: number): Promise<number | null> {
  const win = Buffer.alloc(SEARCH_WINDOW + MAX_RECORD_HEADER)
  for (let base = from; base < size; base += SEARCH_WINDOW) {
    const { bytesRead } = await fh.read(win, 0, Math.min(win.length, size - base), base)
    for (let i = 0; i < Math.min(SEARCH_WINDOW, bytesRead); i++) {
      // Cheap filter first: record version 1, a CIDv1 (0x01) of the raw codec (0x55).
      if (win[i] !== 1 || win[i + 2] !== 1 || win[i + 3] !== 0x55) continue
      if (plausibleRecord(win.subarray(i, bytesRead), size - base - i) !== null) return base + i
    }
  }
  return null
}

/** Whether [from, to) of the file holds only zeros (checked up to 64 KiB). */
export async function allZero (fh: FileHandle, from: number, to: number): Promise<boolean> {
  if (to - from > 64 * 1024) return false
  const b = Buffer.alloc(to - from)
  await fh.read(b, 0, b.length, from)
  return b.every(x => x === 0)
}
