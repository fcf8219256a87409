// One memory budget for the drive's pools (src/drive/memory-budget.ts) and V8's heap kept near
// what is live (src/memory.ts tuneHeap): the shares add up to no more than the budget, and the
// young generation stays small while a process that runs Workers allocates (Node puts V8's flags
// back whenever a Worker starts; MemoryTrim applies them again).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { Worker } from 'node:worker_threads'
import { DEFAULT_MEMORY_BUDGET, memoryShares } from '../../src/drive/memory-budget.js'
import { MemoryTrim } from '../../src/memory.js'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'

const MiB = 1024 * 1024
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

test('the pools\' shares add up to no more than the budget, with enough sealing slots for two pack appends', () => {
  for (const total of [DEFAULT_MEMORY_BUDGET, 100 * MiB, 256 * MiB]) {
    const s = memoryShares(total)
    const sum = s.cacheBytes + s.sealSlots * BLOCK_SIZE + s.dirtyBudget + s.keptBuffers * BLOCK_SIZE
    assert.ok(sum <= total, `${sum} of ${total}`)
  }
  for (const total of [8 * MiB, DEFAULT_MEMORY_BUDGET]) {
    const s = memoryShares(total)
    assert.ok(s.sealSlots >= 64, 'at least 8 MiB of slots: the writer appends 4 MiB at a time and frees slots only then')
    assert.equal(s.maxSeals, s.sealSlots, 'no seal job waits for a slot holding its buffer')
  }
  const d = memoryShares()
  assert.equal(d.cacheBytes + d.sealSlots * BLOCK_SIZE + d.dirtyBudget + d.keptBuffers * BLOCK_SIZE, DEFAULT_MEMORY_BUDGET)
  assert.equal(memoryShares(DEFAULT_MEMORY_BUDGET, 100 * MiB).cacheBytes, 100 * MiB, '--cache-mb replaces the cache\'s share')
})

test('under memory pressure, V8\'s young generation stays small while a process with a Worker allocates', async () => {
  const newSpace = (): number => v8.getHeapSpaceStatistics().find(s => s.space_name === 'new_space')!.physical_space_size
  const trim = new MemoryTrim({ releaseMemory: () => {} }, { checkMs: 50, pressureRss: 0 }) // always pressed here
  trim.start()
  // A Worker started after the trimmer: its start puts V8's flags back to the command line's.
  const w = new Worker('setTimeout(() => {}, 2000)', { eval: true })
  try {
    await new Promise(resolve => w.once('online', resolve))
    await sleep(120) // the trimmer's next look applies them again
    let keep: Array<{ i: number, b: Buffer }> = []
    let most = 0
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 100_000; i++) { keep.push({ i, b: Buffer.alloc(64) }); if (keep.length > 3000) keep = [] }
      most = Math.max(most, newSpace())
      await sleep(60)
    }
    assert.ok(most <= 4 * MiB, `new space reached ${(most / MiB).toFixed(0)} MiB (V8's default grows it to 16-32)`)
  } finally {
    trim.stop()
    await w.terminate()
  }
})

test('under memory pressure, a young generation that grew before it is shrunk at the next look (a growth factor of 1 alone keeps it)', async () => {
  const newSpace = (): number => v8.getHeapSpaceStatistics().find(s => s.space_name === 'new_space')!.space_size
  v8.setFlagsFromString('--semi-space-growth-factor=2') // V8's default: no pressure yet
  let keep: Array<{ i: number, b: number[] }> = []
  const churn = (): void => { for (let i = 0; i < 1_000_000; i++) { keep.push({ i, b: [i] }); if (keep.length > 50_000) keep = [] } }
  for (let i = 0; i < 4 && newSpace() <= 8 * MiB; i++) churn()
  const grown = newSpace()
  assert.ok(grown > 8 * MiB, `new space grew to ${(grown / MiB).toFixed(0)} MiB first`)
  const trim = new MemoryTrim({ releaseMemory: () => {} }, { checkMs: 50, pressureRss: 0, busyCpuMs: -1 }) // pressed, and working
  trim.start()
  try {
    for (let round = 0; round < 6; round++) { churn(); await sleep(60) }
    assert.ok(newSpace() <= 4 * MiB, `new space ${(newSpace() / MiB).toFixed(0)} MiB under pressure (was ${(grown / MiB).toFixed(0)})`)
    assert.ok(trim.counts.trims >= 1)
  } finally {
    trim.stop()
    keep = []
  }
})
