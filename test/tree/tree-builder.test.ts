// The spec builder that table-driven tests (merges: base, ours, theirs -> expected) stand on:
// a canonical spec builds a committed tree that lists back to the same spec.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildTree, listTree, canonicalSpec, type TreeSpec } from '../helpers/tree-builder.js'

const CASES: Array<{ name: string, spec: TreeSpec }> = [
  { name: 'an empty tree', spec: {} },
  { name: 'files in nested folders', spec: { 'a/b.txt': 'content', 'a/c/d.txt': 'deeper', 'top': '' } },
  { name: 'empty folders and folders of other modes', spec: { 'dir/': {}, 'secret/': { mode: 0o700 }, 'secret/x': 'x', 'dir2/sub/': {} } },
  { name: 'modes of files', spec: { 'run.sh': { content: '#!/bin/sh', mode: 0o755 }, 'ro': { content: 'r', mode: 0o400 } } },
  { name: 'symlinks', spec: { 'ln': { symlink: 'x' }, 'd/up': { symlink: '../ln' } } },
  { name: 'binary content and a file over a block', spec: { 'bin': Buffer.from([0xff, 0, 0xfe]), 'big': 'y'.repeat(200_000) } }
]

for (const { name, spec } of CASES) {
  test(`a spec of ${name} builds a committed tree that lists back to the same spec`, async () => {
    const { tree, sink, store } = await buildTree(spec)
    assert.equal(tree.dirty, false)
    assert.equal(sink.records.length, 1)
    assert.deepEqual(await listTree(tree), spec)
    assert.deepEqual(await listTree(sink.reopen(store)), spec, 'also once reopened')
  })
}

test('a spec in shorthand lists back in its canonical form', async () => {
  const spec: TreeSpec = { '/a/': {}, 'a/f': { content: 'f', mode: 0o644 }, 'b//g': Buffer.from('g'), 'c/': { mode: 0o755 } }
  const canonical = { 'a/f': 'f', 'b/g': 'g', 'c/': {} }
  assert.deepEqual(canonicalSpec(spec), canonical)
  const { tree } = await buildTree(spec)
  assert.deepEqual(await listTree(tree), canonical)
})

test('listing tells trees apart by content, mode, kind and target', async () => {
  const base = await listTree((await buildTree({ 'f': 'one', 'l': { symlink: 'f' } })).tree)
  const others: TreeSpec[] = [
    { 'f': 'two', 'l': { symlink: 'f' } },
    { 'f': { content: 'one', mode: 0o600 }, 'l': { symlink: 'f' } },
    { 'f/': {}, 'l': { symlink: 'f' } },
    { 'f': 'one', 'l': { symlink: 'g' } }
  ]
  for (const other of others) {
    assert.notDeepEqual(await listTree((await buildTree(other)).tree), base, JSON.stringify(other))
  }
})
