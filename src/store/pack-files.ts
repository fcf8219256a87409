// The pack files of a store directory: their names (and their index files' names, pack-idx.ts),
// and opening, creating, cutting and closing them. A Pack is one open file and what the store knows of it; what is in it is record.ts's.
import { promises as fsp, constants as FS } from 'node:fs'
import { join } from 'node:path'
import type { FileHandle } from 'node:fs/promises'
import type { DirectAppender } from './direct-append.js'
import { ioError } from './errors.js'
import { encodePackHeader } from './record.js'

export interface Pack {
  id: number
  fh: FileHandle
  /** The logical end; with direct appends the file can run up to a page past it until cut. */
  size: number
  synced: boolean
  /** O_DIRECT appender (the writer's); undefined until first needed, null where refused. */
  direct?: DirectAppender | null
  /** O_DIRECT read-only handle for large records (PackStore.locate); null where refused. */
  directRead: FileHandle | null
}

export class PackFiles {
  readonly packs = new Map<number, Pack>()

  /** `directIo`: O_DIRECT is tried, for reads of new packs and for appends (cleared once refused). */
  constructor (readonly dir: string, public directIo: boolean) {}

  path (id: number): string { return join(this.dir, `${String(id).padStart(8, '0')}.pack`) }

  idxPath (id: number): string { return join(this.dir, `${String(id).padStart(8, '0')}.idx`) }

  /** Numbers of the packs in the directory, ascending. */
  async list (): Promise<number[]> {
    return (await fsp.readdir(this.dir)).filter(n => /^\d{8}\.pack$/.test(n)).map(n => parseInt(n, 10)).sort((a, b) => a - b)
  }

  /** Removes index files whose pack is gone (a repair or a crash's dropped packs), and unfinished ones. */
  async removeStrayIndexes (): Promise<void> {
    const names = await fsp.readdir(this.dir)
    const packs = new Set(names.filter(n => /^\d{8}\.pack$/.test(n)).map(n => parseInt(n, 10)))
    for (const n of names) {
      if (/^\d{8}\.idx\.tmp$/.test(n) || (/^\d{8}\.idx$/.test(n) && !packs.has(parseInt(n, 10)))) await fsp.rm(join(this.dir, n), { force: true })
    }
  }

  /** Removes a pack and its index file. */
  async remove (id: number): Promise<void> {
    await fsp.rm(this.path(id), { force: true })
    await fsp.rm(this.idxPath(id), { force: true })
  }

  /** Opens an existing pack; its size is the file's (the caller cuts it to a watermark). */
  async open (id: number): Promise<Pack> {
    const fh = await fsp.open(this.path(id), FS.O_RDWR)
    const pack: Pack = { id, fh, size: 0, synced: true, directRead: null }
    this.packs.set(id, pack) // from here closeAll() closes it if opening fails
    pack.size = (await fh.stat()).size
    pack.directRead = await this.openDirectRead(id)
    return pack
  }

  async create (id: number): Promise<Pack> {
    await fsp.rm(this.idxPath(id), { force: true }) // an index of an older pack of that number
    const fh = await fsp.open(this.path(id), FS.O_RDWR | FS.O_CREAT | FS.O_TRUNC, 0o600)
    const header = encodePackHeader()
    await fh.write(header, 0, header.length, 0)
    const pack: Pack = { id, fh, size: header.length, synced: false, directRead: await this.openDirectRead(id) }
    this.packs.set(id, pack)
    return pack
  }

  private async openDirectRead (id: number): Promise<FileHandle | null> {
    if (!this.directIo) return null
    return await fsp.open(this.path(id), FS.O_RDONLY | FS.O_DIRECT).catch(() => null)
  }

  /** Cuts a pack that had direct appends back to its logical end and closes the appender. */
  async finishDirect (pack: Pack): Promise<void> {
    if (pack.direct == null) return
    await pack.direct.close()
    pack.direct = undefined
    try { await pack.fh.truncate(pack.size) } catch (err) { throw ioError(err, `cutting pack ${pack.id}`) }
    pack.synced = false
  }

  /** Bytes used by pack files. */
  get size (): number {
    let n = 0
    for (const p of this.packs.values()) n += p.size
    return n
  }

  async closeAll (): Promise<void> {
    for (const p of this.packs.values()) {
      await p.fh.close().catch(() => {})
      await p.directRead?.close().catch(() => {})
    }
    this.packs.clear()
  }
}
