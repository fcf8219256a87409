// Pooled batch buffers (store/buffer-pool.ts) are left out of the RSS that src/memory.ts weighs
// V8's heap against: no collection can give them back, and counting them kept a downloading
// device (108 MiB of fetch buffers) and the hub under pressure for a whole replication, with a
// young generation of 1 MiB semi-spaces and a tight old generation (B: 52-77 major collections
// per GiB against 12-16).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { BufferPool, type Lease } from '../../src/store/buffer-pool.js'
import { MemoryTrim } from '../../src/memory.js'

const MiB = 1024 * 1024
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const newSpace = (): number => v8.getHeapSpaceStatistics().find(s => s.space_name === 'new_space')!.space_size

test('memory held in pooled buffers does not count as pressure: V8\'s young generation grows as it would without them', async () => {
  v8.setFlagsFromString('--semi-space-growth-factor=2') // V8's default
  const pool = new BufferPool(8 * MiB, 16)
  const leases: Lease[] = []
  for (let i = 0; i < 16; i++) { const l = pool.lease(8 * MiB); l.buf.fill(i); leases.push(l) } // resident
  // Above the line by its pooled bytes alone.
  const pressureRss = process.memoryUsage.rss() - 64 * MiB
  const trim = new MemoryTrim({ releaseMemory: () => {} }, { checkMs: 20, pressureRss, busyCpuMs: -1 })
  trim.start()
  try {
    await sleep(60) // a look or two
    let keep: Array<{ i: number, b: number[] }> = []
    for (let round = 0; round < 6 && newSpace() <= 8 * MiB; round++) {
      for (let i = 0; i < 1_000_000; i++) { keep.push({ i, b: [i] }); if (keep.length > 50_000) keep = [] }
      await sleep(30)
    }
    assert.ok(newSpace() > 8 * MiB, `new space stayed at ${(newSpace() / MiB).toFixed(0)} MiB: the pool's ${pool.bytes / MiB} MiB were taken for pressure`)
  } finally {
    trim.stop()
    for (const l of leases) l.done()
    pool.drop()
  }
})

test('a lease never released counts as pooled only until its memory is collected; released ones are counted once', async () => {
  v8.setFlagsFromString('--expose-gc')
  const gc = (await import('node:vm')).runInNewContext('gc') as () => void
  const pool = new BufferPool(MiB, 1)
  const twoBack = (): void => {
    const a = pool.lease(MiB)
    const b = pool.lease(MiB)
    a.done() // back to the free list (keep 1)
    b.done() // the list is full: let go of
  }
  twoBack()
  assert.equal(pool.bytes, MiB)
  const never = (n: number): void => { pool.lease(n).buf.fill(2) } // holders that never release
  never(100) // the free one
  never(MiB) // a new one
  assert.equal(pool.bytes, 2 * MiB)
  for (let i = 0; i < 20 && pool.bytes > 0; i++) { gc(); await sleep(10) }
  assert.equal(pool.bytes, 0, 'both unreleased leases were collected and uncounted')
  const c = pool.lease(MiB)
  c.done()
  gc(); await sleep(20)
  assert.equal(pool.bytes, MiB, 'a free buffer stays counted')
  pool.drop()
  assert.equal(pool.bytes, 0)
})
