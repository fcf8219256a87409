// The frozen store in test/fixtures/v2-tree (made by make-v2-tree.mjs from a copy of the v2
// fixture) must keep opening, byte for byte, in every later version: a flat block map with
// patches (written by a format 2 build from before the tree) beside block map trees of height 1
// and 2, one of them partly resealed by a later commit; fsck finds every node and block whole.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync, openSync, readSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Drive } from '../../src/daemon.js'
import { inspect } from '../../src/drive/fsck.js'
import { FileNode } from '../../src/fs/tree/nodes.js'
import { ROOT } from '../helpers/mount.js'
import { scanPacks } from '../../src/drive/pack-scan.js'
import { packName } from '../../src/drive/quarantine.js'
import { nodeIndex } from '../../src/fs/tree/block-map.js'

const B = 131072
const page = (n: number, p: number): Buffer => { const b = Buffer.alloc(4096); for (let i = 0; i < 4096; i++) b[i] = (n * 31 + p * 7 + i) & 0xff; return b }

test('the v2-tree fixture opens and reads exactly: a flat block map, trees of height 1 and 2, and fsck finds it clean', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-fixture-'))
  try {
    cpSync(join(ROOT, 'test/fixtures/v2-tree/data'), join(dir, 'data'), { recursive: true })
    const key = readFileSync(join(ROOT, 'test/fixtures/v2-tree/master.key'))
    const drive = await Drive.open(join(dir, 'data'), key, { create: false })
    try {
      const t = drive.tree
      const read = async (f: FileNode): Promise<Buffer> => { const out = Buffer.alloc(f.size); assert.equal(await t.read(f, out, f.size, 0), f.size); return out }
      const flat = await t.lookup('/flat.bin') as FileNode
      const want = Buffer.alloc(40 * B)
      for (let i = 0; i < 40; i++) page(1, i).copy(want, i * B + (i % 32) * 4096)
      page(2, 3).copy(want, 3 * B + 20 * 4096)
      assert.ok((await read(flat)).equals(want), 'flat.bin')
      assert.equal(flat.mapTree, null, 'flat.bin has a flat block map')

      const mid = await t.lookup('/mid.bin') as FileNode
      want.fill(0)
      for (let i = 0; i < 40; i++) page(3, i).copy(want, i * B + ((i * 5) % 32) * 4096)
      assert.ok((await read(mid)).equals(want), 'mid.bin')
      assert.equal(mid.mapTree!.height, 1)
      assert.equal(mid.mapTree!.nodes.size, 3, 'three leaves')

      const tree = await t.lookup('/tree.bin') as FileNode
      const big = await read(tree)
      const wantBig = Buffer.alloc(2048 * B)
      for (let i = 0; i < 2048; i += 32) page(4, i).copy(wantBig, i * B + 4096)
      page(5, 1000).copy(wantBig, 1000 * B)
      page(5, 1984).copy(wantBig, 1984 * B + 4096)
      assert.ok(big.equals(wantBig), 'tree.bin')
      assert.equal(tree.mapTree!.height, 2)
      assert.equal(tree.blocks!.size, 65)
    } finally { await drive.close() }
    const { report, checker } = await inspect(join(dir, 'data'), key)
    await checker.close()
    assert.deepEqual(report.problems, [])
    assert.ok(report.clean)
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('fsck walks a block map tree: a damaged leaf is named, with the file, and the other files stay clean', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-fixture-'))
  try {
    cpSync(join(ROOT, 'test/fixtures/v2-tree/data'), join(dir, 'data'), { recursive: true })
    const key = readFileSync(join(ROOT, 'test/fixtures/v2-tree/master.key'))
    const drive = await Drive.open(join(dir, 'data'), key, { create: false })
    let leaf: string
    try {
      const tree = await drive.tree.lookup('/tree.bin') as FileNode
      await drive.tree.statLoaded(tree)
      leaf = tree.mapTree!.nodes.get(nodeIndex(0, 62))!.toString() // blocks 992..1007: holds block 1000
    } finally { await drive.close() }
    const loc = (await scanPacks(join(dir, 'data', 'packs'))).index.get(leaf)!
    const fd = openSync(join(dir, 'data', 'packs', packName(loc.pack)), 'r+')
    const b = Buffer.alloc(1)
    readSync(fd, b, 0, 1, loc.offset + 40)
    b[0] ^= 0x10
    writeSync(fd, b, 0, 1, loc.offset + 40)
    closeSync(fd)
    const { report, checker } = await inspect(join(dir, 'data'), key)
    await checker.close()
    assert.equal(report.clean, false)
    assert.equal(report.problems.length, 1, report.problems.join('\n'))
    assert.match(report.problems[0], /tree\.bin \(block map\)/)
    assert.match(report.problems[0], new RegExp(leaf))
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
