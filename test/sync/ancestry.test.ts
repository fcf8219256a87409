// The merge base in the entry DAG (prev + merged heads): the newest entry both states descend
// from; none when they share no history; the same on every device for a criss-cross.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { commonAncestor, commonAncestors } from '../../src/sync/ancestry.js'
import type { SignedEntry } from '../../src/sync/entry.js'
import { LogWriter, device } from './helpers.js'

function source (...all: SignedEntry[]): { get: (cid: SignedEntry['cid']) => Promise<SignedEntry | null> } {
  const m = new Map(all.map(s => [s.cid.toString(), s]))
  return { get: async cid => m.get(cid.toString()) ?? null }
}
const head = (s: SignedEntry) => ({ dev: s.entry.dev, seq: s.entry.seq, cid: s.cid })

test('the base of two states is the newest entry both descend from, whichever side asks', async () => {
  const a = new LogWriter(device('a', 1))
  const b = new LogWriter(device('b', 2))
  const a1 = a.next()
  const b1 = b.next({ heads: [head(a1)] }) // b merged a1
  const a2 = a.next()
  const b2 = b.next({ heads: [head(a1)] })
  const a3 = a.next({ heads: [head(b2)] }) // a merged b2
  const src = source(a1, a2, a3, b1, b2)
  assert.equal((await commonAncestor(src, a2.cid, b2.cid))?.cid.toString(), a1.cid.toString())
  assert.equal((await commonAncestor(src, b2.cid, a2.cid))?.cid.toString(), a1.cid.toString())
  assert.equal((await commonAncestor(src, a3.cid, b2.cid))?.cid.toString(), b2.cid.toString(), 'a state that merged the other is its descendant')
  assert.equal((await commonAncestor(src, a1.cid, a1.cid))?.cid.toString(), a1.cid.toString())
})

test('two states with no shared history have no base; a criss-cross picks the same base from both sides', async () => {
  const a = new LogWriter(device('a', 1))
  const b = new LogWriter(device('b', 2))
  const a1 = a.next()
  const b1 = b.next()
  assert.equal(await commonAncestor(source(a1, b1), a1.cid, b1.cid), null)
  const a2 = a.next({ heads: [head(b1)] })
  const b2 = b.next({ heads: [head(a1)] })
  const src = source(a1, a2, b1, b2)
  const one = await commonAncestor(src, a2.cid, b2.cid)
  const other = await commonAncestor(src, b2.cid, a2.cid)
  assert.ok(one != null && [a1.cid.toString(), b1.cid.toString()].includes(one.cid.toString()))
  assert.equal(one.cid.toString(), other?.cid.toString())
})

test('history a device never had stops the search instead of failing it', async () => {
  const a = new LogWriter(device('a', 1))
  a.next() // entry 1: not held by this device
  const a2 = a.next()
  const a3 = a.next()
  assert.equal((await commonAncestor(source(a2, a3), a3.cid, a2.cid))?.cid.toString(), a2.cid.toString())
})

test('after a criss-cross every best common ancestor is a base, and none of their ancestors is', async () => {
  const a = new LogWriter(device('a', 1))
  const b = new LogWriter(device('b', 2))
  const c = new LogWriter(device('c', 3))
  const x = a.next()
  const b1 = b.next({ heads: [head(x)] })
  const c1 = c.next({ heads: [head(x)] })
  const b2 = b.next({ heads: [head(x), head(c1)] }) // b merged c1
  const c2 = c.next({ heads: [head(x), head(b1)] }) // c merged b1
  const a2 = a.next({ heads: [head(b2)] }) // a merged b2
  const src = source(x, b1, c1, b2, c2, a2)
  const names = async (l: Parameters<typeof commonAncestors>[1], r: Parameters<typeof commonAncestors>[2]): Promise<string[]> =>
    (await commonAncestors(src, l, r)).map(s => s.cid.toString()).sort()
  const both = [b1.cid.toString(), c1.cid.toString()].sort()
  assert.deepEqual(await names([a2.cid], [c2.cid]), both)
  assert.deepEqual(await names([c2.cid], [a2.cid]), both, 'whichever side asks')
  assert.deepEqual(await names([b1.cid], [c1.cid]), [x.cid.toString()], 'a plain fork: one base')
  assert.deepEqual(await names([a2.cid], [b2.cid]), [b2.cid.toString()], 'a state that merged the other')
})
