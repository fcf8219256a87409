// Which blocks a commit added: the records between two watermarks of a real pack store, each
// once, in order.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { PackStore } from '../../src/store/pack-store.js'
import { blocksBetween } from '../../src/sync/new-blocks.js'

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
