// The frozen store in test/fixtures/v2-nonce (made by make-v2-nonce.mjs from a copy of the
// v2-tree fixture) must keep opening, byte for byte, in every later version: block map leaves of
// version 4, whose entries state each object's nonce (whole blocks, patches over holes and over a
// base, a short last block without one), beside trees of version 2 leaves, one tree holding
// both; a process that opens it reads segments of the stated objects alone; fsck finds it clean.
import type { CID } from 'multiformats/cid'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Drive } from '../../src/daemon.js'
import { inspect } from '../../src/drive/fsck.js'
import type { FileNode } from '../../src/fs/tree/nodes.js'
import type { BlockStore } from '../../src/fs/tree/tree.js'
import { type BlockRef, type PatchedBlock, statedOf } from '../../src/fs/tree/block-ref.js'
import { ROOT } from '../helpers/mount.js'

const B = 131072
const page = (n: number, p: number): Buffer => { const b = Buffer.alloc(4096); for (let i = 0; i < 4096; i++) b[i] = (n * 31 + p * 7 + i) & 0xff; return b }
const block = (n: number): Buffer => { const b = Buffer.alloc(B); for (let i = 0; i < B; i++) b[i] = (n * 13 + (i >> 7) * 3 + i) & 0xff; return b }

function nonceBin (): Buffer {
  const want = Buffer.alloc(40 * B + 1000)
  for (const i of [2, 17, 30]) block(i).copy(want, i * B)
  for (let i = 0; i < 40; i++) if (i !== 2 && i !== 17 && i !== 30 && i !== 33) page(6, i).copy(want, i * B + ((i * 9) % 32) * 4096)
  page(6, 33).copy(want, 33 * B + 30 * 4096)
  page(7, 33).copy(want, 33 * B + 31 * 4096)
  want.fill(0x5a, 40 * B)
  page(8, 17).copy(want, 17 * B + 3 * 4096)
  return want
}

async function withFixture (run: (dir: string, key: Buffer) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'space-fixture-'))
  try {
    cpSync(join(ROOT, 'test/fixtures/v2-nonce/data'), join(dir, 'data'), { recursive: true })
    await run(join(dir, 'data'), readFileSync(join(ROOT, 'test/fixtures/v2-nonce/master.key')))
  } finally { rmSync(dir, { recursive: true, force: true }) }
}

test('the v2-nonce fixture opens and reads exactly: leaves that state nonces beside leaves that do not, and fsck finds it clean', async () => {
  await withFixture(async (data, key) => {
    const drive = await Drive.open(data, key, { create: false })
    try {
      const t = drive.tree
      const read = async (f: FileNode): Promise<Buffer> => { const out = Buffer.alloc(f.size); assert.equal(await t.read(f, out, f.size, 0), f.size); return out }
      const f = await t.lookup('/nonce.bin') as FileNode
      const blocks = await t.blocksOf(f) as Map<number, BlockRef>
      for (const i of [2, 30]) assert.ok(statedOf(blocks.get(i) as CID) != null, `whole block ${i}: its nonce is recorded`)
      const b17 = blocks.get(17) as PatchedBlock
      assert.ok(statedOf(b17.base!) != null && statedOf(b17.patches[0].cid) != null, 'a base and its patch')
      assert.equal((blocks.get(33) as PatchedBlock).base, null)
      assert.ok(statedOf((blocks.get(33) as PatchedBlock).patches[0].cid) != null, 'a patch of two segments over a hole')
      assert.equal(statedOf(blocks.get(40) as CID), undefined, 'the short last block: no nonce recorded')
      assert.ok((await read(f)).equals(nonceBin()), 'nonce.bin')

      const tree = await t.lookup('/tree.bin') as FileNode
      const tb = await t.blocksOf(tree) as Map<number, BlockRef>
      assert.ok(statedOf((tb.get(1500) as PatchedBlock).patches[0].cid) != null, 'the block written by this build: its leaf is version 4')
      assert.equal(statedOf((tb.get(1504) as PatchedBlock).patches[0].cid), undefined, 'a block of a version 2 leaf')
      const wantBig = Buffer.alloc(2048 * B)
      for (let i = 0; i < 2048; i += 32) page(4, i).copy(wantBig, i * B + 4096)
      page(5, 1000).copy(wantBig, 1000 * B)
      page(5, 1984).copy(wantBig, 1984 * B + 4096)
      page(9, 1500).copy(wantBig, 1500 * B + 2 * 4096)
      assert.ok((await read(tree)).equals(wantBig), 'tree.bin')
      assert.equal(tree.mapTree!.height, 2)
    } finally { await drive.close() }
    const { report, checker } = await inspect(data, key)
    await checker.close()
    assert.deepEqual(report.problems, [])
    assert.ok(report.clean)
  })
})

test('a process that opens the v2-nonce fixture reads a page of each stated object by its segment, with no whole-record get', async () => {
  await withFixture(async (data, key) => {
    let gets = 0
    const locates: boolean[] = []
    const wrapStore = (s: BlockStore): BlockStore => {
      const get = s.get.bind(s)
      const locate = s.locate!.bind(s)
      return Object.assign(Object.create(s) as BlockStore, {
        get: async (cid: CID, scratch?: Buffer) => { gets++; return await get(cid, scratch) },
        locate: (cid: CID, buffered?: boolean) => { locates.push(buffered === true); return locate(cid, buffered) }
      })
    }
    const drive = await Drive.open(data, key, { create: false, wrapStore })
    try {
      const t = drive.tree
      const f = await t.lookup('/nonce.bin') as FileNode
      await t.blocksOf(f)
      gets = 0
      locates.length = 0
      const want = nonceBin()
      const out = Buffer.alloc(4096)
      for (const at of [2 * B + 5 * 4096, 17 * B + 3 * 4096, 17 * B + 4 * 4096, 30 * B + 31 * 4096, 5 * B + 13 * 4096, 39 * B + 31 * 4096, 33 * B + 31 * 4096]) {
        await t.read(f, out, 4096, at)
        assert.ok(out.equals(want.subarray(at, at + 4096)), `page at ${at}`)
      }
      assert.equal(gets, 0, 'no object read whole and hashed by the store')
      assert.ok(locates.length >= 6 && locates.every(b => b), 'every object read by its segments under its stated nonce (a buffered locate), none read whole by the native reader')
    } finally { await drive.close() }
  })
})
