// A shard leaf's kept body (src/fs/tree/dir-leaf.ts): whatever names were added, removed, added
// again or changed since the body was kept, and however a leaf was split off a bigger one, the
// body built from the kept records and the newly encoded ones is byte for byte the dag-cbor of
// `{ v, e: records sorted by name }`, each record's span in it is that record's encoding, and
// only the added and changed names' records are made again.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encode } from '../../src/fs/tree/format.js'
import { cidOf } from '../../src/store/cid.js'
import { type ChildShard, type LeafChanges, byName, innerBody, keptFromBody, keptSubset, noteAdded, noteChanged, noteRemoved, planLeaf } from '../../src/fs/tree/dir-leaf.js'

/** A small deterministic generator (the test must fail the same way twice). */
function rng (seed: number): () => number {
  let x = seed >>> 0
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32 }
}

interface Model { names: Set<string>, version: Map<string, number> }
const recordOf = (m: Model, n: string): object => ({ n, t: 1, m: 0o644, s: m.version.get(n) ?? 0, x: 'y'.repeat(n.length % 7) })

function check (leaf: LeafChanges, m: Model, v: number, why: string): { made: string[] } {
  const made: string[] = []
  const plan = planLeaf(leaf, m.names, v, names => { made.push(...names); return names.map(n => recordOf(m, n)) })
  const sorted = [...m.names].sort(byName)
  const want = encode({ v, e: sorted.map(n => recordOf(m, n)) })
  assert.equal(plan.length, want.length, `${why}: planned length`)
  const kept = plan.build()
  assert.deepEqual(Buffer.from(kept.body), Buffer.from(want), `${why}: the body`)
  assert.deepEqual(kept.names, sorted, `${why}: the names`)
  for (let i = 0; i < sorted.length; i++) {
    assert.deepEqual(Buffer.from(kept.body.subarray(kept.starts[i], kept.ends[i])), Buffer.from(encode(recordOf(m, sorted[i]))), `${why}: span of ${sorted[i]}`)
  }
  leaf.kept = kept
  leaf.fresh = leaf.stale = leaf.gone = null
  return { made }
}

test('a leaf body built from its kept records after random adds, removes, re-adds and changes is the dag-cbor of { v, e }, and only changed records are made again', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const r = rng(seed)
    const m: Model = { names: new Set(), version: new Map() }
    const leaf: LeafChanges = { kept: null, fresh: null, stale: null }
    const pool = Array.from({ length: 60 }, (_, i) => `n${String(Math.floor(r() * 1e6)).padStart(6, '0')}-${i}`)
    for (const n of pool.slice(0, 20)) m.names.add(n)
    const v = seed % 2 === 0 ? 2 : 1
    assert.equal(check(leaf, m, v, `seed ${seed} first`).made.length, 20, 'the first body encodes every record')
    for (let round = 0; round < 12; round++) {
      const changed = new Set<string>()
      for (let op = 0; op < 1 + Math.floor(r() * 6); op++) {
        const n = pool[Math.floor(r() * pool.length)]
        const x = r()
        if (!m.names.has(n)) { m.names.add(n); m.version.set(n, (m.version.get(n) ?? 0) + 1); noteAdded(leaf, n); changed.add(n) } else if (x < 0.4) { m.names.delete(n); noteRemoved(leaf, n); changed.delete(n) } else { m.version.set(n, (m.version.get(n) ?? 0) + 1); noteChanged(leaf, n); changed.add(n) }
      }
      const { made } = check(leaf, m, v, `seed ${seed} round ${round}`)
      assert.deepEqual(new Set(made), new Set([...changed].filter(n => m.names.has(n))), `seed ${seed} round ${round}: records made again`)
    }
  }
})

test('leaves split off a kept body start from its records: a change in one of them makes only its own records again', () => {
  const m: Model = { names: new Set(Array.from({ length: 40 }, (_, i) => `name-${i}`)), version: new Map() }
  const big: LeafChanges = { kept: null, fresh: null, stale: null }
  check(big, m, 2, 'the leaf before the split')
  const halves = [0, 1].map(h => new Set([...m.names].filter((_, i) => i % 2 === h)))
  const kids: LeafChanges[] = halves.map(names => ({ kept: keptSubset(big.kept!, names), fresh: null, stale: null }))
  const a: Model = { names: halves[0], version: m.version }
  m.version.set('name-0', 7)
  noteChanged(kids[0], 'name-0')
  a.names.add('name-new')
  noteAdded(kids[0], 'name-new')
  assert.deepEqual(check(kids[0], a, 2, 'the first kid').made.sort(), ['name-0', 'name-new'])
  assert.deepEqual(check(kids[1], { names: halves[1], version: m.version }, 2, 'the second kid').made, [])
})

test('an inner node body made from its children\'s kept entries is the dag-cbor of { v, c }, also after a child\'s CID or count changed', () => {
  const kids: Array<[number, ChildShard]> = [0, 3, 7, 15].map(slot => [slot, { cid: cidOf(Buffer.from(`kid ${slot}`)), count: slot * 1000 + 1, entry: null }])
  const want = (): Uint8Array => encode({ v: 2, c: kids.map(([slot, k]) => [slot, k.cid, k.count]) })
  assert.deepEqual(Buffer.from(innerBody(2, kids)), Buffer.from(want()))
  kids[1][1].cid = cidOf(Buffer.from('kid 3, resealed'))
  kids[2][1].count = 70000
  assert.deepEqual(Buffer.from(innerBody(2, kids)), Buffer.from(want()), 'after changes')
  const one: Array<[number, ChildShard]> = [[9, { cid: cidOf(Buffer.from('only')), count: 5, entry: null }]]
  assert.deepEqual(Buffer.from(innerBody(2, one)), Buffer.from(encode({ v: 2, c: [[9, one[0][1].cid, 5]] })))
})

test('a leaf whose names changed without a note is built whole again, not from a kept body that no longer matches', () => {
  const m: Model = { names: new Set(['a', 'b', 'c']), version: new Map() }
  const leaf: LeafChanges = { kept: null, fresh: null, stale: null }
  check(leaf, m, 2, 'first')
  m.names.add('d') // unnoted
  assert.deepEqual(check(leaf, m, 2, 'an unnoted add').made, ['a', 'b', 'c', 'd'])
})

test('a leaf body read from the store gives each record\'s span, so its next reseal copies them; a body laid out otherwise gives none', () => {
  const cid = cidOf(Buffer.from('block'))
  const records = ['a', 'b', 'c\u00e9', 'z'.repeat(300)].map((n, i) => ({ n, t: 1, m: 0o644, i: Buffer.alloc(16, i), s: 2 ** 40 + i, b: [[0, cid], [7, cid]], x: { 'user.k': Buffer.from('v') } }))
  const body = encode({ v: 2, e: records })
  const kept = keptFromBody(body, records.map(r => r.n))
  assert.ok(kept != null)
  for (const [i, r] of records.entries()) assert.deepEqual(Buffer.from(body.subarray(kept.starts[i], kept.ends[i])), Buffer.from(encode(r)), r.n)
  const m: Model = { names: new Set(records.map(r => r.n)), version: new Map() }
  const leaf: LeafChanges = { kept, fresh: null, stale: null }
  const plan = planLeaf(leaf, m.names, 2, () => { throw new Error('nothing to encode') })
  assert.deepEqual(Buffer.from(plan.build().body), Buffer.from(body), 'unchanged: copied whole')
  assert.equal(keptFromBody(body, [...records.map(r => r.n)].reverse()), null, 'names out of order')
  assert.equal(keptFromBody(encode({ e: records, v: 2, w: 1 }), records.map(r => r.n)), null, 'another layout')
  assert.equal(keptFromBody(body.subarray(0, body.length - 10), records.map(r => r.n)), null, 'cut short')
})
