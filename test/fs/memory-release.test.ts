// The pieces an idle daemon gives memory back with (src/memory.ts): the trimmer releases
// once after work and never while idle or while changes are uncommitted; the sealing slots'
// pages go back to the kernel only while no slot is in use; the block cache empties.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { MemoryTrim, fullGc, trimMalloc, tuneMalloc } from '../../src/memory.js'
import { SealPool } from '../../src/crypto/seal-pool.js'
import { SealType } from '../../src/crypto/aead.js'
import { BlockCache } from '../../src/store/block-cache.js'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
/** Keeps this thread busy for `ms`: work, as the trimmer sees it (process CPU time). */
function burn (ms: number): void { const end = Date.now() + ms; while (Date.now() < end) Math.sqrt(Math.random()) }
function rssKiB (): number {
  return Number(readFileSync('/proc/self/status', 'utf8').split('\n').find(l => l.startsWith('VmRSS:'))!.split(/\s+/)[1])
}

test('the trimmer releases once after work has gone quiet, not while changes are uncommitted, and never for an idle process', async () => {
  let releases = 0
  const target = { dirty: false, releaseMemory: () => { releases++ } }
  const trim = new MemoryTrim(target, { checkMs: 100, busyCpuMs: 20 })
  trim.start()
  try {
    await sleep(500)
    assert.equal(releases, 0, 'nothing to release in an idle process')
    target.dirty = true
    for (let i = 0; i < 10; i++) { burn(70); await sleep(30) } // ~700 ms of CPU: work
    await sleep(500)
    assert.equal(releases, 0, 'not while the work is uncommitted')
    target.dirty = false
    const deadline = Date.now() + 5000
    while (releases === 0 && Date.now() < deadline) await sleep(50)
    assert.equal(releases, 1, 'once the work is committed and quiet')
    await sleep(500)
    assert.equal(releases, 1, 'and not again while quiet')
  } finally { trim.stop() }
})

test('the sealing slots give their pages back only while no slot is in use', async () => {
  const pool = new SealPool(BLOCK_SIZE, 8)
  try {
    const plain = Buffer.alloc(BLOCK_SIZE, 7)
    const key = Buffer.alloc(32, 1)
    const sealed = await Promise.all(Array.from({ length: 8 }, async (_, i) => await pool.seal(key, { type: SealType.Block, objectId: Buffer.alloc(16, 2), index: i }, plain)))
    assert.equal(pool.trim(), 0, 'slots in use are left alone')
    const before = rssKiB()
    for (const s of sealed) s.release()
    const given = pool.trim()
    assert.ok(given >= 7 * BLOCK_SIZE, `gave back ${given} bytes`)
    assert.ok(rssKiB() < before - 6 * BLOCK_SIZE / 1024, `RSS ${before} -> ${rssKiB()} KiB`)
    // Sealing works as before on the pages faulted in again (old views inside read as zeros now).
    const length = sealed[3].sealed.length
    assert.ok(sealed[3].sealed.every(b => b === 0))
    const again = await pool.seal(key, { type: SealType.Block, objectId: Buffer.alloc(16, 2), index: 0 }, plain)
    assert.equal(again.sealed.length, length)
    assert.ok(again.sealed.some(b => b !== 0))
    again.release()
  } finally { await pool.close() }
})

test('the block cache empties on clear and counts its bytes', () => {
  const c = new BlockCache(1024 * 1024)
  c.set('a', Buffer.alloc(1000))
  c.set('b', Buffer.alloc(2000))
  assert.equal(c.bytes, 3000)
  c.clear()
  assert.equal(c.bytes, 0)
  assert.equal(c.get('a'), undefined)
})

test('a full collection and malloc_trim run in this process (the addon is built)', () => {
  assert.equal(tuneMalloc(), true)
  assert.equal(fullGc(), true)
  assert.equal(typeof trimMalloc(), 'boolean')
})
