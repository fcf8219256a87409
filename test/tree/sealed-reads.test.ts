// Reads by segment of objects whose nonce is stated (block-ref.ts state): sealed in this process
// (the seal states the nonce it drew), or named by a v4 block map leaf that records it, so even a
// process that never read the object reads only the segments it needs, never the whole record;
// bytes read back from the store are still checked (a substituted segment fails its tag), and a
// record whose length is not the stated one is refused.
import type { CID } from 'multiformats/cid'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Drive } from '../../src/daemon.js'
import type { FileNode } from '../../src/fs/tree/nodes.js'
import type { BlockStore } from '../../src/fs/tree/tree.js'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'
import { cidsOf, isPatched, statedOf, type BlockRef, type PatchedBlock } from '../../src/fs/tree/block-ref.js'
import { SEGMENT, SEGMENT_SEALED, segmentOffset, sealedLength } from '../../src/crypto/index.js'
import { BlockCache } from '../../src/store/block-cache.js'
import { PackStore } from '../../src/store/pack-store.js'
import { Tree } from '../../src/fs/tree/tree.js'
import { memoryTree, MemoryCommitSink, type MemoryBlockStore } from '../helpers/memory-store.js'
import { replaceInPacks } from '../helpers/packs.js'

const B = BLOCK_SIZE

/** Counts the store's whole-object reads and the lengths of its partial ones. */
function watch (store: MemoryBlockStore): { gets: number, ranges: number[] } {
  const seen = { gets: 0, ranges: [] as number[] }
  const get = store.get.bind(store)
  const getRange = store.getRange.bind(store)
  store.get = async (cid, scratch) => { seen.gets++; return await get(cid, scratch) }
  store.getRange = async (cid, offset, length) => { seen.ranges.push(length); return await getRange(cid, offset, length) }
  return seen
}

test('the first read of a block sealed here reads its one segment, not the whole record', async () => {
  const cache = new BlockCache(32 * 1024 * 1024)
  const { tree, store } = memoryTree({ cache })
  const f = await tree.create('/db', 0o644)
  const data = randomBytes(2 * B)
  await tree.write(f, data, 0)
  await tree.commit() // both blocks sealed whole (inline: no seal pool here)
  cache.clear() // the seal cached the plaintext: the read must go to the store
  const seen = watch(store)
  const out = Buffer.alloc(SEGMENT)
  await tree.read(f, out, SEGMENT, B + 5 * SEGMENT)
  assert.ok(out.equals(data.subarray(B + 5 * SEGMENT, B + 6 * SEGMENT)))
  assert.equal(seen.gets, 0, 'no whole-record read')
  assert.deepEqual(seen.ranges, [SEGMENT_SEALED])
})

test('the first read of a patch sealed here reads that segment alone', async () => {
  const cache = new BlockCache(32 * 1024 * 1024)
  const { tree, store } = memoryTree({ cache })
  const f = await tree.create('/db', 0o644)
  const data = randomBytes(2 * B)
  await tree.write(f, data, 0)
  await tree.commit()
  const page = randomBytes(SEGMENT)
  await tree.write(f, page, 7 * SEGMENT)
  await tree.commit() // sealed as a 4 KiB patch over block 0
  assert.ok(isPatched(f.blocks!.get(0)!))
  cache.clear()
  const seen = watch(store)
  const out = Buffer.alloc(2 * SEGMENT)
  await tree.read(f, out, 2 * SEGMENT, 6 * SEGMENT) // base segment 6, patch segment 7
  assert.ok(out.subarray(0, SEGMENT).equals(data.subarray(6 * SEGMENT, 7 * SEGMENT)))
  assert.ok(out.subarray(SEGMENT).equals(page))
  assert.equal(seen.gets, 0, 'no whole-record read of the base or the patch')
  assert.deepEqual(seen.ranges, [SEGMENT_SEALED, SEGMENT_SEALED])
})

test('blocks sealed on the seal pool read by segment from the pack, and a segment substituted there is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-sealed-read-'))
  const key = randomBytes(32)
  const locates: boolean[] = []
  const wrapStore = (s: BlockStore): BlockStore => {
    const locate = s.locate!.bind(s)
    return Object.assign(Object.create(s) as BlockStore, { locate: (cid: CID, buffered?: boolean) => { locates.push(buffered === true); return locate(cid, buffered) } })
  }
  try {
    const drive = await Drive.open(dir, key, { wrapStore })
    const f = await drive.tree.create('/s', 0o644) as FileNode
    // Sequential writes of whole blocks go to the seal pool (putWithCid with the pool's hash).
    const first = randomBytes(4 * B)
    await drive.tree.write(f, first, 0)
    await drive.commit()
    const older = Buffer.from(await drive.store.get(f.blocks!.get(2)! as CID))
    const data = randomBytes(4 * B)
    await drive.tree.write(f, data, 0)
    await drive.commit()
    await drive.store.flush()
    const current = Buffer.from(await drive.store.get(f.blocks!.get(2)! as CID))
    locates.length = 0
    const out = Buffer.alloc(SEGMENT)
    await drive.tree.read(f, out, SEGMENT, 2 * B + 6 * SEGMENT)
    assert.ok(out.equals(data.subarray(2 * B + 6 * SEGMENT, 2 * B + 7 * SEGMENT)))
    assert.ok(locates.length > 0 && locates.every(b => b), 'read by segment under the nonce the seal drew (a buffered locate), not hashed whole')
    // Segment 6 of the older sealed version of the same block (same key, file, index) put in
    // its place: it authenticates under its own nonce only, never under the one remembered.
    const seg = (o: Buffer): Buffer => o.subarray(segmentOffset(6), segmentOffset(7))
    replaceInPacks(dir, Buffer.from(seg(current)), Buffer.from(seg(older)))
    await assert.rejects(drive.tree.read(f, out, SEGMENT, 2 * B + 6 * SEGMENT), { code: 'ERR_INTEGRITY' })
    await drive.tree.read(f, out, SEGMENT, 2 * B + 7 * SEGMENT) // the segment next to it still reads
    assert.ok(out.equals(data.subarray(2 * B + 7 * SEGMENT, 2 * B + 8 * SEGMENT)))
    await drive.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a write that loads a block sealed here (a growing file\'s tail) reads it by segments on the pool, with no whole-record get', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-sealed-read-'))
  const store = await PackStore.open(dir, null)
  try {
    const cache = new BlockCache(32 * 1024 * 1024)
    const tree = new Tree({ store, cache, sink: new MemoryCommitSink(), head: null })
    const f = await tree.create('/wal', 0o644)
    const model = randomBytes(B + 1000)
    await tree.write(f, Buffer.from(model), 0)
    await tree.commit() // block 1 sealed whole, 1,000 bytes padded: not full, so a write loads it
    await store.flush()
    cache.clear()
    let gets = 0
    const locates: boolean[] = []
    const get = store.get.bind(store)
    const locate = store.locate.bind(store)
    store.get = async (cid, scratch) => { gets++; return await get(cid, scratch) }
    store.locate = (cid, buffered) => { locates.push(buffered === true); return locate(cid, buffered) }
    const frame = randomBytes(300)
    await tree.write(f, frame, B + 900) // grows the file: block 1's old bytes are loaded first
    const want = Buffer.alloc(B + 1200)
    model.copy(want)
    frame.copy(want, B + 900)
    assert.equal(gets, 0, 'no whole-record get (and hash) of the block')
    assert.ok(locates.includes(true), 'read from its pack under the nonce its seal drew')
    const out = Buffer.alloc(B + 1200)
    assert.equal(await tree.read(f, out, out.length, 0), B + 1200)
    assert.ok(out.equals(want))
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

/** A file of more than 32 blocks (its entries in a block map, leaves v4), committed, in a fresh tree over the same store. */
async function reopened (blocks: number, patch: boolean): Promise<{ data: Buffer, store: MemoryBlockStore, again: Tree, f: FileNode }> {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/db', 0o644)
  const data = randomBytes(blocks * B)
  await tree.write(f, data, 0)
  await tree.commit()
  if (patch) {
    const page = randomBytes(SEGMENT)
    page.copy(data, 33 * B + 7 * SEGMENT)
    await tree.write(f, page, 33 * B + 7 * SEGMENT)
    await tree.commit()
    assert.ok(isPatched(f.blocks!.get(33)!))
  }
  const again = sink.reopen(store)
  return { data, store, again, f: await again.lookup('/db') as FileNode }
}

test('a process that never read a block reads one segment of it under the nonce its map entry records, not the whole record', async () => {
  const { data, store, again, f } = await reopened(48, true)
  await again.blocksOf(f) // the map: its nodes are read whole, as always
  const seen = watch(store)
  const out = Buffer.alloc(2 * SEGMENT)
  await again.read(f, out, 2 * SEGMENT, 33 * B + 6 * SEGMENT) // base segment 6, patch segment 7
  assert.ok(out.equals(data.subarray(33 * B + 6 * SEGMENT, 33 * B + 8 * SEGMENT)))
  await again.read(f, out, SEGMENT, 45 * B + 31 * SEGMENT)
  assert.ok(out.subarray(0, SEGMENT).equals(data.subarray(45 * B + 31 * SEGMENT, 46 * B)))
  assert.equal(seen.gets, 0, 'no whole-record read of the base, the patch or the whole block')
  assert.deepEqual(seen.ranges, [SEGMENT_SEALED, SEGMENT_SEALED, SEGMENT_SEALED])
})

test('under a nonce its entry records, a segment of an older sealed version of the block is refused, and so is a record of another length', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/db', 0o644)
  await tree.write(f, randomBytes(40 * B), 0)
  await tree.commit()
  const older = Buffer.from(await store.get(f.blocks!.get(33)! as CID))
  const data = randomBytes(B)
  await tree.write(f, data, 33 * B)
  await tree.commit()
  const cid = f.blocks!.get(33)! as CID
  const current = Buffer.from(await store.get(cid))
  const again = sink.reopen(store)
  const g = await again.lookup('/db') as FileNode
  await again.blocksOf(g)
  const out = Buffer.alloc(SEGMENT)
  const seg = (o: Buffer, k: number): Buffer => o.subarray(segmentOffset(k), segmentOffset(k + 1))
  const swapped = Buffer.from(current)
  seg(older, 6).copy(swapped, segmentOffset(6))
  store.replace(cid, swapped) // same length, the older version's segment 6 in place
  await assert.rejects(again.read(g, out, SEGMENT, 33 * B + 6 * SEGMENT), { code: 'ERR_INTEGRITY' })
  await again.read(g, out, SEGMENT, 33 * B + 7 * SEGMENT) // the next segment is this version's
  assert.ok(out.equals(data.subarray(7 * SEGMENT, 8 * SEGMENT)))
  store.replace(cid, current.subarray(0, segmentOffset(31))) // cut after 31 segments: segment 30 would open as the last
  await assert.rejects(again.read(g, out, SEGMENT, 33 * B + 31 * SEGMENT), { code: 'ERR_INTEGRITY' })
})

test('a block map leaf records the nonce of every whole block and patch sealed in the process that wrote it, at their full lengths only', async () => {
  const { again, f } = await reopened(40, true)
  const blocks = await again.blocksOf(f) as Map<number, BlockRef>
  for (const [i, r] of blocks) {
    for (const c of cidsOf(r)) {
      const stated = statedOf(c)
      assert.ok(stated != null, `block ${i}: its nonce is stated`)
      const len = Buffer.from(stated, 'latin1').readUInt32BE(12)
      assert.equal(len, isPatched(r) && c !== (r as PatchedBlock).base ? sealedLength(SEGMENT) : sealedLength(B))
    }
  }
  // The last block, short (padded): its nonce is not recorded (its length is not implied).
  const { tree, sink, store } = memoryTree()
  const g = await tree.create('/t', 0o644)
  await tree.write(g, randomBytes(40 * B + 1000), 0)
  await tree.commit()
  assert.ok(statedOf(g.blocks!.get(40) as CID) != null, 'stated in memory at its seal')
  const back = sink.reopen(store)
  const h = await back.lookup('/t') as FileNode
  const m = await back.blocksOf(h) as Map<number, BlockRef>
  assert.equal(statedOf(m.get(40) as CID), undefined)
  assert.ok(statedOf(m.get(39) as CID) != null)
})
