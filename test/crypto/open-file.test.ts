// openRun (native/src/space_block.c): blocks sealed by aead.ts, laid back to back in a file with
// record-sized gaps, open into their places, buffered and with O_DIRECT; a bad block fails alone
// and leaves zeros; a failed read rejects; bad arguments throw.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync, constants as FS } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { seal, SealType, AuthError, openRun, type RunBlock } from '../../src/crypto/index.js'

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
    blocks.push({ offset: off, length: sealed.length, pos: { type: SealType.Block, objectId, index }, at, room: B })
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

test('a flipped byte or a wrong position fails that block alone, and its room is zeroed', async () => {
  const dir = mkdtempSync(join(process.env.SPACE_TEST_DISK_TMP ?? '/var/tmp', 'space-open-'))
  try {
    const l = layOut([B, B, B])
    l.file[l.start + l.blocks[1].offset + 500] ^= 0x10
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
