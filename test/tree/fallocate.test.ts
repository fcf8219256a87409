// fallocate on memory parts: every supported mode against a plain buffer as the model, over
// random ranges, before and after a commit and in a reopened tree; whole zeroed blocks become
// holes (no stored block), unsupported modes are refused.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'
import type { FileNode, Tree } from '../../src/fs/tree/tree.js'
import { FALLOC_KEEP_SIZE as KEEP, FALLOC_PUNCH_HOLE as PUNCH, FALLOC_ZERO_RANGE as ZERO } from '../../src/fs/tree/file-write.js'
import { memoryTree } from '../helpers/memory-store.js'

const B = BLOCK_SIZE

async function whole (tree: Tree, f: FileNode): Promise<Buffer> {
  const out = Buffer.alloc(f.size)
  const n = await tree.read(f, out, f.size, 0)
  return out.subarray(0, n)
}

/** What fallocate does to the model: zeroes [off, off+len) inside the file, grows unless KEEP. */
function apply (model: Buffer, mode: number, off: number, len: number): Buffer {
  const end = off + len
  const grow = (mode & KEEP) === 0 && end > model.length
  const next = grow ? Buffer.concat([model, Buffer.alloc(end - model.length)]) : Buffer.from(model)
  if ((mode & ~KEEP) !== 0) next.fill(0, Math.min(off, next.length), Math.min(end, next.length))
  return next
}

test('fallocate in every supported mode keeps content, size and holes as Linux does, through commit and reopen', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/f', 0o644)
  let model: Buffer = randomBytes(5 * B + 1234)
  await tree.write(f, model, 0)
  // Deterministic pseudo-random ranges, some inside one block, some over several, some past the end.
  let seed = 7
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
  const modes = [0, KEEP, PUNCH | KEEP, ZERO, ZERO | KEEP]
  for (let i = 0; i < 60; i++) {
    const mode = modes[i % modes.length]
    const off = rnd(7 * B)
    const len = 1 + (i % 3 === 0 ? rnd(3 * B) : rnd(5000))
    await tree.fallocate(f, mode, off, len)
    model = apply(model, mode, off, len)
    assert.equal(f.size, model.length, `step ${i}: size after mode ${mode} at ${off}+${len}`)
    if (i % 10 === 0) await tree.commit()
    assert.ok((await whole(tree, f)).equals(model), `step ${i}: content after mode ${mode} at ${off}+${len}`)
  }
  await tree.commit()
  const again = sink.reopen(store)
  const g = await again.lookup('/f') as FileNode
  assert.ok((await whole(again, g)).equals(model), 'content in a reopened tree')
})

test('a punched whole block is a hole: no block stored for it, and st_blocks drops', async () => {
  const { tree } = memoryTree()
  const f = await tree.create('/f', 0o644)
  await tree.write(f, randomBytes(4 * B), 0)
  await tree.commit()
  const before = tree.stat(f).blocks
  await tree.fallocate(f, PUNCH | KEEP, B, 2 * B)
  await tree.commit()
  assert.deepEqual([...f.blocks!.keys()].sort(), [0, 3])
  assert.equal(tree.stat(f).blocks, before / 2)
  assert.equal(f.size, 4 * B)
})

test('unsupported fallocate modes and bad ranges are refused with their codes', async () => {
  const { tree } = memoryTree()
  const f = await tree.create('/f', 0o644)
  await assert.rejects(tree.fallocate(f, 0x08, 0, B), { code: 'ERR_UNSUPPORTED' }) // COLLAPSE_RANGE
  await assert.rejects(tree.fallocate(f, 0x20, 0, B), { code: 'ERR_UNSUPPORTED' }) // INSERT_RANGE
  await assert.rejects(tree.fallocate(f, PUNCH, 0, B), { code: 'ERR_UNSUPPORTED' }) // PUNCH without KEEP_SIZE
  await assert.rejects(tree.fallocate(f, 0, 0, 0), { code: 'ERR_INVALID' })
  await assert.rejects(tree.fallocate(f, 0, -1, 10), { code: 'ERR_INVALID' })
  await tree.fallocate(f, KEEP, 0, 10 * B)
  assert.equal(f.size, 0, 'KEEP_SIZE leaves the size')
  await tree.fallocate(f, 0, 0, 10 * B)
  assert.equal(f.size, 10 * B, 'mode 0 grows the file')
  assert.equal(tree.stat(f).blocks, 0, 'and stores nothing')
})
