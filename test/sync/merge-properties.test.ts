// Properties of merge3 over generated histories (seeded, so a failure names its seed): small
// random base trees, and on each device a random script of creates, writes, appends, renames,
// deletes, mkdir, rmdir, chmod, symlinks, hard links and xattrs, run through the real tree on the
// memory store. For every case: the result is a valid tree; merging the other way round gives
// the same tree; merge3(b, x, x) = x and merge3(b, b, y) = y; every file version either side wrote
// is in the result under some name; and the result survives materialize and a re-read exactly.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MergeWorld, BASE_TIME, type Edit, type TreeSpec } from '../helpers/tree-builder.js'
import { DirNode, FileNode, type Tree } from '../../src/fs/tree/tree.js'
import { Kind, type CommitRecord } from '../../src/fs/tree/format.js'
import { readSnapshot, canonical, invalidReason, contentKey, pathOf, type Snapshot, type SnapNode } from '../../src/sync/snapshot.js'
import { merge3, mergeMany } from '../../src/sync/merge.js'
import { materialize } from '../../src/sync/snapshot-write.js'

/** mulberry32: a small seeded generator (tests only). */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Few names, so the two sides meet often: case and NFC/NFD twins, names with and without dots.
const NAMES = ['a', 'A', 'b', 'n.txt', 'N.txt', 'caf\u00e9', 'cafe\u0301', 'd', 'e']

async function listing (tree: Tree): Promise<{ dirs: string[], files: string[], all: string[] }> {
  const dirs = ['/']
  const files: string[] = []
  const all: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const [name, node] of await tree.readdir(dir)) {
      const p = (dir === '/' ? '' : dir) + '/' + name
      all.push(p)
      if (node instanceof DirNode) { dirs.push(p); await walk(p) } else if (node instanceof FileNode) files.push(p)
    }
  }
  await walk('/')
  return { dirs, files, all }
}

function baseSpec (r: () => number): TreeSpec {
  const spec: TreeSpec = {}
  const dirs = ['']
  const n = 2 + Math.floor(r() * 6)
  for (let i = 0; i < n; i++) {
    const parent = dirs[Math.floor(r() * dirs.length)]
    const name = NAMES[Math.floor(r() * NAMES.length)]
    const path = parent + (parent === '' ? '' : '/') + name
    if (Object.keys(spec).some(k => k === path || k === path + '/' || k.startsWith(path + '/') || path.startsWith(k.replace(/\/$/, '') + '/'))) continue
    if (r() < 0.4 && dirs.length < 4) { spec[path + '/'] = {}; dirs.push(path) } else spec[path] = `base ${i}`
  }
  return spec
}

/** A random script on `tree`: each step picks from what the tree holds then; steps that fail (EEXIST, ENOTEMPTY...) are skipped. */
async function randomEdits (tree: Tree, r: () => number, tag: string): Promise<void> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]
  const steps = 1 + Math.floor(r() * 6)
  for (let i = 0; i < steps; i++) {
    const { dirs, files, all } = await listing(tree)
    const fresh = (): string => { const d = pick(dirs); return (d === '/' ? '' : d) + '/' + pick(NAMES) }
    const roll = r()
    let e: Edit | null = null
    if (roll < 0.15) e = ['write', fresh(), `${tag} new ${i}`]
    else if (roll < 0.35 && files.length > 0) e = ['write', pick(files), `${tag} wrote ${i}`]
    else if (roll < 0.42 && files.length > 0) e = ['append', pick(files), ` +${tag}${i}`]
    else if (roll < 0.58 && all.length > 0) e = ['mv', pick(all), fresh()]
    else if (roll < 0.66 && files.length > 0) e = ['rm', pick(files)]
    else if (roll < 0.72) e = ['mkdir', fresh()]
    else if (roll < 0.78 && dirs.length > 1) e = [r() < 0.5 ? 'rmdir' : 'rm -r', pick(dirs.slice(1))]
    else if (roll < 0.85 && all.length > 0) e = ['chmod', pick(all), pick([0o600, 0o640, 0o755])]
    else if (roll < 0.91) e = ['symlink', pick(NAMES), fresh()]
    else if (roll < 0.95 && files.length > 0) e = ['link', pick(files), fresh()]
    else if (all.length > 0) e = ['setxattr', pick(all), 'user.k', `${tag}${i}`]
    if (e == null) continue
    try {
      const { applyEdits } = await import('../helpers/tree-builder.js')
      await applyEdits(tree, [e])
    } catch (err) {
      // A step the tree refuses (EEXIST, ENOTEMPTY, a file where a folder should be) is skipped.
      const refused = String((err as { code?: string }).code ?? '').startsWith('ERR_') || (err as Error).message.startsWith('spec:')
      if (!refused) throw err
    }
  }
}

interface Case { world: MergeWorld, base: CommitRecord, sides: CommitRecord[], snaps: Snapshot[] }

async function makeCase (seed: number, devices: number): Promise<Case> {
  const r = rng(seed)
  const world = await MergeWorld.create(baseSpec(r))
  const sides: CommitRecord[] = []
  for (let d = 0; d < devices; d++) {
    const { tree, sink } = world.open(BASE_TIME + 10_000 * (d + 1) + Math.floor(r() * 3) * 10_000)
    await randomEdits(tree, r, `dev${d}`)
    await tree.commit()
    sides.push(sink.last ?? world.base)
  }
  const snaps = await Promise.all([world.base, ...sides].map(async x => await readSnapshot(x, world.store)))
  return { world, base: world.base, sides, snaps }
}

/** Every file version (and symlink) `side` wrote since `base` is somewhere in `result`. */
function lostVersions (base: Snapshot, side: Snapshot, result: Snapshot): string[] {
  const have = new Set<string>()
  for (const n of result.nodes.values()) if (!n.linkName) have.add(`${n.t}:${contentKey(n.content)}`)
  for (const l of result.links.values()) have.add(`${l.t}:${contentKey(l.content)}`)
  const lost: string[] = []
  for (const n of side.nodes.values()) {
    if (n.linkName || (n.t !== Kind.File && n.t !== Kind.Symlink)) continue
    const b = base.nodes.get(n.id)
    if (b != null && contentKey(b.content) === contentKey(n.content)) continue
    if (n.t === Kind.Symlink && b == null && [...base.nodes.values()].some(x => x.t === Kind.Symlink && contentKey(x.content) === contentKey(n.content))) continue
    if (!have.has(`${n.t}:${contentKey(n.content)}`)) lost.push(`${n.name} (${n.id})`)
  }
  const baseContents = new Set([...base.nodes.values(), ...base.links.values()].map(n => contentKey(n.content)))
  for (const l of side.links.values()) {
    // A first hard link moves a file's record into the link table unchanged: not a write.
    if (baseContents.has(contentKey(l.content))) continue
    if (!have.has(`${l.t}:${contentKey(l.content)}`)) lost.push(`link ${l.h}`)
  }
  return lost
}

const CASES = 150

test(`two devices, ${CASES} generated histories: valid, symmetric, idempotent, nothing written lost, and written back exactly`, async () => {
  const names = { ours: 'laptop', theirs: 'desktop' }
  let conflicts = 0
  for (let seed = 1; seed <= CASES; seed++) {
    const { world, snaps: [b, x, y] } = await makeCase(seed, 2)
    const m = merge3(b, x, y, names)
    const why = `seed ${seed}`
    assert.equal(invalidReason(m.snapshot), null, why)
    assert.equal(canonical(merge3(b, y, x, { ours: names.theirs, theirs: names.ours }).snapshot), canonical(m.snapshot), `${why}: symmetric`)
    assert.equal(canonical(merge3(b, x, x, names).snapshot), canonical(x), `${why}: merge3(b, x, x) = x`)
    assert.equal(canonical(merge3(b, b, y, names).snapshot), canonical(y), `${why}: merge3(b, b, y) = y`)
    assert.equal(canonical(merge3(b, x, b, names).snapshot), canonical(x), `${why}: merge3(b, x, b) = x`)
    assert.deepEqual(lostVersions(b, x, m.snapshot), [], `${why}: ours' writes kept`)
    assert.deepEqual(lostVersions(b, y, m.snapshot), [], `${why}: theirs' writes kept`)
    const written = materialize(m.snapshot, world.store, { before: x })
    const again = await readSnapshot(MergeWorld.record(written), world.store)
    assert.equal(canonical(again), canonical(m.snapshot), `${why}: snapshot(materialize(m)) = m`)
    conflicts += m.conflicts.length
  }
  assert.ok(conflicts > CASES / 2, `the generator makes conflicts (${conflicts})`)
})

/**
 * Why the fold of three concurrent histories may depend on its order, or null: a node (from the
 * base) that all three devices changed (a delete counts, and a folder whose entries changed), or a file a
 * device gave its first hard link (its record moves to the link table: a new identity there).
 */
function outsideClaim (b: Snapshot, sides: Snapshot[]): string | null {
  const own = (n: SnapNode): string => JSON.stringify([n.parent, n.name, contentKey(n.content), n.attrs == null ? null : [n.attrs.m, n.attrs.u, n.attrs.g, String(n.attrs.mt), Object.entries(n.attrs.x).sort()]])
  for (const n of b.nodes.values()) {
    if (n.id === 'root') continue
    if (sides.every(x => { const y = x.nodes.get(n.id); return y == null || own(y) !== own(n) })) return `${n.name} changed on all three`
  }
  for (const x of sides) {
    for (const l of x.links.values()) {
      if ([...b.nodes.values()].some(n => n.t === Kind.File && !n.linkName && contentKey({ i: n.content.i }) === contentKey({ i: l.content.i }))) return 'a first hard link'
    }
  }
  return null
}

test('three devices: every order in which one device folds in the other two gives the same tree, unless one node (a folder: or its entries) was changed on all three or a device made a file\'s first hard link', async () => {
  const devs = ['laptop', 'desktop', 'phone']
  const perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
  const failures: number[] = []
  let claimed = 0
  let orderFree = 0
  for (let seed = 1001; seed <= 1000 + CASES; seed++) {
    const { snaps: [b, ...s] } = await makeCase(seed, 3)
    const results = perms.map(([p, q, r]) => {
      const m1 = merge3(b, s[p], s[q], { ours: devs[p], theirs: devs[q] }).snapshot
      return canonical(merge3(b, m1, s[r], { ours: devs[p], theirs: devs[r] }).snapshot)
    })
    const same = new Set(results).size === 1
    if (same) orderFree++
    const outside = outsideClaim(b, s)
    if (outside == null) claimed++
    if (!same && outside == null) failures.push(seed)
    if (!same && (outside == null || process.env.MERGE_DEBUG_ALL != null)) {
      if (process.env.MERGE_DEBUG != null || process.env.MERGE_DEBUG_ALL != null) {
        const rows = results.map(x => new Set((JSON.parse(x).nodes as unknown[]).map(n => JSON.stringify(n))))
        const odd = [...rows[0]].filter(n => !rows.every(r => r.has(n)))
        const other = rows.flatMap(r => [...r].filter(n => !rows[0].has(n)))
        console.log(`seed ${seed}: only in some orders: ${odd.join(' ')} / ${[...new Set(other)].join(' ')}`)
      }
    }
  }
  console.log(`three devices: ${orderFree} of ${CASES} histories order-free; ${claimed} inside the claim`)
  assert.deepEqual(failures, [], 'histories inside the claim whose fold depends on the order')
  assert.ok(claimed >= CASES / 4, `enough generated histories are inside the claim (${claimed})`)
})

test('mergeMany gives one tree for three devices\' trees in every order of arrival (it folds them by device name)', async () => {
  const devs = ['laptop', 'desktop', 'phone']
  const perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
  for (let seed = 2001; seed <= 2030; seed++) {
    const { snaps: [b, ...s] } = await makeCase(seed, 3)
    const results = new Set(perms.map(p => canonical(mergeMany(b, p.map(i => ({ device: devs[i], snapshot: s[i] }))).snapshot)))
    assert.equal(results.size, 1, `seed ${seed}`)
    const m = mergeMany(b, devs.map((device, i) => ({ device, snapshot: s[i] }))).snapshot
    assert.equal(invalidReason(m), null, `seed ${seed}`)
    for (const x of s) assert.deepEqual(lostVersions(b, x, m), [], `seed ${seed}: nothing written lost`)
  }
})
