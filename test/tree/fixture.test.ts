// The frozen v1 store in test/fixtures/v1 must keep opening, byte for byte, in every later version.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Drive } from '../../src/daemon.js'
import { FileNode, DirNode } from '../../src/fs/tree/nodes.js'
import { ROOT } from '../helpers/mount.js'

const FIXTURE = join(ROOT, 'test/fixtures/v1')

async function readAll (drive: Drive, f: FileNode): Promise<Buffer> {
  const out = Buffer.alloc(f.size)
  const n = await drive.tree.read(f, out, f.size, 0)
  assert.equal(n, f.size)
  return out
}

test('format v1 fixture opens with its tree, contents, modes, times, xattrs and history', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-fixture-'))
  try {
    cpSync(join(FIXTURE, 'data'), join(dir, 'data'), { recursive: true })
    const key = readFileSync(join(FIXTURE, 'master.key'))
    const drive = await Drive.open(join(dir, 'data'), key, { create: false })
    const t = drive.tree
    assert.deepEqual((await t.readdir('/')).map(([n]) => n).sort(), ['big.bin', 'docs', 'link', 'many', 'sparse'])

    const readme = await t.lookup('/docs/readme.txt') as FileNode
    assert.equal((await readAll(drive, readme)).toString(), 'Space fixture v1\n')
    assert.equal(readme.attrs.mode, 0o640)
    assert.equal(readme.attrs.mtime, 1700000000123)
    assert.equal((await t.getxattr('/docs/readme.txt', 'user.tag')).toString(), 'v1')
    assert.equal((await t.lookup('/docs') as DirNode).attrs.mode, 0o750)

    const big = await readAll(drive, await t.lookup('/big.bin') as FileNode)
    assert.equal(big.length, 300 * 1024)
    for (let i = 0; i < big.length; i++) if (big[i] !== ((i * 7 + (i >> 10)) & 0xff)) assert.fail(`big.bin byte ${i}`)

    const sparse = await t.lookup('/sparse') as FileNode
    assert.equal(sparse.size, 10 * 1024 * 1024)
    const tail = Buffer.alloc(3)
    await t.read(sparse, tail, 3, sparse.size - 3)
    assert.equal(tail.toString(), 'end')

    assert.equal(await t.readlink('/link'), 'docs/readme.txt')
    const many = await t.readdir('/many')
    assert.equal(many.length, 40)
    assert.equal((await readAll(drive, await t.lookup('/many/f17') as FileNode)).toString(), 'file 17\n')
    assert.deepEqual(drive.log().map(e => e.seq), [1, 2])
    await drive.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
