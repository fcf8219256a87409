// The per-pack index files: their lookup, and that the store opens from them without reading a
// pack, rebuilds one that is missing or does not check, and never serves wrong bytes from one
// that lies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync, truncateSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { PackStore } from '../../src/store/pack-store.js'
import { EntryList, IdxFile, BucketCache, encodeIndex, fanoutBits, verifyIndexFile, ENTRY, IDX_HEADER, TRAILER, entryAt } from '../../src/store/pack-idx.js'
import { cidOf, type CID } from '../../src/store/cid.js'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'space-idx-'))
const idx = (dir: string, id: number): string => join(dir, `${String(id).padStart(8, '0')}.idx`)

/** A store of `n` random blocks over packs of `packLimit` bytes, closed; returns its CIDs and watermark. */
async function filled (dir: string, n: number, packLimit = 64 * 1024): Promise<{ cids: CID[], blocks: Buffer[], wm: { pack: number, offset: number } }> {
  const s = await PackStore.open(dir, null, { packLimit })
  const blocks = Array.from({ length: n }, (_, i) => randomBytes(200 + (i * 37) % 3000))
  const cids = blocks.map(b => s.put(b))
  const wm = await s.sync()
  await s.close()
  return { cids, blocks, wm }
}

test('an index file finds every entry it was built from by binary search, and nothing else', async () => {
  const dir = tmp()
  try {
    for (const n of [0, 1, 17, 5000, 40_000]) {
      const list = new EntryList()
      const want = new Map<string, { offset: number, length: number }>()
      for (let i = 0; i < n; i++) {
        const d = randomBytes(32)
        const e = { offset: 9 + i * 1000 + (i % 7) * 0x1_0000_0000, length: 100 + i }
        list.push(d, 0x1e, e.offset, e.length)
        want.set(d.toString('hex'), e)
      }
      const bytes = encodeIndex({ pack: 3, from: 9, to: 1e12, damage: null }, list)
      const bits = fanoutBits(n)
      assert.equal(bytes.length, IDX_HEADER + 8 * (1 << bits) + n * ENTRY + TRAILER)
      writeFileSync(join(dir, 'x.idx'), bytes)
      const f = await IdxFile.open(join(dir, 'x.idx'), 3, new BucketCache())
      assert.equal(f.count, n)
      for (const [d, e] of want) assert.deepEqual(f.lookup(Buffer.from(d, 'hex'), 0x1e), e)
      for (const d of want.keys()) { assert.equal(f.lookup(Buffer.from(d, 'hex'), 0x12), null, 'another hash function is another key'); break }
      for (let i = 0; i < 200; i++) assert.equal(f.lookup(randomBytes(32), 0x1e), null)
      await f.close()
      const { entries } = await verifyIndexFile(join(dir, 'x.idx'), 3)
      for (let i = 1; i < n; i++) assert.ok(Buffer.compare(entryAt(entries, i - 1).digest, entryAt(entries, i).digest) < 0, 'sorted')
    }
    assert.equal(fanoutBits(4096), 8)
    assert.equal(fanoutBits(1_000_000), 16)
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a reopened store finds its blocks through the index files without reading a record of any pack', async () => {
  const dir = tmp()
  try {
    const { cids, blocks, wm } = await filled(dir, 400)
    const packs = readdirSync(dir).filter(n => n.endsWith('.pack')).length
    assert.ok(packs >= 5)
    assert.equal(readdirSync(dir).filter(n => n.endsWith('.idx')).length, packs, 'one index file per pack')
    const lines: string[] = []
    const s = await PackStore.open(dir, wm, { log: l => lines.push(l) })
    assert.deepEqual(s.indexStats, { packs, fromIndex: packs, rebuilt: 0, scannedRecords: 0, scannedBytes: 0 })
    assert.deepEqual(lines, [])
    for (let i = 0; i < cids.length; i++) assert.deepEqual(Buffer.from(await s.get(cids[i])), blocks[i])
    assert.equal(s.has(cidOf(randomBytes(10))), false)
    await s.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('the current pack is scanned at open only from where its index file ends', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null)
    const first = Array.from({ length: 50 }, () => randomBytes(500))
    for (const b of first) s.put(b)
    const wm1 = await s.sync()
    await s.close() // indexes the 50
    const s2 = await PackStore.open(dir, wm1)
    const more = Array.from({ length: 7 }, () => randomBytes(700))
    const moreCids = more.map(b => s2.put(b))
    const wm = await s2.sync() // a short tail: no index written
    await s2.flush()
    // A crash: the store is not closed, so the 7 are in no index file.
    const s3 = await PackStore.open(dir, wm)
    assert.equal(s3.indexStats.scannedRecords, 7)
    assert.equal(s3.indexStats.fromIndex, 1)
    for (let i = 0; i < more.length; i++) assert.deepEqual(Buffer.from(await s3.get(moreCids[i])), more[i])
    await s3.close()
    await s2.close().catch(() => {})
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

for (const [what, damage, reason] of [
  ['missing', (p: string) => rmSync(p), /\(missing\)/],
  ['truncated', (p: string) => truncateSync(p, 100), /\(truncated|length/],
  ['with a flipped fanout byte', (p: string) => flip(p, IDX_HEADER + 3), /bad checksum/],
  ['of an unknown version', (p: string) => { const b = readFileSync(p); b[8] = 9; writeFileSync(p, b) }, /unknown version 9/],
  ['one entry short', (p: string) => truncateSync(p, readFileSync(p).length - ENTRY), /length \d+ is not that of/]
] as const) {
  test(`an index file ${what} is rebuilt from its pack with a log line`, async () => {
    const dir = tmp()
    try {
      const { cids, blocks, wm } = await filled(dir, 60)
      damage(idx(dir, 1))
      const lines: string[] = []
      const s = await PackStore.open(dir, wm, { log: l => lines.push(l) })
      assert.equal(s.indexStats.rebuilt, 1)
      assert.match(lines.join('\n'), /^index: pack 1 rebuilt from its \d+ records/)
      assert.match(lines.join('\n'), reason)
      for (let i = 0; i < cids.length; i++) assert.deepEqual(Buffer.from(await s.get(cids[i])), blocks[i])
      await s.close()
      await verifyIndexFile(idx(dir, 1), 1) // the rebuilt file checks
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })
}

function flip (p: string, at: number): void {
  const b = readFileSync(p)
  b[at] ^= 0x40
  writeFileSync(p, b)
}

test('a damaged bucket is never used: its blocks read as missing until the rebuild from the pack, then whole', async () => {
  const dir = tmp()
  try {
    const { cids, blocks, wm } = await filled(dir, 30, 1 << 20)
    const p = idx(dir, 1)
    const bytes = readFileSync(p)
    const start = IDX_HEADER + 8 * (1 << bytes[9])
    // The first entry's length field: the header and fanout still check, the bucket does not.
    bytes[start + 36 + 3] ^= 1
    writeFileSync(p, bytes)
    const victim = cids.findIndex(c => Buffer.from(c.multihash.digest).equals(bytes.subarray(start, start + 32)))
    assert.ok(victim >= 0)
    const lines: string[] = []
    const s = await PackStore.open(dir, wm, { log: l => lines.push(l) })
    assert.equal(s.indexStats.rebuilt, 0, 'the header checks: used')
    await assert.rejects(s.get(cids[victim]), { code: 'ERR_BLOCK_NOT_FOUND' })
    await s.settled()
    assert.match(lines.join('\n'), /index: pack 1 rebuilt from its 30 records \(bucket \d+ fails its checksum\)/)
    for (let i = 0; i < cids.length; i++) assert.deepEqual(Buffer.from(await s.get(cids[i])), blocks[i])
    await s.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('an index that lies (valid checksums, a wrong offset) gives ERR_CID_MISMATCH, never another block\'s bytes', async () => {
  const dir = tmp()
  try {
    const { cids, wm } = await filled(dir, 10, 1 << 20)
    const f = await IdxFile.open(idx(dir, 1), 1, new BucketCache())
    const list = await f.entries()
    await f.close()
    // Every entry points at the next entry's record: re-encoded, so every checksum is right.
    const lying = new EntryList()
    for (let i = 0; i < list.count; i++) {
      const e = list.at(i)
      const other = list.at((i + 1) % list.count)
      lying.push(e.digest, e.code, other.offset, other.length)
    }
    writeFileSync(idx(dir, 1), encodeIndex({ pack: 1, from: 9, to: wm.offset, damage: null }, lying))
    const s = await PackStore.open(dir, wm)
    for (const c of cids) await assert.rejects(s.get(c), { code: 'ERR_CID_MISMATCH' })
    await s.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('an index file that covers more than the last commit is cut back to its watermark', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null)
    const kept = Array.from({ length: 5 }, () => randomBytes(300))
    const keptCids = kept.map(b => s.put(b))
    const wm = await s.sync()
    const lost = s.put(randomBytes(300))
    await s.flush()
    await s.close() // the index covers the uncommitted block too
    const lines: string[] = []
    const s2 = await PackStore.open(dir, wm, { log: l => lines.push(l) })
    assert.match(lines.join('\n'), new RegExp(`index: pack 1 cut to byte ${wm.offset}`))
    assert.equal(s2.indexStats.scannedRecords, 0)
    assert.equal(s2.has(lost), false)
    for (let i = 0; i < kept.length; i++) assert.deepEqual(Buffer.from(await s2.get(keptCids[i])), kept[i])
    await s2.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('index files of packs past the watermark, and unfinished ones, are removed with their packs', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null, { packLimit: 16 * 1024 })
    s.put(randomBytes(10_000))
    const wm = await s.sync()
    for (let i = 0; i < 6; i++) s.put(randomBytes(10_000))
    await s.flush()
    await s.close()
    assert.ok(existsSync(idx(dir, 3)))
    writeFileSync(idx(dir, 1) + '.tmp', 'half')
    const s2 = await PackStore.open(dir, wm)
    await s2.close()
    assert.deepEqual(readdirSync(dir).sort(), ['00000001.idx', '00000001.pack'])
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('after a crash (no close), sealed packs open from the index written at their rotation, and a long tail from the one its sync wrote', async () => {
  const dir = tmp()
  try {
    // Many full packs and a short current one: only the current pack's tail is read.
    const s = await PackStore.open(dir, null, { packLimit: 64 * 1024 })
    const small = Array.from({ length: 2000 }, () => randomBytes(100))
    const smallCids = small.map(b => s.put(b))
    const wm = await s.sync()
    await s.flush()
    const s2 = await PackStore.open(dir, wm) // s is never closed: a crash
    assert.ok(wm.pack >= 3)
    assert.equal(s2.indexStats.fromIndex, wm.pack - 1, 'every full pack from its index')
    assert.ok(s2.indexStats.scannedRecords > 0 && s2.indexStats.scannedRecords < 64 * 1024 / 100)
    for (const i of [0, 999, 1999]) assert.deepEqual(Buffer.from(await s2.get(smallCids[i])), small[i])
    await s2.close()
    await s.close()

    // One pack with a tail of 4,096+ records at a sync: the sync writes its index.
    const dir2 = join(dir, 'one')
    const t = await PackStore.open(dir2, null)
    const blocks = Array.from({ length: 5000 }, () => randomBytes(100))
    const cids = blocks.map(b => t.put(b))
    const wm2 = await t.sync()
    await t.flush()
    await t.indexesWritten() // after the sync returned: a crash before it scans the tail instead
    const t2 = await PackStore.open(dir2, wm2)
    assert.equal(t2.indexStats.scannedRecords, 0)
    for (const i of [0, 4999]) assert.deepEqual(Buffer.from(await t2.get(cids[i])), blocks[i])
    await t2.close()
    await t.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('sorted() merges an index file\'s entries (in order) with new ones, and sorts everything when that order is not true', () => {
  const entry = (): Buffer => {
    const e = Buffer.alloc(ENTRY)
    randomBytes(32).copy(e, 0)
    if (Math.random() < 0.05) e.fill(7, 0, 6) // equal 48-bit prefixes: the full compare decides
    e[32] = 0x1e
    e.writeUInt32BE(100, 36)
    return e
  }
  const cmp = (a: Buffer, b: Buffer): number => Buffer.compare(a.subarray(0, 33), b.subarray(0, 33))
  const split = (b: Buffer): Buffer[] => Array.from({ length: b.length / ENTRY }, (_, i) => b.subarray(i * ENTRY, (i + 1) * ENTRY))
  for (const [head, tail] of [[0, 50], [300, 0], [300, 40], [5, 900], [2000, 1]]) {
    const old = Array.from({ length: head }, entry).sort(cmp)
    const added = Array.from({ length: tail }, entry)
    const want = [...old, ...added].sort(cmp)
    const list = new EntryList()
    list.pushRaw(Buffer.concat(old))
    list.inOrder = list.count
    list.pushRaw(Buffer.concat(added))
    assert.deepEqual(split(list.sorted()), want, `${head} in order + ${tail}`)
    // A claim of order that is false (a bug elsewhere) must not make a wrongly ordered index.
    const lying = new EntryList()
    lying.pushRaw(Buffer.concat([...old].reverse()))
    lying.inOrder = lying.count
    lying.pushRaw(Buffer.concat(added))
    assert.deepEqual(split(lying.sorted()), want, `${head} claimed in order, reversed, + ${tail}`)
  }
})
