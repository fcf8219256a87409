// Commits on memory parts: what a commit records reopens to the same tree, a commit with
// nothing changed is a no-op, concurrent commits share one, and a failed one is retried.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { memoryTree } from '../helpers/memory-store.js'
import { buildTree, listTree, applySpec } from '../helpers/tree-builder.js'

const SPEC = {
  'docs/readme.txt': 'hello\n',
  'docs/deep/er/note.md': '# note',
  'bin/run.sh': { content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  'empty/': {},
  'private/': { mode: 0o700 },
  'ln': { symlink: 'docs/readme.txt' },
  'blob.bin': Buffer.from([0, 0xff, 0xfe, 1, 2])
}

test('a tree reopened from the last commit record lists the same names, modes, targets and contents', async () => {
  const { tree, store, sink } = await buildTree(SPEC)
  const listed = await listTree(tree)
  const again = sink.reopen(store)
  assert.deepEqual(await listTree(again), listed)
  assert.equal(again.dirty, false)
  assert.equal(again.head.seq, 1)
  assert.equal(again.head.root?.toString(), tree.head.root?.toString())
  assert.equal((await again.lookup('/private')).attrs.mode, 0o700)
})

test('changes after a reopen are committed on top, with the next sequence number and a new root', async () => {
  const { tree, store, sink } = await buildTree(SPEC)
  const first = tree.head
  const again = sink.reopen(store)
  await applySpec(again, { 'docs/new.txt': 'new' })
  await again.unlink('/ln')
  const info = await again.commit()
  assert.equal(info.seq, 2)
  assert.notEqual(info.root?.toString(), first.root?.toString())
  assert.deepEqual(sink.all().map(r => r.seq), [1, 2])
  const third = sink.reopen(store)
  const listed = await listTree(third)
  assert.equal(listed['docs/new.txt'], 'new')
  assert.equal(listed.ln, undefined)
})

test('a commit with nothing changed appends no record and stores no block', async () => {
  const { tree, store, sink } = await buildTree(SPEC)
  const blocks = store.size
  const head = tree.head
  const info = await tree.commit()
  assert.equal(info.seq, head.seq)
  assert.equal(info.root?.toString(), head.root?.toString())
  assert.equal(sink.records.length, 1)
  assert.equal(store.size, blocks)
  const again = sink.reopen(store)
  await again.commit()
  assert.equal(sink.records.length, 1, 'a reopened tree is clean too')
})

test('a change marks the tree dirty until it is committed, and rewrites only the directories on its path', async () => {
  const { tree, store } = await buildTree(SPEC)
  assert.equal(tree.dirty, false)
  const blocks = store.size
  await tree.chmod('/docs/deep/er/note.md', 0o600)
  assert.equal(tree.dirty, true)
  await tree.commit()
  assert.equal(tree.dirty, false)
  assert.equal(store.size, blocks + 4, 'er, deep, docs and the root are new directory nodes; nothing else')
})

test('commits asked for while one runs share the next one', async () => {
  const { tree, sink } = memoryTree()
  await tree.mkdir('/a', 0o755)
  const first = tree.commit()
  await tree.mkdir('/b', 0o755)
  const second = tree.commit()
  const third = tree.commit()
  assert.equal(second, third)
  assert.deepEqual([(await first).seq, (await second).seq], [1, 2])
  assert.equal(sink.records.length, 2)
})

test('a commit whose record cannot be appended leaves the tree dirty, and the next one records it', async () => {
  const { tree, store, sink } = memoryTree()
  await tree.mkdir('/a', 0o755)
  sink.failWith = new Error('journal unwritable')
  await assert.rejects(tree.commit(), /journal unwritable/)
  assert.equal(tree.dirty, true)
  assert.equal(tree.head.seq, 0)
  sink.failWith = null
  assert.equal((await tree.commit()).seq, 1)
  assert.deepEqual(await listTree(sink.reopen(store)), { 'a/': {} })
})

test('a new tree commits an empty root that reopens empty', async () => {
  const { tree, store, sink } = memoryTree()
  assert.equal(tree.dirty, true)
  const info = await tree.commit()
  assert.equal(info.seq, 1)
  assert.deepEqual(await sink.reopen(store).readdir('/'), [])
})
