import { test } from 'node:test'
import assert from 'node:assert/strict'
import { seal, open, randomKey, randomId, SealType, AuthError, padme, padFrame, unpadFrame, sealedLength } from '../../src/crypto/index.js'

test('seal/open round trip, fresh nonce every time', () => {
  const key = randomKey()
  const pos = { type: SealType.Block, objectId: randomId(), index: 7 }
  const plain = Buffer.from('hello sealed world')
  const a = seal(key, pos, plain)
  const b = seal(key, pos, plain)
  assert.equal(a.length, sealedLength(plain.length))
  assert.notDeepEqual(a, b, 'same plaintext must not give the same ciphertext')
  assert.deepEqual(open(key, pos, a), plain)
})

test('every byte is authenticated, and so is the position', () => {
  const key = randomKey()
  const id = randomId()
  const pos = { type: SealType.Block, objectId: id, index: 3 }
  const sealed = seal(key, pos, Buffer.alloc(100, 1))
  for (let i = 0; i < sealed.length; i++) {
    const t = Buffer.from(sealed)
    t[i] ^= 0x40
    assert.throws(() => open(key, pos, t), (e: Error) => e instanceof AuthError || (e as { code?: string }).code === 'ERR_FORMAT', `byte ${i}`)
  }
  assert.throws(() => open(key, { ...pos, index: 4 }, sealed), AuthError, 'moved to another index')
  assert.throws(() => open(key, { ...pos, objectId: randomId() }, sealed), AuthError, 'moved to another file')
  assert.throws(() => open(key, { ...pos, type: SealType.Dir }, sealed), AuthError, 'read as another type')
  assert.throws(() => open(randomKey(), pos, sealed), AuthError, 'wrong key')
})

test('padme hides all but the coarse size and never shrinks', () => {
  let prev = 0
  for (let n = 0; n <= 300_000; n += n < 5000 ? 1 : 997) {
    const p = padme(n)
    assert.ok(p >= n, `padme(${n}) = ${p}`)
    assert.ok(p >= prev, 'monotone')
    if (n > 16) assert.ok(p - n <= n * 0.12 + 1, `overhead at ${n}`)
    prev = p
  }
  assert.equal(padme(128 * 1024), 128 * 1024)
  const distinct = new Set(Array.from({ length: 1000 }, (_, i) => padme(100_000 + i)))
  assert.ok(distinct.size <= 2, 'a thousand nearby sizes collapse to one or two')
})

test('padFrame/unpadFrame round trip and reject malformed frames', () => {
  for (const n of [0, 1, 5, 100, 4096, 70_000]) {
    const body = Buffer.alloc(n, 7)
    assert.deepEqual(unpadFrame(padFrame(body)), body)
  }
  const bad = Buffer.alloc(8)
  bad.writeUInt32BE(100, 0)
  assert.equal(unpadFrame(bad), null)
})
