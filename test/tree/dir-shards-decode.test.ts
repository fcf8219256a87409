// Decoding shard bodies with compact CIDs (src/fs/tree/dir-shards.ts decodeShard, src/store/cid.ts
// cidFromBytes): the CIDs of an inner shard's children come out equal to the ones encoded, as
// compact CIDs that share no memory with the decoded buffer; every CID form other than the
// project's own (CIDv1, one-byte codes, 32-byte digest) goes through multiformats as before; and
// a body that @ipld/dag-cbor refuses is refused here too.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import * as cbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { identity } from 'multiformats/hashes/identity'
import { cidOf, cidFromBytes, RAW_CODEC } from '../../src/store/cid.js'
import { padFrame } from '../../src/crypto/index.js'
import { decodeShard, SHARDED } from '../../src/fs/tree/dir-shards.js'

test('cidFromBytes gives the CID multiformats decodes, compact and not a view of the bytes it was given', async () => {
  const forms = [
    cidOf(randomBytes(100)), // BLAKE3, raw: what the store writes
    CID.createV1(RAW_CODEC, await sha256.digest(randomBytes(10))), // a v0.1 store's sha2-256
    CID.createV1(0x71, identity.digest(Uint8Array.of(1, 2, 3))), // a short digest: multiformats' path
    CID.createV0(await sha256.digest(randomBytes(10)))
  ]
  for (const cid of forms) {
    const input = new Uint8Array(cid.bytes)
    const got = cidFromBytes(input)
    assert.ok(got.equals(cid), cid.toString())
    assert.equal(got.toString(), cid.toString())
    assert.equal(got.version, cid.version)
    input.fill(0) // the record's buffer is reused: the CID must not change with it
    assert.ok(got.equals(cid), `${cid.toString()} after its input was overwritten`)
  }
  const own = cidFromBytes(cidOf(randomBytes(10)).bytes)
  assert.equal(own.bytes.byteLength, 36)
  assert.equal(own.bytes.buffer.byteLength, 64 * 1024, 'a slice of the shared slab')
  assert.throws(() => cidFromBytes(cidOf(randomBytes(10)).bytes.subarray(0, 35)), 'a cut CID is refused')
  assert.throws(() => cidFromBytes(Uint8Array.of(3, ...cidOf(randomBytes(10)).bytes.subarray(1))), 'an unknown CID version is refused')
})

test('an inner shard decodes to the children it was encoded with; a body dag-cbor refuses is refused with ERR_INTEGRITY', () => {
  const c: Array<[number, CID, number]> = Array.from({ length: 16 }, (_, i) => [i, cidOf(randomBytes(50)), 1000 + i])
  const framed = padFrame(cbor.encode({ v: SHARDED, c }))
  const body = decodeShard(framed, 1, 'shard')
  assert.equal(body.c!.length, 16)
  for (let i = 0; i < 16; i++) {
    const [slot, cid, n] = body.c![i]
    assert.equal(slot, i)
    assert.equal(n, 1000 + i)
    assert.ok(cid.equals(c[i][1]))
    assert.notEqual(cid.bytes.buffer, framed.buffer, 'not a view of the decoded buffer')
  }
  // The root, with its counts, and a leaf whose record names a CID (a file's block).
  const root = decodeShard(padFrame(cbor.encode({ v: SHARDED, c: c.slice(0, 2), n: 2001, s: 0 })), 0, 'root')
  assert.equal(root.n, 2001)
  assert.ok(root.c![1][1].equals(c[1][1]))
  const leaf = decodeShard(padFrame(cbor.encode({ v: SHARDED, e: [{ n: 'a', t: 1, b: [[0, c[5][1]]] }] })), 2, 'leaf')
  assert.ok((leaf.e![0] as { b: Array<[number, CID]> }).b[0][1].equals(c[5][1]))

  // Not minimal (2 in two bytes), a repeated key, and tag 42 without its leading 0x00: dag-cbor refuses them all.
  const loose = Uint8Array.of(0xa2, 0x61, 0x63, 0x80, 0x61, 0x76, 0x18, 0x02) // {"c": [], "v": 2}
  const twice = Uint8Array.of(0xa2, 0x61, 0x76, 0x02, 0x61, 0x76, 0x02) // {"v": 2, "v": 2}
  for (const b of [loose, twice]) {
    assert.throws(() => cbor.decode(b))
    assert.throws(() => decodeShard(padFrame(b), 1, 'shard'), { code: 'ERR_INTEGRITY' })
  }
  const good = cbor.encode({ v: SHARDED, c: [[0, c[0][1], 1]] })
  const at = Buffer.from(good).indexOf(Buffer.from([0xd8, 0x2a]))
  const bad = new Uint8Array(good)
  bad[at + 4] = 1 // the 0x00 before the CID's bytes (d8 2a 58 25 00 ...)
  assert.throws(() => cbor.decode(bad))
  assert.throws(() => decodeShard(padFrame(bad), 1, 'shard'), { code: 'ERR_INTEGRITY' })
  assert.throws(() => decodeShard(padFrame(cbor.encode({ v: 7, c: [] })), 1, 'shard'), { code: 'ERR_FORMAT' })
})
