// The frozen store with pack index files (test/fixtures/idx1) opens from its index files alone,
// byte for byte as committed; the v1 store (no index files) gets them built on its first open.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Drive } from '../../src/daemon.js'
import type { FileNode } from '../../src/fs/tree/nodes.js'
import { BucketCache, IdxFile, encodeIndex } from '../../src/store/pack-idx.js'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'
import { genName, genPlain } from './gen-store.js'
import { ROOT } from '../helpers/mount.js'

function copyFixture (name: string): { dir: string, data: string, key: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'space-idx-fixture-'))
  cpSync(join(ROOT, 'test/fixtures', name, 'data'), join(dir, 'data'), { recursive: true })
  return { dir, data: join(dir, 'data'), key: readFileSync(join(ROOT, 'test/fixtures', name, 'master.key')) }
}

test('index fixture idx1 opens without reading a record of any pack, and serves every block', async () => {
  const { dir, data, key } = copyFixture('idx1')
  try {
    const packs = join(data, 'packs')
    // The format is frozen: re-encoding each file's own entries gives its committed bytes.
    for (const name of readdirSync(packs).filter(n => n.endsWith('.idx'))) {
      const id = parseInt(name, 10)
      const f = await IdxFile.open(join(packs, name), id, new BucketCache())
      const again = encodeIndex(f.meta, await f.entries())
      await f.close()
      assert.ok(again.equals(readFileSync(join(packs, name))), `${name} re-encodes to its own bytes`)
    }
    const lines: string[] = []
    const drive = await Drive.open(data, key, { create: false, log: l => lines.push(l) })
    try {
      assert.deepEqual(drive.store.indexStats, { packs: 3, fromIndex: 3, rebuilt: 0, scannedRecords: 0, scannedBytes: 0 })
      assert.deepEqual(lines, [])
      const names = (await drive.tree.readdir('/gen')).map(([n]) => n).sort()
      assert.deepEqual(names, [genName(0), genName(1), genName(2)])
      for (let j = 0; j < 3; j++) {
        const f = await drive.tree.lookup(`/gen/${genName(j)}`) as FileNode
        const out = Buffer.alloc(f.size)
        assert.equal(await drive.tree.read(f, out, f.size, 0), f.size)
        for (let i = 0; i < 100; i++) {
          // A block of 8 bytes or more starts with (j, i); a shorter one holds the fill byte.
          const head = out.subarray(i * BLOCK_SIZE, i * BLOCK_SIZE + 8)
          assert.ok(head.equals(genPlain(j, i, 8)) || head[0] === ((j + i) & 0xff), `file ${j} block ${i}`)
        }
      }
    } finally { await drive.close() }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('the v1 fixture (no index files) gets them built on its first open, and later opens read no pack', async () => {
  const { dir, data, key } = copyFixture('v1')
  try {
    const lines: string[] = []
    const first = await Drive.open(data, key, { create: false, log: l => lines.push(l) })
    assert.equal(first.store.indexStats.rebuilt, 1)
    assert.match(lines.join('\n'), /index: pack 1 rebuilt from its \d+ records \(missing\)/)
    await first.close()
    const again = await Drive.open(data, key, { create: false })
    try {
      assert.equal(again.store.indexStats.scannedRecords, 0)
      assert.equal(again.store.indexStats.rebuilt, 0)
      const f = await again.tree.lookup('/docs/readme.txt') as FileNode
      const out = Buffer.alloc(f.size)
      await again.tree.read(f, out, f.size, 0)
      assert.equal(out.toString(), 'Space fixture v1\n')
    } finally { await again.close() }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
