// Blocks read in runs of neighbours (store/block-runs.ts) from a real pack store, and the pool
// their buffers come from (store/buffer-pool.ts): a buffer is handed out again only once every
// holder of a view of it has released it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { PackStore } from '../../src/store/pack-store.js'
import { DIRECT_RUN_BYTES, planRuns, readRuns } from '../../src/store/block-runs.js'
import { BufferPool, dropPooledBuffers, pooledBytes } from '../../src/store/buffer-pool.js'
import type { CID } from '../../src/store/cid.js'

const root = mkdtempSync(join(process.env.SPACE_TEST_TMP ?? tmpdir(), 'space-runs-'))
after(() => rmSync(root, { recursive: true, force: true }))

describe('buffer pool', () => {
  it('hands a buffer out again only after its creator and every holder released it, each once', () => {
    const pool = new BufferPool(1024, 2)
    const a = pool.lease(100)
    assert.equal(a.buf.length, 100)
    const r1 = a.hold()
    const r2 = a.hold()
    a.done()
    a.done() // a second done() is not a second release
    r1()
    r1() // nor is a second call of one holder's release
    assert.equal(pool.idle, 0, 'one holder still reads it')
    assert.notEqual(pool.lease(100).buf.buffer, a.buf.buffer, 'not handed out while held')
    r2()
    assert.equal(pool.idle, 1)
    const b = pool.lease(1000)
    assert.equal(b.buf.buffer, a.buf.buffer, 'the released buffer is reused')
    assert.equal(pool.idle, 0)
  })

  it('gives a request bigger than its buffers a buffer of its own, never pooled, and keeps at most `keep` free', () => {
    const pool = new BufferPool(1024, 1)
    const big = pool.lease(4096)
    assert.equal(big.buf.length, 4096)
    big.done()
    assert.equal(pool.idle, 0)
    const x = pool.lease(10)
    const y = pool.lease(10)
    x.done()
    y.done()
    assert.equal(pool.idle, 1)
  })
})

describe('buffer pool, bytes held', () => {
  it('counts its buffers free or leased, and not those it let go of (what memory.ts leaves out of RSS)', () => {
    const before = pooledBytes()
    const pool = new BufferPool(1024, 1)
    const x = pool.lease(10)
    const y = pool.lease(10)
    assert.equal(pool.bytes, 2048, 'two leased')
    assert.equal(pooledBytes() - before, 2048)
    x.done()
    assert.equal(pool.bytes, 2048, 'one free, one leased')
    y.done() // the pool keeps one free buffer: this one goes
    assert.equal(pool.bytes, 1024)
    pool.lease(4096).done() // bigger than its buffers: never the pool's
    assert.equal(pool.bytes, 1024)
    pool.drop()
    assert.equal(pool.bytes, 0)
    assert.equal(pooledBytes(), before)
  })
})

describe('buffer pool, idle', () => {
  it('lets go of every pool\'s free buffers when the process releases memory, and allocates again after', () => {
    const pool = new BufferPool(1024, 4)
    const a = pool.lease(10)
    a.done()
    assert.equal(pool.idle, 1)
    dropPooledBuffers()
    assert.equal(pool.idle, 0)
    const b = pool.lease(10)
    assert.notEqual(b.buf.buffer, a.buf.buffer)
    b.done()
    assert.equal(pool.idle, 1)
  })
})

describe('block runs', () => {
  it('reads blocks appended together in one run per MiB, the same bytes as get(), views of one buffer', async () => {
    const store = await PackStore.open(join(root, 'a'), null)
    try {
      const blocks = Array.from({ length: 20 }, () => randomBytes(128 * 1024))
      const cids = blocks.map(b => store.put(b))
      await store.sync()
      const parts = planRuns(store, cids)
      // 20 records of 128 KiB and a header each: 7 per MiB run, so 3 runs.
      assert.equal(parts.length, 3, JSON.stringify(parts.map(p => 'cids' in p ? p.cids.length : 'alone')))
      const pool = new BufferPool(1024 * 1024, 4)
      const got: Array<{ cid: CID, bytes: Uint8Array, release?: () => void }> = []
      for await (const b of readRuns(store, cids, pool)) got.push(b)
      assert.equal(got.length, 20)
      for (let i = 0; i < 20; i++) {
        assert.ok(got[i].cid.equals(cids[i]))
        assert.ok(Buffer.from(got[i].bytes).equals(blocks[i]), `block ${i}`)
        assert.ok(Buffer.from(await store.get(cids[i])).equals(got[i].bytes))
      }
      assert.equal(got[0].bytes.buffer, got[6].bytes.buffer, 'one run, one buffer')
      assert.notEqual(got[0].bytes.buffer, got[7].bytes.buffer)
      assert.equal(pool.idle, 0, 'held by the blocks')
      for (const b of got) b.release?.()
      assert.equal(pool.idle, 3)
    } finally {
      await store.close()
    }
  })

  it('reads runs of large records with O_DIRECT into page-aligned pooled buffers, by whole pages, the last record of a reopened pack included', async () => {
    const dir = join(root, 'direct')
    const blocks = Array.from({ length: 17 }, (_, i) => randomBytes(i === 16 ? 100_000 : 128 * 1024 + 3)) // unaligned records
    let store = await PackStore.open(dir, null)
    const cids = blocks.map(b => store.put(b))
    const w = await store.sync()
    await store.close()
    store = await PackStore.open(dir, w) // the pack cut back to its logical end: not on a page boundary
    try {
      const direct = store.locate(cids[0])?.direct === true
      if (!direct) { assert.ok(true, 'this file system refuses O_DIRECT: buffered runs only'); return }
      const parts = planRuns(store, cids, undefined, true)
      assert.ok(parts.every(p => 'direct' in p && p.direct), 'every run on the O_DIRECT descriptor')
      const pool = new BufferPool(DIRECT_RUN_BYTES, 4, true)
      const got: Array<{ cid: CID, bytes: Uint8Array, release?: () => void }> = []
      for await (const b of readRuns(store, cids, pool)) got.push(b)
      assert.equal(got.length, 17)
      for (let i = 0; i < 17; i++) assert.ok(Buffer.from(got[i].bytes).equals(blocks[i]), `block ${i}`)
      // Views of the runs read (the fallback after a refused direct read gets each block on its own).
      assert.ok(got.every(b => b.release != null))
      assert.equal(got[0].bytes.buffer, got[6].bytes.buffer, 'one run, one buffer')
      for (const b of got) b.release?.()
      assert.equal(pool.idle, parts.length)
      // A pool that is not page-aligned: the same blocks, buffered.
      assert.ok(planRuns(store, cids).every(p => 'direct' in p && !p.direct))
    } finally {
      await store.close()
    }
  })

  it('reads blocks in the order asked, blocks still in memory included, and throws for a block the store lacks', async () => {
    const store = await PackStore.open(join(root, 'b'), null)
    try {
      const onDisk = Array.from({ length: 4 }, () => randomBytes(5000))
      const cids = onDisk.map(b => store.put(b))
      await store.sync()
      const inMemory = randomBytes(3000)
      const m = store.put(inMemory) // not written yet
      const order = [cids[3], m, cids[0], cids[1], cids[2]]
      const got: Uint8Array[] = []
      for await (const b of readRuns(store, order)) got.push(b.bytes)
      assert.deepEqual(got.map(b => Buffer.from(b).toString('hex')), [onDisk[3], inMemory, onDisk[0], onDisk[1], onDisk[2]].map(b => b.toString('hex')))
      const other = await PackStore.open(join(root, 'c'), null)
      const stranger = other.put(randomBytes(10))
      await other.close()
      await assert.rejects(async () => { for await (const b of readRuns(store, [cids[0], stranger])) assert.ok(b) }, (err: Error & { code?: string }) => err.code === 'ERR_BLOCK_NOT_FOUND')
    } finally {
      await store.close()
    }
  })
})
