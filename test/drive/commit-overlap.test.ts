// One fdatasync in series per small commit (commit.ts, pack-writer.ts syncStart): the record of a
// commit that appended at most 8 MiB to its pack carries where those bytes start and their CRC-32
// (`pc`) and goes to the journal while the pack's fdatasync runs. An open checks the head
// record's bytes: when they did not all reach the disk (a crash between the two writes becoming
// durable; the commit was never acknowledged), the record is set aside like a torn tail, in the
// quarantine, and the previous commit is the head. A big commit is synced in series, unchecked.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Drive } from '../../src/drive/drive.js'
import { CommitLog } from '../../src/fs/tree/commit-log.js'
import { loadMeta } from '../../src/drive/store-meta.js'
import { Journal } from '../../src/store/journal.js'
import type { FileNode } from '../../src/fs/tree/tree.js'
import type { CommitRecord } from '../../src/fs/tree/format.js'

const PACK = '00000001.pack'

async function contentOf (drive: Drive, path: string): Promise<Buffer> {
  const f = await drive.tree.lookup(path) as FileNode
  const out = Buffer.alloc(f.size)
  let off = 0
  while (off < f.size) off += await drive.tree.read(f, out.subarray(off), f.size - off, off)
  return out
}

async function records (dir: string, key: Buffer): Promise<CommitRecord[]> {
  const meta = await loadMeta(dir, key, false)
  return new CommitLog(key, Buffer.from(meta.id, 'hex'), { append: async () => {} }).decodeAll(await Journal.read(join(dir, 'journal')))
}

/** A store of two commits of /db (the second a 4 KiB write into it); the pack's length after the first. */
async function twoCommits (): Promise<{ dir: string, key: Buffer, v1: Buffer, v2: Buffer, before: number }> {
  const dir = join(mkdtempSync(join(tmpdir(), 'space-overlap-')), 'data')
  const key = randomBytes(32)
  const drive = await Drive.open(dir, key)
  const f = await drive.tree.create('/db', 0o644)
  const v1 = randomBytes(512 * 1024)
  await drive.tree.write(f, v1, 0)
  await drive.commit()
  const before = statSync(join(dir, 'packs', PACK)).size
  const v2 = Buffer.from(v1)
  randomBytes(4096).copy(v2, 3 * 4096)
  await drive.tree.write(f, v2.subarray(3 * 4096, 4 * 4096), 3 * 4096)
  await drive.commit()
  await drive.close()
  return { dir, key, v1, v2, before }
}

test('a 4 KiB commit\'s record checks the pack bytes it appended, and an intact store opens at it', async () => {
  const s = await twoCommits()
  try {
    const recs = await records(s.dir, s.key)
    assert.equal(recs.length, 2)
    assert.deepEqual(recs[1].pc?.[0], s.before, 'the check starts where the previous commit ended')
    assert.ok(recs[1].pack[1] - s.before < 64 * 1024, 'a small commit')
    const drive = await Drive.open(s.dir, s.key)
    assert.deepEqual(drive.log().map(e => e.seq), [1, 2])
    assert.ok((await contentOf(drive, '/db')).equals(s.v2))
    await drive.close()
  } finally { rmSync(join(s.dir, '..'), { recursive: true, force: true }) }
})

test('a head commit whose pack bytes differ but hold no zeroed page (damage, not a crash) stays the head', async () => {
  const s = await twoCommits()
  try {
    const packPath = join(s.dir, 'packs', PACK)
    const p = readFileSync(packPath)
    p[s.before + 100] ^= 0x20
    writeFileSync(packPath, p)
    const drive = await Drive.open(s.dir, s.key)
    assert.deepEqual(drive.log().map(e => e.seq), [1, 2])
    await drive.close()
  } finally { rmSync(join(s.dir, '..'), { recursive: true, force: true }) }
})

for (const how of ['a page of zeros', 'a pack cut short'] as const) {
  test(`a head commit whose pack bytes did not all reach the disk (${how}) is set aside: the previous commit opens, the record is kept`, async () => {
    const s = await twoCommits()
    try {
      const packPath = join(s.dir, 'packs', PACK)
      const journal = readFileSync(join(s.dir, 'journal'))
      if (how === 'a page of zeros') {
        const p = readFileSync(packPath)
        const end = (await records(s.dir, s.key))[1].pack[1]
        // A page of the file that never reached the disk (its part in the commit's bytes).
        const page = Math.ceil(s.before / 4096) * 4096
        if (page < end) p.fill(0, page, Math.min(page + 4096, end))
        else p.fill(0, s.before, end)
        writeFileSync(packPath, p)
      } else truncateSync(packPath, s.before + 10)
      const lines: string[] = []
      const drive = await Drive.open(s.dir, s.key, { log: l => lines.push(l) })
      try {
        assert.deepEqual(drive.log().map(e => e.seq), [1])
        assert.ok((await contentOf(drive, '/db')).equals(s.v1), 'the previous version, whole')
        assert.match(lines.join('\n'), /recovery: cut \d+ bytes .*had not all reached the disk.*quarantine/)
        // The store goes on: a new commit follows commit 1.
        const f = await drive.tree.lookup('/db') as FileNode
        await drive.tree.write(f, Buffer.from('after'), 0)
        await drive.commit()
      } finally { await drive.close() }
      const q = join(s.dir, 'quarantine', readdirSync(join(s.dir, 'quarantine'))[0])
      const cut = readdirSync(q).find(n => n.startsWith('journal.from-'))!
      assert.ok(readFileSync(join(q, cut)).equals(journal.subarray(Number(cut.slice('journal.from-'.length)))), 'the record is kept')
      const again = await Drive.open(s.dir, s.key)
      assert.deepEqual(again.log().map(e => e.seq), [1, 2])
      const want = Buffer.from(s.v1)
      want.write('after', 0)
      assert.ok((await contentOf(again, '/db')).equals(want))
      await again.close()
    } finally { rmSync(join(s.dir, '..'), { recursive: true, force: true }) }
  })
}

test('a commit that appended more than 8 MiB is synced in series and carries no check; one of 3 MiB carries it', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'space-overlap-')), 'data')
  const key = randomBytes(32)
  try {
    const drive = await Drive.open(dir, key)
    const f = await drive.tree.create('/big', 0o644)
    await drive.tree.write(f, randomBytes(3 * 1024 * 1024), 0)
    await drive.commit()
    await drive.tree.write(f, randomBytes(9 * 1024 * 1024), 3 * 1024 * 1024)
    await drive.commit()
    await drive.close()
    const recs = await records(dir, key)
    assert.equal(recs.length, 2)
    assert.notEqual(recs[0].pc, undefined, '3 MiB: checked (one fdatasync in series)')
    assert.equal(recs[1].pc, undefined, '9 MiB: two fdatasyncs in series, no check')
  } finally { rmSync(join(dir, '..'), { recursive: true, force: true }) }
})
