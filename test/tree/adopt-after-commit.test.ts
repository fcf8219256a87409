// A merge can be swapped in once everything written is committed, however the last commit fell
// against the last writes (Tree.adopt, edits.ts). A commit asked for while another one runs
// takes its snapshot only when that one ends: a write finished in between is in it, though it
// finished after the commit was asked for. Seen in the bulk replication bench: the drive, idle
// and clean after a bulk copy, refused every merge of the other device's changes ("local
// changes kept landing first"), so its mount never showed them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryCommitSink, type MemoryBlockStore, otherDevice } from '../helpers/memory-store.js'
import { buildTree, listTree } from '../helpers/tree-builder.js'
import { Tree, type FileNode } from '../../src/fs/tree/tree.js'
import { BlockCache } from '../../src/store/block-cache.js'
import type { CommitRecord } from '../../src/fs/tree/format.js'

/** Makes the store's next sync wait until the returned function is called. */
function holdNextSync (store: MemoryBlockStore): () => void {
  let release = (): void => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  const sync = store.sync.bind(store)
  let held = false
  store.sync = async () => {
    if (!held) { held = true; await gate }
    return await sync()
  }
  return release
}

test('a merge is swapped in after the last writes were committed by a commit asked for before they finished', async () => {
  const { tree, store, sink } = await buildTree({ 'big.bin': 'start', 'keep': 'k' })
  const f = await tree.lookup('/big.bin') as FileNode
  await tree.write(f, Buffer.from(' one'), f.size)
  const release = holdNextSync(store)
  const first = tree.commit() // its snapshot is taken; it waits for the disk
  await new Promise(resolve => setImmediate(resolve))
  const second = tree.commit() // asked for now, its snapshot comes when the first one ends
  await tree.write(f, Buffer.from(' two'), f.size) // finished before that snapshot: in the second commit
  release()
  await first
  await second
  assert.equal(tree.dirty, false, 'every write is committed')
  const theirs = await otherDevice(store, sink.last!, async t => {
    const b = await t.create('/theirs.txt', 0o644)
    await t.write(b, Buffer.from('from the other device'), 0)
  })
  const expect = tree.head.seq
  await tree.commit() // what a merge does first (the engine): nothing to commit
  const info = await tree.adopt(theirs, expect, [], { writers: [] })
  assert.ok(info != null, 'the merge is swapped in: nothing changed since the commit it was made against')
  assert.deepEqual(await listTree(sink.reopen(store)), { 'big.bin': 'start one two', 'keep': 'k', 'theirs.txt': 'from the other device' })
})

test('a call that failed and changed nothing (mkdir of a folder that exists) does not hold merges back', async () => {
  const { tree, store, sink } = await buildTree({ 'docs/a.txt': 'a' })
  await assert.rejects(tree.mkdir('/docs', 0o755), { code: 'ERR_EXISTS' })
  assert.equal(tree.dirty, false)
  const theirs = await otherDevice(store, sink.last!, async t => { await t.mkdir('/theirs', 0o755) })
  const expect = tree.head.seq
  await tree.commit() // what a merge does first (the engine): nothing to commit
  assert.ok(await tree.adopt(theirs, expect, [], { writers: [] }) != null, 'the merge is swapped in')
  assert.deepEqual(await listTree(sink.reopen(store)), { 'docs/a.txt': 'a', 'theirs/': {} })
})
