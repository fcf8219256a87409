// A directory load that is under way when a merged tree is swapped in (Tree.adopt) must not put
// the old node's entries under the new node's CID: the merge would vanish from the mount, and the
// next local commit would undo it on every device.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryCommitSink } from '../helpers/memory-store.js'
import { buildTree, listTree } from '../helpers/tree-builder.js'
import { Tree } from '../../src/fs/tree/tree.js'
import { BlockCache } from '../../src/store/block-cache.js'

test('a root load running across two merges ends with the second merge\'s entries, and a local commit keeps them', async () => {
  const { tree, store, sink } = await buildTree({ 'a.txt': 'a' })
  // Two later trees of the same drive, made by "another device" on the same store.
  const other = async (head: NonNullable<typeof sink.last>, edit: (t: Tree) => Promise<void>): Promise<NonNullable<typeof sink.last>> => {
    const s = new MemoryCommitSink()
    const t = new Tree({ store, cache: new BlockCache(1 << 20), sink: s, head })
    await edit(t)
    await t.commit()
    return s.last!
  }
  const t1 = await other(sink.last!, async t => { await t.mkdir('/one', 0o755) })
  const t2 = await other(t1, async t => { await t.mkdir('/two', 0o755) })
  assert.ok(await tree.adopt({ root: t1.root, links: t1.links }, tree.head.seq) != null)
  const root = await tree.lookup('/')
  // Slow reads from here on (a loaded disk, a block fetched from the hub).
  const get = store.get.bind(store)
  store.get = async (...a: Parameters<typeof get>) => { await new Promise(resolve => setTimeout(resolve, 50)); return await get(...a) }
  const stat = tree.statLoaded(root) // a getattr of '/': loads the root's entries
  await new Promise(resolve => setImmediate(resolve))
  await new Promise(resolve => setImmediate(resolve))
  assert.ok(await tree.adopt({ root: t2.root, links: t2.links }, tree.head.seq) != null)
  await stat
  store.get = get
  assert.deepEqual(Object.keys(await listTree(tree)).sort(), ['a.txt', 'one/', 'two/'], 'the live tree holds both merges')
  await tree.mkdir('/local', 0o755)
  await tree.commit()
  assert.deepEqual(Object.keys(await listTree(sink.reopen(store))).sort(), ['a.txt', 'local/', 'one/', 'two/'])
})
