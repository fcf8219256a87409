// The write path's allocations (file-blocks.ts): block buffers freed by a commit are reused by
// the next round of random writes up to the dirty budget's worth, a reused buffer never shows
// its previous content (holes read as zeros, old blocks as they were), a block sealed as patches
// keeps its buffer for the next write into it (nothing it holds is loaded again), and the free
// list is given back when the process goes quiet.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'
import { SEGMENT, sealedLength } from '../../src/crypto/index.js'
import type { FileNode } from '../../src/fs/tree/nodes.js'
import type { Tree } from '../../src/fs/tree/tree.js'
import { memoryTree } from '../helpers/memory-store.js'
import { BlockCache } from '../../src/store/block-cache.js'

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

test('a write that starts in the segment the last commit\'s write ended in does not load that segment again, and reads back exactly', async () => {
  const { tree, store } = memoryTree({ cache: new BlockCache(0) }) // every load reaches the store
  const model = randomBytes(4 * B)
  const f = await tree.create('/wal', 0o644)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  let reads = 0
  const get = store.get.bind(store)
  const getRange = store.getRange.bind(store)
  store.get = async (...a) => { reads++; return await get(...a) }
  store.getRange = async (...a) => { reads++; return await getRange(...a) }
  // Log frames of 24 + 4096 bytes, back to back, one commit per two frames (a WAL's transactions).
  // A transaction's first frame starts in the segment the last one ended in: known, not loaded
  // (its end segment, partly written and never written before, is loaded).
  let at = B + 1000
  const firstFrameReads: number[] = []
  for (let tx = 0; tx < 5; tx++) { // before the block's patches reach the fold
    for (let k = 0; k < 2; k++) {
      const frame = randomBytes(24 + 4096)
      const before = reads
      await tree.write(f, frame, at)
      // Within one block: only the end segment may load (a frame into the next block loads there too).
      if (k === 0 && tx > 0 && Math.floor(at / B) === Math.floor((at + frame.length) / B)) firstFrameReads.push(reads - before)
      frame.copy(model, at)
      at += frame.length
    }
    await tree.commit()
  }
  assert.equal(firstFrameReads.length, 4)
  assert.ok(firstFrameReads.every(n => n <= 1), `store reads per first frame: ${firstFrameReads.join(' ')} (its start segment must not load)`)
  store.get = get
  store.getRange = getRange
  assert.ok((await readAll(tree, f)).equals(model))
})

test('a kept buffer is not used once its block was sealed again in another way (truncated and grown)', async () => {
  const { tree } = memoryTree()
  const model = randomBytes(3 * B)
  const f = await tree.create('/t', 0o644)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  await tree.write(f, Buffer.alloc(100, 7), B + 10) // block 1 patched, its buffer kept
  Buffer.alloc(100, 7).copy(model, B + 10)
  await tree.commit()
  await tree.truncate(f, B + 50) // block 1 cut: sealed whole, shorter
  await tree.truncate(f, 3 * B)
  model.fill(0, B + 50)
  await tree.commit()
  await tree.write(f, Buffer.alloc(10, 9), B + 20)
  Buffer.alloc(10, 9).copy(model, B + 20)
  assert.ok((await readAll(tree, f)).equals(model), 'before the commit')
  await tree.commit()
  assert.ok((await readAll(tree, f)).equals(model), 'after the commit')
})

test('patches are sealed into memory the store handed back: a second round of 4 KiB writes seals into the first round\'s buffers', async () => {
  const { tree, store } = memoryTree()
  const model = randomBytes(64 * B)
  const f = await tree.create('/db', 0o644)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  let seen = new Set<ArrayBufferLike>()
  const put = store.putWithCid.bind(store)
  store.putWithCid = (cid, bytes, release) => {
    if (bytes.length === sealedLength(SEGMENT)) seen.add(bytes.buffer) // the 1-segment patches
    return put(cid, bytes, release)
  }
  const round = async (seg: number): Promise<Set<ArrayBufferLike>> => {
    seen = new Set()
    for (let i = 0; i < 64; i++) { const p = randomBytes(SEGMENT); await tree.write(f, p, i * B + seg * SEGMENT); p.copy(model, i * B + seg * SEGMENT) }
    await tree.commit()
    return seen
  }
  const first = await round(3)
  const second = await round(7)
  assert.ok(first.size >= 1 && second.size >= 1)
  const reused = [...second].filter(b => first.has(b)).length
  assert.equal(reused, second.size, `${reused} of ${second.size} patch buffers reused`)
  assert.equal(second.size, 1, 'the store released each at once: one buffer for 64 patches')
  assert.ok((await readAll(tree, f)).equals(model), 'content after both rounds')
})

test('what the tree seals (patches, blocks, map nodes) is stored as fresh, and a commit of nothing new stores nothing', async () => {
  const { tree, store } = memoryTree()
  const f = await tree.create('/db', 0o644)
  await tree.write(f, randomBytes(64 * B), 0) // past the blocks a directory entry holds inline: a block map of its own
  await tree.commit()
  const before = store.fresh
  for (let i = 0; i < 8; i++) await tree.write(f, randomBytes(SEGMENT), i * 8 * B + SEGMENT)
  await tree.commit()
  assert.ok(store.fresh - before >= 9, `8 patches and the map's root at least: ${store.fresh - before}`)
  const after = store.fresh
  await tree.commit()
  assert.equal(store.fresh, after)
})
