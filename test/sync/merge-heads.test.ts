// How the engine folds the drive's tree and other devices' heads (merge-heads.ts), on the memory
// store: one tree whatever order the heads come in, each step against its own base, another
// device's root id alone is no change, and a version adopted from a device keeps its name.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { MergeWorld, BASE_TIME, type Edit } from '../helpers/tree-builder.js'
import { readSnapshot, canonical, cloneSnapshot, contentKey, ROOT, type Snapshot } from '../../src/sync/snapshot.js'
import { merge3, mergeMany } from '../../src/sync/merge.js'
import { diffSnapshots } from '../../src/sync/snapshot-write.js'
import { foldHeads, adoptable, Origins, type Head, type BaseOf } from '../../src/sync/merge-heads.js'

const cidOf = async (s: string): Promise<CID> => CID.createV1(0x55, await sha256.digest(Buffer.from(s)))

async function world (base: Record<string, string>): Promise<{ w: MergeWorld, snap: (edits: Edit[], at: number, from?: Awaited<ReturnType<MergeWorld['edited']>>) => Promise<Snapshot>, base: Snapshot }> {
  const w = await MergeWorld.create(base)
  const snap = async (edits: Edit[], at: number, from = w.base): Promise<Snapshot> => await readSnapshot(await w.edited(edits, at, from), w.store)
  return { w, snap, base: await readSnapshot(w.base, w.store) }
}

const fileContents = (s: Snapshot): string[] => [...s.nodes.values()].filter(n => n.t !== undefined && n.id !== ROOT).map(n => `${n.name}`).sort()

const permutations = <T>(xs: T[]): T[][] => xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map(p => [x, ...p]))

test('the heads fold in device-name order: every arrival order gives one tree', async () => {
  const { snap, base } = await world({ 'f.txt': 'v0', 'g.txt': 'g0' })
  const heads: Head[] = await Promise.all(['gamma', 'alpha', 'beta'].map(async (device, i) => ({
    device,
    key: String(i),
    cids: [await cidOf(device)],
    snapshot: await snap([['write', 'f.txt', device], ['write', `own-${device}.txt`, device], ['mv', 'g.txt', `g-${device}.txt`]], BASE_TIME + 1000 * (i + 1))
  })))
  const baseOf: BaseOf = async () => base
  const trees = new Set<string>()
  for (const order of permutations(heads)) trees.add(canonical((await foldHeads(order, baseOf)).snapshot))
  assert.equal(trees.size, 1, 'all six orders give the same tree')
  const one = (await foldHeads(heads, baseOf)).snapshot
  const names = fileContents(one)
  for (const d of ['alpha', 'beta', 'gamma']) assert.ok(names.includes(`own-${d}.txt`))
  assert.equal(names.filter(n => n.startsWith('f')).length, 3, `every version of f.txt stays: ${names.join(', ')}`)
  assert.equal(names.filter(n => n.startsWith('g')).length, 1, 'three renames of one file: one name')
})

test('each step merges against the base of what is folded so far and the next head: a head that merged another makes no conflict copy of it', async () => {
  const { w, snap, base } = await world({ 'f.txt': 'v0', 'g.txt': 'g0' })
  const a1rec = await w.edited([['write', 'f.txt', 'alpha']], BASE_TIME + 1000)
  const a1 = await readSnapshot(a1rec, w.store)
  const b2 = await snap([['write', 'f.txt', 'beta after alpha']], BASE_TIME + 2000, a1rec) // beta merged a1, then edited f
  const c1 = await snap([['write', 'g.txt', 'gamma']], BASE_TIME + 3000)
  const [ca, cb, cc] = await Promise.all(['a1', 'b2', 'c1'].map(cidOf))
  const baseOf: BaseOf = async (folded, next) => next.some(c => c.equals(cb)) && folded.some(c => c.equals(ca)) ? a1 : base
  const heads: Head[] = [
    { device: 'gamma', key: 'c', cids: [cc], snapshot: c1 },
    { device: 'alpha', key: 'a', cids: [ca], snapshot: a1 },
    { device: 'beta', key: 'b', cids: [cb], snapshot: b2 }
  ]
  const r = await foldHeads(heads, baseOf)
  assert.deepEqual(r.conflicts.filter(c => c.kind === 'content'), [])
  assert.deepEqual(fileContents(r.snapshot), ['f.txt', 'g.txt'])
  // One base for all (the oldest) would see alpha's superseded version as a conflict.
  const once = mergeMany(base, heads.map(h => ({ device: h.device, snapshot: h.snapshot })))
  assert.ok(once.conflicts.some(c => c.kind === 'content'), 'a single old base makes a spurious copy')
})

test('a tree that differs from the drive\'s only in its root\'s id and key is no change for the drive', async () => {
  const { snap, base } = await world({ 'f.txt': 'v0' })
  const ours = await snap([['write', 'f.txt', 'ours']], BASE_TIME + 1000)
  const theirs = cloneSnapshot(ours)
  const root = theirs.nodes.get(ROOT)!
  root.content = { ...root.content, i: Buffer.alloc(16, 0xff), k: Buffer.alloc(32, 0xff) } // another store's root, greater
  const merged = merge3(base, ours, theirs, { ours: 'alpha', theirs: 'beta' }).snapshot
  assert.notEqual(diffSnapshots(ours, merged).length, 0, 'the merge takes the greater root id')
  const own = ours.nodes.get(ROOT)!.content as { i: Uint8Array, k: Uint8Array }
  const keys = { root: { i: Buffer.from(own.i), k: Buffer.from(own.k) }, links: { i: Buffer.alloc(16), k: Buffer.alloc(32) } }
  const { snapshot, changes } = adoptable(merged, ours, keys)
  assert.deepEqual(changes, [], 'kept under the drive\'s own root: nothing to commit, nothing to publish')
  assert.equal(contentKey(snapshot.nodes.get(ROOT)!.content), contentKey(ours.nodes.get(ROOT)!.content))
})

test('a version the drive adopted from another device keeps that device\'s name when it later becomes a conflict copy', async () => {
  const { snap, base } = await world({ 'doc.txt': 'v0' })
  const alpha = await snap([['write', 'doc.txt', 'alpha']], BASE_TIME + 10_000)
  const beta = await snap([['write', 'doc.txt', 'beta']], BASE_TIME + 20_000) // later: beta wins
  const [cg, ca, cb] = await Promise.all(['g0', 'a1', 'b1'].map(cidOf))
  const baseOf: BaseOf = async () => base
  // gamma, unchanged, takes alpha's entry first ...
  const first = await foldHeads([{ device: 'gamma', key: 'g', cids: [cg], snapshot: base }, { device: 'alpha', key: 'a', cids: [ca], snapshot: alpha }], baseOf)
  const origins = new Origins()
  origins.remember(first.snapshot)
  const copyName = async (withOrigins: boolean): Promise<string | null | undefined> => {
    const ours = cloneSnapshot(first.snapshot) // as read back from the store: no origins
    for (const n of ours.nodes.values()) delete n.origin
    if (withOrigins) origins.apply(ours)
    const r = await foldHeads([{ device: 'gamma', key: 'g', cids: [cg], snapshot: ours }, { device: 'beta', key: 'b', cids: [cb], snapshot: beta }], baseOf)
    return r.conflicts.find(c => c.kind === 'content')?.copy
  }
  // ... then beta's: alpha's version loses, and is named after alpha, as alpha and beta name it.
  assert.equal(await copyName(true), '/doc (conflict from alpha 2026-01-02 030410).txt')
  assert.equal(await copyName(false), '/doc (conflict from gamma 2026-01-02 030410).txt', 'without the origins, the merging device is named')
})

test('with the merge of both criss-cross bases as the base, a third device\'s tree merges into one folder; one base alone can split it', async () => {
  // beta and gamma each made folder made/ and merged the other's (one folder); alpha made one too.
  // Which folder id is smaller is random: 20 worlds, the merged base never splits, one base does.
  let splits = 0
  for (let round = 0; round < 20; round++) {
    const { snap, base } = await world({ 'f.txt': 'v0' })
    const mk = async (d: string, i: number): Promise<Snapshot> => await snap([['mkdir', 'made'], ['write', `made/${d}.txt`, d]], BASE_TIME + 1000 * i)
    const [a1, b1, c1] = [await mk('alpha', 1), await mk('beta', 2), await mk('gamma', 3)]
    const bc = merge3(base, b1, c1, { ours: 'beta', theirs: 'gamma' }).snapshot
    const strip = (s: Snapshot): Snapshot => { const x = cloneSnapshot(s); for (const n of x.nodes.values()) delete n.origin; return x }
    const [ca, cb, cc] = await Promise.all(['a1', 'b2', 'c2'].map(cidOf))
    const heads: Head[] = [
      { device: 'alpha', key: 'a', cids: [ca], snapshot: a1 },
      { device: 'beta', key: 'b', cids: [cb], snapshot: strip(bc) },
      { device: 'gamma', key: 'c', cids: [cc], snapshot: strip(bc) }
    ]
    // Step alpha+beta: base x. Step +gamma: the bases of {a1, b2} and c2 are b1 and c1.
    const listing = async (second: Snapshot): Promise<string[]> => {
      const r = await foldHeads(heads, async (_f, n) => n.some(c => c.equals(cc)) ? second : base)
      return [...r.snapshot.nodes.keys()].map(id => r.snapshot.nodes.get(id)!.name).sort()
    }
    const crissCross = merge3(base, b1, c1, { ours: 'beta', theirs: 'gamma' }).snapshot // what baseOf makes of b1 and c1
    assert.deepEqual(await listing(crissCross), ['', 'alpha.txt', 'beta.txt', 'f.txt', 'gamma.txt', 'made'].sort())
    for (const one of [b1, c1]) if ((await listing(one)).some(n => n.startsWith('made (conflict from'))) splits++
  }
  assert.ok(splits > 0, 'one criss-cross base alone (what the smaller CID picked) leaves a second, renamed folder')
})
