// Builds a store too large to write through FUSE in a test, in the real format and quickly: N
// content blocks sealed under real file keys at their real positions (random plaintext lengths,
// so random sealed sizes), appended through the real PackStore (real CIDs, real pack and index
// files), files of `perFile` blocks each (block maps), one directory /gen holding them, the root,
// store.json and a journal with one commit naming it all. Used by scripts/gen-store.mjs and by
// the scale test. Block i of file j holds (j, i) in its first 8 bytes, then the byte (j + i) & 0xff.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { PackStore } from '../../src/store/pack-store.js'
import { Journal } from '../../src/store/journal.js'
import { seal, randomId, randomKey } from '../../src/crypto/index.js'
import { CommitLog } from '../../src/fs/tree/commit-log.js'
import { FileNode, DirNode } from '../../src/fs/tree/nodes.js'
import { entryOf, sealDirNode, blockPosition } from '../../src/fs/tree/codec.js'
import { BLOCK_SIZE, FORMAT_VERSION, type EntryRecord, type Attrs } from '../../src/fs/tree/format.js'
import { readMeta } from '../../src/drive/store-meta.js'

export interface GenOptions {
  /** The data directory to create (must not hold a store). */
  dir: string
  masterKey: Buffer
  blocks: number
  /** Blocks per file (default 1000). */
  perFile?: number
  /** Plaintext lengths are 1 .. maxPlain bytes (default 1024). */
  maxPlain?: number
  packLimit?: number
  seed?: number
  progress?: (blocksDone: number) => void
}

export interface GenResult { blocks: number, files: number, packs: number, bytes: number, seconds: number, perFile: number }

/** Plaintext of block `i` of file `j`, `len` bytes. */
export function genPlain (j: number, i: number, len: number): Buffer {
  const b = Buffer.alloc(len, (j + i) & 0xff)
  if (len >= 8) { b.writeUInt32BE(j, 0); b.writeUInt32BE(i, 4) }
  return b
}

export const genName = (j: number): string => `f${String(j).padStart(7, '0')}`

export async function genStore (o: GenOptions): Promise<GenResult> {
  const t0 = performance.now()
  const perFile = o.perFile ?? 1000
  const maxPlain = o.maxPlain ?? 1024
  let rnd = (o.seed ?? 1) >>> 0 || 1
  const next = (): number => { rnd ^= rnd << 13; rnd >>>= 0; rnd ^= rnd >>> 17; rnd ^= rnd << 5; rnd >>>= 0; return rnd }
  await mkdir(o.dir, { recursive: true, mode: 0o700 })
  const meta = await readMeta(o.dir, true, o.masterKey)
  const store = await PackStore.open(join(o.dir, 'packs'), null, { packLimit: o.packLimit })
  const now = Date.now()
  const attrs = (mode: number): Attrs => ({ mode, uid: 0, gid: 0, atime: now, mtime: now, ctime: now })
  const entries: EntryRecord[] = []
  let done = 0
  let files = 0
  try {
    for (let j = 0; done < o.blocks; j++) {
      const f = new FileNode(attrs(0o644), randomId(), randomKey())
      f.name = genName(j)
      const n = Math.min(perFile, o.blocks - done)
      let last = 0
      for (let i = 0; i < n; i++) {
        last = 1 + next() % maxPlain
        f.blocks!.set(i, store.put(seal(f.key, blockPosition(f, i), genPlain(j, i, last))))
      }
      f.size = (n - 1) * BLOCK_SIZE + last
      entries.push(entryOf(f, store) as EntryRecord)
      done += n
      files++
      if (store.backlog > 32 * 1024 * 1024) await store.flush()
      if (files % 100 === 0) { await store.sync(); o.progress?.(done) }
    }
    const gen = new DirNode(attrs(0o755), randomId(), randomKey())
    gen.name = 'gen'
    gen.cid = store.put(sealDirNode(gen, entries))
    const root = new DirNode(attrs(0o755), randomId(), randomKey())
    root.cid = store.put(sealDirNode(root, [entryOf(gen, store)]))
    const rootEntry = entryOf(root, store, '') as EntryRecord
    const wm = await store.sync()
    const bytes = store.size
    await store.close()
    const { journal } = await Journal.open(join(o.dir, 'journal'))
    try {
      await new CommitLog(o.masterKey, Buffer.from(meta.id, 'hex'), journal).append({ v: FORMAT_VERSION, seq: 1, time: now, root: rootEntry, pack: [wm.pack, wm.offset] })
    } finally { await journal.close() }
    return { blocks: done, files, packs: wm.pack, bytes, seconds: (performance.now() - t0) / 1000, perFile }
  } catch (err) {
    await store.close().catch(() => {})
    throw err
  }
}
