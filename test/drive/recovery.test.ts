// One bad bit never deletes data: opening a store whose journal or packs are damaged either
// refuses (ERR_STORE_DAMAGED, pointing at `space fsck`, nothing changed) or, for a torn journal
// tail only, cuts the tail and keeps every byte it drops in the quarantine.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, readFileSync, rmSync, writeFileSync, truncateSync, mkdirSync, readdirSync, statSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Drive } from '../../src/drive/drive.js'
import { rekey } from '../../src/drive/rekey.js'
import { fsckStore } from '../../src/drive/repair.js'
import type { FileNode } from '../../src/fs/tree/tree.js'
import { threeCommits, frames, hashes, quarantineOf, packRecords } from './helpers.js'
import { randomBytes } from 'node:crypto'

async function contentOf (drive: Drive, path: string): Promise<string> {
  const f = await drive.tree.lookup(path) as FileNode
  const out = Buffer.alloc(f.size)
  let off = 0
  while (off < f.size) off += await drive.tree.read(f, out.subarray(off), f.size - off, off)
  return out.toString()
}

const isDamaged = (e: unknown): boolean => (e as { code?: string }).code === 'ERR_STORE_DAMAGED' && /space fsck/.test((e as Error).message)

for (const which of ['first', 'middle'] as const) {
  test(`a flipped bit in the ${which} of three journal records refuses to open and changes no byte`, async () => {
    const s = await threeCommits()
    try {
      const path = join(s.dir, 'journal')
      const j = readFileSync(path)
      const f = frames(j)
      assert.equal(f.length, 3)
      const rec = f[which === 'first' ? 0 : 1]
      j[rec.offset + 8 + 20] ^= 0x04
      writeFileSync(path, j)
      const before = hashes(s.dir)
      await assert.rejects(Drive.open(s.dir, s.key), e => isDamaged(e) && /frame \d .*valid frame/.test((e as Error).message))
      assert.deepEqual(hashes(s.dir), before, 'no byte of the journal or the packs changed')
      assert.equal(existsSync(join(s.dir, 'lock')), false, 'the lock is released')
    } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
  })
}

test('a flipped bit in a record\'s length field is found too: the valid frames after it are found by scanning', async () => {
  const s = await threeCommits()
  try {
    const path = join(s.dir, 'journal')
    const j = readFileSync(path)
    j[0] ^= 0x10 // record 1's length now points nowhere
    writeFileSync(path, j)
    const before = hashes(s.dir)
    await assert.rejects(Drive.open(s.dir, s.key), isDamaged)
    assert.deepEqual(hashes(s.dir), before)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('a flipped bit in the last journal record is a torn tail: cut, and its bytes and its blocks are kept in the quarantine', async () => {
  const s = await threeCommits()
  try {
    const path = join(s.dir, 'journal')
    const j = readFileSync(path)
    const f = frames(j)
    j[f[2].offset + 8 + 20] ^= 0x04
    writeFileSync(path, j)
    const pack = readFileSync(join(s.dir, 'packs', '00000001.pack'))
    const lines: string[] = []
    const drive = await Drive.open(s.dir, s.key, { log: l => lines.push(l) })
    assert.deepEqual(drive.log().map(e => e.seq), [1, 2])
    assert.equal(await contentOf(drive, '/a'), s.versions[1], 'the previous commit is the head')
    await drive.close()
    assert.match(lines.join('\n'), /recovery: cut \d+ bytes .*quarantine/)
    const q = quarantineOf(s.dir)
    assert.ok(readFileSync(join(q, `journal.from-${f[2].offset}`)).equals(j.subarray(f[2].offset)), 'the cut record is kept')
    const now = readFileSync(join(s.dir, 'packs', '00000001.pack'))
    const tail = readdirSync(join(q, 'packs'))
    assert.equal(tail.length, 1)
    assert.ok(Buffer.concat([now, readFileSync(join(q, 'packs', tail[0]))]).equals(pack), 'pack bytes past the new head are kept, not deleted')
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('a torn tail from a crash mid-append still recovers silently, keeping what it cuts', async () => {
  const s = await threeCommits()
  try {
    appendFileSync(join(s.dir, 'journal'), Buffer.from([0, 0, 1, 0, 9, 9, 9, 9, 1, 2, 3]))
    const drive = await Drive.open(s.dir, s.key)
    assert.deepEqual(drive.log().map(e => e.seq), [1, 2, 3])
    assert.equal(await contentOf(drive, '/a'), s.versions[2])
    await drive.close()
    assert.equal(statSync(join(quarantineOf(s.dir), `journal.from-${readFileSync(join(s.dir, 'journal')).length}`)).size, 11)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('a deleted journal in a store with blocks refuses to open and deletes no pack', async () => {
  const s = await threeCommits()
  try {
    rmSync(join(s.dir, 'journal'))
    const before = hashes(s.dir)
    await assert.rejects(Drive.open(s.dir, s.key), e => isDamaged(e) && /journal is missing/.test((e as Error).message))
    assert.deepEqual(hashes(s.dir), before)
    assert.equal(existsSync(join(s.dir, 'journal')), false, 'no empty journal was created in its place')
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('an unreadable journal refuses to open', async () => {
  const s = await threeCommits()
  try {
    rmSync(join(s.dir, 'journal'))
    mkdirSync(join(s.dir, 'journal'))
    const before = hashes(s.dir)
    await assert.rejects(Drive.open(s.dir, s.key), e => isDamaged(e) && /journal cannot be read/.test((e as Error).message))
    assert.deepEqual(hashes(s.dir), before)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('a pack cut short of the last two commits refuses to open and is not cut further', async () => {
  const s = await threeCommits()
  try {
    const pack = join(s.dir, 'packs', '00000001.pack')
    // Cut into the head commit's own bytes only, it is set aside instead (commit-overlap.test.ts).
    truncateSync(pack, Math.floor(statSync(pack).size / 2))
    const before = hashes(s.dir)
    await assert.rejects(Drive.open(s.dir, s.key), e => isDamaged(e) && /shorter/.test((e as Error).message))
    assert.deepEqual(hashes(s.dir), before)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('a rekey of a damaged journal refuses instead of rewriting it without the damaged part', async () => {
  const s = await threeCommits()
  try {
    const path = join(s.dir, 'journal')
    const j = readFileSync(path)
    j[8 + 20] ^= 0x01
    writeFileSync(path, j)
    const before = hashes(s.dir)
    await assert.rejects(rekey(s.dir, s.key, randomBytes(32)), isDamaged)
    assert.deepEqual(hashes(s.dir), before)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('an empty journal beside packs that hold blocks refuses to open; repair keeps the packs in the quarantine and starts empty', async () => {
  const s = await threeCommits()
  try {
    // Index files are not pack bytes: they are rebuilt from the packs.
    const packs = new Map([...hashes(join(s.dir, 'packs'))].filter(([n]) => !n.endsWith('.idx')))
    writeFileSync(join(s.dir, 'journal'), Buffer.alloc(0))
    const before = hashes(s.dir)
    await assert.rejects(Drive.open(s.dir, s.key), e => isDamaged(e) && /holds no commit but the packs hold blocks/.test((e as Error).message))
    assert.deepEqual(hashes(s.dir), before, 'nothing changed')
    const { report, repair } = await fsckStore(s.dir, s.key, { repair: true })
    assert.ok(report.problems.some(p => /holds no commit, but the packs hold blocks/.test(p)), report.problems.join('\n'))
    assert.equal(repair?.head, null)
    assert.deepEqual(hashes(join(quarantineOf(s.dir), 'packs')), packs, 'every pack byte kept')
    const drive = await Drive.open(s.dir, s.key)
    assert.deepEqual(drive.log(), [])
    await drive.close()
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('bad framing in an old block\'s record: the drive opens and serves the head, and repair keeps the head', async () => {
  const s = await threeCommits()
  try {
    const packPath = join(s.dir, 'packs', '00000001.pack')
    const pack = readFileSync(packPath)
    // The first full block is block 0 of version 2, which only commit 2 references.
    const rec = packRecords(pack).find(r => r.length === 131_597)! // a full content block, sealed v2
    pack[rec.start] = 0 // its record version byte
    writeFileSync(packPath, pack)
    // An intact index file means the open reads no pack; the damage shows where the index is built.
    rmSync(join(s.dir, 'packs', '00000001.idx'))
    const lines: string[] = []
    const drive = await Drive.open(s.dir, s.key, { log: l => lines.push(l) })
    try {
      assert.match(lines.join('\n'), /index: pack 1 rebuilt from its \d+ records \(missing\)/)
      assert.match(lines.join('\n'), /damage: pack 1: \d+ bytes from byte \d+ skipped/)
      const a = await drive.tree.lookup('/a') as FileNode
      const out = Buffer.alloc(a.size)
      await drive.tree.read(a, out, a.size, 0)
      assert.equal(out.toString(), s.versions[2], 'the head reads back whole')
    } finally { await drive.close() }
    const { repair } = await fsckStore(s.dir, s.key, { repair: true })
    assert.equal(repair?.head?.was, 3, `repair keeps the newest intact commit: ${JSON.stringify(repair?.skipped)}`)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('space log of a store without its journal: empty for a store never committed to, damaged when the packs hold blocks', async () => {
  const s = await threeCommits()
  try {
    rmSync(join(s.dir, 'journal'))
    await assert.rejects(Drive.readLog(s.dir, s.key), e => isDamaged(e) && /journal is missing/.test((e as Error).message))
    rmSync(join(s.dir, 'packs'), { recursive: true })
    assert.deepEqual(await Drive.readLog(s.dir, s.key), [])
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})
