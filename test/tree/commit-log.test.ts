// The commit journal's records: sealed under the commit key, bound to their store and sequence.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CommitLog } from '../../src/fs/tree/commit-log.js'
import { memoryTree } from '../helpers/memory-store.js'

/** Makes `n` commits of a memory tree into `log`. */
async function commitInto (log: CommitLog, n: number): Promise<void> {
  const { tree } = memoryTree({ sink: log })
  for (let i = 0; i < n; i++) { await tree.mkdir(`/d${i}`, 0o755); await tree.commit() }
}

test('commit records open in order under their key, and a damaged, foreign or reordered one is ERR_STORE_CORRUPT', async () => {
  const key = randomBytes(32)
  const storeId = randomBytes(16)
  const sealed: Buffer[] = []
  const log = new CommitLog(key, storeId, { append: async b => { sealed.push(Buffer.from(b)) } })
  await commitInto(log, 3)
  assert.deepEqual(log.decodeAll(sealed).map(r => r.seq), [1, 2, 3])
  const damaged = sealed.map(b => Buffer.from(b))
  damaged[1][damaged[1].length - 1] ^= 0x01
  assert.throws(() => log.decodeAll(damaged), { code: 'ERR_STORE_CORRUPT', message: /record 2 fails authentication/ })
  assert.throws(() => log.decodeAll([sealed[1], sealed[0]]), { code: 'ERR_STORE_CORRUPT' })
  assert.throws(() => new CommitLog(key, randomBytes(16), { append: async () => {} }).decodeAll(sealed), { code: 'ERR_STORE_CORRUPT' })
  assert.throws(() => new CommitLog(randomBytes(32), storeId, { append: async () => {} }).decodeAll(sealed), { code: 'ERR_STORE_CORRUPT' })
})
