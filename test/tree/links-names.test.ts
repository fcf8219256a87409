// The link table's record of each linked node's names (what the FUSE layer invalidates when a
// linked node changes: src/fs/fuse/kernel-names.ts): it follows link, unlink, rename, a rename
// over a name and a rename of a parent directory; every change of a linked node (content, size,
// attributes, link count) is reported once, with the paths of all its names; a reopened tree
// knows the names in the directories it has loaded.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { memoryTree } from '../helpers/memory-store.js'
import { FileNode } from '../../src/fs/tree/tree.js'

const sorted = (a: string[]): string[] => [...a].sort()

test('each change of a linked node reports the paths of all its names once; a change of a plain file reports none', async () => {
  const { tree } = memoryTree()
  await tree.mkdir('/d', 0o755)
  const f = await tree.create('/a', 0o644)
  const plain = await tree.create('/plain', 0o644)
  await tree.write(plain, Buffer.from('x'), 0)
  assert.deepEqual(tree.links.takeChanged(), [])
  await tree.link('/a', '/d/b')
  assert.deepEqual(sorted(tree.links.takeChanged()), ['/a', '/d/b'])
  assert.deepEqual(tree.links.takeChanged(), [], 'taken once')

  await tree.write(f, Buffer.from('hello'), 0)
  assert.deepEqual(sorted(tree.links.takeChanged()), ['/a', '/d/b'])
  await tree.truncate(f, 2)
  await tree.chmod('/d/b', 0o600)
  await tree.utimens('/a', 1, 2)
  await tree.setxattr('/a', 'user.k', Buffer.from('v'), 0)
  assert.deepEqual(sorted(tree.links.takeChanged()), ['/a', '/d/b'], 'several changes: each name once')
  await tree.link('/d/b', '/c')
  assert.deepEqual(sorted(tree.links.takeChanged()), ['/a', '/c', '/d/b'])
  await tree.unlink('/a')
  assert.deepEqual(sorted(tree.links.takeChanged()), ['/c', '/d/b'], 'the names left')
})

test('names follow renames of a name, of its directory, and a rename over a name', async () => {
  const { tree } = memoryTree()
  await tree.mkdir('/d', 0o755)
  await tree.mkdir('/d/e', 0o755)
  await tree.create('/d/e/x', 0o644)
  await tree.link('/d/e/x', '/y')
  await tree.link('/d/e/x', '/z')
  tree.links.takeChanged()

  await tree.rename('/d', '/D')
  assert.deepEqual(tree.links.takeChanged(), [], 'a directory rename changes no linked node')
  const node = await tree.lookup('/y') as FileNode
  await tree.write(node, Buffer.from('!'), 0)
  assert.deepEqual(sorted(tree.links.takeChanged()), ['/D/e/x', '/y', '/z'])

  await tree.rename('/y', '/D/y2')
  assert.deepEqual(sorted(tree.links.takeChanged()), ['/D/e/x', '/D/y2', '/z'])
  await tree.create('/other', 0o644)
  await tree.rename('/other', '/z')
  assert.deepEqual(sorted(tree.links.takeChanged()), ['/D/e/x', '/D/y2'], 'the name replaced is gone, the others lost a link')
  assert.equal(tree.stat(node).nlink, 2)
  assert.ok(['/D/e/x', '/D/y2'].includes(node.path()), `its own parent and name are one of its names: ${node.path()}`)
})

test('a reopened tree knows the names in the directories it loaded', async () => {
  const { tree, store, sink } = memoryTree()
  await tree.mkdir('/p', 0o755)
  await tree.mkdir('/q', 0o755)
  await tree.create('/p/one', 0o644)
  await tree.link('/p/one', '/q/two')
  await tree.commit()
  const again = sink.reopen(store)
  const f = await again.lookup('/p/one') as FileNode
  await again.write(f, Buffer.from('data'), 0)
  assert.deepEqual(again.links.takeChanged(), ['/p/one'], '/q is not loaded: the kernel cannot have looked up /q/two')
  await again.readdir('/q')
  await again.chmod('/q/two', 0o640)
  assert.deepEqual(sorted(again.links.takeChanged()), ['/p/one', '/q/two'])
})
