// The merge matrix of issue 9 point 4, one test per rule, on the in-memory store: a base tree,
// each device's edits from it, merge3, materialize, and the listing of the written tree. Every
// case also merges the other way round (theirs as ours) and must give the same tree.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MergeWorld, BASE_TIME, type Edit, type MergeCase, type TreeSpec } from '../helpers/tree-builder.js'
import { readSnapshot, canonical, invalidReason, pathOf, CONFLICT_XATTR, type Snapshot } from '../../src/sync/snapshot.js'
import { merge3, type MergeResult } from '../../src/sync/merge.js'
import { materialize } from '../../src/sync/snapshot-write.js'

const OURS = BASE_TIME + 10_000 // 03:04:10
const THEIRS = BASE_TIME + 20_000 // 03:04:20: theirs is later, so theirs wins content conflicts
const devices = { ours: 'laptop', theirs: 'desktop' }

interface Run { listing: TreeSpec, merge: MergeResult, snapshots: { base: Snapshot, ours: Snapshot, theirs: Snapshot }, world: MergeWorld }

async function run (c: Omit<MergeCase, 'name' | 'expected'> & { baseEdits?: Edit[] }): Promise<Run> {
  const world = await MergeWorld.create(c.base)
  const baseRec = c.baseEdits != null ? await world.edited(c.baseEdits, BASE_TIME) : world.base
  const [base, ours, theirs] = await Promise.all([
    baseRec, world.edited(c.ours, OURS, baseRec), world.edited(c.theirs, THEIRS, baseRec)
  ].map(async r => await readSnapshot(await r, world.store)))
  const merge = merge3(base, ours, theirs, devices)
  assert.equal(invalidReason(merge.snapshot), null)
  const swapped = merge3(base, theirs, ours, { ours: devices.theirs, theirs: devices.ours })
  assert.equal(canonical(swapped.snapshot), canonical(merge.snapshot), 'merging the other way round gives the same tree')
  const written = materialize(merge.snapshot, world.store, { before: ours })
  const listing = await world.list(MergeWorld.record(written))
  return { listing, merge, snapshots: { base, ours, theirs }, world }
}

const kinds = (r: Run): string[] => r.merge.conflicts.map(c => c.kind).sort()

const CASES: Array<MergeCase & { conflicts: string[] }> = [
  {
    name: 'changes to different files on the two devices both stay',
    base: { 'a.txt': 'a0', 'b.txt': 'b0', 'd/c.txt': 'c0' },
    ours: [['write', 'a.txt', 'a1'], ['write', 'd/new.txt', 'n']],
    theirs: [['write', 'b.txt', 'b1'], ['rm', 'd/c.txt']],
    expected: { 'a.txt': 'a1', 'b.txt': 'b1', 'd/new.txt': 'n' },
    conflicts: []
  },
  {
    name: 'a file changed on both devices keeps both: the later edit under its name, the other as a conflict copy named after its device and time',
    base: { 'notes/doc.txt': 'v0' },
    ours: [['write', 'notes/doc.txt', 'ours']],
    theirs: [['write', 'notes/doc.txt', 'theirs']],
    expected: { 'notes/doc.txt': 'theirs', 'notes/doc (conflict from laptop 2026-01-02 030410).txt': 'ours' },
    conflicts: ['content']
  },
  {
    name: 'an edit beats a delete',
    base: { 'f.txt': 'v0', 'g.txt': 'g0' },
    ours: [['rm', 'f.txt'], ['write', 'g.txt', 'g1']],
    theirs: [['write', 'f.txt', 'v1'], ['rm', 'g.txt']],
    expected: { 'f.txt': 'v1', 'g.txt': 'g1' },
    conflicts: ['edit-delete', 'edit-delete']
  },
  {
    name: 'a rename or a mode change beats a delete too, but a file the other side left alone is deleted',
    base: { 'f.txt': 'v0', 'g.txt': 'g0', 'h.txt': 'h0' },
    ours: [['rm', 'f.txt'], ['rm', 'g.txt'], ['rm', 'h.txt']],
    theirs: [['mv', 'f.txt', 'moved.txt'], ['chmod', 'g.txt', 0o600]],
    expected: { 'g.txt': { content: 'g0', mode: 0o600 }, 'moved.txt': 'v0' },
    conflicts: ['edit-delete', 'edit-delete']
  },
  {
    name: 'a rename on one device and an edit on the other give the edit under the new name',
    base: { 'a.txt': 'old', 'dir/': {} },
    ours: [['mv', 'a.txt', 'dir/b.txt']],
    theirs: [['write', 'a.txt', 'new']],
    expected: { 'dir/b.txt': 'new' },
    conflicts: []
  },
  {
    name: 'one file renamed differently on both devices ends under one of the names, with no duplicate',
    base: { 'f.txt': 'f' },
    ours: [['mv', 'f.txt', 'x.txt']],
    theirs: [['mv', 'f.txt', 'y.txt']],
    expected: { 'y.txt': 'f' }, // the greater (parent, name)
    conflicts: ['rename']
  },
  {
    name: 'a folder deleted on one device while the other adds a file in it stays, with that file only',
    base: { 'd/old.txt': 'o', 'd/sub/deep.txt': 'x', 'other.txt': 'y' },
    ours: [['rm -r', 'd']],
    theirs: [['write', 'd/sub/new.txt', 'n']],
    expected: { 'd/sub/new.txt': 'n', 'other.txt': 'y' },
    conflicts: ['kept-folder', 'kept-folder']
  },
  {
    name: 'a folder deleted on one device keeps a file the other edited or moved into it',
    base: { 'd/a.txt': 'a0', 'd/b.txt': 'b0', 'top.txt': 't' },
    ours: [['rm -r', 'd']],
    theirs: [['write', 'd/a.txt', 'a1'], ['mv', 'top.txt', 'd/top.txt']],
    expected: { 'd/a.txt': 'a1', 'd/top.txt': 't' },
    conflicts: ['edit-delete', 'kept-folder']
  },
  {
    name: 'two devices making a folder of one name get one folder with both contents, merged all the way down',
    base: {},
    ours: [['write', 'docs/a.txt', 'a'], ['write', 'docs/sub/x.txt', 'x']],
    theirs: [['write', 'docs/b.txt', 'b'], ['write', 'docs/sub/y.txt', 'y']],
    expected: { 'docs/a.txt': 'a', 'docs/b.txt': 'b', 'docs/sub/x.txt': 'x', 'docs/sub/y.txt': 'y' },
    conflicts: ['merged-folder', 'merged-folder']
  },
  {
    name: 'two devices making a file of one name with different content keep both',
    base: {},
    ours: [['write', 'n.txt', 'one']],
    theirs: [['write', 'n.txt', 'two']],
    expected: { 'n.txt': 'two', 'n (conflict from laptop 2026-01-02 030410).txt': 'one' },
    conflicts: ['name']
  },
  {
    name: 'two devices making an empty file of one name get one file',
    base: {},
    ours: [['write', 'd/.keep', '']],
    theirs: [['write', 'd/.keep', '']],
    expected: { 'd/.keep': '' },
    conflicts: ['merged-folder']
  },
  {
    name: 'a case-only rename never overwrites a file of that name made on the other device, and names differing only in case both stay',
    base: { 'readme': 'r' },
    ours: [['mv', 'readme', 'README'], ['write', 'a', 'lower']],
    theirs: [['write', 'README', 'new'], ['write', 'A', 'upper']],
    expected: { 'A': 'upper', 'README': 'new', 'README (conflict from laptop 2026-01-02 030400)': 'r', 'a': 'lower' },
    conflicts: ['name']
  },
  {
    name: 'NFC and NFD spellings of one name are two names: both files stay as they are',
    base: {},
    ours: [['write', 'caf\u00e9.txt', 'nfc']],
    theirs: [['write', 'cafe\u0301.txt', 'nfd']],
    expected: { 'caf\u00e9.txt': 'nfc', 'cafe\u0301.txt': 'nfd' },
    conflicts: []
  },
  {
    name: 'mode, mtime and xattr changes on the two devices merge field by field',
    base: { 'f.txt': 'x' },
    ours: [['chmod', 'f.txt', 0o600], ['setxattr', 'f.txt', 'user.color', 'blue']],
    theirs: [['touch', 'f.txt', BASE_TIME + 5000], ['setxattr', 'f.txt', 'user.size', 'big']],
    expected: { 'f.txt': { content: 'x', mode: 0o600 } },
    conflicts: []
  },
  {
    name: 'a symlink renamed differently on both devices ends under one name, with no duplicate',
    base: { 'ln': { symlink: 'target' }, 'target': 't' },
    ours: [['mv', 'ln', 'ln-ours']],
    theirs: [['mv', 'ln', 'ln-theirs']],
    expected: { 'ln-theirs': { symlink: 'target' }, 'target': 't' },
    conflicts: ['rename']
  },
  {
    name: 'symlinks made under one name with different targets both stay',
    base: {},
    ours: [['symlink', 'a', 'ln']],
    theirs: [['symlink', 'b', 'ln']],
    expected: { 'ln': { symlink: 'b' }, 'ln (conflict from laptop 2026-01-02 030410)': { symlink: 'a' } },
    conflicts: ['content']
  },
  {
    name: 'a file made on one device in a folder renamed on the other ends in the renamed folder',
    base: { 'd/a.txt': 'a' },
    ours: [['mv', 'd', 'e']],
    theirs: [['write', 'd/b.txt', 'b']],
    expected: { 'e/a.txt': 'a', 'e/b.txt': 'b' },
    conflicts: []
  }
]

for (const c of CASES) {
  test(c.name, async () => {
    const r = await run(c)
    assert.deepEqual(r.listing, c.expected)
    assert.deepEqual(kinds(r), [...c.conflicts].sort())
  })
}

test('a folder moved into the other\'s on each device (a cycle) ends with one of the moves, deterministically', async () => {
  const r = await run({ base: { 'a/x': 'x', 'b/y': 'y' }, ours: [['mv', 'b', 'a/b']], theirs: [['mv', 'a', 'b/a']] })
  const shapes = [{ 'a/b/y': 'y', 'a/x': 'x' }, { 'b/a/x': 'x', 'b/y': 'y' }]
  assert.ok(shapes.some(s => JSON.stringify(s) === JSON.stringify(r.listing)), JSON.stringify(r.listing))
  assert.deepEqual(kinds(r), ['cycle'])
})

test('the merged xattrs and mtime of one file are each side\'s change', async () => {
  const r = await run({ base: { 'f.txt': 'x' }, ours: [['setxattr', 'f.txt', 'user.color', 'blue']], theirs: [['touch', 'f.txt', BASE_TIME + 5000], ['setxattr', 'f.txt', 'user.size', 'big']] })
  const f = [...r.merge.snapshot.nodes.values()].find(n => n.name === 'f.txt')!
  assert.deepEqual(Object.keys(f.attrs!.x).sort(), ['user.color', 'user.size'])
  assert.equal(f.attrs!.mt, BigInt(BASE_TIME + 5000) * 1_000_000n)
})

test('both devices changing one field take the greater value on both devices (the later time, the higher mode)', async () => {
  const r = await run({ base: { 'f.txt': 'x' }, ours: [['chmod', 'f.txt', 0o640], ['touch', 'f.txt', BASE_TIME + 9000]], theirs: [['chmod', 'f.txt', 0o600], ['touch', 'f.txt', BASE_TIME + 3000]] })
  const f = [...r.merge.snapshot.nodes.values()].find(n => n.name === 'f.txt')!
  assert.equal(f.attrs!.m, 0o640)
  assert.equal(f.attrs!.mt, BigInt(BASE_TIME + 9000) * 1_000_000n)
})

test('a conflict copy is marked, reads back its own content, and a later merge tells it apart from its original', async () => {
  const r = await run({ base: { 'doc.txt': 'v0' }, ours: [['write', 'doc.txt', 'ours']], theirs: [['write', 'doc.txt', 'theirs']] })
  const copy = [...r.merge.snapshot.nodes.values()].find(n => n.name.includes('conflict'))!
  assert.ok(copy.attrs!.x[CONFLICT_XATTR] != null)
  const orig = [...r.merge.snapshot.nodes.values()].find(n => n.name === 'doc.txt')!
  assert.notEqual(copy.id, orig.id)
  assert.equal(r.merge.conflicts[0].path, '/doc.txt')
  assert.equal(r.merge.conflicts[0].copy, '/doc (conflict from laptop 2026-01-02 030410).txt')
  // Both devices take the merge; one edits the copy, the other the original: no new conflict.
  const merged = MergeWorld.record(materialize(r.merge.snapshot, r.world.store))
  const ours = await r.world.edited([['write', 'doc (conflict from laptop 2026-01-02 030410).txt', 'copy edited']], OURS + 60_000, merged)
  const theirs = await r.world.edited([['write', 'doc.txt', 'original edited']], THEIRS + 60_000, merged)
  const [b, o, t] = await Promise.all([merged, ours, theirs].map(async x => await readSnapshot(x, r.world.store)))
  const again = merge3(b, o, t, devices)
  assert.deepEqual(again.conflicts, [])
  assert.deepEqual(await r.world.list(MergeWorld.record(materialize(again.snapshot, r.world.store))), {
    'doc (conflict from laptop 2026-01-02 030410).txt': 'copy edited', 'doc.txt': 'original edited'
  })
})

test('hard links: a write through one name and a rename of another merge into one linked file', async () => {
  const r = await run({ base: { 'f.txt': 'v0' }, baseEdits: [['link', 'f.txt', 'g.txt']], ours: [['write', 'f.txt', 'v1']], theirs: [['mv', 'g.txt', 'h.txt']] })
  assert.deepEqual(r.listing, { 'f.txt': 'v1', 'h.txt': 'v1' })
  assert.equal(r.merge.snapshot.links.size, 1)
  assert.equal([...r.merge.snapshot.links.values()][0].nl, 2)
})

test('hard links: a linked file written on both devices keeps both versions', async () => {
  const r = await run({ base: { 'f.txt': 'v0' }, baseEdits: [['link', 'f.txt', 'g.txt']], ours: [['write', 'f.txt', 'ours']], theirs: [['write', 'g.txt', 'theirs']] })
  assert.deepEqual(r.listing, { 'f (conflict from laptop 2026-01-02 030410).txt': 'ours', 'f.txt': 'theirs', 'g.txt': 'theirs' })
  assert.deepEqual(kinds(r), ['content'])
})

test('hard links: a new name made on one device for a file the other removed keeps the file', async () => {
  const r = await run({ base: { 'f.txt': 'v0' }, baseEdits: [['link', 'f.txt', 'g.txt']], ours: [['rm', 'f.txt'], ['rm', 'g.txt']], theirs: [['link', 'g.txt', 'k.txt']] })
  assert.deepEqual(r.listing, { 'k.txt': 'v0' })
  assert.equal([...r.merge.snapshot.links.values()][0].nl, 1)
})

test('the root is matched as the root although the two devices made it with different ids', async () => {
  const a = await MergeWorld.create({ 'a.txt': 'a' })
  const b = await MergeWorld.create({ 'b.txt': 'b' })
  const sa = await readSnapshot(a.base, a.store)
  const sb = await readSnapshot(b.base, b.store)
  assert.notDeepEqual(sa.nodes.get('root')!.content.i, sb.nodes.get('root')!.content.i)
  const { emptySnapshot } = await import('../../src/sync/snapshot.js')
  const m = merge3(emptySnapshot(), sa, sb, devices)
  assert.deepEqual([...m.snapshot.nodes.values()].map(n => pathOf(m.snapshot, n.id)).sort(), ['/', '/a.txt', '/b.txt'])
  assert.equal(canonical(merge3(emptySnapshot(), sb, sa, { ours: 'desktop', theirs: 'laptop' }).snapshot), canonical(m.snapshot))
})
