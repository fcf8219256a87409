// Which blocks a commit added: the records of the store's packs between two watermarks (the
// previous commit's and this one's). Every block is appended before the commit that references
// it records its watermark, and a block already in the store is never appended twice, so the
// ranges of consecutive commits together hold every block any of them references: pushing each
// range before its entry is what "blocks first, entry after" needs, without walking trees.
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { create as digestOf } from 'multiformats/hashes/digest'
import { scanRecords } from '../store/block-index.js'
import type { Watermark } from '../store/types.js'

export interface NewBlock { cid: CID, pack: number, offset: number, length: number }

const RAW = 0x55
const packPath = (dir: string, id: number): string => join(dir, `${String(id).padStart(8, '0')}.pack`)

/**
 * The records that lie after `from` and up to `to` in the packs of `packsDir`, in pack order.
 * `from` null: from the start of the store.
 */
export async function blocksBetween (packsDir: string, from: Watermark | null, to: Watermark): Promise<NewBlock[]> {
  const out: NewBlock[] = []
  const first = from?.pack ?? 0
  for (let pack = first; pack <= to.pack; pack++) {
    let fh
    try {
      fh = await open(packPath(packsDir, pack), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && pack < to.pack) continue // numbers may skip
      throw err
    }
    try {
      const size = pack === to.pack ? to.offset : (await fh.stat()).size
      const start = from != null && pack === from.pack ? from.offset : 0
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
