// The CID -> location map of the pack store, and its rebuild from a pack's record headers. Behind
// the BlockIndex interface so that a persistent per-pack index (issue 11) can replace the
// in-memory one without the store noticing. An index only says where a record claiming a CID
// lies; reads check the bytes against the CID (cid.ts checkCid).
import type { FileHandle } from 'node:fs/promises'
import { corrupt } from './errors.js'
import { PACK_HEADER_LENGTH, MAX_RECORD_HEADER, checkPackHeader, parseRecordHeader } from './record.js'

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

/** Adds every record of pack `pack` (`size` bytes, open as `fh`) to `index`. */
export async function indexPack (index: BlockIndex, pack: number, fh: FileHandle, size: number): Promise<void> {
  const head = Buffer.alloc(PACK_HEADER_LENGTH)
  const { bytesRead } = await fh.read(head, 0, head.length, 0)
  checkPackHeader(head.subarray(0, bytesRead), pack)
  let off = head.length
  const buf = Buffer.alloc(MAX_RECORD_HEADER)
  while (off < size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - off), off)
    const rec = parseRecordHeader(buf.subarray(0, bytesRead), pack, off)
    const dataOff = off + rec.headerLength
    if (dataOff + rec.length > size) throw corrupt(`pack ${pack}: record at ${off} runs past the end`)
    index.set(rec.cid.toString(), { pack, offset: dataOff, length: rec.length })
    off = dataOff + rec.length
  }
}
