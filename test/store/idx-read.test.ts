// A lying index file (every checksum valid, offsets wrong) through the whole read path of a
// drive (the tree, the native run reader where built): EIO-class errors, never wrong bytes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Drive } from '../../src/drive/drive.js'
import type { FileNode } from '../../src/fs/tree/nodes.js'
import { BucketCache, EntryList, IdxFile, encodeIndex } from '../../src/store/pack-idx.js'
import { threeCommits } from '../drive/helpers.js'

test('a drive over an index whose entries point at other records refuses the reads, and serves again once the index is rebuilt', async () => {
  const s = await threeCommits()
  try {
    const p = join(s.dir, 'packs', '00000001.idx')
    const f = await IdxFile.open(p, 1, new BucketCache())
    const list = await f.entries()
    const meta = f.meta
    await f.close()
    // Swap the locations of the largest records pairwise (the 128 KiB blocks of /a's versions).
    const big = Array.from({ length: list.count }, (_, i) => i).filter(i => list.at(i).length > 100_000)
    assert.ok(big.length >= 2)
    const lying = new EntryList()
    for (let i = 0; i < list.count; i++) {
      const e = list.at(i)
      const k = big.indexOf(i)
      const o = k < 0 ? e : list.at(big[(k + 1) % big.length])
      lying.push(e.digest, e.code, o.offset, o.length)
    }
    writeFileSync(p, encodeIndex(meta, lying))
    let drive = await Drive.open(s.dir, s.key)
    try {
      const a = await drive.tree.lookup('/a') as FileNode
      const out = Buffer.alloc(a.size)
      await assert.rejects(drive.tree.read(a, out, a.size, 0), (e: Error & { code?: string }) => /CID|integrity|match/i.test(`${e.code} ${e.message}`))
    } finally { await drive.close().catch(() => {}) }
    rmSync(p)
    drive = await Drive.open(s.dir, s.key)
    try {
      const a = await drive.tree.lookup('/a') as FileNode
      const out = Buffer.alloc(a.size)
      await drive.tree.read(a, out, a.size, 0)
      assert.equal(out.toString(), s.versions[2])
    } finally { await drive.close() }
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})
