// fsck and repair on stores opened directly (no mount): what counts as damage, what is only a
// note, and that a repaired store opens at the newest intact commit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Drive } from '../../src/drive/drive.js'
import { fsckStore } from '../../src/drive/repair.js'
import type { FileNode } from '../../src/fs/tree/tree.js'
import { threeCommits, frames, hashes, packRecords } from './helpers.js'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { state } from '../../src/fs/tree/block-ref.js'
import { sealedLength } from '../../src/crypto/index.js'

async function contentOf (drive: Drive, path: string): Promise<string> {
  const f = await drive.tree.lookup(path) as FileNode
  const out = Buffer.alloc(f.size)
  let off = 0
  while (off < f.size) off += await drive.tree.read(f, out.subarray(off), f.size - off, off)
  return out.toString()
}

test('a clean store checks clean, every block of the head counted, and fsck changes nothing', async () => {
  const s = await threeCommits()
  try {
    const before = hashes(s.dir)
    const { report } = await fsckStore(s.dir, s.key)
    assert.equal(report.clean, true, report.problems.join('\n'))
    assert.equal(report.journal.commits, 3)
    // /a is version 3 (200,010 bytes: two blocks) and /keep one block.
    assert.deepEqual(report.head?.counts, { dirs: 1, files: 2, blocks: 3 })
    assert.deepEqual(hashes(s.dir), before)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('a half-written record past the head\'s watermark (a crash) is a note, not damage', async () => {
  const s = await threeCommits()
  try {
    appendFileSync(join(s.dir, 'packs', '00000001.pack'), Buffer.from([1, 36, 1, 0x55, 0x1e, 0x20, 7, 7]))
    const { report } = await fsckStore(s.dir, s.key, { repair: true })
    assert.equal(report.clean, true, report.problems.join('\n'))
    assert.match(report.notes.join('\n'), /pack 1: bad record header .*uncommitted/)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('repair after a damaged first record renumbers the rest, and the store opens at the newest version', async () => {
  const s = await threeCommits()
  try {
    const path = join(s.dir, 'journal')
    const j = readFileSync(path)
    j[frames(j)[0].offset + 8 + 3] ^= 1
    writeFileSync(path, j)
    const { report, repair } = await fsckStore(s.dir, s.key, { repair: true })
    assert.equal(report.clean, false)
    assert.deepEqual(repair?.head, { seq: 2, was: 3 })
    const drive = await Drive.open(s.dir, s.key)
    try {
      assert.deepEqual(drive.log().map(e => e.seq), [1, 2])
      assert.equal(await contentOf(drive, '/a'), s.versions[2])
      await drive.tree.write(await drive.tree.create('/new', 0o644), Buffer.from('after repair'), 0)
      assert.equal((await drive.commit()).seq, 3, 'commits continue after the renumbered head')
    } finally { await drive.close() }
    assert.equal((await fsckStore(s.dir, s.key)).report.clean, true)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})

test('hard-linked files are checked through the link table: clean when intact, their damage found', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'space-fsck-links-')), 'data')
  const key = randomBytes(32)
  try {
    const drive = await Drive.open(dir, key)
    await drive.tree.mkdir('/d', 0o755)
    const f = await drive.tree.create('/d/f', 0o644)
    await drive.tree.write(f, Buffer.alloc(200_000, 3), 0)
    await drive.tree.link('/d/f', '/g')
    await drive.commit()
    // One more commit: damage in the head commit's own (checked) bytes sets it aside instead.
    await drive.tree.write(await drive.tree.create('/later', 0o644), Buffer.from('later'), 0)
    await drive.commit()
    await drive.close()
    const { report } = await fsckStore(dir, key)
    assert.equal(report.clean, true, report.problems.join('\n'))
    assert.equal(report.head?.counts.blocks, 3, 'the linked file\'s two blocks are counted once, and /later\'s one')
    // Zero the linked file's first block in the pack: fsck names it as a hard-linked file.
    const packPath = join(dir, 'packs', '00000001.pack')
    const pack = readFileSync(packPath)
    const rec = packRecords(pack).find(r => r.length === 131_597)! // a full content block, sealed v2
    pack.fill(0, rec.data, rec.data + rec.length)
    writeFileSync(packPath, pack)
    const damaged = await fsckStore(dir, key)
    assert.equal(damaged.report.clean, false)
    assert.match(damaged.report.problems.join('\n'), /hard-linked file [0-9a-f]{16}\) block 0 .*do not match the CID/)
  } finally { rmSync(dirname(dir), { recursive: true, force: true }) }
})

test('a block map entry that records another nonce than its block\'s is damage fsck names, and a fresh read of the block is EIO', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'space-fsck-nonce-')), 'data')
  const key = randomBytes(32)
  const B = 131072
  try {
    let drive = await Drive.open(dir, key)
    const f = await drive.tree.create('/db', 0o644) as FileNode
    await drive.tree.write(f, randomBytes(40 * B), 0)
    await drive.commit()
    // A writer's bug: block 5 named with a nonce that is not its own, sealed into its leaf by a
    // change to block 6 (same leaf).
    const five = f.blocks!.get(5) as CID
    f.setBlock(5, state(CID.decode(five.bytes), randomBytes(12), sealedLength(B)))
    await drive.tree.write(f, randomBytes(4096), 6 * B)
    await drive.commit()
    await drive.close()
    const { report } = await fsckStore(dir, key)
    assert.equal(report.clean, false)
    assert.equal(report.problems.length, 1, report.problems.join('\n'))
    assert.match(report.problems[0], /\/db.*another nonce/)
    drive = await Drive.open(dir, key)
    try {
      const g = await drive.tree.lookup('/db') as FileNode
      await assert.rejects(drive.tree.read(g, Buffer.alloc(4096), 4096, 5 * B), { code: 'ERR_INTEGRITY' })
      assert.equal(await drive.tree.read(g, Buffer.alloc(4096), 4096, 7 * B), 4096, 'the other blocks read')
    } finally { await drive.close() }
  } finally { rmSync(dirname(dir), { recursive: true, force: true }) }
})
