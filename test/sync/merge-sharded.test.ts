// Sync over sharded directories (src/fs/tree/dir-shards.ts): a snapshot reads every shard of a
// big folder, a merge of a big folder changed on both sides keeps both sides' changes, and
// writing the merge back keeps the CID of every shard neither side changed (so it writes a few
// shards, not the folder); reading both sides after the base opens only the shards they changed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MergeWorld, BASE_TIME, type TreeSpec, type Edit } from '../helpers/tree-builder.js'
import { readSnapshot, canonical, forgetOpenedDirs } from '../../src/sync/snapshot.js'
import { merge3 } from '../../src/sync/merge.js'
import { materialize } from '../../src/sync/snapshot-write.js'

const devices = { ours: 'laptop', theirs: 'desktop' }
const N = 3000

function bigFolder (): TreeSpec {
  const spec: TreeSpec = { 'other/x.txt': 'x' }
  for (let i = 0; i < N; i++) spec[`big/f${i}.txt`] = `${i}`
  return spec
}

test('a big folder changed on both devices merges with both sides kept, and writing it back reseals only the shards that changed', async () => {
  const w = await MergeWorld.create(bigFolder())
  const base = await readSnapshot(w.base, w.store)
  const bigId = [...base.nodes.values()].find(n => n.name === 'big')!.id
  const shards = base.sealed.get(bigId)!
  assert.ok(shards.length > 16, `the folder is sharded (${shards.length} shards read)`)
  assert.equal([...base.nodes.values()].filter(n => n.parent === bigId).length, N)
  const oursEdits: Edit[] = [['write', 'big/f1.txt', 'ours'], ['rm', 'big/f2.txt'], ['write', 'big/new-ours.txt', 'o']]
  const theirsEdits: Edit[] = [['write', 'big/f3.txt', 'theirs'], ['mv', 'big/f4.txt', 'big/moved.txt'], ['write', 'big/new-theirs.txt', 't']]
  const ours = await w.edited(oursEdits, BASE_TIME + 10_000)
  const theirs = await w.edited(theirsEdits, BASE_TIME + 20_000)
  forgetOpenedDirs()
  let gets = 0
  const get = w.store.get.bind(w.store)
  w.store.get = async (...a: Parameters<typeof get>) => { gets++; return await get(...a) }
  const b = await readSnapshot(w.base, w.store)
  const baseGets = gets
  gets = 0
  const [o, t] = await Promise.all([ours, theirs].map(async r => await readSnapshot(r, w.store)))
  w.store.get = get
  // The two sides share every shard they did not change with the base: opened once.
  assert.ok(gets <= 2 * (3 * 3 + 4), `${gets} objects opened for both sides, ${baseGets} for the base`)
  assert.ok(baseGets >= shards.length)
  const m = merge3(b, o, t, devices)
  assert.deepEqual(m.conflicts, [])
  const before = w.store.stored
  const out = materialize(m.snapshot, w.store)
  const again = await readSnapshot(MergeWorld.record(out), w.store)
  assert.equal(canonical(again), canonical(m.snapshot))
  const list = await w.list(MergeWorld.record(out))
  assert.equal(list['big/f1.txt'], 'ours')
  assert.equal(list['big/f3.txt'], 'theirs')
  assert.equal(list['big/f2.txt'], undefined)
  assert.equal(list['big/moved.txt'], '4')
  assert.equal(list['big/f4.txt'], undefined)
  assert.equal(list['big/new-ours.txt'], 'o')
  assert.equal(list['big/new-theirs.txt'], 't')
  assert.equal(Object.keys(list).filter(k => k.startsWith('big/')).length, N + 1)
  // 6 names changed: at most 6 leaves, the inner nodes above them, the folder's root and the drive's root.
  assert.ok(out.written <= 6 * 3 + 2, `${out.written} objects written for 6 changed names`)
  assert.ok(w.store.stored - before <= out.written)
  const kept = again.sealed.get(bigId)!.filter(s => shards.some(x => x.cid.equals(s.cid))).length
  assert.ok(kept >= again.sealed.get(bigId)!.length - (6 * 3 + 1), `${kept} of ${again.sealed.get(bigId)!.length} shards kept their CID`)
})
