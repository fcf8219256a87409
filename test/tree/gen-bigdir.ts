// Builds a store holding one folder of N entries, too many to create through FUSE in a test, in
// the real format: N empty files (real ids and keys, real entries from codec.ts) in /big, sealed
// by dir-shards.ts as the tree seals a big folder (sharded past the threshold), through the real
// PackStore, with store.json and a journal whose one commit names it all. Used by
// scripts/gen-bigdir.mjs (the 1,000,000-entry rows of docs/performance.md "Scale").
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { PackStore } from '../../src/store/pack-store.js'
import { Journal } from '../../src/store/journal.js'
import { randomId, randomKey } from '../../src/crypto/index.js'
import { CommitLog } from '../../src/fs/tree/commit-log.js'
import { FileNode, DirNode } from '../../src/fs/tree/nodes.js'
import { entryOf, sealDirShard } from '../../src/fs/tree/codec.js'
import { sealAllRecords } from '../../src/fs/tree/dir-shards.js'
import { FORMAT_VERSION, type EntryRecord, type Attrs } from '../../src/fs/tree/format.js'
import { readMeta } from '../../src/drive/store-meta.js'

export interface BigDirOptions { dir: string, masterKey: Buffer, entries: number, progress?: (done: number) => void }
export interface BigDirResult { entries: number, shards: number, seconds: number }

export const bigName = (i: number): string => `file-${String(i).padStart(7, '0')}.txt`

export async function genBigDir (o: BigDirOptions): Promise<BigDirResult> {
  const t0 = performance.now()
  await mkdir(o.dir, { recursive: true, mode: 0o700 })
  const meta = await readMeta(o.dir, true, o.masterKey)
  const store = await PackStore.open(join(o.dir, 'packs'), null, {})
  const now = Date.now()
  const attrs = (mode: number): Attrs => ({ mode, uid: 0, gid: 0, atime: now, mtime: now, ctime: now })
  try {
    const records: EntryRecord[] = []
    for (let i = 0; i < o.entries; i++) {
      const f = new FileNode(attrs(0o644), randomId(), randomKey())
      records.push(entryOf(f, store, bigName(i)) as EntryRecord)
      if (i % 100_000 === 0) o.progress?.(i)
    }
    const big = new DirNode(attrs(0o755), randomId(), randomKey())
    big.name = 'big'
    let shards = 0
    big.cid = sealAllRecords(big.key, records, (index, body) => {
      shards++
      return store.put(sealDirShard(big, index, body))
    })
    const root = new DirNode(attrs(0o755), randomId(), randomKey())
    root.cid = sealAllRecords(root.key, [entryOf(big, store) as EntryRecord], (index, body) => store.put(sealDirShard(root, index, body)))
    const rootEntry = entryOf(root, store, '') as EntryRecord
    const wm = await store.sync()
    await store.close()
    const { journal } = await Journal.open(join(o.dir, 'journal'))
    try {
      await new CommitLog(o.masterKey, Buffer.from(meta.id, 'hex'), journal).append({ v: FORMAT_VERSION, seq: 1, time: now, root: rootEntry, pack: [wm.pack, wm.offset] })
    } finally { await journal.close() }
    return { entries: o.entries, shards, seconds: (performance.now() - t0) / 1000 }
  } catch (err) {
    await store.close().catch(() => {})
    throw err
  }
}
