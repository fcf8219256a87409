// Small writes into sealed blocks are sealed as patches (file-blocks.ts, block-ref.ts): checked
// against a byte model over random offsets and lengths after every write, seal, commit and
// reopen; patches over holes; the fold back into a whole block; store bytes per small write;
// patches covered whole by later ones dropped; 64 KiB writes that fold nothing they cover;
// and the reads that must fail: an old patch replayed in the pack (its CID), and a segment
// substituted after the object's nonce was remembered (authentication under that nonce).
import type { CID } from 'multiformats/cid'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Drive } from '../../src/daemon.js'
import { FileNode } from '../../src/fs/tree/nodes.js'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'
import { isPatched, patchedSegments, withPatch, FOLD_SEGMENTS } from '../../src/fs/tree/block-ref.js'
import { cidOf } from '../../src/store/cid.js'
import { segmentOffset, SEGMENT } from '../../src/crypto/index.js'
import { memoryTree } from '../helpers/memory-store.js'
import type { Tree } from '../../src/fs/tree/tree.js'
import { replaceInPacks } from '../helpers/packs.js'

const B = BLOCK_SIZE

/** A deterministic PRNG (xorshift32), so a failure repeats. */
function rng (seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32 }
}

async function readAll (tree: Tree, f: FileNode): Promise<Buffer> {
  const out = Buffer.alloc(f.size)
  assert.equal(await tree.read(f, out, f.size, 0), f.size)
  return out
}

function sameBytes (got: Buffer, want: Buffer, what: string): void {
  if (got.equals(want)) return
  let i = 0
  while (i < want.length && got[i] === want[i]) i++
  assert.fail(`${what}: first differing byte ${i} (block ${Math.floor(i / B)}, segment ${Math.floor((i % B) / SEGMENT)}) of ${want.length}`)
}

test('random small writes over sealed blocks read back exactly after every write, seal, commit and reopen', async () => {
  const { tree: t0, store, sink } = memoryTree()
  let tree = t0
  const model = randomBytes(4 * B + 5000)
  let f = await tree.create('/db', 0o644)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  const rand = rng(0x5eed)
  let sawPatch = false
  for (let op = 0; op < 400; op++) {
    const r = rand()
    // Mostly 4 KiB-aligned pages (databases), some unaligned, some across blocks.
    const len = r < 0.6 ? SEGMENT : r < 0.8 ? 1 + Math.floor(rand() * 3 * SEGMENT) : 1 + Math.floor(rand() * 2 * B)
    const at = r < 0.6 ? Math.floor(rand() * (model.length / SEGMENT - 1)) * SEGMENT : Math.floor(rand() * (model.length - len))
    const data = randomBytes(Math.min(len, model.length - at))
    await tree.write(f, data, at)
    data.copy(model, at)
    // A read of a random range right after the write (dirty blocks and sealed ones mixed).
    const ra = Math.floor(rand() * model.length)
    const rl = Math.min(model.length - ra, 1 + Math.floor(rand() * 3 * SEGMENT))
    const got = Buffer.alloc(rl)
    await tree.read(f, got, rl, ra)
    sameBytes(got, model.subarray(ra, ra + rl), `op ${op}: read ${ra}+${rl}`)
    if (op % 7 === 6) {
      await tree.commit()
      for (const ref of f.blocks!.values()) if (isPatched(ref)) sawPatch = true
      sameBytes(await readAll(tree, f), model, `op ${op}: after commit`)
    }
    if (op % 50 === 49) {
      await tree.commit()
      tree = sink.reopen(store)
      f = await tree.lookup('/db') as FileNode
      sameBytes(await readAll(tree, f), model, `op ${op}: reopened`)
    }
  }
  assert.ok(sawPatch, 'some blocks were sealed as patches')
  await tree.commit()
  sameBytes(await readAll(sink.reopen(store), await sink.reopen(store).lookup('/db') as FileNode), model, 'at the end')
})

test('4 KiB writes into a sealed block append 4 KiB patches until the fold seals it whole again', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/f', 0o644)
  const model = randomBytes(2 * B)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  const before = store.bytes
  const seals = FOLD_SEGMENTS + 1
  for (let i = 0; i < seals; i++) {
    const page = randomBytes(SEGMENT)
    const at = B + ((i * 5) % 32) * SEGMENT
    await tree.write(f, page, at)
    page.copy(model, at)
    await tree.commit()
    const ref = f.blocks!.get(1)!
    if (i < FOLD_SEGMENTS) assert.equal(patchedSegments(ref), i + 1, `after write ${i}: one more patched segment`)
    else assert.ok(!isPatched(ref), 'the write after the fold sealed the block whole')
    assert.ok(!isPatched(f.blocks!.get(0)!), 'the untouched block stays whole')
  }
  const grown = store.bytes - before
  // 16 patches of 4125 bytes and one whole block, plus a root directory node per commit (the
  // file's block list, patches included, is inline in it: up to ~1 KiB).
  assert.ok(grown < FOLD_SEGMENTS * 4200 + B + 1024 + seals * 1024, `grew ${grown} bytes`)
  const again = sink.reopen(store)
  sameBytes(await readAll(again, await again.lookup('/f') as FileNode), model, 'reopened')
})

test('a write into a hole of a sparse file is a patch over nothing, and reads back with zeros around it', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/sparse', 0o644)
  await tree.truncate(f, 8 * B)
  const page = randomBytes(SEGMENT)
  await tree.write(f, page, 3 * B + 5 * SEGMENT)
  await tree.commit()
  const ref = f.blocks!.get(3)!
  assert.ok(isPatched(ref) && ref.base == null && ref.patches.length === 1 && ref.patches[0].first === 5, 'a patch over a hole')
  const again = sink.reopen(store)
  const g = await again.lookup('/sparse') as FileNode
  const all = await readAll(again, g)
  const want = Buffer.alloc(8 * B)
  page.copy(want, 3 * B + 5 * SEGMENT)
  sameBytes(all, want, 'sparse file')
})

test('truncating into a patched block seals it whole with the tail cut', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/t', 0o644)
  const model = randomBytes(3 * B)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  const page = randomBytes(SEGMENT)
  await tree.write(f, page, B + 2 * SEGMENT)
  page.copy(model, B + 2 * SEGMENT)
  await tree.commit()
  assert.ok(isPatched(f.blocks!.get(1)!))
  await tree.truncate(f, B + 3 * SEGMENT + 10)
  await tree.commit()
  assert.ok(!isPatched(f.blocks!.get(1)!))
  const again = sink.reopen(store)
  sameBytes(await readAll(again, await again.lookup('/t') as FileNode), model.subarray(0, B + 3 * SEGMENT + 10), 'truncated')
})

test('an older patch replayed over the newer one in the pack reads as EIO (its CID), never as the old bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-patch-'))
  const key = randomBytes(32)
  try {
    let drive = await Drive.open(dir, key)
    const f = await drive.tree.create('/p', 0o644)
    await drive.tree.write(f, randomBytes(2 * B), 0)
    await drive.commit()
    await drive.tree.write(f, Buffer.alloc(SEGMENT, 1), 3 * SEGMENT)
    await drive.commit()
    const first = f.blocks!.get(0)!
    assert.ok(isPatched(first) && first.patches.length === 1)
    await drive.tree.write(f, Buffer.alloc(SEGMENT, 2), 3 * SEGMENT)
    await drive.commit()
    const ref = f.blocks!.get(0)!
    // The newer patch covers the older one whole: the map names only the newer.
    assert.ok(isPatched(ref) && ref.patches.length === 1 && !ref.patches[0].cid.equals(first.patches[0].cid))
    const older = Buffer.from(await drive.store.get(first.patches[0].cid))
    const newer = Buffer.from(await drive.store.get(ref.patches[0].cid))
    assert.equal(older.length, newer.length)
    // One more commit, so the replayed bytes are not in the head commit's own (checked) range.
    await drive.tree.write(await drive.tree.create('/later', 0o644), Buffer.from('later'), 0)
    await drive.commit()
    await drive.close()
    replaceInPacks(dir, newer, older)
    const lines: string[] = []
    drive = await Drive.open(dir, key, { log: l => lines.push(l) })
    const g = await drive.tree.lookup('/p') as FileNode
    const out = Buffer.alloc(SEGMENT)
    await assert.rejects(drive.tree.read(g, out, SEGMENT, 3 * SEGMENT), { code: 'ERR_INTEGRITY' })
    assert.ok(!out.equals(Buffer.alloc(SEGMENT, 1)), 'not the old bytes')
    assert.ok(lines.some(l => l.includes('does not match its CID')), lines.join('\n'))
    // The segments the replayed patch does not cover still read.
    await drive.tree.read(g, out, SEGMENT, 4 * SEGMENT)
    await drive.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a segment substituted after the block was verified is refused under the remembered nonce', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-patch-'))
  const key = randomBytes(32)
  try {
    let drive = await Drive.open(dir, key)
    const f = await drive.tree.create('/s', 0o644)
    await drive.tree.write(f, randomBytes(B), 0)
    await drive.commit()
    const current = Buffer.from(await drive.store.get(f.blocks!.get(0)! as CID))
    // Another sealed version of the same block (same key, file and index), stored too.
    await drive.tree.write(f, randomBytes(B), 0)
    await drive.commit()
    const other = Buffer.from(await drive.store.get(f.blocks!.get(0)! as CID))
    await drive.close()
    // The current CID names `other`: read it (checked whole, its nonce remembered), then put
    // segment 6 of the older version in its place in the pack.
    drive = await Drive.open(dir, key)
    const g = await drive.tree.lookup('/s') as FileNode
    const out = Buffer.alloc(SEGMENT)
    await drive.tree.read(g, out, SEGMENT, 6 * SEGMENT) // verified whole, nonce remembered
    const seg = (o: Buffer): Buffer => o.subarray(segmentOffset(6), segmentOffset(7))
    replaceInPacks(dir, seg(other), Buffer.from(seg(current)))
    await assert.rejects(drive.tree.read(g, out, SEGMENT, 6 * SEGMENT), { code: 'ERR_INTEGRITY' })
    await drive.tree.read(g, out, SEGMENT, 7 * SEGMENT) // the segment next to it is untouched
    await drive.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('patches of a file with a separate block map survive commit and reopen', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/big', 0o644)
  const model = randomBytes(40 * B)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  for (const at of [0, 7 * B + 3 * SEGMENT, 39 * B + 31 * SEGMENT, 20 * B + 100]) {
    const data = randomBytes(SEGMENT)
    await tree.write(f, data, at)
    data.copy(model, at)
  }
  await tree.commit()
  assert.ok(isPatched(f.blocks!.get(7)!))
  const again = sink.reopen(store)
  const g = await again.lookup('/big') as FileNode
  assert.equal(g.blocks, null, 'the block list is in a block map node')
  sameBytes(await readAll(again, g), model, 'reopened')
  assert.ok(isPatched(g.blocks!.get(39)!))
})

test('a small write into a sealed block loads at most the segments it covers in part, never the block', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/w', 0o644)
  const model = randomBytes(2 * B)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  const again = sink.reopen(store) // a fresh cache: nothing of the block in memory
  const g = await again.lookup('/w') as FileNode
  let gets = 0
  const get = store.get.bind(store)
  store.get = async (cid, scratch) => { gets++; return await get(cid, scratch) }
  await again.write(g, Buffer.alloc(SEGMENT, 9), B + 4 * SEGMENT) // a whole segment: nothing loaded
  assert.equal(gets, 0, 'an aligned 4 KiB write reads nothing')
  assert.equal(g.patching.get(1)!.known, 1 << 4)
  await again.write(g, Buffer.alloc(100, 8), B + 10 * SEGMENT + 50) // part of one: that segment only
  assert.equal(g.patching.get(1)!.known, (1 << 4) | (1 << 10))
  Buffer.alloc(SEGMENT, 9).copy(model, B + 4 * SEGMENT)
  Buffer.alloc(100, 8).copy(model, B + 10 * SEGMENT + 50)
  sameBytes(await readAll(again, g), model, 'before the seal')
  await again.commit()
  sameBytes(await readAll(sink.reopen(store), await sink.reopen(store).lookup('/w') as FileNode), model, 'reopened')
})

test('a patch that later patches cover whole is dropped from the block\'s list; one they cover in part stays', () => {
  const cid = (): CID => cidOf(randomBytes(40))
  const base = cid()
  let r = withPatch(base, { cid: cid(), first: 3, count: 2 }) // segments 3, 4
  r = withPatch(r, { cid: cid(), first: 10, count: 1 })
  r = withPatch(r, { cid: cid(), first: 4, count: 1 }) // covers 4: the first patch still holds 3
  assert.equal(r.patches.length, 3)
  r = withPatch(r, { cid: cid(), first: 0, count: 4 }) // covers 0-3: the first patch is all covered now
  assert.deepEqual(r.patches.map(p => [p.first, p.count]), [[10, 1], [4, 1], [0, 4]])
  assert.ok(r.base === base)
  assert.equal(patchedSegments(r), 6)
  r = withPatch(r, { cid: cid(), first: 0, count: 32 })
  assert.deepEqual(r.patches.map(p => [p.first, p.count]), [[0, 32]], 'a whole-block patch leaves nothing under it')
})

test('4 KiB rewrites of one segment keep one patch, and the block folds only once its patches hold FOLD_SEGMENTS distinct segments', async () => {
  const { tree, sink, store } = memoryTree()
  const f = await tree.create('/r', 0o644)
  const model = randomBytes(B)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  for (let i = 0; i < 40; i++) { // the same segment 40 times
    const page = randomBytes(SEGMENT)
    await tree.write(f, page, 7 * SEGMENT)
    page.copy(model, 7 * SEGMENT)
    await tree.commit()
  }
  let ref = f.blocks!.get(0)!
  assert.ok(isPatched(ref) && ref.patches.length === 1, 'one patch names segment 7')
  for (let s = 0; s < FOLD_SEGMENTS; s++) { // distinct segments up to the fold
    const page = randomBytes(SEGMENT)
    await tree.write(f, page, s * SEGMENT)
    page.copy(model, s * SEGMENT)
    await tree.commit()
  }
  ref = f.blocks!.get(0)!
  assert.ok(isPatched(ref) && patchedSegments(ref) === FOLD_SEGMENTS)
  tree.releaseBuffers() // no kept buffer: the fold must load what it does not cover
  const page = randomBytes(SEGMENT)
  await tree.write(f, page, 30 * SEGMENT)
  page.copy(model, 30 * SEGMENT)
  await tree.commit()
  assert.ok(!isPatched(f.blocks!.get(0)!), 'the write past the fold sealed the block whole')
  sameBytes(await readAll(tree, f), model, 'after the fold')
  const again = sink.reopen(store)
  sameBytes(await readAll(again, await again.lookup('/r') as FileNode), model, 'reopened')
})

test('64 KiB writes: the second half of a block written after the first leaves two patches over every segment (nothing read, the base dropped), and past the fold a write loads only what it does not cover', async () => {
  const { tree, sink, store } = memoryTree()
  const f = await tree.create('/h', 0o644)
  const model = randomBytes(4 * B)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  const H = B / 2
  const reads: Array<[number, number]> = []
  const get = store.get.bind(store)
  const getRange = store.getRange.bind(store)
  store.get = async (cid, scratch) => { const b = await get(cid, scratch); reads.push([0, b.length]); return b }
  store.getRange = async (cid, offset, length) => { reads.push([offset, length]); return await getRange(cid, offset, length) }
  const half = async (block: number, second: number): Promise<void> => {
    const data = randomBytes(H)
    await tree.write(f, data, block * B + second * H)
    data.copy(model, block * B + second * H)
    await tree.commit()
  }
  await half(1, 0)
  assert.ok(isPatched(f.blocks!.get(1)!), 'the first half: a 16-segment patch')
  await half(1, 1)
  const both = f.blocks!.get(1)!
  assert.ok(isPatched(both) && both.patches.length === 2 && both.base == null, 'both halves written: two 16-segment patches, no base (64 KiB appended, not a whole block)')
  assert.deepEqual(reads, [], 'nothing read: the kept buffer held the first half, the write the second')
  // Block 2 past the fold (24 distinct segments in patches), no kept buffer: a 64 KiB write of
  // its second half loads segments 0-15 only.
  for (let s = 8; s < 32; s++) { // one 4 KiB patch each
    const page = randomBytes(SEGMENT)
    await tree.write(f, page, 2 * B + s * SEGMENT)
    page.copy(model, 2 * B + s * SEGMENT)
    await tree.commit()
  }
  assert.equal(patchedSegments(f.blocks!.get(2)!), 24)
  tree.releaseBuffers()
  reads.length = 0
  await half(2, 1)
  assert.ok(!isPatched(f.blocks!.get(2)!), 'the fold sealed it whole')
  let read = 0
  for (const r of reads) read += r[1]
  // Before: the block loaded whole, its base and all 24 patches (230 KB); now the base (checked
  // whole on its first read) and the 8 patches of segments 8-15.
  assert.ok(read <= B + 600 + 8 * 4200, `${read} bytes read for the fold: the base and 8 of the 24 patches`)
  sameBytes(await readAll(tree, f), model, 'after the halves')
  const again = sink.reopen(store)
  sameBytes(await readAll(again, await again.lookup('/h') as FileNode), model, 'reopened')
})

test('a block written in a few large runs (a log\'s frames appended) stays patched: each byte is appended once, and the block reads and reopens as written', async () => {
  const { tree, sink, store } = memoryTree()
  const f = await tree.create('/wal', 0o644)
  const model = randomBytes(4 * B)
  await tree.write(f, Buffer.from(model), 0)
  await tree.commit()
  const before = store.bytes
  // Frames of 4,120 bytes, 11 per transaction (~45 KiB), each transaction committed: block 1 gets three runs.
  const frames = 11
  const FRAME = 4120
  let at = B
  let appended = 0
  while (at + frames * FRAME <= 2 * B + frames * FRAME && at < 2 * B) {
    const n = Math.min(frames * FRAME, 2 * B - at)
    const data = randomBytes(n)
    await tree.write(f, data, at)
    data.copy(model, at)
    await tree.commit()
    at += n
    appended += n
  }
  const ref = f.blocks!.get(1)!
  assert.ok(isPatched(ref) && ref.patches.length <= 4 && ref.base == null, `patches over every segment, no base: ${JSON.stringify(isPatched(ref) ? ref.patches.map(p => [p.first, p.count]) : 'whole')}`)
  const grown = store.bytes - before
  // The runs (each rounded out to whole segments) and their map nodes; a whole block (131,597 bytes) more before.
  assert.ok(grown < appended + 4 * SEGMENT + 8 * 1024, `${grown} bytes stored for ${appended} written`)
  sameBytes(await readAll(tree, f), model, 'read back')
  const again = sink.reopen(store)
  sameBytes(await readAll(again, await again.lookup('/wal') as FileNode), model, 'reopened')
})
