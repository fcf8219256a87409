// Swapping a merged tree in while files are open for writing (Tree.adopt with `writers`,
// src/fs/tree/adopt.ts): a writer the merge leaves as it was keeps its node, in place in the new
// tree, and every write it makes before, during and after the swap is committed; open readers in
// the folders loaded for it still read the merged content; no commit falls across the swap; and
// a change since the merge's commit that is not a writer's write refuses the swap.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryCommitSink, type MemoryBlockStore, otherDevice } from '../helpers/memory-store.js'
import { buildTree, listTree } from '../helpers/tree-builder.js'
import { Tree, FileNode } from '../../src/fs/tree/tree.js'
import { OpenFiles } from '../../src/fs/tree/adopt.js'
import { BlockCache } from '../../src/store/block-cache.js'
import type { CommitRecord } from '../../src/fs/tree/format.js'

async function put (t: Tree, path: string, content: string): Promise<void> {
  const f = await t.create(path, 0o644)
  await t.write(f, Buffer.from(content), 0)
}

async function append (t: Tree, f: FileNode, s: string): Promise<void> {
  await t.write(f, Buffer.from(s), f.size)
}

async function readAll (t: Tree, f: FileNode): Promise<string> {
  const buf = Buffer.alloc(f.size + 16)
  const n = await t.read(f, buf, buf.length, 0)
  return buf.subarray(0, n).toString()
}

/** Makes the store's reads wait for `hold` (set per test) first: what runs while adopt loads the new tree. */
function holdReads (store: MemoryBlockStore): { hold: (() => Promise<void>) | null } {
  const gate: { hold: (() => Promise<void>) | null } = { hold: null }
  const get = store.get.bind(store)
  store.get = async (cid, scratch) => {
    const h = gate.hold
    if (h != null) { gate.hold = null; await h() }
    return await get(cid, scratch)
  }
  return gate
}

test('a write through a handle opened before the swap lands in the next commit, though nothing looked its folder up again', async () => {
  const { tree, store, sink } = await buildTree({ 'logs/app.log': 'one\n', 'logs/other': 'o' })
  const log = await tree.lookup('/logs/app.log') as FileNode
  const theirs = await otherDevice(store, sink.last!, async t => { await put(t, '/b.txt', 'b') })
  assert.ok(await tree.adopt(theirs, tree.head.seq, [log], { writers: [log] }) != null)
  await append(tree, log, 'two\n')
  await tree.commit()
  assert.deepEqual(await listTree(sink.reopen(store)), { 'b.txt': 'b', 'logs/app.log': 'one\ntwo\n', 'logs/other': 'o' })
  assert.equal(await tree.lookup('/logs/app.log'), log, 'the tree names the writer\'s node')
  assert.equal(await readAll(tree, log), 'one\ntwo\n')
})

test('writes made since the merge\'s commit, while adopt loads the new tree, and after the swap are all committed', async () => {
  const { tree, store, sink } = await buildTree({ 'logs/app.log': '', 'keep': 'k' })
  const gate = holdReads(store)
  const log = await tree.lookup('/logs/app.log') as FileNode
  await append(tree, log, 'a\n')
  await tree.commit()
  const expect = tree.head.seq
  const theirs = await otherDevice(store, sink.last!, async t => { await t.mkdir('/new', 0o755); await put(t, '/new/c.txt', 'c'); await t.unlink('/keep') })
  await append(tree, log, 'b\n') // since `expect`, not committed
  await append(tree, log, 'c\n')
  await tree.commit() // committed since `expect`: the merge did not see it
  await append(tree, log, 'd\n')
  gate.hold = async () => { await append(tree, log, 'e\n') } // while the new tree's folders load
  const info = await tree.adopt(theirs, expect, [log], { writers: [log] })
  assert.ok(info != null, 'the swap goes ahead over the writer\'s writes')
  await append(tree, log, 'f\n')
  await tree.commit()
  assert.deepEqual(await listTree(sink.reopen(store)), { 'logs/app.log': 'a\nb\nc\nd\ne\nf\n', 'new/c.txt': 'c' })
  assert.equal(await readAll(tree, log), 'a\nb\nc\nd\ne\nf\n')
})

test('an open reader in a folder loaded for a writer reads the merged content through its own node', async () => {
  const { tree, store, sink } = await buildTree({ 'd/app.log': 'log\n', 'd/doc.txt': 'old' })
  const log = await tree.lookup('/d/app.log') as FileNode
  const doc = await tree.lookup('/d/doc.txt') as FileNode
  const theirs = await otherDevice(store, sink.last!, async t => {
    const f = await t.lookup('/d/doc.txt') as FileNode
    await t.truncate(f, 0)
    await t.write(f, Buffer.from('new from elsewhere'), 0)
  })
  assert.ok(await tree.adopt(theirs, tree.head.seq, [log, doc], { writers: [log] }) != null)
  assert.equal(await tree.lookup('/d/doc.txt'), doc)
  assert.equal(await readAll(tree, doc), 'new from elsewhere')
})

test('a commit asked for while adopt loads the new tree lands before the swap, and the next commit holds the merge', async () => {
  const { tree, store, sink } = await buildTree({ 'app.log': 'x' })
  const gate = holdReads(store)
  const log = await tree.lookup('/app.log') as FileNode
  const expect = tree.head.seq
  const theirs = await otherDevice(store, sink.last!, async t => { await put(t, '/b.txt', 'b') })
  await append(tree, log, 'y')
  let early: Promise<unknown> | null = null
  gate.hold = async () => { early = tree.commit() } // e.g. an fsync of the log
  let atSwap = -1
  const info = await tree.adopt(theirs, expect, [log], { writers: [log], swapped: () => { atSwap = sink.all().length } })
  assert.ok(info != null && early != null)
  assert.equal(atSwap, expect + 1, 'the commit of the tree before the swap was recorded before it')
  assert.equal(info.seq, expect + 2)
  assert.deepEqual(await listTree(sink.reopen(store)), { 'app.log': 'xy', 'b.txt': 'b' })
})

test('a hard-linked file in a folder loaded for a writer is one node under both names after the swap, and a change through it is committed', async () => {
  const { tree, store, sink } = await buildTree({ 'd/app.log': 'log\n', 'd/a': 'linked' })
  await tree.link('/d/a', '/e-b')
  await tree.commit()
  const log = await tree.lookup('/d/app.log') as FileNode
  const theirs = await otherDevice(store, sink.last!, async t => { await put(t, '/c.txt', 'c') })
  assert.ok(await tree.adopt(theirs, tree.head.seq, [log], { writers: [log] }) != null)
  const a = await tree.lookup('/d/a') as FileNode
  assert.equal(await tree.lookup('/e-b'), a, 'both names are the one node')
  await tree.write(a, Buffer.from('L'), 0)
  await append(tree, log, 'more\n')
  await tree.commit()
  assert.deepEqual(await listTree(sink.reopen(store)), { 'c.txt': 'c', 'd/a': 'Linked', 'd/app.log': 'log\nmore\n', 'e-b': 'Linked' })
})

test('a change since the merge\'s commit that is not a writer\'s write refuses the swap: a new name, or a write to a file not given as a writer', async () => {
  const { tree, store, sink } = await buildTree({ 'app.log': '', 'other': 'o' })
  const log = await tree.lookup('/app.log') as FileNode
  const other = await tree.lookup('/other') as FileNode
  const expect = tree.head.seq
  const theirs = await otherDevice(store, sink.last!, async t => { await put(t, '/b.txt', 'b') })
  await tree.truncate(other, 0) // truncate(2) by path: no handle
  assert.equal(await tree.adopt(theirs, expect, [log], { writers: [log] }), null)
  await tree.commit()
  const expect2 = tree.head.seq
  const theirs2 = await otherDevice(store, sink.last!, async t => { await put(t, '/b.txt', 'b') })
  await append(tree, log, 'l')
  await put(tree, '/local.txt', 'x')
  assert.equal(await tree.adopt(theirs2, expect2, [log], { writers: [log] }), null)
  assert.equal((await listTree(tree))['b.txt'], undefined, 'nothing was swapped in')
})

test('a file opened for writing while adopt loads the new tree refuses the swap (its node would be left out of the new tree)', async () => {
  const { tree, store, sink } = await buildTree({ 'app.log': 'x', 'other': 'o' })
  const gate = holdReads(store)
  const log = await tree.lookup('/app.log') as FileNode
  const theirs = await otherDevice(store, sink.last!, async t => { await put(t, '/b.txt', 'b') })
  const writers = [log]
  gate.hold = async () => { writers.push(await tree.lookup('/other') as FileNode) } // open(O_WRONLY) meanwhile
  assert.equal(await tree.adopt(theirs, tree.head.seq, () => writers, { writers: () => writers }), null)
  assert.ok(await tree.adopt(theirs, tree.head.seq, () => writers, { writers: () => writers }) != null, 'the next attempt prepares it too')
  await tree.write(writers[1], Buffer.from('O'), 0)
  await tree.commit()
  assert.deepEqual(await listTree(sink.reopen(store)), { 'app.log': 'x', 'b.txt': 'b', other: 'O' })
})

test('an open node given as a writer is never overwritten by an entry of its id', async () => {
  const { tree } = await buildTree({ 'f': 'abc' })
  const f = await tree.lookup('/f') as FileNode
  const fresh = new FileNode({ ...f.attrs }, f.id, f.key)
  fresh.size = 1
  assert.equal(new OpenFiles([f], new Set([f])).reuse(fresh), fresh)
  assert.equal(f.size, 3)
  assert.equal(new OpenFiles([f]).reuse(fresh), f, 'a reader is updated in place')
  assert.equal(f.size, 1)
})
