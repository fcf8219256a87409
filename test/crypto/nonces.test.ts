// Nonces of sealed objects (aead.ts): taken from a pooled random buffer, each handed out once,
// across refills of the pool, and every object still opens.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { seal, sealPatch, open, openPatch, nonceOf, randomKey, randomId, SealType } from '../../src/crypto/index.js'

test('3,000 seals in a row (several refills of the nonce pool) get 3,000 distinct nonces and all open', () => {
  const key = randomKey()
  const pos = { type: SealType.Block, objectId: randomId(), index: 7 }
  const seen = new Set<string>()
  const plain = Buffer.from('x'.repeat(5000))
  for (let i = 0; i < 3000; i++) {
    const s = i % 2 === 0 ? seal(key, pos, plain) : sealPatch(key, pos, 3, plain)
    seen.add(nonceOf(s)!.toString('hex'))
    const back = i % 2 === 0 ? open(key, pos, s) : openPatch(key, pos, 3, s)
    assert.ok(back.equals(plain))
  }
  assert.equal(seen.size, 3000)
})
