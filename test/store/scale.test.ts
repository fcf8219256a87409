// Scale: a store of SPACE_TEST_SCALE_BLOCKS generated blocks (gen-store.ts) opens from its index
// files in constant time, reading no record of any pack, and serves its files. Default 100,000:
// generating them takes 10-15 s here (sealing dominates), which keeps the test under 20 s.
// The 2,000,000-block numbers are measured with scripts/gen-store.mjs (docs/performance.md "Scale").
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Drive } from '../../src/drive/drive.js'
import type { FileNode } from '../../src/fs/tree/nodes.js'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'
import { genStore, genName, genPlain } from './gen-store.js'

const BLOCKS = Number(process.env.SPACE_TEST_SCALE_BLOCKS ?? 100_000)

test(`a generated store of ${BLOCKS} blocks opens in under a second without scanning a pack`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-scale-'))
  try {
    const key = randomBytes(32)
    // Packs of 16 MiB: several sealed packs and a current one, as a grown drive has.
    const gen = await genStore({ dir: join(dir, 'data'), masterKey: key, blocks: BLOCKS, perFile: 1000, packLimit: 16 * 1024 * 1024 })
    assert.equal(gen.blocks, BLOCKS)
    const lines: string[] = []
    const t0 = performance.now()
    const drive = await Drive.open(join(dir, 'data'), key, { create: false, log: l => lines.push(l) })
    const openMs = performance.now() - t0
    try {
      const stats = drive.store.indexStats
      assert.equal(stats.packs, gen.packs)
      assert.equal(stats.fromIndex, gen.packs, 'every pack opened from its index file')
      assert.equal(stats.scannedRecords, 0, 'no record of any pack read')
      assert.equal(stats.rebuilt, 0)
      assert.deepEqual(lines, [])
      assert.ok(openMs < 1000, `open took ${openMs.toFixed(0)} ms`)
      // The last file: its block map and blocks found through the index files, checked and opened.
      const j = gen.files - 1
      const f = await drive.tree.lookup(`/gen/${genName(j)}`) as FileNode
      const out = Buffer.alloc(f.size)
      assert.equal(await drive.tree.read(f, out, f.size, 0), f.size)
      const head = out.subarray(0, 8)
      assert.ok(head.equals(genPlain(j, 0, 8)) || head[0] === (j & 0xff), 'block 0 of the last file')
      assert.ok(out.subarray(BLOCK_SIZE, BLOCK_SIZE + 8).equals(genPlain(j, 1, 8)) || out[BLOCK_SIZE] === ((j + 1) & 0xff), 'block 1')
    } finally { await drive.close() }
    console.log(`# scale: ${BLOCKS} blocks in ${gen.packs} packs generated in ${gen.seconds.toFixed(1)} s, opened in ${openMs.toFixed(0)} ms`)
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
