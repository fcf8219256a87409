// Sharded directories (src/fs/tree/dir-shards.ts, docs/format.md "Sharded directory node"): a
// folder past the threshold becomes a trie of sealed shards and back below it; any sequence of
// adds, removes and renames reads back as a plain Map model says, across commits and reopens; a
// change reseals O(log n) shards and a cold lookup opens O(log n) nodes; a shard moved to another
// place, another folder, or replayed from an older commit is refused.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { open, unpadFrame } from '../../src/crypto/index.js'
import { checkCid } from '../../src/store/cid.js'
import { decodeAny } from '../../src/fs/tree/format.js'
import { shardPosition } from '../../src/fs/tree/codec.js'
import { LEAF_BYTES, type Shard } from '../../src/fs/tree/dir-shards.js'
import { Tree, type DirNode, type FileNode } from '../../src/fs/tree/tree.js'
import { BlockCache } from '../../src/store/block-cache.js'
import { memoryTree, MemoryBlockStore, MemoryCommitSink } from '../helpers/memory-store.js'
import { touch } from '../../src/fs/tree/changes.js'

/** The memory store, checking every read against its CID as PackStore does. */
class CheckedStore extends MemoryBlockStore {
  gets = 0
  override async get (cid: CID, scratch?: Buffer): Promise<Uint8Array> {
    this.gets++
    const b = await super.get(cid, scratch)
    checkCid(cid, b)
    return b
  }
}

const fresh = (): { tree: Tree, store: CheckedStore, sink: MemoryCommitSink } => {
  const store = new CheckedStore()
  const { tree, sink } = memoryTree({ store })
  return { tree, store, sink }
}

const names = async (t: Tree, path: string): Promise<string[]> => (await t.readdir(path)).map(([n]) => n).sort()
const dirAt = async (t: Tree, path: string): Promise<DirNode> => await t.lookup(path) as DirNode
const fname = (i: number): string => `file-${String(i).padStart(6, '0')}.txt`

async function fill (t: Tree, dir: string, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) await t.create(`${dir}/${fname(i)}`, 0o644)
}

function countShards (s: Shard): number {
  let n = 1
  for (const k of s.kids?.values() ?? []) n += countShards(k)
  return n
}

function depthOf (s: Shard): number {
  let d = s.depth
  for (const k of s.kids?.values() ?? []) d = Math.max(d, depthOf(k))
  return d
}

test('a folder becomes sharded past the threshold, reopens with every name, and turns back into a plain node when it shrinks', async () => {
  const { tree, store, sink } = fresh()
  await tree.mkdir('/big', 0o755)
  await fill(tree, '/big', 0, 100)
  await tree.commit()
  assert.equal((await dirAt(tree, '/big')).shards, null, '100 entries fit in one plain node')
  await fill(tree, '/big', 100, 2000)
  await tree.commit()
  const big = await dirAt(tree, '/big')
  assert.ok(big.shards != null, '2,000 entries: sharded')
  assert.ok(big.shards.root.kids!.size > 1)
  const again = sink.reopen(store)
  assert.equal((await names(again, '/big')).length, 2000)
  assert.equal((await again.stat(await again.lookup('/big'))).nlink, 2)
  // Shrink to 50 entries: the next commit merges the shards back into a plain node.
  for (let i = 50; i < 2000; i++) await again.unlink(`/big/${fname(i)}`)
  await again.commit()
  const small = await dirAt(again, '/big')
  assert.equal(small.shards, null, 'merged back')
  const body = decodeAny<{ v: number, e: unknown[] }>(unpadFrame(open(small.key, shardPosition(small, 0), await store.get(small.cid!)))!, 'dir', [1, 2])
  assert.equal(body.v, 1, 'a plain { v: 1, e } node again')
  assert.equal(body.e.length, 50)
  assert.deepEqual(await names(sink.reopen(store), '/big'), Array.from({ length: 50 }, (_, i) => fname(i)))
})

test('random adds, removes, renames, chmods, writes and subdirectories in a sharded folder read back as a Map model says, across commits and reopens', async () => {
  let { tree, store, sink } = fresh()
  await tree.mkdir('/d', 0o755)
  await tree.mkdir('/e', 0o755)
  const model = new Map<string, string>() // path -> kind
  const modes = new Map<string, number>() // path -> mode, where changed
  const contents = new Map<string, string>() // path -> content, where written
  let seed = 12345 // mulberry32: a fixed sequence, so a failure replays
  const rnd = (n: number): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) % n
  }
  const pick = (): string | undefined => { const k = [...model.keys()]; return k.length === 0 ? undefined : k[rnd(k.length)] }
  for (let step = 0; step < 6000; step++) {
    const r = rnd(100)
    if (r < 55 || model.size < 50) {
      const p = `/${rnd(4) === 0 ? 'e' : 'd'}/n${rnd(100000)}`
      if (model.has(p)) continue
      if (rnd(10) === 0) { await tree.mkdir(p, 0o755); model.set(p, 'dir') } else { await tree.create(p, 0o644); model.set(p, 'file') }
    } else if (r < 70) {
      const p = pick()!
      if (model.get(p) === 'dir') await tree.rmdir(p); else await tree.unlink(p)
      model.delete(p)
      modes.delete(p)
      contents.delete(p)
    } else if (r < 76) {
      const p = pick()!
      const mode = 0o600 + rnd(0o100)
      await tree.chmod(p, mode)
      modes.set(p, mode)
    } else if (r < 82) {
      const p = pick()!
      if (model.get(p) !== 'file') continue
      const text = `content of ${p} at step ${step}`
      const f = await tree.lookup(p) as FileNode
      await tree.truncate(f, 0)
      await tree.write(f, Buffer.from(text), 0)
      contents.set(p, text)
    } else {
      const p = pick()!
      const to = `/${rnd(2) === 0 ? 'e' : 'd'}/m${rnd(100000)}`
      if (model.has(to)) continue
      await tree.rename(p, to)
      model.set(to, model.get(p)!)
      model.delete(p)
      for (const m of [modes, contents] as Array<Map<string, unknown>>) { if (m.has(p)) { m.set(to, m.get(p)); m.delete(p) } }
    }
    if (step % 700 === 0) await tree.commit()
    if (step % 2100 === 2099) { await tree.commit(); tree = sink.reopen(store) }
  }
  await tree.commit()
  for (const t of [tree, sink.reopen(store)]) {
    for (const d of ['d', 'e']) {
      const want = [...model.keys()].filter(p => p.startsWith(`/${d}/`)).map(p => p.slice(3)).sort()
      assert.deepEqual(await names(t, `/${d}`), want)
      const subdirs = [...model].filter(([p, k]) => p.startsWith(`/${d}/`) && k === 'dir').length
      assert.equal((await t.stat(await t.lookup(`/${d}`))).nlink, 2 + subdirs, 'nlink counts every subdirectory')
    }
    // Lookups on a fresh tree: hits and misses.
    const cold = sink.reopen(store)
    for (const [p, k] of [...model].slice(0, 200)) assert.equal((await cold.lookup(p)).kind, k === 'dir' ? 2 : 1)
    for (const [p, mode] of modes) assert.equal((await cold.lookup(p)).attrs.mode, mode, `mode of ${p}`)
    for (const [p, text] of contents) {
      const f = await cold.lookup(p) as FileNode
      const out = Buffer.alloc(200)
      assert.equal(out.subarray(0, await cold.read(f, out, 200, 0)).toString(), text, `content of ${p}`)
    }
    await assert.rejects(cold.lookup('/d/not-there'), { code: 'ERR_NOT_FOUND' })
  }
  assert.ok((await dirAt(tree, '/d')).shards != null, 'the model folder ended sharded')
})

test('one change in a folder of 20,000 entries reseals O(log n) shards and a cold lookup opens O(log n) nodes', async () => {
  const { tree, store, sink } = fresh()
  await tree.mkdir('/big', 0o755)
  await fill(tree, '/big', 0, 20000)
  await tree.commit()
  const big = await dirAt(tree, '/big')
  const depth = depthOf(big.shards!.root)
  assert.ok(depth >= 2 && depth <= 4, `depth ${depth}`)
  for (const change of [
    async () => { await tree.create('/big/new-one', 0o644) },
    async () => { await tree.unlink(`/big/${fname(777)}`) },
    async () => { await tree.rename(`/big/${fname(778)}`, '/big/renamed') },
    async () => { await tree.chmod(`/big/${fname(779)}`, 0o600) }
  ]) {
    const objects = store.size
    const bytes = store.bytes
    await change()
    await tree.commit()
    const sealed = store.size - objects
    // Per name changed: its leaf and the inner nodes above it; then the root directory.
    assert.ok(sealed <= 2 * (depth + 1) + 1, `${sealed} objects sealed (depth ${depth})`)
    assert.ok(store.bytes - bytes < 64 * 1024, `${store.bytes - bytes} bytes written`)
  }
  const cold = sink.reopen(store)
  const before = store.gets
  await cold.lookup(`/big/${fname(12345)}`)
  const opened = store.gets - before
  assert.ok(opened <= depth + 2, `${opened} nodes opened for one lookup (root directory, shard path)`)
  await assert.rejects(cold.lookup('/big/absent'), { code: 'ERR_NOT_FOUND' })
  assert.ok(store.gets - before <= 2 * (depth + 2))
})

test('a shard moved to another place, taken from another folder, or replayed from an older commit is refused', async () => {
  const { tree, store, sink } = fresh()
  for (const d of ['/a', '/b']) { await tree.mkdir(d, 0o755); await fill(tree, d, 0, 1500) }
  await tree.commit()
  const a = await dirAt(tree, '/a')
  const b = await dirAt(tree, '/b')
  const kidsOf = (d: DirNode): Shard[] => [...d.shards!.root.kids!.values()]
  const [x, y] = kidsOf(a)
  const otherDir = kidsOf(b)[0]
  const raw = async (cid: CID): Promise<Uint8Array> => Uint8Array.from(await store.get(cid))
  assert.ok(unpadFrame(open(a.key, shardPosition(a, x.index), await raw(x.cid!)))!.length > LEAF_BYTES / 64)
  const xBytes = Buffer.from(await raw(x.cid!))
  assert.throws(() => open(a.key, shardPosition(a, y.index), xBytes), 'a shard opens only at its own place')
  assert.throws(() => open(b.key, shardPosition(b, x.index), xBytes), 'nor in another folder')
  // Replay: the shard changes; its older version is then put under the new CID.
  const oldX = await raw(x.cid!)
  const oldXCid = x.cid!
  for (const name of x.names!) { await tree.chmod(`/a/${name}`, 0o600); break }
  await tree.commit()
  assert.ok(!x.cid!.equals(oldXCid), 'the shard was resealed')
  // The store's bytes of the shard swapped for another's (a write to the packs): the read fails.
  const cases: Array<[string, CID, Uint8Array]> = [['another place', x.cid!, await raw(y.cid!)], ['another folder', x.cid!, await raw(otherDir.cid!)], ['an older commit', x.cid!, oldX]]
  for (const [why, cid, bytes] of cases) {
    const keep = await raw(cid)
    store.replace(cid, bytes)
    const cold = sink.reopen(store, { log: () => {} } as never)
    await assert.rejects((async () => { for (const n of await names(cold, '/a')) void n })(), { code: 'ERR_INTEGRITY' }, why)
    store.replace(cid, keep)
  }
  assert.equal((await names(sink.reopen(store), '/a')).length >= 1500, true)
})

test('a merged tree swapped in under a loaded sharded folder: lookups see the merged folder, not the shards loaded before, and a local commit keeps the merge', async () => {
  const { tree, store, sink } = fresh()
  await tree.mkdir('/big', 0o755)
  await fill(tree, '/big', 0, 3000)
  await tree.commit()
  // Another device's later tree of the same drive: one name renamed in the big folder.
  const otherSink = new MemoryCommitSink()
  const t = new Tree({ store, cache: new BlockCache(1 << 20), sink: otherSink, head: sink.last })
  await t.rename(`/big/${fname(5)}`, '/big/renamed-by-other')
  await t.commit()
  const cold = sink.reopen(store)
  await cold.lookup(`/big/${fname(6)}`) // the root directory, the folder's root shard and one path
  await cold.lookup(`/big/${fname(5)}`) // its shard loaded: the old tree's
  assert.ok(await cold.adopt({ root: otherSink.last!.root, links: otherSink.last!.links }, cold.head.seq) != null)
  await assert.rejects(cold.lookup(`/big/${fname(5)}`), { code: 'ERR_NOT_FOUND' }, 'the merged folder: renamed away')
  assert.equal((await cold.lookup('/big/renamed-by-other')).kind, 1)
  assert.equal((await names(cold, '/big')).length, 3000)
  await cold.create('/big/local', 0o644)
  await cold.commit()
  const again = await names(sink.reopen(store), '/big')
  assert.ok(again.includes('renamed-by-other') && again.includes('local') && !again.includes(fname(5)))
})

test('a trie whose counts do not add up is refused when read, so rmdir cannot take a full folder for empty', async () => {
  const { tree, store, sink } = fresh()
  await tree.mkdir('/big', 0o755)
  await fill(tree, '/big', 0, 600)
  await tree.commit()
  const big = await dirAt(tree, '/big')
  assert.ok(big.shards != null)
  big.shards.root.count = 0 // a writer whose root count is off (a bug, or a faulty device with the key)
  touch(big)
  await tree.commit()
  const t = sink.reopen(store)
  await assert.rejects(t.rmdir('/big'), (e: Error & { code?: string }) => e.code === 'ERR_FORMAT' && /counts 600 entries below it, its parent counts 0/.test(e.message))
})

test('a removal that happened is reported as done although a shard the merge back wanted to load is damaged', async () => {
  const { tree, store, sink } = fresh()
  const pad = 'p'.repeat(200)
  await tree.mkdir('/big', 0o755)
  for (let i = 0; i < 257; i++) await tree.create(`/big/f${i}-${pad}`, 0o644)
  await tree.commit()
  assert.ok((await dirAt(tree, '/big')).shards != null)
  const t = sink.reopen(store)
  await t.lookup(`/big/f0-${pad}`)
  const victim = (await dirAt(t, '/big')).shards!.frontier()[0]
  store.corrupt(victim.cid!)
  await t.unlink(`/big/f0-${pad}`) // resolves: the name is gone, as the next commit records
  await t.commit()
  await assert.rejects(sink.reopen(store).lookup(`/big/f0-${pad}`), (e: Error & { code?: string }) => e.code === 'ERR_NOT_FOUND')
})

test('a change deep inside a subdirectory of a sharded folder is committed, whether the folder was made in this session or read back', async () => {
  const { tree, store, sink } = fresh()
  await tree.mkdir('/big', 0o755)
  await fill(tree, '/big', 0, 3000)
  for (let i = 0; i < 20; i++) await tree.mkdir(`/big/sub-${i}`, 0o755)
  await tree.commit()
  await tree.create('/big/sub-3/inner', 0o644) // only the subdirectory's entry changes in /big
  await tree.mkdir('/big/sub-7/deeper', 0o755)
  await tree.commit()
  await tree.create('/big/sub-7/deeper/leaf', 0o644)
  await tree.commit()
  const cold = sink.reopen(store)
  assert.equal((await cold.lookup('/big/sub-3/inner')).kind, 1)
  assert.equal((await cold.lookup('/big/sub-7/deeper/leaf')).kind, 1)
  await cold.create('/big/sub-11/after-reopen', 0o644)
  await cold.chmod('/big/sub-3/inner', 0o600)
  await cold.commit()
  const again = sink.reopen(store)
  assert.equal((await again.lookup('/big/sub-11/after-reopen')).kind, 1)
  assert.equal((await again.stat(await again.lookup('/big/sub-3/inner'))).mode & 0o777, 0o600)
  assert.equal((await names(again, '/big')).length, 3020)
})

test('a commit stores directory nodes and shards as fresh puts (sealed under a new nonce): no dedupe probe of the store per shard', async () => {
  class Counting extends CheckedStore {
    plain = 0 // and `fresh`, counted by MemoryBlockStore
    override put (bytes: Uint8Array): CID { this.plain++; return super.put(bytes) }
  }
  const store = new Counting()
  const { tree } = memoryTree({ store })
  await tree.mkdir('/big', 0o755)
  await fill(tree, '/big', 0, 2000)
  await tree.commit()
  assert.ok((await dirAt(tree, '/big')).shards != null)
  assert.equal(store.plain, 0, 'no put() of a directory node or shard')
  assert.ok(store.fresh >= 17, `${store.fresh} fresh puts: the shards and the root`)
  store.fresh = 0
  const shardsBefore = countShards((await dirAt(tree, '/big')).shards!.root)
  await tree.create(`/big/${fname(5000)}`, 0o644)
  await tree.commit()
  assert.equal(store.plain, 0)
  // Names land in leaves by a keyed hash (the folder's key is random): once in a while the new
  // name fills its leaf, which splits, and the new leaves are stored too (seen: 19 objects).
  const split = countShards((await dirAt(tree, '/big')).shards!.root) - shardsBefore
  assert.ok(store.fresh >= 3 && store.fresh <= 5 + split, `one create: ${store.fresh} objects stored (its leaf, the folder's root shard, the root directory; ${split} shards more after it)`)
})

test('loadTopShards loads the first level of a big folder read back, after which a cold lookup there opens one shard fewer; a folder under the minimum is left alone', async () => {
  const { tree, store, sink } = fresh()
  await tree.mkdir('/big', 0o755)
  await fill(tree, '/big', 0, 20000)
  await tree.mkdir('/small', 0o755)
  await fill(tree, '/small', 0, 2000)
  await tree.commit()
  const gets = async (t: Tree, name: string): Promise<number> => { const g = store.gets; await t.lookup(name); return store.gets - g }
  const plain = sink.reopen(store)
  await plain.children(await dirAt(plain, '/big')) // its root shard, as the warm-up's lookups leave it
  const without = await gets(plain, `/big/${fname(4321)}`)
  const warm = sink.reopen(store)
  await warm.lookup('/big')
  const g0 = store.gets
  assert.equal(await warm.loadTopShards('/big', 10_000), 16)
  assert.equal(store.gets - g0, 1 + 16, 'the folder\'s root shard, then its 16 children')
  assert.equal(await warm.loadTopShards('/big', 10_000), 0, 'loaded once')
  assert.equal(await gets(warm, `/big/${fname(4321)}`), without - 1)
  assert.equal(await warm.loadTopShards('/small', 10_000), 0, '2,000 entries: under the minimum')
  assert.equal(await warm.loadTopShards(`/big/${fname(1)}`, 0), 0, 'a file: nothing')
  assert.equal((await warm.readdir('/big')).length, 20000, 'the folder lists whole after it')
})
