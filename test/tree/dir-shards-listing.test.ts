// Listing a sharded folder by pages (src/fs/tree/dir-listing.ts): pages cover the folder once, in
// position order; a listing resumed after a position skips and repeats nothing that stayed in
// the folder while names were added, removed and renamed between pages (POSIX readdir); the
// leaves a listing loaded are let go behind it (not those in use), and what was let go loads
// again on the next use, changes included.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { createHmac, randomBytes } from 'node:crypto'
import { comparePos, nameHash, type ListPos } from '../../src/fs/tree/dir-shards.js'
import type { Tree, DirNode, FileNode } from '../../src/fs/tree/tree.js'
import { memoryTree, MemoryBlockStore } from '../helpers/memory-store.js'

const fname = (i: number): string => `file-${String(i).padStart(6, '0')}.txt`

async function bigFolder (n: number): Promise<{ tree: Tree, reopen: () => Tree }> {
  const store = new MemoryBlockStore()
  const { tree, sink } = memoryTree({ store })
  await tree.mkdir('/big', 0o755)
  for (let i = 0; i < n; i++) await tree.create(`/big/${fname(i)}`, 0o644)
  await tree.commit()
  return { tree, reopen: () => sink.reopen(store) }
}

/** Every page of a listing of `path`; `between` runs after each page. */
async function listAll (t: Tree, path: string, max: number, between: (page: number) => Promise<void> = async () => {}): Promise<{ names: string[], pos: ListPos[], pages: number }> {
  const names: string[] = []
  const pos: ListPos[] = []
  let after: ListPos | null = null
  for (let pages = 1; ; pages++) {
    const page = await t.readdirPage(path, after, max)
    assert.ok(page.pos != null, 'a sharded folder is listed by position')
    names.push(...page.entries.map(([n]) => n))
    pos.push(...page.pos)
    await turn() // FUSE asks for each page in a request of its own: the leaves behind go meanwhile
    if (page.end) return { names, pos, pages }
    assert.ok(page.entries.length > 0, 'a page that does not end the listing has entries')
    after = page.pos[page.pos.length - 1]
    await between(pages)
  }
}

const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
const loadedNames = async (t: Tree): Promise<number> => (await t.lookup('/big') as DirNode).shards!.leafOf.size

test('a sharded folder listed by pages gives every name once, in position order, and holds only about a page of it', async () => {
  const { reopen } = await bigFolder(6000)
  const t = reopen()
  let most = 0
  const { names, pos, pages } = await listAll(t, '/big', 200, async () => { most = Math.max(most, await loadedNames(t)) })
  assert.equal(names.length, 6000)
  assert.equal(new Set(names).size, 6000, 'no name twice')
  assert.ok(pages >= 30, `${pages} pages`)
  for (let i = 1; i < pos.length; i++) assert.ok(comparePos(pos[i - 1], pos[i]) < 0, 'positions increase')
  assert.ok(most > 0 && most < 1500, `${most} names loaded at most between pages (of 6,000)`)
  assert.equal(await loadedNames(t), 0, 'every leaf let go at the end')
  // A plain folder: one page, the whole snapshot.
  await t.mkdir('/small', 0o755)
  await t.create('/small/a', 0o644)
  const small = await t.readdirPage('/small', null, 1)
  assert.deepEqual([small.entries.map(([n]) => n), small.pos, small.end], [['a'], null, true])
})

test('names that stay in a folder while a paged listing runs are listed exactly once, whatever is added, removed, renamed and split between pages', async () => {
  const { tree, reopen } = await bigFolder(3000)
  let seed = 99 // mulberry32: a fixed sequence, so a failure replays
  const rnd = (n: number): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) % n
  }
  for (const t of [tree, reopen()]) {
    const present = new Set((await t.readdir('/big')).map(([n]) => n))
    const stayed = new Set(present) // there for the whole listing
    let fresh = 0
    const { names } = await listAll(t, '/big', 150, async page => {
      // Enough new names per page that leaves split under the listing; commits in between.
      for (let i = 0; i < 120; i++) {
        const r = rnd(10)
        const all = [...present]
        if (r < 6) {
          const n = `new-${fresh++}-${t === tree ? 'a' : 'b'}`
          await t.create(`/big/${n}`, 0o644)
          present.add(n)
        } else if (r < 8) {
          const n = all[rnd(all.length)]
          await t.unlink(`/big/${n}`)
          present.delete(n)
          stayed.delete(n)
        } else {
          const n = all[rnd(all.length)]
          const to = `moved-${fresh++}`
          await t.rename(`/big/${n}`, `/big/${to}`)
          present.delete(n)
          stayed.delete(n)
          present.add(to)
        }
      }
      if (page % 3 === 0) await t.commit()
    })
    const counts = new Map<string, number>()
    for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1)
    assert.deepEqual([...counts].filter(([, c]) => c > 1), [], 'no name listed twice')
    assert.deepEqual([...stayed].filter(n => !counts.has(n)), [], 'every name there throughout is listed')
    await t.commit()
  }
})

test('a listing lets go only of leaves nothing uses, and what it let go loads again with every later change kept', async () => {
  const { reopen } = await bigFolder(4000)
  const t = reopen()
  const open = await t.lookup(`/big/${fname(1234)}`) as FileNode
  open.pins++ // an open handle (src/fs/fuse/context.ts)
  await t.chmod(`/big/${fname(2345)}`, 0o600) // its leaf is dirty until the commit
  const { names } = await listAll(t, '/big', 300)
  assert.equal(names.length, 4000)
  const big = await t.lookup('/big') as DirNode
  assert.ok(big.shards!.leafOf.has(fname(1234)), 'the open file\'s leaf stays')
  assert.ok(big.shards!.leafOf.has(fname(2345)), 'the changed leaf stays')
  assert.ok(big.shards!.leafOf.size < 600, `${big.shards!.leafOf.size} names still loaded`)
  assert.equal(await t.lookup(`/big/${fname(1234)}`), open, 'the open file keeps its node')
  // Names whose leaves were let go: looked up, changed, committed, reopened.
  await t.chmod(`/big/${fname(7)}`, 0o640)
  await t.unlink(`/big/${fname(8)}`)
  await t.rename(`/big/${fname(9)}`, '/big/nine')
  await t.write(open, Buffer.from('kept'), 0)
  open.pins--
  await t.commit()
  for (const u of [t, reopen()]) {
    assert.equal((await u.lookup(`/big/${fname(7)}`)).attrs.mode, 0o640)
    assert.equal((await u.lookup(`/big/${fname(2345)}`)).attrs.mode, 0o600)
    await assert.rejects(u.lookup(`/big/${fname(8)}`), { code: 'ERR_NOT_FOUND' })
    assert.equal((await u.lookup('/big/nine')).kind, 1)
    const f = await u.lookup(`/big/${fname(1234)}`) as FileNode
    const out = Buffer.alloc(8)
    assert.equal(out.subarray(0, await u.read(f, out, 8, 0)).toString(), 'kept')
    const all = (await listAll(u, '/big', 500)).names
    assert.equal(all.length, 3999)
    assert.equal(new Set(all).size, 3999)
  }
})

test('leaves a listing is past stay while another call of the tree runs (a rename between its two lookups), and go at the next page once it is done', async () => {
  /** Reads answered on a later turn, as the pack store's are: other calls run in between. */
  class SlowStore extends MemoryBlockStore {
    override async get (cid: CID, scratch?: Buffer): Promise<Uint8Array> {
      await new Promise(resolve => setTimeout(resolve, 1))
      return await super.get(cid, scratch)
    }
  }
  const store = new SlowStore()
  const { tree, sink } = memoryTree({ store })
  await tree.mkdir('/big', 0o755)
  for (let i = 0; i < 3000; i++) await tree.create(`/big/${fname(i)}`, 0o644)
  await tree.commit()
  const t = sink.reopen(store)
  const first = await t.readdirPage('/big', null, 500)
  const big = await t.lookup('/big') as DirNode
  const from = first.entries[0][0]
  let to = ''
  for (let i = 0; to === ''; i++) if (!big.shards!.ready(`target-${i}`)) to = `target-${i}`
  // The page's leaves would go on the next turn; the rename holds `from`'s node across the read
  // of `to`'s shard, and must find it still in the folder.
  await t.rename(`/big/${from}`, `/big/${to}`)
  assert.equal((await t.lookup(`/big/${to}`)).kind, 1)
  await assert.rejects(t.lookup(`/big/${from}`), { code: 'ERR_NOT_FOUND' })
  const loaded = big.shards!.leafOf.size
  const second = await t.readdirPage('/big', first.pos![first.pos!.length - 1], 500)
  await turn()
  assert.ok(second.entries.length > 0)
  assert.ok(big.shards!.leafOf.size < loaded, `the first page's leaves went at the next page: ${big.shards!.leafOf.size} names loaded, ${loaded} before`)
  await t.commit()
  const names = (await sink.reopen(store).readdir('/big')).map(([n]) => n)
  assert.ok(names.includes(to) && !names.includes(from) && names.length === 3000)
})

test('the name hash is HMAC-SHA256 of the UTF-8 name under the folder\'s hash key, for short, long, non-ASCII and over-long names', () => {
  for (let k = 0; k < 3; k++) {
    const key = randomBytes(32)
    for (const name of ['a', fname(k), 'é'.repeat(127), '名前'.repeat(42), 'x'.repeat(255), 'y'.repeat(400), '🎉'.repeat(300), '']) {
      assert.deepEqual(nameHash(key, name), createHmac('sha256', key).update(name, 'utf8').digest(), `${name.length} UTF-16 units`)
    }
  }
})
