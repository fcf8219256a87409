// Append-only record file with torn-tail recovery: each record is framed as
//   length u32 BE | crc32 u32 BE (of the payload) | payload
// `open` returns every complete record and cuts off a torn or corrupt tail. Payloads are opaque
// (the tree stores sealed commit records here).
import { promises as fsp, constants as FS } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import { ioError } from './errors.js'

const FRAME = 8
const MAX_RECORD = 16 * 1024 * 1024

export class Journal {
  private constructor (private readonly fh: FileHandle, private size: number, readonly path: string) {}

  static async open (path: string): Promise<{ journal: Journal, records: Buffer[], cutBytes: number }> {
    const fh = await fsp.open(path, FS.O_RDWR | FS.O_CREAT, 0o600)
    const data = await fh.readFile()
    const { records, end: off } = Journal.parse(data)
    const cutBytes = data.length - off
    if (cutBytes > 0) {
      await fh.truncate(off)
      await fh.datasync()
    }
    return { journal: new Journal(fh, off, path), records, cutBytes }
  }

  /** Complete records of a journal another process may be appending to; changes nothing. */
  static async read (path: string): Promise<Buffer[]> {
    return Journal.parse(await fsp.readFile(path)).records
  }

  private static parse (data: Buffer): { records: Buffer[], end: number } {
    const records: Buffer[] = []
    let off = 0
    while (off + FRAME <= data.length) {
      const len = data.readUInt32BE(off)
      const crc = data.readUInt32BE(off + 4)
      if (len > MAX_RECORD || off + FRAME + len > data.length) break
      const payload = data.subarray(off + FRAME, off + FRAME + len)
      if (crc32(payload) !== crc) break
      records.push(Buffer.from(payload))
      off += FRAME + len
    }
    return { records, end: off }
  }

  /** Appends one record and makes it durable before resolving. */
  async append (payload: Uint8Array): Promise<void> {
    const frame = Buffer.allocUnsafe(FRAME + payload.length)
    frame.writeUInt32BE(payload.length, 0)
    frame.writeUInt32BE(crc32(payload), 4)
    frame.set(payload, FRAME)
    try {
      const { bytesWritten } = await this.fh.write(frame, 0, frame.length, this.size)
      if (bytesWritten !== frame.length) throw Object.assign(new Error('short write'), { code: 'ENOSPC' })
      await this.fh.datasync()
    } catch (err) {
      await this.fh.truncate(this.size).catch(() => {})
      throw ioError(err, 'writing the commit journal')
    }
    this.size += frame.length
  }

  async close (): Promise<void> { await this.fh.close() }
}
