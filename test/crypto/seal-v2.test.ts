// Sealed object v2 (src/crypto/aead.ts, docs/format.md "Sealed object"): 4 KiB segments, each
// under its own nonce and position, the type only in the associated data; patches numbered by
// their place in the block; v1 objects still open. And the native part reader
// (native/src/space_block.c readPart): the first read checks the whole object against its CID,
// later ones read and open only the segments asked for under the remembered nonce.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import {
  seal, sealPatch, sealV1, sealInto, open, openPatch, openSegments, nonceOf, plainLength, sealedLength, segmentOffset,
  randomKey, randomId, SealType, AuthError, FormatError, SEGMENT, SEGMENT_SEALED, V2_HEADER, SEAL_V2, readPart
} from '../../src/crypto/index.js'
import { MismatchError } from '../../src/crypto/open-file.js'
import { cidOf } from '../../src/store/cid.js'

const key = randomKey()
const pos = { type: SealType.Block, objectId: randomId(), index: 5 }

test('v2 objects of every length round-trip, and their length says their plaintext length', () => {
  for (const n of [0, 1, 100, 4095, 4096, 4097, 8192, 65536 + 17, 128 * 1024]) {
    const plain = randomBytes(n)
    const sealed = seal(key, pos, plain)
    assert.equal(sealed[0], SEAL_V2)
    assert.equal(sealed.length, sealedLength(n), `length of ${n}`)
    assert.equal(plainLength(SEAL_V2, sealed.length), n)
    assert.ok(open(key, pos, sealed).equals(plain), `${n} bytes`)
    // sealInto, in place (the seal worker's way), gives an object that opens the same.
    const slot = Buffer.alloc(sealedLength(n) + 64)
    plain.copy(slot)
    const len = sealInto(key, pos, slot.subarray(0, n), slot)
    assert.equal(len, sealedLength(n))
    assert.ok(open(key, pos, slot.subarray(0, len)).equals(plain), `sealInto ${n}`)
  }
})

test('v2 has no type in the clear: the same plaintext sealed as two types differs only in nonce and ciphertext, and a wrong type fails', () => {
  const a = seal(key, { ...pos, type: SealType.Dir }, Buffer.alloc(50))
  const b = seal(key, pos, Buffer.alloc(50))
  assert.equal(a.length, b.length)
  assert.equal(a[0], b[0])
  assert.throws(() => open(key, pos, a), AuthError)
  assert.throws(() => open(key, { ...pos, index: 6 }, b), AuthError, 'another index')
  assert.throws(() => open(key, { ...pos, objectId: randomId() }, b), AuthError, 'another file')
})

test('every byte of a v2 object is authenticated', () => {
  const sealed = seal(key, pos, randomBytes(2 * SEGMENT + 300))
  for (let i = 0; i < sealed.length; i += 7) {
    const t = Buffer.from(sealed)
    t[i] ^= 0x20
    assert.throws(() => open(key, pos, t), (e: Error) => e instanceof AuthError || e instanceof FormatError, `byte ${i}`)
  }
})

test('segments cannot be reordered, cut off at a segment boundary, or swapped with another object of the same block', () => {
  const plain = randomBytes(4 * SEGMENT)
  const sealed = seal(key, pos, plain)
  const seg = (o: Buffer, k: number): Buffer => o.subarray(segmentOffset(k), segmentOffset(k) + SEGMENT_SEALED)
  // Two segments swapped within the object: each is bound to its number.
  const swapped = Buffer.from(sealed)
  seg(sealed, 1).copy(swapped, segmentOffset(2))
  seg(sealed, 2).copy(swapped, segmentOffset(1))
  assert.throws(() => open(key, pos, swapped), AuthError, 'swapped segments')
  // Cut after segment 2: segment 2 was not sealed as the last one.
  assert.throws(() => open(key, pos, sealed.subarray(0, segmentOffset(3))), AuthError, 'cut at a segment boundary')
  assert.throws(() => open(key, pos, sealed.subarray(0, segmentOffset(3) + 5)), AuthError, 'cut inside a segment')
  // Another sealed version of the same block: its segment 1 at the same place does not authenticate.
  const other = seal(key, pos, randomBytes(4 * SEGMENT))
  const mixed = Buffer.from(sealed)
  seg(other, 1).copy(mixed, segmentOffset(1))
  assert.throws(() => open(key, pos, mixed), AuthError, 'a segment of another object')
})

test('a patch opens at its place in the block and nowhere else', () => {
  const plain = randomBytes(3 * SEGMENT)
  const patch = sealPatch(key, pos, 7, plain)
  assert.ok(openPatch(key, pos, 7, patch).equals(plain))
  assert.throws(() => openPatch(key, pos, 6, patch), AuthError, 'moved to another segment')
  assert.throws(() => open(key, pos, patch), AuthError, 'read as a whole block')
  assert.throws(() => openPatch(key, { ...pos, index: 4 }, 7, patch), AuthError, 'moved to another block')
})

test('segments open alone under the remembered nonce, and only under it', () => {
  const plain = randomBytes(5 * SEGMENT + 1000)
  const sealed = seal(key, pos, plain)
  const nonce = nonceOf(sealed)!
  const last = 5
  const part = sealed.subarray(segmentOffset(2), segmentOffset(4))
  assert.ok(openSegments(key, pos, nonce, 2, last, part).equals(plain.subarray(2 * SEGMENT, 4 * SEGMENT)))
  assert.ok(openSegments(key, pos, nonce, 5, last, sealed.subarray(segmentOffset(5))).equals(plain.subarray(5 * SEGMENT)), 'the short final segment')
  assert.throws(() => openSegments(key, pos, nonce, 3, last, part), AuthError, 'at another number')
  assert.throws(() => openSegments(key, pos, randomBytes(12), 2, last, part), AuthError, 'under another nonce')
  assert.throws(() => openSegments(key, pos, nonce, 4, 4, sealed.subarray(segmentOffset(4), segmentOffset(5))), AuthError, 'claimed to be the last')
  // The same segment of another object of the same block: refused under this object's nonce.
  const other = seal(key, pos, randomBytes(plain.length))
  assert.throws(() => openSegments(key, pos, nonce, 2, last, other.subarray(segmentOffset(2), segmentOffset(3))), AuthError, 'substituted segment')
})

test('v1 objects still open, and an unknown version is a format error', () => {
  const plain = randomBytes(1000)
  const v1 = sealV1(key, pos, plain)
  assert.equal(v1[0], 1)
  assert.equal(v1[1], SealType.Block)
  assert.ok(open(key, pos, v1).equals(plain))
  assert.equal(nonceOf(v1), null)
  const v3 = Buffer.from(v1)
  v3[0] = 3
  assert.throws(() => open(key, pos, v3), FormatError)
})

test('the native part reader checks the first read against the CID, then reads only segments under the remembered nonce and refuses a substituted one', async () => {
  assert.ok(readPart != null, 'native/build/Release/space_block.node loads')
  const dir = mkdtempSync(join(process.env.SPACE_TEST_DISK_TMP ?? '/var/tmp', 'space-part-'))
  try {
    const plain = randomBytes(128 * 1024)
    const sealed = seal(key, pos, plain)
    const lead = 999
    const file = Buffer.concat([randomBytes(lead), sealed, randomBytes(50)])
    const path = join(dir, 'pack')
    writeFileSync(path, file)
    const fd = openSync(path, 'r')
    try {
      const at = { fd, position: lead, length: sealed.length }
      const hash = cidOf(sealed).multihash
      // First read: the whole object is hashed; its nonce comes back.
      const dst = Buffer.alloc(5000)
      const r = await readPart!(at, key, { pos, hash, first: 0, from: 10_000, to: 15_000 }, null, dst)
      assert.equal(r.n, 5000)
      assert.ok(dst.equals(plain.subarray(10_000, 15_000)))
      assert.ok(r.nonce != null && r.nonce.equals(nonceOf(sealed)!))
      // Later reads: segments only, under the nonce.
      const again = Buffer.alloc(4096)
      const r2 = await readPart!(at, key, { pos, hash, first: 0, from: 8192, to: 12288 }, r.nonce, again)
      assert.equal(r2.n, 4096)
      assert.ok(again.equals(plain.subarray(8192, 12288)))
      // A wrong CID on a first read: refused as a mismatch, zeros left.
      const bad = Buffer.alloc(100, 0xee)
      const r3 = await readPart!(at, key, { pos, hash: cidOf(randomBytes(10)).multihash, first: 0, from: 0, to: 100 }, null, bad)
      assert.ok(r3.n instanceof MismatchError)
      assert.ok(bad.equals(Buffer.alloc(100)))
    } finally { closeSync(fd) }
    // Segment 2 replaced by segment 2 of another sealed version of the same block.
    const other = seal(key, pos, randomBytes(128 * 1024))
    other.copy(file, lead + segmentOffset(2), segmentOffset(2), segmentOffset(3))
    writeFileSync(path, file)
    const fd2 = openSync(path, 'r')
    try {
      const at = { fd: fd2, position: lead, length: sealed.length }
      const dst = Buffer.alloc(4096, 0xee)
      const r = await readPart!(at, key, { pos, hash: cidOf(sealed).multihash, first: 0, from: 8192, to: 12288 }, nonceOf(sealed), dst)
      assert.ok(r.n instanceof AuthError, String(r.n))
      assert.ok(dst.equals(Buffer.alloc(4096)), 'zeros, not the other version')
      // Segment 3 (untouched) still reads.
      const ok = await readPart!(at, key, { pos, hash: cidOf(sealed).multihash, first: 0, from: 12288, to: 12300 }, nonceOf(sealed), dst)
      assert.equal(ok.n, 12)
    } finally { closeSync(fd2) }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('the native part reader reads a patch at its place, a v1 object whole, and stops at an object\'s end', async () => {
  const dir = mkdtempSync(join(process.env.SPACE_TEST_DISK_TMP ?? '/var/tmp', 'space-part-'))
  try {
    const pplain = randomBytes(2 * SEGMENT)
    const patch = sealPatch(key, pos, 30, pplain)
    const v1plain = randomBytes(7000)
    const v1 = sealV1(key, pos, v1plain)
    const path = join(dir, 'pack')
    writeFileSync(path, Buffer.concat([patch, v1]))
    const fd = openSync(path, 'r')
    try {
      const pat = { fd, position: 0, length: patch.length }
      const dst = Buffer.alloc(2 * SEGMENT)
      const r = await readPart!(pat, key, { pos, hash: cidOf(patch).multihash, first: 30, from: 30 * SEGMENT + 100, to: 32 * SEGMENT }, null, dst)
      assert.equal(r.n, 2 * SEGMENT - 100)
      assert.ok(dst.subarray(0, r.n as number).equals(pplain.subarray(100)))
      const r2 = await readPart!(pat, key, { pos, hash: cidOf(patch).multihash, first: 30, from: 31 * SEGMENT, to: 32 * SEGMENT }, r.nonce, dst)
      assert.ok(dst.subarray(0, SEGMENT).equals(pplain.subarray(SEGMENT)))
      assert.equal(r2.n, SEGMENT)
      const vat = { fd, position: patch.length, length: v1.length }
      const r3 = await readPart!(vat, key, { pos, hash: cidOf(v1).multihash, first: 0, from: 5000, to: 9000 }, null, dst)
      assert.equal(r3.n, 2000, 'the object ends at 7000')
      assert.equal(r3.nonce, null, 'v1 objects have no segments to remember')
      assert.ok(dst.subarray(0, 2000).equals(v1plain.subarray(5000)))
    } finally { closeSync(fd) }
  } finally { rmSync(dir, { recursive: true, force: true }) }
  assert.equal(V2_HEADER, 13)
})
