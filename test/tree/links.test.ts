// Hard links on memory parts (no mount): every name of a linked node is the one node, so content,
// size, times, mode and xattrs are the same under each; link counts follow link, unlink and
// rename; a commit keeps the node in the link table and a reopened tree finds it under each name.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { memoryTree } from '../helpers/memory-store.js'
import { FileNode, type Tree } from '../../src/fs/tree/tree.js'
import { decode, type DirNodeRecord } from '../../src/fs/tree/format.js'

const readAll = async (tree: Tree, path: string): Promise<string> => {
  const f = await tree.lookup(path) as FileNode
  const out = Buffer.alloc(f.size)
  const n = await tree.read(f, out, f.size, 0)
  return out.subarray(0, n).toString()
}

test('a linked file is one node under both names: a write through one is read through the other', async () => {
  const { tree } = memoryTree()
  await tree.mkdir('/d', 0o755)
  const f = await tree.create('/a', 0o644)
  await tree.write(f, Buffer.from('hello'), 0)
  const linked = await tree.link('/a', '/d/b')
  assert.equal(linked, f)
  assert.equal(await tree.lookup('/d/b'), f)
  await tree.write(await tree.lookup('/d/b') as FileNode, Buffer.from(' world'), 5)
  assert.equal(await readAll(tree, '/a'), 'hello world')
  await tree.truncate(await tree.lookup('/a') as FileNode, 4)
  assert.equal(tree.stat(await tree.lookup('/d/b')).size, 4)
  assert.equal(await readAll(tree, '/d/b'), 'hell')
})

test('chmod, chown, utimens and xattrs through one name are seen under the other, with one inode number', async () => {
  const { tree } = memoryTree()
  await tree.create('/a', 0o644)
  await tree.link('/a', '/b')
  await tree.chmod('/b', 0o600)
  await tree.chown('/a', 7, 8)
  await tree.utimens('/b', 1000, 2000)
  await tree.setxattr('/a', 'user.k', Buffer.from('v'), 0)
  const a = tree.stat(await tree.lookup('/a'))
  const b = tree.stat(await tree.lookup('/b'))
  assert.deepEqual(a, b)
  assert.equal(a.mode, 0o100600)
  assert.equal(a.uid, 7)
  assert.equal(a.mtime, 2000)
  assert.deepEqual(await tree.getxattr('/b', 'user.k'), Buffer.from('v'))
})

test('link counts follow link and unlink; ctime changes on each; unlinking one name keeps the content', async () => {
  let now = 1000
  const { tree } = memoryTree({ now: () => now })
  const f = await tree.create('/a', 0o644)
  await tree.write(f, Buffer.from('data'), 0)
  assert.equal(tree.stat(f).nlink, 1)
  now = 2000
  await tree.link('/a', '/b')
  await tree.link('/b', '/c')
  assert.equal(tree.stat(f).nlink, 3)
  assert.equal(f.attrs.ctime, 2000)
  now = 3000
  await tree.unlink('/a')
  assert.equal(tree.stat(await tree.lookup('/b')).nlink, 2)
  assert.equal(f.attrs.ctime, 3000)
  await assert.rejects(tree.lookup('/a'), { code: 'ERR_NOT_FOUND' })
  assert.equal(await readAll(tree, '/c'), 'data')
  await tree.unlink('/b')
  await tree.unlink('/c')
  assert.equal(f.nlink, 0)
  assert.equal(f.parent, null, 'its last name gone, the file is out of the tree')
  assert.equal(tree.links.nodes!.size, 0, 'and out of the link table')
  assert.deepEqual((await tree.readdir('/')).map(([n]) => n), [])
})

test('links to symlinks and device nodes work too; a directory, a missing source and a taken name fail', async () => {
  const { tree } = memoryTree()
  await tree.mkdir('/d', 0o755)
  await tree.create('/f', 0o644)
  const s = await tree.symlink('target', '/s')
  const p = await tree.mknod('/p', 0o010644, 0)
  await tree.link('/s', '/s2')
  await tree.link('/p', '/d/p2')
  assert.equal(await tree.lookup('/s2'), s)
  assert.equal(await tree.readlink('/s2'), 'target')
  assert.equal(tree.stat(await tree.lookup('/d/p2')).nlink, 2)
  assert.equal(await tree.lookup('/d/p2'), p)
  await assert.rejects(tree.link('/d', '/d2'), { code: 'ERR_NOT_PERMITTED' })
  await assert.rejects(tree.link('/missing', '/x'), { code: 'ERR_NOT_FOUND' })
  await assert.rejects(tree.link('/f', '/missing/x'), { code: 'ERR_NOT_FOUND' })
  await assert.rejects(tree.link('/f', '/s'), { code: 'ERR_EXISTS' })
  await assert.rejects(tree.link('/f', '/d'), { code: 'ERR_EXISTS' })
  assert.equal(tree.stat(await tree.lookup('/f')).nlink, 1, 'a failed link leaves the count')
})

test('rename moves a linked name; rename onto another name of the same file changes nothing; replacing a linked name drops one link', async () => {
  const { tree } = memoryTree()
  await tree.mkdir('/d', 0o755)
  const f = await tree.create('/a', 0o644)
  await tree.link('/a', '/b')
  await tree.rename('/b', '/d/c')
  assert.equal(await tree.lookup('/d/c'), f)
  assert.equal(f.nlink, 2)
  await tree.rename('/a', '/d/c')
  assert.equal(await tree.lookup('/a'), f, 'POSIX: both names stay')
  assert.equal(await tree.lookup('/d/c'), f)
  assert.equal(f.nlink, 2)
  const g = await tree.create('/g', 0o644)
  await tree.rename('/g', '/a')
  assert.equal(await tree.lookup('/a'), g)
  assert.equal(f.nlink, 1)
  assert.equal(await tree.lookup('/d/c'), f)
  await tree.rename('/a', '/d/c')
  assert.equal(f.nlink, 0)
  assert.equal(tree.links.nodes!.size, 0)
})

test('a change through a linked name dirties the link table, not the directories that hold its names', async () => {
  const { tree } = memoryTree()
  const d = await tree.mkdir('/d', 0o755)
  await tree.create('/d/a', 0o644)
  await tree.link('/d/a', '/d/b')
  await tree.commit()
  assert.equal(tree.dirty, false)
  await tree.chmod('/d/b', 0o600)
  assert.equal(tree.links.dirty, true)
  assert.equal(d.dirty, false)
  assert.equal(tree.dirty, true)
  await tree.commit()
  assert.equal(tree.dirty, false)
})

test('commit and reopen keep a linked file one node under all its names, with content, count, xattrs and inode', async () => {
  const { tree, store, sink } = memoryTree()
  await tree.mkdir('/d', 0o755)
  await tree.mkdir('/e', 0o755)
  const f = await tree.create('/d/a', 0o640)
  const big = Buffer.alloc(40 * 128 * 1024 + 17, 7) // past INLINE_BLOCKS: a block map in the table
  await tree.write(f, big, 0)
  await tree.link('/d/a', '/e/b')
  await tree.link('/d/a', '/d/c')
  await tree.setxattr('/e/b', 'user.x', Buffer.from('1'), 0)
  await tree.create('/d/plain', 0o644)
  await tree.commit()
  const rec = sink.last!
  assert.ok(rec.links != null, 'the commit record names the link table')

  const again = sink.reopen(store)
  const a = await again.lookup('/d/a')
  const b = await again.lookup('/e/b')
  const c = await again.lookup('/d/c')
  assert.ok(a instanceof FileNode)
  assert.equal(a, b)
  assert.equal(a, c)
  assert.equal(again.stat(a).nlink, 3)
  assert.equal(again.stat(a).size, big.length)
  assert.equal(again.stat(a).mode, 0o100640)
  assert.deepEqual(await again.getxattr('/d/c', 'user.x'), Buffer.from('1'))
  const out = Buffer.alloc(big.length)
  assert.equal(await again.read(a, out, big.length, 0), big.length)
  assert.ok(out.equals(big))
  assert.equal(again.stat(await again.lookup('/d/plain')).nlink, 1)

  // and changes after the reopen go on through the table
  await again.unlink('/d/a')
  await again.write(b as FileNode, Buffer.from('xyz'), 0)
  await again.commit()
  const third = sink.reopen(store)
  const b3 = await third.lookup('/e/b') as FileNode
  assert.equal(b3, await third.lookup('/d/c'))
  assert.equal(third.stat(b3).nlink, 2)
  const head = Buffer.alloc(3)
  await third.read(b3, head, 3, 0)
  assert.equal(head.toString(), 'xyz')
  await assert.rejects(third.lookup('/d/a'), { code: 'ERR_NOT_FOUND' })
})

test('a tree that never had a link commits no link table (records stay as before)', async () => {
  const { tree, sink } = memoryTree()
  await tree.create('/a', 0o644)
  await tree.commit()
  assert.equal(sink.last!.links, undefined)
})

test('a directory entry of a linked name stores only name, type and link id', async () => {
  const { tree, store } = memoryTree()
  await tree.create('/a', 0o644)
  await tree.link('/a', '/b')
  await tree.commit()
  const { open, unpadFrame } = await import('../../src/crypto/index.js')
  const { dirPosition } = await import('../../src/fs/tree/codec.js')
  const sealed = await store.get(tree.root.cid!)
  const rec = decode<DirNodeRecord>(unpadFrame(open(tree.root.key, dirPosition(tree.root), sealed))!, 'root')
  for (const e of rec.e) assert.deepEqual(Object.keys(e).sort(), ['h', 'n', 't'])
  assert.deepEqual(rec.e.map(e => e.n), ['a', 'b'])
})

test('a node at LINK_MAX names refuses another with EMLINK\'s code', async () => {
  const { tree } = memoryTree()
  const f = await tree.create('/a', 0o644)
  const { LINK_MAX } = await import('../../src/fs/tree/namespace.js')
  f.nlink = LINK_MAX
  await assert.rejects(tree.link('/a', '/b'), { code: 'ERR_TOO_MANY_LINKS' })
  await assert.rejects(tree.lookup('/b'), { code: 'ERR_NOT_FOUND' })
})
