// Writing a merged snapshot back (materialize): the written tree reads back as the same snapshot,
// directories the merge did not change keep their CIDs (so a merge writes only the path down to
// what changed), and the list of changed paths names what the mount must invalidate.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MergeWorld, BASE_TIME, type TreeSpec } from '../helpers/tree-builder.js'
import { readSnapshot, canonical, emptySnapshot, forgetOpenedDirs } from '../../src/sync/snapshot.js'
import { merge3 } from '../../src/sync/merge.js'
import { materialize } from '../../src/sync/snapshot-write.js'
import { SnapshotError } from '../../src/sync/snapshot-errors.js'

const devices = { ours: 'laptop', theirs: 'desktop' }

// 3 folders of 4 subfolders of 3 files each, plus a file big enough for a block map.
function wide (): TreeSpec {
  const spec: TreeSpec = { 'big.bin': Buffer.alloc(33 * 128 * 1024, 7) }
  for (let a = 0; a < 3; a++) for (let b = 0; b < 4; b++) for (let c = 0; c < 3; c++) spec[`d${a}/s${b}/f${c}.txt`] = `${a}${b}${c}`
  return spec
}

test('a snapshot written back reads back as the same snapshot (files with block maps, links, xattrs, symlinks)', async () => {
  const w = await MergeWorld.create({ ...wide(), 'ln': { symlink: 'd0' }, 'x/': { mode: 0o700 } })
  const rec = await w.edited([['link', 'd0/s0/f0.txt', 'x/linked'], ['setxattr', 'd1/s1/f1.txt', 'user.tag', 'v']], BASE_TIME)
  const s = await readSnapshot(rec, w.store)
  const before = w.store.stored
  const out = materialize(s, w.store)
  assert.equal(out.written, 0, 'an unchanged tree writes nothing')
  assert.equal(w.store.stored, before)
  assert.equal(canonical(await readSnapshot(MergeWorld.record(out), w.store)), canonical(s))
  assert.deepEqual(await w.list(MergeWorld.record(out)), await w.list(rec))
})

test('a merge writes only the directories it changed and those above them; the others keep their CIDs', async () => {
  const w = await MergeWorld.create(wide())
  const ours = await w.edited([['write', 'd0/s1/f2.txt', 'ours']], BASE_TIME + 10_000)
  const theirs = await w.edited([['chmod', 'd2/s3/f0.txt', 0o600]], BASE_TIME + 20_000)
  const [b, o, t] = await Promise.all([w.base, ours, theirs].map(async r => await readSnapshot(r, w.store)))
  const m = merge3(b, o, t, devices)
  const before = w.store.stored
  const out = materialize(m.snapshot, w.store)
  // Every folder but the root is as one side sealed it (d0/s1 as ours, d2/s3 as theirs): only the
  // root, which holds both changes, is new.
  assert.equal(out.written, 1)
  assert.equal(w.store.stored - before, 1)
  const again = await readSnapshot(MergeWorld.record(out), w.store)
  assert.equal(canonical(again), canonical(m.snapshot))
  let kept = 0
  for (const [id, [sealed]] of again.sealed) {
    if (id === 'root') continue
    const from = [o, t].find(x => x.sealed.get(id)?.[0].cid.equals(sealed.cid))
    assert.ok(from != null, `directory ${again.nodes.get(id)!.name} kept a CID it had`)
    kept++
  }
  assert.equal(kept, 3 + 3 * 4)
})

test('materialize lists what changed against the tree the mount shows, with old and new paths', async () => {
  const w = await MergeWorld.create({ 'a/one.txt': '1', 'b/two.txt': '2', 'c/three.txt': '3' })
  const ours = await w.edited([['write', 'a/one.txt', 'ours']], BASE_TIME + 10_000)
  const theirs = await w.edited([['mv', 'b/two.txt', 'c/two.txt'], ['rm', 'c/three.txt'], ['write', 'new.txt', 'n']], BASE_TIME + 20_000)
  const [b, o, t] = await Promise.all([w.base, ours, theirs].map(async r => await readSnapshot(r, w.store)))
  const out = materialize(merge3(b, o, t, devices).snapshot, w.store, { before: o })
  const changes = out.changes.map(c => `${c.old ?? '-'} -> ${c.new ?? '-'}`).sort()
  assert.deepEqual(changes, ['- -> /new.txt', '/ -> /', '/b -> /b', '/b/two.txt -> /c/two.txt', '/c -> /c', '/c/three.txt -> -'])
})

test('a snapshot that is not a valid tree is refused, by code', async () => {
  const w = await MergeWorld.create({ 'a/f': 'x' })
  const s = await readSnapshot(w.base, w.store)
  const a = [...s.nodes.values()].find(n => n.name === 'a')!
  a.parent = [...s.nodes.values()].find(n => n.name === 'f')!.id // a folder inside its own file
  assert.throws(() => materialize(s, w.store), (e: unknown) => e instanceof SnapshotError && e.code === 'ERR_SNAPSHOT_INVALID')
  assert.throws(() => merge3(emptySnapshot(), s, s, devices), (e: unknown) => e instanceof SnapshotError && e.code === 'ERR_SNAPSHOT_INVALID')
  assert.throws(() => materialize(emptySnapshot(), w.store), (e: unknown) => e instanceof SnapshotError && e.code === 'ERR_SNAPSHOT_INVALID')
})

test('the opened-directory cache is given back when forgotten, and a snapshot read after it is the same', async () => {
  const w = await MergeWorld.create(wide())
  const rec = await w.edited([['write', 'd0/s1/f2.txt', 'x']], BASE_TIME)
  const first = canonical(await readSnapshot(rec, w.store))
  assert.ok(forgetOpenedDirs() > 0, 'the read kept its directories')
  assert.equal(forgetOpenedDirs(), 0)
  assert.equal(canonical(await readSnapshot(rec, w.store)), first)
})
