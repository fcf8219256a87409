// Which blocks a commit added: the records of the store's packs between two watermarks (the
// previous commit's and this one's). Every block is appended before the commit that references
// it records its watermark, and a block already in the store is never appended twice, so the
// ranges of consecutive commits together hold every block any of them references: pushing each
// range before its entry is what "blocks first, entry after" needs, without walking trees.
import { trace } from './trace.js'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { create as digestOf } from 'multiformats/hashes/digest'
import { scanRecords, plausibleRecord } from '../store/block-index.js'
import { PACK_HEADER_LENGTH, MAX_RECORD_HEADER, checkPackHeader } from '../store/record.js'
import type { Watermark } from '../store/types.js'

export interface NewBlock { cid: CID, pack: number, offset: number, length: number }

const RAW = 0x55
const packPath = (dir: string, id: number): string => join(dir, `${String(id).padStart(8, '0')}.pack`)

/** What AppendedBlocks needs of the store: to be told of its appends. */
export interface AppendSource { onAppended: (fn: (cid: CID, at: { pack: number, offset: number, length: number }, body: Uint8Array) => void) => Watermark }

const before = (a: Watermark, b: Watermark): boolean => a.pack < b.pack || (a.pack === b.pack && a.offset < b.offset)

/**
 * The records the store appended while this process runs, as they were appended: the blocks of
 * a commit made here are listed from memory, without reading the packs back (under load the
 * reads of a commit's record headers took seconds, on the push's path). Covers what lies past
 * the store's end when it was opened; older ranges (commits a previous run did not publish)
 * are scanned.
 */
export class AppendedBlocks {
  private since: Watermark
  private list: NewBlock[] = []

  /**
   * `max`: records kept at most. Nothing is forgotten while no entry is published (sync not
   * started, or a device that only downloads: its fetched blocks are appended too), so past it
   * the list is dropped and what it covered is scanned again when asked for.
   */
  /**
   * Blocks the hub is known to hold (fetched from it) are left out of the list: an entry need
   * not push them, and the hub need not look each one up again before accepting it. A range
   * that has to be scanned lists them (harmless: the hub answers that it holds them).
   */
  fromHub: ((cid: CID) => boolean) | null = null
  /**
   * Told of every block listed (appended here, not fetched from the hub), as it is appended, with
   * its sealed bytes (valid only during the call): the early upload.
   */
  onBlock: ((b: NewBlock, body: Uint8Array) => void) | null = null

  constructor (store: AppendSource, private readonly max = 65_536) {
    this.since = store.onAppended((cid, at, body) => {
      if (this.fromHub?.(cid) === true) return
      if (this.list.length >= this.max) {
        const last = this.list[this.list.length - 1]
        this.since = { pack: last.pack, offset: last.offset + last.length }
        this.list = []
      }
      const b = { cid, pack: at.pack, offset: at.offset, length: at.length }
      this.list.push(b)
      try {
        this.onBlock?.(b, body)
      } catch (err) {
        this.onBlock = null // the block stays listed: the push sends it
        trace(() => `early upload off: ${(err as Error).message}`)
      }
    })
  }

  /** Where what this process saw begins: the store's end when it was opened, or past the last drop at the cap. */
  get covered (): Watermark { return this.since }

  /** The records after `from` up to `to`, or null when `from` lies before what this process saw. */
  between (from: Watermark | null, to: Watermark): NewBlock[] | null {
    if (from == null || before(from, this.since)) return null
    return this.list.filter(b => !before(b, from) && !before(to, { pack: b.pack, offset: b.offset + b.length }))
  }

  /** Records up to `w` are never asked for again (the log has published up to it). */
  forget (w: Watermark): void {
    this.list = this.list.filter(b => before(w, { pack: b.pack, offset: b.offset + b.length }))
    if (before(this.since, w)) this.since = w // what is left covers from there on
  }
}

/**
 * The records that lie after `from` and up to `to` in the packs of `packsDir`, in pack order.
 * `from` null: from the start of the store. `recent`: what this process appended, used when it
 * covers the range.
 */
export async function blocksBetween (packsDir: string, from: Watermark | null, to: Watermark, recent?: AppendedBlocks): Promise<NewBlock[]> {
  const known = recent?.between(from, to)
  if (known != null) return known
  // Only the part before what this process saw is read from the packs (a first entry after
  // mounting scanned everything written since, 0.9 s of header reads into a bulk write).
  let end = to
  let tail: NewBlock[] = []
  const covered = recent?.covered
  if (covered != null && before(covered, to)) {
    end = covered
    tail = recent!.between(covered, to)! // taken before the scan's awaits: later appends or drops do not change it
  }
  const out = await scanBetween(packsDir, from, end)
  for (const b of tail) out.push(b)
  return out
}

async function scanBetween (packsDir: string, from: Watermark | null, to: Watermark): Promise<NewBlock[]> {
  const out: NewBlock[] = []
  const first = from?.pack ?? 0
  for (let pack = first; pack <= to.pack; pack++) {
    let fh
    try {
      fh = await open(packPath(packsDir, pack), 'r')
    } catch (err) {
      // Numbers may skip; a range that ends where a pack would begin has nothing of it.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (pack < to.pack || to.offset <= PACK_HEADER_LENGTH)) continue
      throw err
    }
    try {
      const size = pack === to.pack ? to.offset : (await fh.stat()).size
      const start = from != null && pack === from.pack ? from.offset : 0
      const hopped = await hop(pack, fh, start, size)
      if (hopped != null) {
        out.push(...hopped)
        continue
      }
      // Framing that does not parse (a damaged pack): the store's scan, which reads every byte and skips bad spots.
      const { entries } = await scanRecords(pack, fh, start, size)
      // The drive's packs hold raw blocks only (sealed objects): a record's CID is raw of its digest.
      for (let i = 0; i < entries.count; i++) {
        const e = entries.at(i)
        out.push({ cid: CID.createV1(RAW, digestOf(e.code, e.digest)), pack, offset: e.offset, length: e.length })
      }
    } finally {
      await fh.close()
    }
  }
  return out
}

/** Bytes read at a time by hop(): many small records per read, one read per large record. */
const WINDOW = 16 * 1024

/**
 * The records of [from, to) found by reading their headers only and jumping over their bodies
 * (a scan of 1 GiB of 128 KiB blocks reads 128 MiB, not 1 GiB), or null where a header does not
 * parse (the caller then scans every byte).
 */
async function hop (pack: number, fh: FileHandle, from: number, to: number): Promise<NewBlock[] | null> {
  const out: NewBlock[] = []
  const buf = Buffer.alloc(WINDOW)
  let off = from
  if (off <= PACK_HEADER_LENGTH) {
    const { bytesRead } = await fh.read(buf, 0, PACK_HEADER_LENGTH, 0)
    checkPackHeader(buf.subarray(0, bytesRead), pack)
    off = PACK_HEADER_LENGTH
  }
  while (off < to) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(WINDOW, to - off), off)
    let p = 0
    // Every record whose header lies whole in this read; the next read starts at the first that does not.
    while (p < bytesRead && (p + MAX_RECORD_HEADER <= bytesRead || off + bytesRead === to)) {
      const rec = plausibleRecord(buf.subarray(p, bytesRead), to - off - p)
      if (rec == null) return null
      // A copy of the digest: the header's lies in `buf`, which the next read overwrites.
      out.push({ cid: CID.createV1(RAW, digestOf(rec.cid.multihash.code, Uint8Array.from(rec.cid.multihash.digest))), pack, offset: off + p + rec.headerLength, length: rec.length })
      p += rec.headerLength + rec.length
    }
    if (p === 0) return null
    off += p
  }
  return off === to ? out : null
}
