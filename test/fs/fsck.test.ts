// `space fsck` through the real CLI on a store written through a real mount, then damaged: a
// flipped bit in each journal record, a deleted journal, a truncated pack, a zeroed block. The
// mount refuses (exit 19) or cuts only a torn tail, no pack byte is lost, fsck names the damage,
// and fsck --repair brings back the newest intact version, read back through a new mount.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, readFileSync, readdirSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, space, type Dirs } from '../helpers/mount.js'
import { frames, hashes, packRecords, quarantineOf } from '../drive/helpers.js'

const VERSIONS = ['version 1\n', 'version 2 ' + 'x'.repeat(300_000), 'version 3 ' + 'y'.repeat(200_000)]
const all: Dirs[] = []
let template: Dirs | null = null
after(() => { for (const d of all) removeDirs(d) })

/** Three mounts, each replacing /a atomically with the next version (and /keep from the first). */
async function built (): Promise<Dirs> {
  if (template == null) {
    template = tempDirs('space-fsck-')
    all.push(template)
    for (const v of VERSIONS) {
      const m = await Mount.start(template)
      try {
        if (v === VERSIONS[0]) writeFileSync(m.path('keep'), 'kept\n')
        writeFileSync(m.path('tmp'), v)
        renameSync(m.path('tmp'), m.path('a'))
      } finally { assert.equal(await m.stop(), 0) }
    }
  }
  const d = tempDirs('space-fsck-')
  all.push(d)
  cpSync(template.data, d.data, { recursive: true })
  cpSync(template.config, d.config, { recursive: true })
  return d
}

const args = (d: Dirs, ...more: string[]): string[] => [...more, '--data-dir', d.data, '--config-dir', d.config]
const pack1 = (d: Dirs): string => join(d.data, 'packs', '00000001.pack')

/** Mounts, reads /a and /keep, unmounts. */
async function readBack (d: Dirs): Promise<{ a: string | null, keep: string | null }> {
  const m = await Mount.start(d)
  try {
    const read = (p: string): string | null => { try { return readFileSync(m.path(p), 'utf8') } catch { return null } }
    return { a: read('a'), keep: read('keep') }
  } finally { await m.stop() }
}

function refusesToMount (d: Dirs, re: RegExp): void {
  const r = space(args(d, 'mount', d.mnt))
  assert.equal(r.status, 19, r.stderr)
  assert.match(r.stderr, re)
  assert.match(r.stderr, /space fsck/)
}

for (const which of ['first', 'middle'] as const) {
  test(`a flipped bit in the ${which} journal record: mount refuses (19), fsck names it, repair brings back the newest version`, async () => {
    const d = await built()
    const path = join(d.data, 'journal')
    const j = readFileSync(path)
    const f = frames(j)
    assert.ok(f.length >= 3, `${f.length} commits`)
    j[f[which === 'first' ? 0 : Math.floor(f.length / 2)].offset + 8 + 25] ^= 0x80
    writeFileSync(path, j)
    const before = hashes(d.data)
    refusesToMount(d, /damaged: commit journal frame \d+/)
    assert.deepEqual(hashes(d.data), before, 'nothing changed')

    const r = space(args(d, 'fsck'))
    assert.equal(r.status, 19, r.stdout + r.stderr)
    assert.match(r.stdout, /DAMAGED {2}journal: frame \d+ at byte \d+ \(CRC mismatch\), with \d+ valid frame/)
    const packs = hashes(join(d.data, 'packs'))
    const fixed = space(args(d, 'fsck', '--repair'))
    assert.equal(fixed.status, 0, fixed.stdout + fixed.stderr)
    assert.match(fixed.stdout, new RegExp(`repaired: the head is commit ${f.length} \\(now numbered ${f.length - 1}\\)`))
    assert.deepEqual(hashes(join(d.data, 'packs')), packs, 'no pack byte dropped: the head was intact')
    assert.ok(readFileSync(join(quarantineOf(d.data), 'journal')).equals(j), 'the old journal is kept whole')
    assert.equal(space(args(d, 'fsck')).status, 0, 'clean after repair')
    assert.deepEqual(await readBack(d), { a: VERSIONS[2], keep: 'kept\n' })
  })
}

test('a flipped bit in the last journal record is a torn tail: fsck notes it, the mount cuts it and keeps the bytes', async () => {
  const d = await built()
  const path = join(d.data, 'journal')
  const j = readFileSync(path)
  const last = frames(j).at(-1)!
  j[last.offset + 8 + 25] ^= 0x80
  writeFileSync(path, j)
  const r = space(args(d, 'fsck'))
  assert.equal(r.status, 0, r.stdout)
  assert.match(r.stdout, /note {5}journal: torn tail/)
  const pack = readFileSync(pack1(d))
  assert.deepEqual(await readBack(d), { a: VERSIONS[1], keep: 'kept\n' })
  const q = quarantineOf(d.data)
  assert.ok(readFileSync(join(q, `journal.from-${last.offset}`)).equals(j.subarray(last.offset)))
  const tails = readdirSync(join(q, 'packs'))
  assert.ok(Buffer.concat([readFileSync(pack1(d)).subarray(0, pack.length - statSync(join(q, 'packs', tails[0])).size), readFileSync(join(q, 'packs', tails[0]))]).equals(pack), 'the cut pack bytes are in the quarantine')
})

test('a deleted journal: mount refuses (19), fsck reports it, repair keeps every pack in the quarantine and mounts empty', async () => {
  const d = await built()
  rmSync(join(d.data, 'journal'))
  // Index files are not pack bytes: they are rebuilt from the packs.
  const packs = new Map([...hashes(join(d.data, 'packs'))].filter(([n]) => !n.endsWith('.idx')))
  refusesToMount(d, /journal is missing/)
  assert.deepEqual(new Map([...hashes(join(d.data, 'packs'))].filter(([n]) => !n.endsWith('.idx'))), packs)
  const r = space(args(d, 'fsck', '--json'))
  assert.equal(r.status, 19)
  assert.match((JSON.parse(r.stdout) as { report: { problems: string[] } }).report.problems.join('\n'), /journal: missing/)
  const fixed = space(args(d, 'fsck', '--repair'))
  assert.equal(fixed.status, 0, fixed.stdout + fixed.stderr)
  assert.match(fixed.stdout, /no commit is intact/)
  assert.deepEqual(hashes(join(quarantineOf(d.data), 'packs')), packs, 'every pack kept byte for byte')
  assert.deepEqual(await readBack(d), { a: null, keep: null })
})

test('a pack cut inside the last commit\'s bytes: fsck notes it was never acknowledged, the mount sets it aside and reads the version before', async () => {
  const d = await built()
  const size = statSync(pack1(d)).size
  truncateSync(pack1(d), size - 50)
  const r = space(args(d, 'fsck'))
  assert.equal(r.status, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /never acknowledged/)
  assert.deepEqual(await readBack(d), { a: VERSIONS[1], keep: 'kept\n' })
  assert.ok(readdirSync(quarantineOf(d.data)).some(n => n.startsWith('journal.from-')), 'the record is kept')
})

test('a truncated pack: mount refuses (19), fsck reports it, repair goes back to the newest commit the pack still holds', async () => {
  const d = await built()
  const size = statSync(pack1(d)).size
  // Into the commit before the last (version 2, 300 kB): a cut inside the last one's own bytes only sets it aside (above).
  truncateSync(pack1(d), size - 250_000)
  const cut = readFileSync(pack1(d))
  refusesToMount(d, /pack 1 is shorter/)
  assert.equal(statSync(pack1(d)).size, size - 250_000)
  const r = space(args(d, 'fsck'))
  assert.equal(r.status, 19)
  assert.match(r.stdout, /DAMAGED {2}pack 1: bad record header at byte \d+/)
  assert.match(r.stdout, /DAMAGED {2}commit \d+: pack 1 is shorter/)
  const fixed = space(args(d, 'fsck', '--repair'))
  assert.equal(fixed.status, 0, fixed.stdout + fixed.stderr)
  const now = readFileSync(pack1(d))
  const tail = readdirSync(join(quarantineOf(d.data), 'packs'))
  assert.ok(Buffer.concat([now, readFileSync(join(quarantineOf(d.data), 'packs', tail[0]))]).equals(cut), 'the bytes past the new head are kept')
  assert.deepEqual(await readBack(d), { a: VERSIONS[0], keep: 'kept\n' })
})

test('a zeroed content block: fsck names the file and block (19), repair brings back the version before it', async () => {
  const d = await built()
  // One more commit, so the block lies outside the head commit's own (checked) bytes: damage there
  // sets the head aside instead (above).
  const m = await Mount.start(d)
  try { writeFileSync(m.path('later'), 'later\n') } finally { assert.equal(await m.stop(), 0) }
  const pack = readFileSync(pack1(d))
  // The newest full sealed block (131,072 + 30 bytes) is block 0 of version 3.
  const rec = packRecords(pack).filter(r => r.length === 131_597).at(-1)! // a full content block, sealed v2
  pack.fill(0, rec.data, rec.data + rec.length)
  writeFileSync(pack1(d), pack)
  const r = space(args(d, 'fsck'))
  assert.equal(r.status, 19, r.stdout + r.stderr)
  assert.match(r.stdout, /DAMAGED {2}commit \d+: \/a block 0 \(baf\w+\): bytes in pack 1 at \d+ do not match the CID/)
  const fixed = space(args(d, 'fsck', '--repair'))
  assert.equal(fixed.status, 0, fixed.stdout + fixed.stderr)
  assert.match(fixed.stdout, /skipped {2}commit \d+: \/a block 0/)
  const q = quarantineOf(d.data)
  // The report kept on disk names the damaged object by CID, never by path (plaintext).
  const onDisk = readFileSync(join(q, 'fsck.json'), 'utf8')
  assert.match(onDisk, /an object block 0 \(baf\w+\)/)
  assert.ok(!onDisk.includes('/a') && !onDisk.includes('"path"'), onDisk)
  const tail = readdirSync(join(q, 'packs'))
  assert.ok(Buffer.concat([readFileSync(pack1(d)), readFileSync(join(q, 'packs', tail[0]))]).equals(pack), 'the zeroed block and everything after the new head are kept')
  assert.equal(space(args(d, 'fsck')).status, 0)
  assert.deepEqual(await readBack(d), { a: VERSIONS[1], keep: 'kept\n' })
})

test('fsck refuses while the drive is mounted (12) and changes nothing', async () => {
  const d = await built()
  const m = await Mount.start(d)
  try {
    const r = space(args(d, 'fsck', '--repair'))
    assert.equal(r.status, 12, r.stderr)
    assert.match(r.stderr, /in use by process/)
  } finally { await m.stop() }
})


