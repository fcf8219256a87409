// A merge swapped in while the drive keeps creating files (Tree.hold, edits.ts): every create
// since the merge's commit refuses the swap, so a device writing file after file would never
// take the other devices' changes in (seen in CI: 628 files on one device, 0 merges in 20 s).
// Held, new changes of names wait until the swap, then go on in the new tree; writes to files
// already open go on meanwhile.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { otherDevice } from '../helpers/memory-store.js'
import { buildTree, listTree } from '../helpers/tree-builder.js'
import type { FileNode } from '../../src/fs/tree/tree.js'

const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

test('a create landing after the merge\'s commit refuses the swap; held, it waits for the swap and lands in the merged tree', async () => {
  const { tree, store, sink } = await buildTree({ 'a.txt': 'a', 'log.txt': 'log' })
  const first = await otherDevice(store, sink.last!, async t => { await t.mkdir('/first', 0o755) })

  // Unheld: a create between the commit and the swap refuses it.
  await tree.commit()
  let expect = tree.head.seq
  await tree.create('/mine-1.txt', 0o644)
  assert.equal(await tree.adopt(first, expect, [], { writers: [] }), null, 'refused: a name changed since the commit')
  await tree.commit()
  const theirs = await otherDevice(store, sink.last!, async t => { await t.mkdir('/theirs', 0o755) })

  // Held from before the commit: the create waits, a write to an open file does not.
  const log = await tree.lookup('/log.txt') as FileNode
  const release = (await tree.hold(10_000))!
  await tree.commit()
  expect = tree.head.seq
  let created = false
  const create = tree.create('/mine-2.txt', 0o644).then(f => { created = true; return f })
  await tree.write(log, Buffer.from(' more'), log.size)
  for (let i = 0; i < 5; i++) await turn()
  assert.equal(created, false, 'the create waits while the tree is held')
  const info = await tree.adopt(theirs, expect, [log], { writers: [log], swapped: release })
  assert.ok(info != null, 'the merge is swapped in')
  const f = await create
  assert.equal(created, true, 'released at the swap')
  await tree.write(f, Buffer.from('two'), 0)
  await tree.commit()
  assert.deepEqual(await listTree(sink.reopen(store)), { 'a.txt': 'a', 'log.txt': 'log more', 'mine-1.txt': '', 'mine-2.txt': 'two', 'theirs/': {} })
})

test('a hold ends by itself after its time, and a second hold while one is on is refused', async () => {
  const { tree } = await buildTree({ 'a.txt': 'a' })
  const release = (await tree.hold(50))!
  assert.equal(await tree.hold(10_000), null, 'a hold is on already')
  let done = false
  const t0 = Date.now()
  const made = tree.mkdir('/d', 0o755).then(() => { done = true })
  for (let i = 0; i < 5; i++) await turn()
  assert.equal(done, false, 'still held')
  await made
  assert.ok(Date.now() - t0 >= 45, `released by its timer (${Date.now() - t0} ms)`)
  release() // after the timer: harmless
  await tree.mkdir('/e', 0o755)
})

test('a hold taken while a create runs waits for it: the commit after it counts the create, and the swap goes through', async () => {
  const { tree, store, sink } = await buildTree({ 'a.txt': 'a' })
  await tree.commit()
  const theirs = await otherDevice(store, sink.last!, async t => { await t.mkdir('/theirs', 0o755) })
  const running = tree.create('/mine.txt', 0o644) // running as the hold is taken
  const release = (await tree.hold(10_000))!
  await running
  await tree.commit()
  const info = await tree.adopt(theirs, tree.head.seq, [], { writers: [], swapped: release })
  assert.ok(info != null, 'swapped in: the create finished before the hold counted as quiet')
})

test('the second step of a chmod of a folder is not held apart from its first: the change lands in the tree', async () => {
  const { tree, store, sink } = await buildTree({ 'd/x.txt': 'x' })
  await tree.commit()
  const chmod = tree.chmod('/d', 0o700) // resolves /d, then changes it
  const release = (await tree.hold(10_000))!
  await tree.commit() // what the engine merges against
  const theirs = await otherDevice(store, sink.last!, async t => { await t.mkdir('/theirs', 0o755) })
  const info = await tree.adopt(theirs, tree.head.seq, [], { writers: [], swapped: release })
  await chmod
  await tree.commit()
  assert.ok(info != null, 'swapped in')
  const reopened = sink.reopen(store)
  assert.equal((await reopened.lookup('/d')).attrs.mode & 0o7777, 0o700, 'the chmod is in the merged tree')
})
