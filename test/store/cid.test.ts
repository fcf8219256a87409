// CID strings (src/store/cid.ts): the base32 encoder installed on multiformats' default one writes
// exactly what multiformats' own encoder writes, for bytes of any length, and a flat string.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { base32 } from 'multiformats/bases/base32'
import { cidOf, CID } from '../../src/store/cid.js'

test('the installed base32 encoder gives the bytes multiformats\' own does, for every length up to 100 and for CIDs', () => {
  const reference = { encoder: { encode: (b: Uint8Array): string => 'b' + base32.baseEncode(b) } } // multiformats' own, not replaced
  for (let len = 0; len <= 100; len++) {
    for (let k = 0; k < 20; k++) {
      const bytes = len === 0 ? new Uint8Array(0) : k === 0 ? new Uint8Array(len).fill(0xff) : k === 1 ? new Uint8Array(len) : randomBytes(len)
      assert.equal(base32.encoder.encode(bytes), reference.encoder.encode(bytes), `${len} bytes`)
    }
  }
  const cid = cidOf(randomBytes(100))
  assert.equal(cid.toString(), reference.encoder.encode(cid.bytes))
  assert.ok(CID.parse(cid.toString()).equals(cid), 'parses back')
})
