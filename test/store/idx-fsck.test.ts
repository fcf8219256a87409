// space fsck checks the pack index files: whole-file checksums and every entry against the
// records its scan finds. A bad index is a note (the pack is the truth), never damage.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fsckStore } from '../../src/drive/repair.js'
import { BucketCache, EntryList, IdxFile, encodeIndex, IDX_HEADER } from '../../src/store/pack-idx.js'
import { threeCommits } from '../drive/helpers.js'

const indexNotes = (notes: string[]): string[] => notes.filter(n => n.startsWith('index:'))

test('fsck finds a damaged, a lying and a missing index file, as notes that leave the store clean', async () => {
  const s = await threeCommits()
  try {
    const p = join(s.dir, 'packs', '00000001.idx')
    const good = readFileSync(p)
    let r = (await fsckStore(s.dir, s.key)).report
    assert.deepEqual(indexNotes(r.notes), [])
    assert.equal(r.clean, true)

    const bad = Buffer.from(good)
    bad[IDX_HEADER + 8 * (1 << bad[9]) + 40] ^= 0x10 // an entry's offset: only its bucket's CRC and the trailer catch it
    writeFileSync(p, bad)
    r = (await fsckStore(s.dir, s.key)).report
    assert.match(indexNotes(r.notes).join('\n'), /index: pack 1: bad checksum \(trailer\)/)
    assert.equal(r.clean, true)

    writeFileSync(p, good)
    const f = await IdxFile.open(p, 1, new BucketCache())
    const list = await f.entries()
    const meta = f.meta
    await f.close()
    const lying = new EntryList()
    for (let i = 0; i < list.count; i++) { const e = list.at(i); lying.push(e.digest, e.code, e.offset + 1, e.length) }
    writeFileSync(p, encodeIndex(meta, lying))
    r = (await fsckStore(s.dir, s.key)).report
    assert.match(indexNotes(r.notes).join('\n'), new RegExp(`index: pack 1: ${list.count - 1} of its ${list.count} entries name no record where they say`))
    assert.match(indexNotes(r.notes).join('\n'), /index: pack 1: 1 entries lie past the pack.s end/, 'the last record\'s entry, moved one byte on')

    rmSync(p)
    r = (await fsckStore(s.dir, s.key)).report
    assert.match(indexNotes(r.notes).join('\n'), /index: pack 1 has no index file/)
  } finally { rmSync(dirname(s.dir), { recursive: true, force: true }) }
})
