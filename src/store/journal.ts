// Append-only record file with torn-tail recovery: each record is framed as
//   length u32 BE | crc32 u32 BE (of the payload) | payload
// `open` returns every complete record and cuts off a torn tail: the last frame, short or bad,
// with no valid frame after it (a crash mid-append). A bad frame with a valid frame anywhere
// after it is damage, not a crash: `open` then refuses (ERR_JOURNAL_DAMAGED) and changes
// nothing. Payloads are opaque (the tree stores sealed commit records here).
import { promises as fsp, constants as FS } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import { StoreError, ioError } from './errors.js'

export const FRAME = 8
const MAX_RECORD = 16 * 1024 * 1024

/** One frame with a matching CRC, where it lies in the file. */
export interface JournalFrame { offset: number, payload: Buffer }

/** What a byte-level look at a journal finds. */
export interface JournalScan {
  /** Valid frames from the start up to the first bad one. */
  records: Buffer[]
  /** End of the last of those frames: where a cut would go. */
  end: number
  /** The first bad frame's offset and why, when there is one. */
  bad: { offset: number, reason: string } | null
  /** Valid frames found after the bad one (empty: a torn tail). */
  after: JournalFrame[]
}

/** A journal whose damage is not a torn tail: opening it would lose committed records. */
export class JournalDamaged extends StoreError {
  constructor (readonly path: string, readonly scan: JournalScan) {
    super('ERR_JOURNAL_DAMAGED', `the commit journal ${path} is damaged at byte ${scan.bad!.offset} (${scan.bad!.reason}) with ${scan.after.length} valid record(s) after it`)
    this.name = 'JournalDamaged'
  }
}

export class Journal {
  private constructor (private readonly fh: FileHandle, private size: number, readonly path: string) {}

  /**
   * Opens (or creates) a journal. A torn tail is handed to `onCut` (to keep it somewhere)
   * before it is cut; damage elsewhere throws JournalDamaged and writes nothing.
   */
  static async open (path: string, opts: { onCut?: (tail: Buffer, at: number) => Promise<void>, end?: number } = {}): Promise<{ journal: Journal, records: Buffer[], cutBytes: number }> {
    const fh = await fsp.open(path, FS.O_RDWR | FS.O_CREAT, 0o600)
    try {
      const data = await fh.readFile()
      const scan = Journal.scan(data)
      if (scan.after.length > 0) throw new JournalDamaged(path, scan)
      // `end`: the caller sets valid records aside too (a head commit that was never acknowledged).
      let end = scan.end
      let records = scan.records
      if (opts.end != null && opts.end < end) {
        let at = 0
        let n = 0
        while (at < opts.end) at += FRAME + records[n++].length
        if (at !== opts.end) throw new StoreError('ERR_STORE_CORRUPT', `journal cut at ${opts.end} is not a frame boundary`)
        end = at
        records = records.slice(0, n)
      }
      const cutBytes = data.length - end
      if (cutBytes > 0) {
        await opts.onCut?.(data.subarray(end), end)
        await fh.truncate(end)
        await fh.datasync()
      }
      return { journal: new Journal(fh, end, path), records, cutBytes }
    } catch (err) {
      await fh.close().catch(() => {})
      throw err
    }
  }

  /**
   * Complete records of a journal another process may be appending to; changes nothing. A
   * torn tail is left out; damage before the tail throws JournalDamaged.
   */
  static async read (path: string): Promise<Buffer[]> {
    const scan = Journal.scan(await fsp.readFile(path))
    if (scan.after.length > 0) throw new JournalDamaged(path, scan)
    return scan.records
  }

  /** Reads frames up to the first bad one, then looks for valid frames anywhere after it. */
  static scan (data: Buffer): JournalScan {
    const records: Buffer[] = []
    let off = 0
    let bad: JournalScan['bad'] = null
    while (off < data.length) {
      const why = frameProblem(data, off)
      if (why !== null) { bad = { offset: off, reason: why }; break }
      const len = data.readUInt32BE(off)
      records.push(Buffer.from(data.subarray(off + FRAME, off + FRAME + len)))
      off += FRAME + len
    }
    return { records, end: off, bad, after: bad === null ? [] : Journal.framesFrom(data, bad.offset) }
  }

  /**
   * Every valid frame after a bad one at `from`. The bad frame's own length is tried first (a
   * flipped bit in a payload or CRC leaves it intact), then every later offset, so a damaged
   * length field is stepped over too; from each frame found, the chain is followed.
   */
  static framesFrom (data: Buffer, from: number): JournalFrame[] {
    const found: JournalFrame[] = []
    let off = -1
    if (from + FRAME <= data.length) {
      const skip = from + FRAME + data.readUInt32BE(from)
      if (skip < data.length && frameProblem(data, skip) === null) off = skip
    }
    for (let p = from + 1; off < 0 && p + FRAME < data.length; p++) {
      if (frameProblem(data, p) === null) off = p
    }
    while (off >= 0 && off < data.length) {
      if (frameProblem(data, off) !== null) {
        // Another bad frame: look for the next valid one after it.
        let next = -1
        for (let p = off + 1; next < 0 && p + FRAME < data.length; p++) if (frameProblem(data, p) === null) next = p
        off = next
        continue
      }
      const len = data.readUInt32BE(off)
      found.push({ offset: off, payload: Buffer.from(data.subarray(off + FRAME, off + FRAME + len)) })
      off += FRAME + len
    }
    return found
  }

  /** Appends one record and makes it durable before resolving. */
  async append (payload: Uint8Array): Promise<void> {
    const f = frame(payload)
    try {
      const { bytesWritten } = await this.fh.write(f, 0, f.length, this.size)
      if (bytesWritten !== f.length) throw Object.assign(new Error('short write'), { code: 'ENOSPC' })
      await this.fh.datasync()
    } catch (err) {
      await this.fh.truncate(this.size).catch(() => {})
      throw ioError(err, 'writing the commit journal')
    }
    this.size += f.length
  }

  async close (): Promise<void> { await this.fh.close() }
}

/** Frames a payload as the journal stores it (append, and a journal rewritten whole by repair). */
export function frame (payload: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(FRAME + payload.length)
  f.writeUInt32BE(payload.length, 0)
  f.writeUInt32BE(crc32(payload), 4)
  f.set(payload, FRAME)
  return f
}

/**
 * Why no valid frame starts at `off`, or null. An empty payload never counts: a run of zeros
 * (length 0, CRC 0) would otherwise pass for a chain of valid frames.
 */
function frameProblem (data: Buffer, off: number): string | null {
  if (off + FRAME > data.length) return 'short frame header'
  const len = data.readUInt32BE(off)
  if (len === 0) return 'empty frame'
  if (len > MAX_RECORD) return `length ${len} exceeds ${MAX_RECORD}`
  if (off + FRAME + len > data.length) return 'frame runs past the end'
  if (crc32(data.subarray(off + FRAME, off + FRAME + len)) !== data.readUInt32BE(off + 4)) return 'CRC mismatch'
  return null
}
