// The CID -> location map of the pack store, and its rebuild from a pack's record headers. Behind
// the BlockIndex interface so that a persistent per-pack index (issue 11) can replace the
// in-memory one without the store noticing. An index only says where a record claiming a CID
// lies; reads check the bytes against the CID (cid.ts checkCid).
import type { FileHandle } from 'node:fs/promises'
import { PACK_HEADER_LENGTH, MAX_RECORD_HEADER, checkPackHeader, parseRecordHeader, type RecordHeader } from './record.js'

/** Where a block's sealed bytes lie: `length` bytes at `offset` of pack `pack`. */
export interface Location { pack: number, offset: number, length: number }

/** Keys are CIDs in their string form. */
export interface BlockIndex {
  get: (key: string) => Location | undefined
  has: (key: string) => boolean
  set: (key: string, at: Location) => void
}

export class MemoryIndex implements BlockIndex {
  private readonly map = new Map<string, Location>()
  get (key: string): Location | undefined { return this.map.get(key) }
  has (key: string): boolean { return this.map.has(key) }
  set (key: string, at: Location): void { this.map.set(key, at) }
}

/** Bytes of a pack whose framing is bad, skipped by indexPack (their blocks read as missing). */
export interface PackDamage { pack: number, offset: number, skipped: number, reason: string }

/**
 * Adds every record of pack `pack` (its first `size` bytes, open as `fh`) to `index`. A bad record
 * header does not stop it: the bytes up to the next plausible record are skipped and reported to
 * `onDamage`, so one bad spot costs the blocks in it and nothing after (every read is checked
 * against its CID, so a record found by the search can never pass off wrong bytes).
 */
export async function indexPack (index: BlockIndex, pack: number, fh: FileHandle, size: number, onDamage: (d: PackDamage) => void = () => {}): Promise<void> {
  const head = Buffer.alloc(PACK_HEADER_LENGTH)
  const { bytesRead } = await fh.read(head, 0, head.length, 0)
  checkPackHeader(head.subarray(0, bytesRead), pack)
  let off = head.length
  const buf = Buffer.alloc(MAX_RECORD_HEADER)
  while (off < size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - off), off)
    const rec = plausibleRecord(buf.subarray(0, bytesRead), size - off)
    if (rec == null) {
      // Zeros past the last record are what an O_DIRECT append leaves until the pack is cut.
      if (await allZero(fh, off, size)) break
      const next = await nextRecord(fh, off + 1, size)
      onDamage({ pack, offset: off, skipped: (next ?? size) - off, reason: 'bad record header' })
      if (next == null) break
      off = next
      continue
    }
    const dataOff = off + rec.headerLength
    index.set(rec.cid.toString(), { pack, offset: dataOff, length: rec.length })
    off = dataOff + rec.length
  }
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
