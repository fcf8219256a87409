import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { blake3 as blake3Js } from '@noble/hashes/blake3.js'
import { blake3, blake3Native } from '../../src/crypto/blake3.js'
import { cidOf, BLAKE3, RAW_CODEC } from '../../src/store/cid.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('BLAKE3 gives the published digests', () => {
  assert.equal(hex(blake3(new Uint8Array(0))), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262')
  assert.equal(hex(blake3(Buffer.from('abc'))), '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85')
})

test('the native BLAKE3 (where present) agrees with the pure-JS one, also on views of shared memory', () => {
  assert.ok(blake3Native, 'the prebuilt @napi-rs/blake-hash binary is installed on linux-x64')
  const sab = new SharedArrayBuffer(3 * 131072 + 100)
  const all = Buffer.from(sab)
  randomBytes(all.length).copy(all)
  for (const [off, len] of [[0, 131072], [37, 131102], [100, 3 * 131072], [5, 1]]) {
    const view = new Uint8Array(sab, off, len)
    assert.equal(hex(blake3(view)), hex(blake3Js(view)), `offset ${off} length ${len}`)
  }
})

test('CIDs are CIDv1 raw with a BLAKE3 multihash', () => {
  const cid = cidOf(Buffer.from('abc'))
  assert.equal(cid.version, 1)
  assert.equal(cid.code, RAW_CODEC)
  assert.equal(cid.multihash.code, BLAKE3)
  assert.equal(hex(cid.multihash.digest), '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85')
  assert.ok(cid.toString().startsWith('bafkr4i'))
})
