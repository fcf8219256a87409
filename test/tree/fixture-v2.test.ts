// The frozen format 2 store in test/fixtures/v2 (made by make-v2.mjs from a copy of the v1
// fixture) must keep opening, byte for byte, in every later version: v1 and v2 objects in one
// store, whole v2 blocks, blocks with patches (over a v2 block, over a v1 block, over a hole).
// And a format 1 store becomes format 2 when a drive opens it; an unknown format is refused.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Drive } from '../../src/daemon.js'
import { FileNode } from '../../src/fs/tree/nodes.js'
import { isPatched } from '../../src/fs/tree/block-ref.js'
import { ROOT } from '../helpers/mount.js'

const FIXTURES = join(ROOT, 'test/fixtures')
const B = 131072
const pattern = (n: number, seed: number): Buffer => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * seed + (i >> 12)) & 0xff; return b }

async function withCopy (name: string, fn: (dir: string, key: Buffer) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'space-fixture-'))
  try {
    cpSync(join(FIXTURES, name, 'data'), join(dir, 'data'), { recursive: true })
    await fn(join(dir, 'data'), readFileSync(join(FIXTURES, name, 'master.key')))
  } finally { rmSync(dir, { recursive: true, force: true }) }
}

async function readAll (drive: Drive, path: string): Promise<Buffer> {
  const f = await drive.tree.lookup(path) as FileNode
  const out = Buffer.alloc(f.size)
  assert.equal(await drive.tree.read(f, out, f.size, 0), f.size)
  return out
}

function sameBytes (got: Buffer, want: Buffer, what: string): void {
  if (got.equals(want)) return
  let i = 0
  while (got[i] === want[i]) i++
  assert.fail(`${what}: byte ${i} differs`)
}

test('format 2 fixture opens and reads exactly: whole v2 blocks, patches over v2 and v1 blocks and over a hole, v1 objects beside them', async () => {
  await withCopy('v2', async (dir, key) => {
    assert.equal(JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8')).format, 2)
    const drive = await Drive.open(dir, key, { create: false })
    try {
      const t = drive.tree
      assert.deepEqual((await t.readdir('/')).map(([n]) => n).sort(), ['big.bin', 'db.bin', 'docs', 'link', 'many', 'sparse'])
      // v1 objects, untouched since v1 wrote them.
      assert.equal((await readAll(drive, '/docs/readme.txt')).toString(), 'Space fixture v1\n')
      assert.equal((await readAll(drive, '/many/f17')).toString(), 'file 17\n')
      assert.equal(await t.readlink('/link'), 'docs/readme.txt')
      // Whole v2 blocks with patches: block 3 has two, the later over part of the earlier.
      const db = pattern(6 * B, 13)
      db.fill(0xa3, 3 * B + 5 * 4096, 3 * B + 6 * 4096)
      db.fill(0xa2, 3 * B + 6 * 4096, 3 * B + 7 * 4096)
      db.fill(0xa4, 5 * B + 31 * 4096, 6 * B)
      const dbNode = await t.lookup('/db.bin') as FileNode
      const b3 = dbNode.blocks!.get(3)!
      assert.ok(isPatched(b3) && b3.base != null && b3.patches.length === 2, 'block 3: a base and two patches')
      assert.ok(!isPatched(dbNode.blocks!.get(0)!), 'block 0: whole')
      sameBytes(await readAll(drive, '/db.bin'), db, 'db.bin')
      // Part of a patched block, across a patch edge.
      const part = Buffer.alloc(3 * 4096)
      await t.read(dbNode, part, part.length, 3 * B + 4 * 4096 + 100)
      sameBytes(part, db.subarray(3 * B + 4 * 4096 + 100, 3 * B + 7 * 4096 + 100), 'db.bin part')
      // A v2 patch over a v1 block.
      const big = Buffer.alloc(300 * 1024)
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff
      big.fill(0xb1, 2 * 4096, 3 * 4096)
      sameBytes(await readAll(drive, '/big.bin'), big, 'big.bin')
      // A patch over a hole.
      const sparseNode = await t.lookup('/sparse') as FileNode
      const hole = sparseNode.blocks!.get(40)!
      assert.ok(isPatched(hole) && hole.base == null)
      const sparse = Buffer.alloc(10 * 1024 * 1024)
      sparse.fill(0xc1, 40 * B + 7 * 4096, 40 * B + 8 * 4096)
      sparse.write('end', sparse.length - 3)
      sameBytes(await readAll(drive, '/sparse'), sparse, 'sparse')
      assert.deepEqual(drive.log().map(e => e.seq), [1, 2, 3, 4, 5, 6])
    } finally { await drive.close() }
  })
})

test('a format 1 store is marked format 2 when a drive opens it, and still reads', async () => {
  await withCopy('v1', async (dir, key) => {
    assert.equal(JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8')).format, 1)
    const drive = await Drive.open(dir, key, { create: false })
    try {
      assert.equal(JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8')).format, 2)
      assert.equal((await readAll(drive, '/docs/readme.txt')).toString(), 'Space fixture v1\n')
    } finally { await drive.close() }
  })
})

test('a store of a format this build does not know is refused, unchanged', async () => {
  await withCopy('v2', async (dir, key) => {
    const meta = JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8'))
    writeFileSync(join(dir, 'store.json'), JSON.stringify({ ...meta, format: 3 }))
    await assert.rejects(Drive.open(dir, key, { create: false }), { code: 'ERR_STORE_CORRUPT', message: /unknown store format 3/ })
    assert.equal(JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8')).format, 3)
  })
})
