// File content on memory parts (no mount, no pack store, no seal pool): writes and reads across
// block boundaries, holes, truncates, overwrites, and files whose block list needs a block map,
// each checked against a plain buffer before a commit, after it, and in a tree reopened from it.
import type { CID } from 'multiformats/cid'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { BLOCK_SIZE, INLINE_BLOCKS } from '../../src/fs/tree/format.js'
import type { FileNode, Tree } from '../../src/fs/tree/tree.js'
import { memoryTree, type MemoryBlockStore, type MemoryCommitSink } from '../helpers/memory-store.js'

const B = BLOCK_SIZE

async function readRange (tree: Tree, f: FileNode, pos: number, len: number): Promise<Buffer> {
  const out = Buffer.alloc(len)
  const n = await tree.read(f, out, len, pos)
  return out.subarray(0, n)
}

/** Reads the whole file and pieces at and around every block boundary, against the model. */
async function assertContent (tree: Tree, f: FileNode, model: Buffer, when: string): Promise<void> {
  assert.equal(f.size, model.length, `${when}: size`)
  assert.ok((await readRange(tree, f, 0, model.length)).equals(model), `${when}: whole file`)
  for (let edge = 0; edge <= model.length; edge += B) {
    for (const pos of [edge - 1, edge, edge + 1]) {
      if (pos < 0) continue
      for (const len of [1, 3, B, B + 2]) {
        const want = model.subarray(Math.min(pos, model.length), Math.min(pos + len, model.length))
        assert.ok((await readRange(tree, f, pos, len)).equals(want), `${when}: read(${pos}, ${len})`)
      }
    }
  }
}

async function reopened (sink: MemoryCommitSink, store: MemoryBlockStore, path: string): Promise<{ tree: Tree, f: FileNode }> {
  const tree = sink.reopen(store)
  return { tree, f: await tree.lookup(path) as FileNode }
}

test('a write across block boundaries reads back from any offset, before and after commit and reopen', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/f', 0o644)
  const data = randomBytes(2 * B + B / 2)
  assert.equal(await tree.write(f, data, B - 100), data.length)
  const model = Buffer.concat([Buffer.alloc(B - 100), data])
  await assertContent(tree, f, model, 'dirty')
  await tree.commit()
  await assertContent(tree, f, model, 'committed')
  const again = await reopened(sink, store, '/f')
  await assertContent(again.tree, again.f, model, 'reopened')
})

test('a block written to its end is sealed at once, and one left short waits for the commit', async () => {
  const { tree, store } = memoryTree()
  const f = await tree.create('/f', 0o644)
  await tree.write(f, randomBytes(B + 10), 0)
  assert.deepEqual([...f.blocks!.keys()], [0], 'block 0 is sealed')
  assert.deepEqual([...f.dirty.keys()], [1], 'block 1 is dirty')
  assert.equal(store.size, 1)
  await tree.commit()
  assert.deepEqual([...f.blocks!.keys()].sort(), [0, 1])
  assert.equal(f.dirty.size, 0)
})

test('holes read as zeros and store nothing', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/sparse', 0o644)
  await tree.truncate(f, 5 * B)
  await tree.write(f, Buffer.from('x'), 3 * B + 5)
  const model = Buffer.alloc(5 * B)
  model[3 * B + 5] = 'x'.charCodeAt(0)
  await assertContent(tree, f, model, 'dirty')
  await tree.commit()
  assert.deepEqual([...f.blocks!.keys()], [3], 'only the written block is stored')
  assert.ok(tree.stat(f).blocks <= B / 512, `st_blocks ${tree.stat(f).blocks} counts one block at most`)
  const again = await reopened(sink, store, '/sparse')
  await assertContent(again.tree, again.f, model, 'reopened')
})

test('truncating down into a block and up again reads zeros where the cut bytes were, dirty or sealed', async () => {
  for (const commitFirst of [false, true]) {
    const { tree, store, sink } = memoryTree()
    const f = await tree.create('/t', 0o644)
    await tree.write(f, Buffer.alloc(3 * B, 0xff), 0)
    await tree.write(f, Buffer.alloc(100, 0xee), 2 * B + 20) // the last block dirty again
    if (commitFirst) await tree.commit()
    await tree.truncate(f, B + 10)
    await assertContent(tree, f, Buffer.alloc(B + 10, 0xff), `${commitFirst ? 'sealed' : 'dirty'}, cut`)
    await tree.truncate(f, 3 * B)
    const model = Buffer.concat([Buffer.alloc(B + 10, 0xff), Buffer.alloc(2 * B - 10)])
    await assertContent(tree, f, model, `${commitFirst ? 'sealed' : 'dirty'}, extended`)
    await tree.commit()
    const again = await reopened(sink, store, '/t')
    await assertContent(again.tree, again.f, model, `${commitFirst ? 'sealed' : 'dirty'}, reopened`)
    await again.tree.truncate(again.f, 0)
    assert.equal((await readRange(again.tree, again.f, 0, 10)).length, 0)
  }
})

test('an overwrite inside a stored block keeps the bytes around it', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/o', 0o644)
  const model = randomBytes(3 * B - 7)
  await tree.write(f, model, 0)
  await tree.commit()
  const one = await reopened(sink, store, '/o')
  const patch = randomBytes(10)
  await one.tree.write(one.f, patch, B + 50) // loads block 1 from the store first
  patch.copy(model, B + 50)
  const tail = randomBytes(20)
  await one.tree.write(one.f, tail, 3 * B - 17) // inside the short last block, and past the end
  const grown = Buffer.concat([model.subarray(0, 3 * B - 17), tail])
  await assertContent(one.tree, one.f, grown, 'overwritten')
  await one.tree.commit()
  const two = await reopened(sink, store, '/o')
  await assertContent(two.tree, two.f, grown, 'reopened')
})

test('a file of more than 32 blocks keeps its block list in a block map that loads on first use', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/big', 0o644)
  const model = randomBytes((INLINE_BLOCKS + 8) * B + 123)
  await tree.write(f, model, 0)
  await tree.commit()
  assert.ok(f.blockMap != null, 'the commit sealed a block map')
  const one = await reopened(sink, store, '/big')
  assert.equal(one.f.blocks, null, 'the block map is not loaded by the lookup')
  assert.equal(one.tree.isStatExact(one.f), false)
  assert.equal((await one.tree.statLoaded(one.f)).blocks, Math.ceil(model.length / 512))
  assert.equal(one.tree.isStatExact(one.f), true)
  await assertContent(one.tree, one.f, model, 'reopened')
  const patch = randomBytes(B)
  await one.tree.write(one.f, patch, 20 * B)
  patch.copy(model, 20 * B)
  await one.tree.commit()
  assert.notEqual(one.f.blockMap!.toString(), f.blockMap.toString(), 'a changed block list gets a new block map')
  const two = await reopened(sink, store, '/big')
  await assertContent(two.tree, two.f, model, 'changed and reopened')
})

test('reads at or past the end return nothing, and reads over it stop there', async () => {
  const { tree } = memoryTree()
  const f = await tree.create('/e', 0o644)
  assert.equal((await readRange(tree, f, 0, 10)).length, 0)
  await tree.write(f, Buffer.from('hello'), 0)
  assert.equal((await readRange(tree, f, 5, 10)).length, 0)
  assert.equal((await readRange(tree, f, 50, 10)).length, 0)
  assert.equal((await readRange(tree, f, 3, 10)).toString(), 'lo')
})

test('writes fail with ERR_NO_SPACE while the store cannot append, and pass again once it can', async () => {
  const { tree, store } = memoryTree()
  const f = await tree.create('/n', 0o644)
  store.writeError = new Error('disk full')
  await assert.rejects(tree.write(f, Buffer.from('x'), 0), { code: 'ERR_NO_SPACE' })
  store.writeError = null
  assert.equal(await tree.write(f, Buffer.from('x'), 0), 1)
  await assert.rejects(tree.write(f, Buffer.from('x'), Number.MAX_SAFE_INTEGER), { code: 'ERR_TOO_BIG' })
  await assert.rejects(tree.truncate(f, Number.MAX_SAFE_INTEGER + 2), { code: 'ERR_TOO_BIG' })
})

test('a stored block that fails authentication reads as ERR_INTEGRITY and is logged with its CID', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/c', 0o644)
  await tree.write(f, randomBytes(2 * B), 0)
  await tree.commit()
  const cid = f.blocks!.get(1)! as CID
  store.corrupt(cid)
  const lines: string[] = []
  const again = sink.reopen(store, { log: line => lines.push(line) })
  const g = await again.lookup('/c') as FileNode
  assert.equal((await readRange(again, g, 0, 10)).length, 10, 'block 0 is intact')
  await assert.rejects(readRange(again, g, B, 10), { code: 'ERR_INTEGRITY' })
  assert.ok(lines.some(l => l.includes(cid.toString()) && l.includes('authentication failed')), lines.join('\n'))
})
