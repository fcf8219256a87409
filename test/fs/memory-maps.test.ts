// Block maps do not stay loaded for the life of the process (src/fs/tree/load.ts): past a budget
// of block references the maps of clean files nobody has open are dropped, least recently used
// first, and read back the same on the next use; an open or changed file keeps its map; stat
// still counts a dropped file's stored blocks without loading it; the quiet daemon's release
// drops every map it can. (A file's map once read used to stay: 250 files of 1,000 blocks read
// took the daemon from 72 to 466 MiB.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'
import type { FileNode, Tree } from '../../src/fs/tree/tree.js'
import { Handles } from '../../src/fs/fuse/context.js'
import { memoryTree } from '../helpers/memory-store.js'

const BLOCKS = 40 // past INLINE_BLOCKS: each file has a block map of its own

async function readAll (tree: Tree, f: FileNode): Promise<Buffer> {
  const out = Buffer.alloc(f.size)
  assert.equal(await tree.read(f, out, f.size, 0), f.size)
  return out
}

async function stored (): Promise<{ reopen: (budget: number) => Tree, data: Buffer[] }> {
  const { tree, store, sink } = memoryTree()
  const data: Buffer[] = []
  for (let n = 0; n < 4; n++) {
    const f = await tree.create(`/f${n}`, 0o644)
    data.push(randomBytes(BLOCKS * BLOCK_SIZE - 100))
    await tree.write(f, data[n], 0)
  }
  await tree.commit()
  return { reopen: budget => sink.reopen(store, { mapBudgetBlocks: budget }), data }
}

const file = async (tree: Tree, n: number): Promise<FileNode> => await tree.lookup(`/f${n}`) as FileNode

test('past the budget, the least recently used clean maps are dropped and read back the same', async () => {
  const { reopen, data } = await stored()
  const tree = reopen(100) // two files' maps fit, not three
  const files = await Promise.all([0, 1, 2, 3].map(async n => await file(tree, n)))
  for (let n = 0; n < 4; n++) assert.ok((await readAll(tree, files[n])).equals(data[n]))
  assert.deepEqual(files.map(f => f.blocks != null), [false, false, true, true], 'the two read first were dropped')
  const st = tree.stat(files[0])
  assert.ok(tree.isStatExact(files[0]), 'a dropped map leaves stat exact')
  assert.equal(st.blocks, BLOCKS * BLOCK_SIZE / 512)
  assert.ok((await readAll(tree, files[0])).equals(data[0]), 'a dropped map loads again')
  assert.equal(files[0].blocks?.size, BLOCKS)
  assert.equal(files[2].blocks, null, 'file 2 was now the least recently used')
})

test('an open file and a changed file keep their maps; the release drops the others', async () => {
  const { reopen, data } = await stored()
  const tree = reopen(100)
  const files = await Promise.all([0, 1, 2, 3].map(async n => await file(tree, n)))
  const handles = new Handles()
  const fh = handles.add(files[0], 0)
  await readAll(tree, files[0])
  await readAll(tree, files[1])
  await tree.write(files[1], Buffer.from('changed'), 10) // dirty until the next commit
  await readAll(tree, files[2])
  await readAll(tree, files[3])
  assert.deepEqual(files.map(f => f.blocks != null), [true, true, false, true], 'only the clean, closed one went')
  assert.equal(tree.releaseMemory().maps, 1, 'the release drops file 3 (within the budget), not the open file nor the changed one')
  await tree.commit()
  handles.remove(fh)
  assert.equal(files[0].pins, 0)
  assert.equal(tree.releaseMemory().maps, 2)
  assert.deepEqual(files.map(f => f.blocks != null), [false, false, false, false])
  const expect = Buffer.from(data[1])
  expect.write('changed', 10)
  assert.ok((await readAll(tree, files[1])).equals(expect), 'the committed change reads back after its map was dropped')
})

test('the release unloads the tree below the root once committed, and everything loads again the same', async () => {
  const { reopen, data } = await stored()
  const tree = reopen(1000)
  const before = await file(tree, 2)
  assert.ok((await readAll(tree, before)).equals(data[2]))
  await tree.write(before, Buffer.from('x'), 0)
  assert.equal(tree.releaseMemory({ unloadTree: true }).unloaded, false, 'not while a change is not committed')
  await tree.commit()
  await new Promise(resolve => setImmediate(resolve)) // calls count as running until the next turn (edits.ts)
  assert.equal(tree.releaseMemory({ unloadTree: true }).unloaded, true)
  const after = await file(tree, 2)
  assert.notEqual(after, before, 'a node loaded again')
  assert.equal(tree.stat(after).ino, tree.stat(before).ino, 'with the inode number it had (git and backup tools compare st_ino)')
  const dir = await tree.mkdir('/d', 0o755)
  await tree.commit()
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(tree.releaseMemory({ unloadTree: true }).unloaded, true)
  assert.equal(tree.stat(await tree.lookup('/d')).ino, tree.stat(dir).ino, 'a folder too')
  const expect = Buffer.from(data[2])
  expect.write('x', 0)
  assert.ok((await readAll(tree, after)).equals(expect))
  for (const n of [0, 1, 3]) assert.ok((await readAll(tree, await file(tree, n))).equals(data[n]))
})
