// The write path's allocations (file-blocks.ts): block buffers freed by a commit are reused by
// the next round of random writes up to the dirty budget's worth, a reused buffer never shows
// its previous content (holes read as zeros, old blocks as they were), and the free list is
// given back when the process goes quiet.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'
import { SEGMENT } from '../../src/crypto/index.js'
import type { FileNode } from '../../src/fs/tree/nodes.js'
import type { Tree } from '../../src/fs/tree/tree.js'
import { memoryTree } from '../helpers/memory-store.js'

const B = BLOCK_SIZE

const dirtyMemory = (f: FileNode): Set<ArrayBufferLike> => new Set([...f.dirty.values()].map(b => b.buffer))

async function readAll (tree: Tree, f: FileNode): Promise<Buffer> {
  const out = Buffer.alloc(f.size)
  assert.equal(await tree.read(f, out, f.size, 0), f.size)
  return out
}

test('4 KiB writes into 200 sealed blocks after a commit reuse the 200 block buffers that commit freed', async () => {
  const { tree } = memoryTree()
  const model = randomBytes(400 * B)
  const f = await tree.create('/db', 0o644)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  const page = (i: number): Buffer => randomBytes(SEGMENT)
  for (let i = 0; i < 200; i++) { const p = page(i); await tree.write(f, p, i * B + 3 * SEGMENT); p.copy(model, i * B + 3 * SEGMENT) }
  const first = dirtyMemory(f)
  assert.equal(first.size, 200)
  await tree.commit()
  assert.equal(f.dirty.size, 0)
  for (let i = 200; i < 400; i++) { const p = page(i); await tree.write(f, p, i * B + 5 * SEGMENT); p.copy(model, i * B + 5 * SEGMENT) }
  const second = dirtyMemory(f)
  assert.equal(second.size, 200)
  const reused = [...second].filter(b => first.has(b)).length
  assert.equal(reused, 200, `${reused} of 200 block buffers reused`)
  // The reused buffers held other blocks' bytes: none of it may show.
  assert.ok((await readAll(tree, f)).equals(model), 'content after the second round')
  await tree.commit()
  assert.ok((await readAll(tree, f)).equals(model), 'content after the commit')
})

test('a write into a hole after buffers were freed reads zeros around it, and a partial write into a short block keeps its bytes', async () => {
  const { tree } = memoryTree()
  const junk = await tree.create('/junk', 0o644)
  await tree.write(junk, Buffer.alloc(64 * B, 0xee), 0)
  for (let i = 0; i < 64; i++) await tree.write(junk, Buffer.alloc(SEGMENT, 0xdd), i * B)
  await tree.commit() // 64 buffers full of 0xee / 0xdd are free now
  const sparse = await tree.create('/sparse', 0o644)
  await tree.truncate(sparse, 32 * B)
  const short = await tree.create('/short', 0o644)
  const tail = randomBytes(B - 1000)
  await tree.write(short, tail, 0)
  await tree.commit()
  const want = Buffer.alloc(32 * B)
  for (let i = 0; i < 32; i++) { const p = randomBytes(100); await tree.write(sparse, p, i * B + 777); p.copy(want, i * B + 777) }
  await tree.write(short, Buffer.from('xyz'), 5)
  tail.write('xyz', 5)
  assert.ok((await readAll(tree, sparse)).equals(want), 'sparse file: zeros around the writes, before the commit')
  assert.ok((await readAll(tree, short)).equals(tail), 'short block before the commit')
  await tree.commit()
  assert.ok((await readAll(tree, sparse)).equals(want), 'sparse file after the commit')
  assert.ok((await readAll(tree, short)).equals(tail), 'short block after the commit')
})

test('releaseBuffers empties the free list: the next writes get new buffers', async () => {
  const { tree } = memoryTree()
  const f = await tree.create('/db', 0o644)
  await tree.write(f, randomBytes(40 * B), 0)
  await tree.commit()
  for (let i = 0; i < 20; i++) await tree.write(f, randomBytes(SEGMENT), i * B)
  const first = dirtyMemory(f)
  await tree.commit()
  tree.releaseBuffers()
  for (let i = 20; i < 40; i++) await tree.write(f, randomBytes(SEGMENT), i * B)
  assert.equal([...dirtyMemory(f)].filter(b => first.has(b)).length, 0)
})
