// Which blocks a commit added: the records between two watermarks of a real pack store, each
// once, in order.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { PackStore } from '../../src/store/pack-store.js'
import { blocksBetween, AppendedBlocks } from '../../src/sync/new-blocks.js'
import { FetchingStore } from '../../src/sync/fetching-store.js'
import { cidOf } from '../../src/store/cid.js'
import type { BlockTransport } from '../../src/sync/transport.js'

test('the blocks between two watermarks are exactly those appended between them, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-newblocks-'))
  try {
    const store = await PackStore.open(dir, null)
    const blockOne = randomBytes(1000)
    const first = [store.put(blockOne), store.put(randomBytes(70_000))]
    const w1 = await store.sync()
    const second = [store.put(randomBytes(5000)), store.put(randomBytes(1))]
    assert.equal(store.put(blockOne).toString(), first[0].toString()) // already stored: not appended again
    const w2 = await store.sync()
    assert.equal((await blocksBetween(dir, null, w2)).length, 4)
    assert.deepEqual((await blocksBetween(dir, null, w1)).map(b => b.cid.toString()), first.map(c => c.toString()))
    assert.deepEqual((await blocksBetween(dir, w1, w2)).map(b => b.cid.toString()), second.map(c => c.toString()))
    assert.deepEqual(await blocksBetween(dir, w2, w2), [])
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('records of every size, across packs, are found with their places (headers read, bodies jumped over)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-newblocks-'))
  try {
    const store = await PackStore.open(dir, null, { packLimit: 3 * 1024 * 1024 })
    const sizes: number[] = []
    // Small records many to a read, 128 KiB ones one to a read, sizes that put a header across a read's end.
    for (let i = 0; i < 200; i++) sizes.push(i % 5 === 0 ? 128 * 1024 + 40 : i % 3 === 0 ? 16 * 1024 - 30 - (i % 7) : 100 + i * 37)
    const w0 = await store.sync()
    const cids = sizes.map(n => store.put(randomBytes(n)))
    const w1 = await store.sync()
    const found = await blocksBetween(dir, w0, w1)
    for (const b of found) assert.ok((await store.get(b.cid)).length > 0) // each CID names its record (not bytes of a reused read buffer)
    assert.ok(w1.pack > w0.pack, 'the blocks span packs')
    assert.deepEqual(found.map(b => b.cid.toString()), cids.map(c => c.toString()))
    for (const b of found) {
      const loc = store.locate(b.cid, true)
      assert.ok(loc != null)
      assert.equal(b.length, loc.length)
      assert.equal(b.offset, loc.position)
    }
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the appends a process saw list the same blocks as a scan of the packs, and a range older than them is scanned', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-newblocks-'))
  try {
    let store = await PackStore.open(dir, null, { packLimit: 1024 * 1024 })
    store.put(randomBytes(500))
    const old = await store.sync()
    await store.close()
    store = await PackStore.open(dir, old, { packLimit: 1024 * 1024 })
    const recent = new AppendedBlocks(store)
    const w0 = await store.sync()
    for (let i = 0; i < 40; i++) store.put(randomBytes(i % 4 === 0 ? 128 * 1024 + 40 : 200 + i * 50))
    const w1 = await store.sync()
    for (let i = 0; i < 10; i++) store.put(randomBytes(3000))
    const w2 = await store.sync()
    const strip = (bs: Array<{ cid: unknown, pack: number, offset: number, length: number }>): string[] => bs.map(b => `${String(b.cid)} ${b.pack}:${b.offset}+${b.length}`)
    assert.ok(w2.pack > w0.pack, 'the blocks span packs')
    const seen1 = recent.between(w0, w1)
    assert.ok(seen1 != null)
    assert.equal(seen1.length, 40)
    assert.deepEqual(strip(seen1), strip(await blocksBetween(dir, w0, w1)))
    assert.deepEqual(strip(recent.between(w1, w2)!), strip(await blocksBetween(dir, w1, w2)))
    // From the start, only what came before this process is read from the packs: with the packs
    // it wrote alone gone, the listing is still whole and the same as the scan's.
    const whole = strip(await blocksBetween(dir, null, w2))
    const gone = readdirSync(dir).filter(f => /^\d{8}\.pack$/.test(f) && Number(f.slice(0, 8)) > recent.covered.pack)
    assert.ok(gone.length > 0)
    for (const f of gone) renameSync(join(dir, f), join(dir, `${f}.away`))
    assert.deepEqual(strip(await blocksBetween(dir, null, w2, recent)), whole)
    await assert.rejects(blocksBetween(dir, null, w2), { code: 'ENOENT' }, 'a scan of it all needs them')
    for (const f of gone) renameSync(join(dir, `${f}.away`), join(dir, f))
    recent.forget(w1)
    assert.deepEqual(strip(recent.between(w1, w2)!), strip(await blocksBetween(dir, w1, w2)))
    // Before this process opened the store, or from the start: the packs are scanned.
    assert.equal(recent.between(null, w2), null)
    assert.equal(recent.between({ pack: old.pack, offset: 0 }, w2), null)
    assert.equal((await blocksBetween(dir, null, w2, recent)).length, 51)
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the appends kept in memory are capped: past the cap, older ranges are scanned, and the listing stays exact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-newblocks-cap-'))
  try {
    const store = await PackStore.open(dir, null, { packLimit: 1024 * 1024 })
    const recent = new AppendedBlocks(store, 8)
    const w0 = await store.sync()
    for (let i = 0; i < 5; i++) store.put(randomBytes(1000 + i))
    const w1 = await store.sync()
    for (let i = 0; i < 4; i++) store.put(randomBytes(2000 + i)) // the 9th append drops the 8 before it
    const w2 = await store.sync()
    for (let i = 0; i < 3; i++) store.put(randomBytes(3000 + i))
    const w3 = await store.sync()
    assert.equal(recent.between(w0, w1), null, 'dropped at the cap: no longer answered from memory')
    assert.equal(recent.between(w1, w2), null)
    assert.equal(recent.between(w2, w3)?.length, 3, 'what came after the drop is')
    assert.equal((await blocksBetween(dir, w0, w3, recent)).length, 12)
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('blocks that came from the hub (fetched into the store) are left out of the list; the device\'s own are all there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-newblocks-hub-'))
  try {
    const store = await PackStore.open(dir, null)
    const recent = new AppendedBlocks(store)
    const hubBlocks = [randomBytes(128 * 1024), randomBytes(700)].map(bytes => ({ cid: cidOf(bytes), bytes }))
    // The hub's side of the transport: hands over the blocks asked for.
    const hub: BlockTransport = {
      missing: async () => [],
      put: async () => ({ blocks: 0, bytes: 0 }),
      async * get (cids) { for (const c of cids) yield hubBlocks.find(b => b.cid.equals(c))! },
      close: async () => {}
    }
    const fetching = new FetchingStore(store, () => hub)
    recent.fromHub = cid => fetching.fromHub(cid)
    const w0 = await store.sync()
    const own = [store.put(randomBytes(5000)), store.put(randomBytes(128 * 1024))]
    await fetching.prefetch(hubBlocks.map(b => b.cid))
    assert.equal((await fetching.get(hubBlocks[1].cid)).length, 700)
    own.push(store.put(randomBytes(10)))
    const w1 = await store.sync()
    assert.deepEqual(recent.between(w0, w1)!.map(b => b.cid.toString()), own.map(c => c.toString()))
    assert.equal((await blocksBetween(dir, w0, w1)).length, 5, 'the packs hold all five')
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
