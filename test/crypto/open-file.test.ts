// openRun (native/src/space_block.c): blocks sealed by aead.ts, laid back to back in a file with
// record-sized gaps, open into their places, buffered and with O_DIRECT; a bad block fails alone
// and leaves zeros; a failed read rejects; bad arguments throw.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync, constants as FS } from 'node:fs'
import { join } from 'node:path'
import { randomBytes, createHash } from 'node:crypto'
import { seal, SealType, AuthError, openRun, type RunBlock } from '../../src/crypto/index.js'
import { MismatchError, nativeDigest } from '../../src/crypto/open-file.js'
import { blake3 } from '../../src/crypto/blake3.js'
import { cidOf } from '../../src/store/cid.js'

const B = 128 * 1024
const key = randomBytes(32)
const objectId = randomBytes(16)

interface Laid { file: Buffer, blocks: RunBlock[], plains: Buffer[], start: number }

/** Seals `sizes` plaintexts and lays them out after `lead` bytes, 42-byte gaps between. */
function layOut (sizes: number[], lead = 1234): Laid {
  const parts: Buffer[] = [randomBytes(lead)]
  const blocks: RunBlock[] = []
  const plains: Buffer[] = []
  let off = 0
  let at = 0
  sizes.forEach((n, index) => {
    const plain = randomBytes(n)
    const sealed = seal(key, { type: SealType.Block, objectId, index }, plain)
    if (index > 0) { parts.push(randomBytes(42)); off += 42 }
    blocks.push({ offset: off, length: sealed.length, pos: { type: SealType.Block, objectId, index }, at, room: B, hash: cidOf(sealed).multihash })
    parts.push(sealed)
    plains.push(plain)
    off += sealed.length
    at += B
  })
  parts.push(randomBytes(777))
  return { file: Buffer.concat(parts), blocks, plains, start: lead }
}

const runLength = (l: Laid): number => l.blocks.at(-1)!.offset + l.blocks.at(-1)!.length

test('the native run reader is built', () => {
  assert.ok(openRun != null, 'native/build/Release/space_block.node loads')
})

test('a run opens every block into its place, buffered and with O_DIRECT', async () => {
  const dir = mkdtempSync(join(process.env.SPACE_TEST_DISK_TMP ?? '/var/tmp', 'space-open-'))
  try {
    const l = layOut([B, B, B, 5000])
    const path = join(dir, 'run')
    writeFileSync(path, l.file)
    for (const flags of [FS.O_RDONLY, FS.O_RDONLY | FS.O_DIRECT]) {
      const fd = openSync(path, flags)
      try {
        const dst = Buffer.alloc(4 * B, 0xee)
        const res = await openRun!({ fd, position: l.start, length: runLength(l), direct: flags !== FS.O_RDONLY }, key, l.blocks, dst)
        assert.deepEqual(res, [B, B, B, 5000])
        l.plains.forEach((p, i) => assert.ok(dst.subarray(i * B, i * B + p.length).equals(p), `block ${i}`))
        assert.equal(dst[3 * B + 5000], 0xee, 'nothing written past a plaintext')
      } finally { closeSync(fd) }
    }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a flipped byte (under a matching hash) or a wrong position fails authentication for that block alone, and its room is zeroed', async () => {
  const dir = mkdtempSync(join(process.env.SPACE_TEST_DISK_TMP ?? '/var/tmp', 'space-open-'))
  try {
    const l = layOut([B, B, B])
    l.file[l.start + l.blocks[1].offset + 500] ^= 0x10
    // Named by the hash of its damaged bytes, so that authentication is what refuses it.
    const damaged = l.file.subarray(l.start + l.blocks[1].offset, l.start + l.blocks[1].offset + l.blocks[1].length)
    l.blocks[1] = { ...l.blocks[1], hash: cidOf(damaged).multihash }
    const path = join(dir, 'run')
    writeFileSync(path, l.file)
    const fd = openSync(path, FS.O_RDONLY)
    try {
      const dst = Buffer.alloc(3 * B, 0xee)
      const res = await openRun!({ fd, position: l.start, length: runLength(l) }, key, l.blocks, dst)
      assert.equal(res[0], B)
      assert.ok(res[1] instanceof AuthError)
      assert.equal(res[2], B)
      assert.ok(dst.subarray(B, 2 * B).equals(Buffer.alloc(B)), 'the failed block left zeros')
      assert.ok(dst.subarray(2 * B).equals(l.plains[2]))
      // Block 0 read as if it were block 7: the associated data differs.
      const moved = [{ ...l.blocks[0], pos: { ...l.blocks[0].pos, index: 7 } }]
      const again = await openRun!({ fd, position: l.start, length: runLength(l) }, key, moved, Buffer.alloc(B))
      assert.ok(again[0] instanceof AuthError)
      // A plaintext larger than its room.
      const tight = [{ ...l.blocks[0], room: B - 1 }]
      const small = await openRun!({ fd, position: l.start, length: runLength(l) }, key, tight, Buffer.alloc(B))
      assert.equal((small[0] as Error & { code: string }).code, 'ERR_RANGE')
      // A run past the end of the file rejects as a cut-short read.
      await assert.rejects(openRun!({ fd, position: l.file.length - 10, length: 100 }, key, [{ ...l.blocks[0], offset: 0, length: 100 }], Buffer.alloc(B)), { code: 'ERR_SHORT' })
    } finally { closeSync(fd) }
    await assert.rejects(openRun!({ fd: 987654, position: 0, length: 100 }, key, [{ ...l.blocks[0], offset: 0, length: 100 }], Buffer.alloc(B)), { code: 'EBADF' })
    // Blocks outside their run or their destination are refused before anything is read.
    await assert.rejects(openRun!({ fd: 0, position: 0, length: 100 }, key, [{ ...l.blocks[0], offset: 0, length: 101 }], Buffer.alloc(B)), RangeError)
    await assert.rejects(openRun!({ fd: 0, position: 0, length: 100 }, key, [{ ...l.blocks[0], offset: 0, length: 100, room: B + 1 }], Buffer.alloc(B)), RangeError)
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a block whose bytes do not hash to its CID fails alone as a mismatch, though it authenticates, and its room is zeroed', async () => {
  const dir = mkdtempSync(join(process.env.SPACE_TEST_DISK_TMP ?? '/var/tmp', 'space-open-'))
  try {
    // Two sealed versions of one block (same key, file, index): the older one authenticates.
    const older = layOut([B, B, B])
    const l = layOut([B, B, B])
    const olderBlock0 = older.file.subarray(older.start, older.start + older.blocks[0].length)
    olderBlock0.copy(l.file, l.start + l.blocks[0].offset)
    const path = join(dir, 'run')
    writeFileSync(path, l.file)
    for (const flags of [FS.O_RDONLY, FS.O_RDONLY | FS.O_DIRECT]) {
      const fd = openSync(path, flags)
      try {
        const dst = Buffer.alloc(3 * B, 0xee)
        const res = await openRun!({ fd, position: l.start, length: runLength(l), direct: flags !== FS.O_RDONLY }, key, l.blocks, dst)
        assert.ok(res[0] instanceof MismatchError, `block 0: ${String(res[0])}`)
        assert.equal((res[0] as MismatchError).code, 'ERR_CID_MISMATCH')
        assert.deepEqual(res.slice(1), [B, B])
        assert.ok(dst.subarray(0, B).equals(Buffer.alloc(B)), 'the refused block left zeros, not the older plaintext')
        assert.ok(dst.subarray(B, 2 * B).equals(l.plains[1]))
        // Under the older version's own CID it opens: only the hash told them apart.
        const own = [{ ...l.blocks[0], hash: older.blocks[0].hash }]
        const back = Buffer.alloc(B)
        assert.deepEqual(await openRun!({ fd, position: l.start, length: runLength(l), direct: flags !== FS.O_RDONLY }, key, own, back), [B])
        assert.ok(back.equals(older.plains[0]))
      } finally { closeSync(fd) }
    }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('runs are checked against sha2-256 CIDs of old stores too; other hash functions are refused', async () => {
  const dir = mkdtempSync(join(process.env.SPACE_TEST_DISK_TMP ?? '/var/tmp', 'space-open-'))
  try {
    const l = layOut([B, 5000])
    const sealedOf = (i: number): Buffer => l.file.subarray(l.start + l.blocks[i].offset, l.start + l.blocks[i].offset + l.blocks[i].length)
    const sha = (i: number): Buffer => createHash('sha256').update(sealedOf(i)).digest()
    const path = join(dir, 'run')
    writeFileSync(path, l.file)
    const fd = openSync(path, FS.O_RDONLY)
    try {
      const withSha = [{ ...l.blocks[0], hash: { code: 0x12, digest: sha(0) } }, { ...l.blocks[1], hash: { code: 0x12, digest: sha(0) } }]
      const res = await openRun!({ fd, position: l.start, length: runLength(l) }, key, withSha, Buffer.alloc(2 * B))
      assert.equal(res[0], B)
      assert.ok(res[1] instanceof MismatchError, 'block 1 under block 0\'s sha2-256 digest')
      const other = [{ ...l.blocks[0], hash: { code: 0x16, digest: createHash('sha3-256').update(sealedOf(0)).digest() } }]
      const dst = Buffer.alloc(B, 0xee)
      const refused = await openRun!({ fd, position: l.start, length: runLength(l) }, key, other, dst)
      assert.equal((refused[0] as Error & { code: string }).code, 'ERR_CID_UNSUPPORTED')
      assert.ok(dst.equals(Buffer.alloc(B)), 'nothing opened under a hash the reader cannot check')
    } finally { closeSync(fd) }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('the addon hashes as the JS side does: BLAKE3 and sha2-256, at several GB/s for BLAKE3', () => {
  assert.ok(nativeDigest != null)
  const digest = nativeDigest
  for (const n of [0, 1, 1023, 1024, 1025, 131072, 131102, 3 * 131072 + 17]) {
    const bytes = randomBytes(n)
    assert.ok(Buffer.from(digest(0x1e, bytes)).equals(Buffer.from(blake3(bytes))), `BLAKE3 of ${n} bytes`)
    assert.ok(Buffer.from(digest(0x12, bytes)).equals(createHash('sha256').update(bytes).digest()), `sha2-256 of ${n} bytes`)
  }
  assert.throws(() => digest(0x16, Buffer.alloc(1)), RangeError)
  const block = randomBytes(B + 30)
  const time = (f: () => unknown): number => {
    let best = Infinity
    for (let round = 0; round < 5; round++) {
      const t = process.hrtime.bigint()
      for (let i = 0; i < 200; i++) f()
      best = Math.min(best, Number(process.hrtime.bigint() - t) / 200 / 1000)
    }
    return best
  }
  const c = time(() => digest(0x1e, block))
  const cSha = time(() => digest(0x12, block))
  const js = time(() => blake3(block))
  console.log(`# per 128 KiB block: BLAKE3 in C ${c.toFixed(1)} us (${(block.length / c / 1000).toFixed(2)} GB/s), sha2-256 in C ${cSha.toFixed(1)} us, BLAKE3 in JS (@napi-rs/blake-hash) ${js.toFixed(1)} us`)
  assert.ok(c < 200, `BLAKE3 in C takes ${c} us per block`)
})
