// The quarantine: `<data>/quarantine/<time>/` keeps every byte that recovery or repair takes
// out of the store (journal records, pack tails, whole packs) instead of deleting it, so a
// wrong guess about what is damaged can still be undone by hand.
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { syncDir } from './store-meta.js'

export interface Watermark { pack: number, offset: number }

export const QUARANTINE_DIR = 'quarantine'

/** A fresh quarantine directory for one recovery. */
export async function newQuarantine (dataDir: string): Promise<string> {
  const root = join(dataDir, QUARANTINE_DIR)
  await fsp.mkdir(root, { recursive: true, mode: 0o700 })
  const name = new Date().toISOString().replace(/[:.]/g, '-') + '-' + randomBytes(2).toString('hex')
  const dir = join(root, name)
  await fsp.mkdir(dir, { mode: 0o700 })
  return dir
}

export const packName = (id: number): string => `${String(id).padStart(8, '0')}.pack`

export async function packIds (packsDir: string): Promise<number[]> {
  const names = await fsp.readdir(packsDir).catch(err => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[]
    throw err
  })
  return names.filter(n => /^\d{8}\.pack$/.test(n)).map(n => parseInt(n, 10)).sort((a, b) => a - b)
}

/**
 * Keeps what lies past `wm` in `qdir`: later packs whole (a hard link, so the store may delete
 * its own name on open), the bytes of the watermark's pack past its offset as a copy (the store
 * cuts them on open). With no watermark, every pack. Nothing in `packsDir` changes, so a crash
 * before the journal that makes them droppable is in place loses nothing. Returns the bytes kept.
 */
export async function keepPackTail (packsDir: string, wm: Watermark | null, qdir: string): Promise<number> {
  let kept = 0
  const into = join(qdir, 'packs')
  for (const id of await packIds(packsDir)) {
    const path = join(packsDir, packName(id))
    if (wm == null || id > wm.pack) {
      await fsp.mkdir(into, { recursive: true, mode: 0o700 })
      kept += (await fsp.stat(path)).size
      await fsp.link(path, join(into, packName(id))).catch(async () => await fsp.copyFile(path, join(into, packName(id))))
      continue
    }
    if (id !== wm.pack) continue
    const size = (await fsp.stat(path)).size
    if (size <= wm.offset) continue
    await fsp.mkdir(into, { recursive: true, mode: 0o700 })
    const fh = await fsp.open(path, 'r')
    try {
      const buf = Buffer.alloc(size - wm.offset)
      await fh.read(buf, 0, buf.length, wm.offset)
      await fsp.writeFile(join(into, `${packName(id)}.from-${wm.offset}`), buf, { mode: 0o600, flush: true })
      kept += buf.length
    } finally { await fh.close() }
  }
  await syncDir(qdir)
  return kept
}

/** Whether any pack holds a record (more than its 9-byte header). */
export async function packsHoldRecords (packsDir: string): Promise<boolean> {
  for (const id of await packIds(packsDir)) {
    if ((await fsp.stat(join(packsDir, packName(id)))).size > 9) return true
  }
  return false
}
