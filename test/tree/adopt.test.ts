// Swapping another committed tree in under a running tree (what a merge with another device
// does, src/sync): the new names, contents and attributes show at once, an open file keeps being
// the node of its id, the swap is committed as the next record, and a tree with uncommitted
// changes (or a newer commit) refuses the swap.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryCommitSink, otherDevice } from '../helpers/memory-store.js'
import { buildTree, listTree } from '../helpers/tree-builder.js'
import { Tree, FileNode } from '../../src/fs/tree/tree.js'
import { BlockCache } from '../../src/store/block-cache.js'
import type { CommitRecord } from '../../src/fs/tree/format.js'

test('an adopted tree shows its names and contents at once, an open file reads its new content, and the swap is the next commit', async () => {
  const { tree, store, sink } = await buildTree({ 'a.txt': 'old content\n', 'keep/x': 'x' })
  const open = await tree.lookup('/a.txt') as FileNode
  const theirs = await otherDevice(store, sink.last!, async t => {
    const f = await t.lookup('/a.txt') as FileNode
    await t.truncate(f, 0)
    await t.write(f, Buffer.from('new content from elsewhere\n'), 0)
    await t.create('/b.txt', 0o640)
    await t.write(await t.lookup('/b.txt') as FileNode, Buffer.from('b'), 0)
  })
  const info = await tree.adopt({ root: theirs.root, links: theirs.links }, tree.head.seq, [open])
  assert.ok(info != null)
  assert.equal(info.seq, 2)
  assert.equal(sink.last!.root.d!.toString(), theirs.root.d!.toString())
  assert.deepEqual(await listTree(tree), { 'a.txt': 'new content from elsewhere\n', 'b.txt': { content: 'b', mode: 0o640 }, 'keep/x': 'x' })
  assert.equal(await tree.lookup('/a.txt'), open, 'the open node stays the node of its id')
  const buf = Buffer.alloc(64)
  const n = await tree.read(open, buf, buf.length, 0)
  assert.equal(buf.subarray(0, n).toString(), 'new content from elsewhere\n')
  // A write through the open handle after the swap lands in the tree and its next commit.
  await tree.write(open, Buffer.from('NEW'), 0)
  await tree.commit()
  const again = sink.reopen(store)
  assert.equal((await listTree(again))['a.txt'], 'NEW content from elsewhere\n')
})

test('a tree with uncommitted changes, or a newer commit than expected, refuses the swap and changes nothing', async () => {
  const { tree, store, sink } = await buildTree({ 'a.txt': 'a' })
  const theirs = await otherDevice(store, sink.last!, async t => { await t.mkdir('/d', 0o755) })
  const seq = tree.head.seq
  await tree.create('/local.txt', 0o644)
  assert.equal(await tree.adopt({ root: theirs.root, links: theirs.links }, seq), null)
  assert.ok((await listTree(tree))['local.txt'] !== undefined)
  await tree.commit()
  assert.equal(await tree.adopt({ root: theirs.root, links: theirs.links }, seq), null, 'a commit since `expect` refuses too')
  assert.equal(sink.all().length, 2)
})

test('a node of the tree before the swap, changed through a handle afterwards, does not break the next commit', async () => {
  const { tree, store, sink } = await buildTree({ 'dir/old.txt': 'x' })
  const old = await tree.lookup('/dir/old.txt') as FileNode
  const theirs = await otherDevice(store, sink.last!, async t => { await t.mkdir('/new', 0o755) })
  assert.ok(await tree.adopt({ root: theirs.root, links: theirs.links }, tree.head.seq) != null)
  await tree.chmod(old, 0o600) // e.g. fchmod on a descriptor opened before the swap
  await tree.create('/after.txt', 0o644)
  await tree.commit()
  assert.deepEqual(Object.keys(await listTree(sink.reopen(store))).sort(), ['after.txt', 'dir/old.txt', 'new/'])
})
