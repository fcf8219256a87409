// The fetching store's on-demand path over a real pack store and a recording hub: misses asked
// for together share one request, a block the hub lacks or sends wrong fails alone, and what
// arrived is kept.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { PackStore } from '../../src/store/pack-store.js'
import { cidOf, type CID } from '../../src/store/cid.js'
import { FetchingStore } from '../../src/sync/fetching-store.js'
import { checkBlock } from '../../src/sync/transport-car.js'
import { TransportError, type Block, type BlockTransport } from '../../src/sync/transport.js'

/** Serves `blocks` (checked the way the HTTP transport checks them); a batch naming a CID it lacks is refused whole, as the hub does. */
function hub (blocks: Block[], wrong: Set<string> = new Set()): BlockTransport & { requests: CID[][] } {
  const requests: CID[][] = []
  return {
    requests,
    missing: async () => [],
    put: async () => ({ blocks: 0, bytes: 0 }),
    async * get (cids) {
      requests.push(cids)
      if (cids.some(c => !blocks.some(b => b.cid.equals(c)))) throw new TransportError('ERR_NOT_FOUND', 'hub refused (404 not_found)')
      for (const c of cids) {
        const b = blocks.find(x => x.cid.equals(c))!
        const bytes = wrong.has(c.toString()) ? randomBytes(b.bytes.length) : b.bytes
        checkBlock(c, bytes)
        yield { cid: c, bytes }
      }
    },
    close: async () => {}
  }
}

test('on-demand misses asked for in one turn go to the hub as one request; a block it lacks or sends wrong fails alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-fetching-'))
  try {
    const store = await PackStore.open(dir, null)
    const blocks = Array.from({ length: 6 }, () => randomBytes(3000)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    const h = hub(blocks)
    const fetching = new FetchingStore(store, () => h)
    const got = await Promise.all(blocks.map(async b => await fetching.get(b.cid)))
    got.forEach((bytes, i) => assert.ok(Buffer.from(bytes).equals(blocks[i].bytes)))
    assert.equal(h.requests.length, 1, 'one request for six misses')
    assert.ok(blocks.every(b => store.has(b.cid)), 'kept')
    assert.equal((await fetching.get(blocks[0].cid)).length, 3000)
    assert.equal(h.requests.length, 1, 'a block kept is not fetched again')

    // One CID the hub does not hold, one it sends wrong: those two fail, the others arrive.
    const more = Array.from({ length: 4 }, () => randomBytes(500)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    const absent = cidOf(randomBytes(10))
    const h2 = hub(more, new Set([more[1].cid.toString()]))
    const f2 = new FetchingStore(store, () => h2)
    const results = await Promise.allSettled([...more.map(b => b.cid), absent].map(async c => await f2.get(c)))
    assert.deepEqual(results.map(r => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'rejected'])
    assert.equal((results[1] as PromiseRejectedResult).reason.code, 'ERR_BLOCK_MISMATCH')
    assert.ok(!store.has(more[1].cid), 'the wrong bytes are not kept')
    assert.ok(Buffer.from((results[2] as PromiseFulfilledResult<Uint8Array>).value).equals(more[2].bytes))
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a background download looks each missing block up in the local store once, and keeps every one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-fetching-'))
  try {
    const store = await PackStore.open(dir, null)
    const blocks = Array.from({ length: 40 }, () => randomBytes(2000)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    // Counts the store's has(): for a block in no pack, each is a probe of every pack's index.
    let looks = 0
    const counted = new Proxy(store, { get: (t, p, r) => p === 'has' ? (cid: CID) => { looks++; return t.has(cid) } : (typeof Reflect.get(t, p, r) === 'function' ? Reflect.get(t, p, r).bind(t) : Reflect.get(t, p, r)) })
    const fetching = new FetchingStore(counted, () => hub(blocks))
    await fetching.prefetch(blocks.map(b => b.cid))
    assert.equal(looks, 40, 'one look per block: the filter before the request, none again on arrival')
    assert.ok(blocks.every(b => store.has(b.cid)), 'kept')
    assert.equal(fetching.fetched.blocks, 40)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a part of a block not here yet (a read by recorded nonce) fetches the whole block, checked, keeps it, and serves the part', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-fetching-'))
  try {
    const store = await PackStore.open(dir, null)
    const bytes = randomBytes(9000)
    const b = { cid: cidOf(bytes), bytes }
    const h = hub([b])
    const fetching = new FetchingStore(store, () => h)
    const part = await fetching.store.getRange(b.cid, 4096, 1000)
    assert.ok(Buffer.from(part).equals(bytes.subarray(4096, 5096)))
    assert.equal(h.requests.length, 1)
    assert.ok(store.has(b.cid), 'kept')
    assert.ok(Buffer.from(await fetching.store.getRange(b.cid, 0, 10)).equals(bytes.subarray(0, 10)))
    assert.equal(h.requests.length, 1, 'served from the local store once kept')
    await assert.rejects(fetching.store.getRange(b.cid, 8999, 2), RangeError)
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
