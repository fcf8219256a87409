// Reads of blocks sealed in this process (file-read.ts, FileReader.sealedThrough): what the seal
// produced (nonce, sealed length, CID) is remembered as a whole-record check would have, so the
// first read of a fresh block or patch reads only the segments it needs, never the whole record;
// bytes read back from the store are still checked (a substituted segment fails its tag).
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
import { isPatched } from '../../src/fs/tree/block-ref.js'
import { SEGMENT, SEGMENT_SEALED, segmentOffset } from '../../src/crypto/index.js'
import { Verified } from '../../src/fs/tree/file-read.js'
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

test('the table of checked objects lets the least recently used go first: an object read all along stays while new seals stream in', () => {
  const v = new Verified(4)
  const nonce = randomBytes(12)
  for (const k of ['base', 'p1', 'p2', 'p3']) v.set(k, nonce, 4125)
  assert.ok(v.get('base') != null) // read again: the most recently used now
  v.set('p4', nonce, 4125) // a fifth entry: the least recently used goes
  assert.equal(v.get('p1'), undefined)
  const kept = v.get('base')
  assert.ok(kept != null && kept.subarray(0, 12).equals(nonce) && kept.readUInt32BE(12) === 4125)
})

test('the table of checked objects keeps each entry\'s own nonce and length as it grows and reuses the slots of entries let go', () => {
  const v = new Verified(100)
  const nonces = Array.from({ length: 250 }, () => randomBytes(12))
  for (let i = 0; i < 250; i++) {
    v.set(`k${i}`, nonces[i], 4125 + i)
    if (i % 7 === 0) v.get(`k${Math.max(0, i - 50)}`) // some read again: most recently used
  }
  let present = 0
  for (let i = 0; i < 250; i++) {
    const e = v.get(`k${i}`)
    if (e == null) continue
    present++
    assert.ok(e.subarray(0, 12).equals(nonces[i]), `entry ${i}: its own nonce`)
    assert.equal(e.readUInt32BE(12), 4125 + i)
  }
  assert.equal(present, 100, 'the limit')
  const held = v.get('k249')!
  v.set('new', randomBytes(12), 1) // reuses the least recently used entry's slot
  assert.ok(held.subarray(0, 12).equals(nonces[249]), 'an entry handed out is a copy: a reused slot does not change it')
  v.clear()
  assert.equal(v.get('k249'), undefined)
  v.set('again', nonces[0], 7)
  assert.ok(v.get('again')!.subarray(0, 12).equals(nonces[0]))
})
