// SealPool (src/crypto/seal-pool.ts): blocks sealed on the worker into shared slots, the jobs of
// one turn of the event loop in one message (seal-jobs.ts packs them), each digest in its slot.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { SealPool, open, randomKey, randomId, SealType } from '../../src/crypto/index.js'
import { blake3 } from '../../src/crypto/blake3.js'

const B = 128 * 1024

test('blocks sealed in one turn go to the worker in one message, each sealed under its own key and position, with its digest', async () => {
  const pool = new SealPool(B, 32)
  try {
    const jobs = Array.from({ length: 16 }, (_, i) => ({
      key: randomKey(), pos: { type: SealType.Block, objectId: randomId(), index: i }, plain: randomBytes(i === 15 ? 5000 : B)
    }))
    const sealed = await Promise.all(jobs.map(async j => await pool.seal(j.key, j.pos, j.plain)))
    assert.deepEqual(pool.counts, { messages: 4, jobs: 16 }) // four jobs a message
    sealed.forEach((s, i) => {
      assert.ok(s.digest.equals(blake3(s.sealed)), `block ${i}: its digest is the sealed bytes'`)
      assert.ok(open(jobs[i].key, jobs[i].pos, s.sealed).equals(jobs[i].plain), `block ${i} opens to its plaintext`)
      assert.throws(() => open(jobs[(i + 1) % 16].key, jobs[i].pos, s.sealed), `block ${i} does not open under another key`)
    })
    for (const s of sealed) s.release()
    // A later turn: a message of its own.
    const again = await pool.seal(jobs[0].key, jobs[0].pos, jobs[0].plain)
    assert.deepEqual(pool.counts, { messages: 5, jobs: 17 })
    again.release()
  } finally {
    await pool.close()
  }
})

test('a job the worker refuses fails alone; the others of its message seal', async () => {
  const pool = new SealPool(B, 8)
  try {
    const key = randomKey()
    const pos = (index: number): { type: SealType, objectId: Uint8Array, index: number } => ({ type: SealType.Block, objectId: randomId(), index })
    const bad = { type: SealType.Block, objectId: randomBytes(15), index: 1 } // not a 16-byte object id
    const results = await Promise.allSettled([pool.seal(key, pos(0), randomBytes(B)), pool.seal(key, bad, randomBytes(B)), pool.seal(key, pos(2), randomBytes(B))])
    assert.deepEqual(results.map(r => r.status), ['fulfilled', 'rejected', 'fulfilled'])
    for (const r of results) if (r.status === 'fulfilled') r.value.release()
  } finally {
    await pool.close()
  }
})
