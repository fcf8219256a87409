// Appends to a pack file with O_DIRECT: the data goes from one page-aligned staging buffer to the
// disk, without being copied into the page cache and written back later. Copying 1 GiB into the
// page cache cost 0.7-0.9 s of CPU on this 2-core machine kind, and the commit's fdatasync then
// waited for the whole backlog; a memcpy into a hot staging buffer costs a tenth of that.
//
// O_DIRECT wants page-aligned memory, offsets and lengths. The staging buffer is WebAssembly
// memory (page-aligned by construction); an append starts at the page holding the file's logical
// end, rewriting the bytes already there (kept from the last append), and ends on a page
// boundary, so the file may run up to a page past its logical end, in zeros. The owner cuts it
// back (ftruncate) before the end becomes final: on switching packs and on close; an open cuts
// every pack back to the last commit's watermark anyway.
import { promises as fsp, constants as FS } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { copyBytes } from '../crypto/copy.js'

const PAGE = 4096
const WASM_PAGE = 65536
const STAGE_BYTES = 4 * 1024 * 1024 + WASM_PAGE

export class DirectAppender {
  private readonly stage: Buffer
  /** stage[0, tailLen) holds the file's bytes [tailOff, tailOff + tailLen); -1: unknown. */
  private tailOff = -1
  private tailLen = 0

  private constructor (private readonly fh: FileHandle, private readonly reader: FileHandle) {
    this.stage = Buffer.from(new WebAssembly.Memory({ initial: STAGE_BYTES / WASM_PAGE }).buffer)
  }

  /** Null where the file system refuses O_DIRECT (tmpfs, some FUSE and network mounts). */
  static async open (path: string, reader: FileHandle): Promise<DirectAppender | null> {
    try {
      return new DirectAppender(await fsp.open(path, FS.O_WRONLY | FS.O_DIRECT), reader)
    } catch {
      return null
    }
  }

  /** Most bytes one append takes. */
  get capacity (): number { return STAGE_BYTES - 2 * PAGE }

  /** Forgets the kept tail, after the file was written some other way. */
  invalidate (): void { this.tailOff = -1 }

  /**
   * Writes `parts` (at most `capacity` bytes together) at `off`, the file's logical end. Throws
   * the write's error (EINVAL where the kernel refuses the alignment after all, ENOSPC...).
   */
  async append (off: number, parts: Buffer[]): Promise<void> {
    const base = off - off % PAGE
    const lead = off - base
    try {
      if (this.tailOff !== base || this.tailLen !== lead) {
        const { bytesRead } = await this.reader.read(this.stage, 0, lead, base)
        if (bytesRead !== lead) throw new Error(`short read of the pack tail (${bytesRead} of ${lead} bytes)`)
      }
      let p = lead
      for (const b of parts) p += copyBytes(this.stage, p, b) // bodies may lie in shared slots
      const len = Math.ceil(p / PAGE) * PAGE
      this.stage.fill(0, p, len)
      let done = 0
      while (done < len) {
        const { bytesWritten } = await this.fh.write(this.stage, done, len - done, base + done)
        if (bytesWritten <= 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
        done += bytesWritten
      }
      const end = base + p
      const t = end - end % PAGE
      this.stage.copyWithin(0, t - base, p)
      this.tailOff = t
      this.tailLen = end - t
    } catch (err) {
      this.tailOff = -1
      throw err
    }
  }

  async close (): Promise<void> { await this.fh.close().catch(() => {}) }
}
