import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'node:fs/promises'
import { randomBytes, createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { create as createDigest } from 'multiformats/hashes/digest'
import { PackStore } from '../../src/store/pack-store.js'
import { Journal } from '../../src/store/journal.js'
import { cidOf, CID } from '../../src/store/cid.js'
import { seal, open as openSealed, SealType } from '../../src/crypto/index.js'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'space-pack-'))

test('blocks are content-addressed, deduplicated and survive reopen up to the watermark', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null)
    const a = randomBytes(1000)
    const cidA = s.put(a)
    assert.equal(cidA.toString(), cidOf(a).toString())
    assert.equal(cidA.version, 1)
    assert.equal(s.put(a).toString(), cidA.toString())
    assert.deepEqual(Buffer.from(await s.get(cidA)), a, 'readable before flush')
    const wm = await s.sync()
    const b = randomBytes(5000)
    const cidB = s.put(b)
    await s.flush()
    await s.close()

    // Reopen at the watermark: `b` was written after it and is cut off.
    const s2 = await PackStore.open(dir, wm)
    assert.deepEqual(Buffer.from(await s2.get(cidA)), a)
    assert.equal(s2.has(cidB), false)
    await assert.rejects(s2.get(cidB), { code: 'ERR_BLOCK_NOT_FOUND' })
    await s2.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('packs rotate at their size limit and reopen', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null, { packLimit: 64 * 1024 })
    const blocks = Array.from({ length: 40 }, () => randomBytes(10_000))
    const cids = blocks.map(b => s.put(b))
    const wm = await s.sync()
    await s.close()
    assert.ok(readdirSync(dir).length >= 5, 'several packs')
    for (const f of readdirSync(dir)) assert.ok(statSync(join(dir, f)).size <= 64 * 1024 + 10_100)
    const s2 = await PackStore.open(dir, wm)
    for (let i = 0; i < blocks.length; i++) assert.deepEqual(Buffer.from(await s2.get(cids[i])), blocks[i])
    await s2.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a pack shorter than its committed length is reported, not silently used', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null)
    s.put(randomBytes(1000))
    const wm = await s.sync()
    await s.close()
    await assert.rejects(PackStore.open(dir, { pack: wm.pack, offset: wm.offset + 10 }), { code: 'ERR_STORE_CORRUPT' })
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('journal keeps complete records and cuts a torn tail', async () => {
  const dir = tmp()
  try {
    const path = join(dir, 'journal')
    const { journal } = await Journal.open(path)
    await journal.append(Buffer.from('one'))
    await journal.append(Buffer.from('two'))
    await journal.close()
    appendFileSync(path, Buffer.from([0, 0, 0, 50, 1, 2, 3, 4, 9, 9])) // a record cut short by a crash
    const again = await Journal.open(path)
    assert.deepEqual(again.records.map(r => r.toString()), ['one', 'two'])
    assert.equal(again.cutBytes, 10)
    await again.journal.append(Buffer.from('three'))
    await again.journal.close()
    assert.deepEqual((await Journal.read(path)).map(r => r.toString()), ['one', 'two', 'three'])
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('locate() names the on-disk place of flushed blocks: large ones on an O_DIRECT handle, in-memory ones none', async () => {
  const dir = mkdtempSync(join(process.env.SPACE_TEST_DISK_TMP ?? '/var/tmp', 'space-pack-'))
  try {
    for (const directIo of [true, false]) {
      const s = await PackStore.open(join(dir, String(directIo)), null, { directIo })
      const big = randomBytes(128 * 1024 + 30)
      const small = randomBytes(3000)
      const cidBig = s.put(big)
      const cidSmall = s.put(small)
      assert.equal(s.locate(cidBig), null, 'not on disk before the flush')
      await s.flush()
      for (const [cid, bytes, direct] of [[cidBig, big, directIo], [cidSmall, small, false]] as const) {
        const at = s.locate(cid)
        assert.ok(at != null)
        assert.equal(at.length, bytes.length)
        assert.equal(at.direct === true, direct, `direct read handle for ${bytes.length} bytes (directIo ${directIo})`)
        // The bytes at that place, read back through a descriptor of our own, are the block.
        const pack = readdirSync(join(dir, String(directIo))).find(n => n.endsWith('.pack'))!
        const fh = await open(join(dir, String(directIo), pack))
        const back = Buffer.alloc(at.length)
        await fh.read(back, 0, at.length, at.position)
        await fh.close()
        assert.ok(back.equals(bytes))
      }
      await s.close()
    }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

/** Writes the sealed bytes of `from` over those of `over` in the pack, keeping the record headers. */
async function substitute (dir: string, from: Uint8Array, over: Uint8Array): Promise<void> {
  const pack = join(dir, readdirSync(dir).find(n => n.endsWith('.pack'))!)
  const bytes = readFileSync(pack)
  const at = bytes.indexOf(over)
  assert.ok(at > 0 && from.length === over.length)
  bytes.set(from, at)
  writeFileSync(pack, bytes)
}

test('a record whose bytes were replaced by an older sealed version of the same length is refused by get()', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null)
    const key = randomBytes(32)
    const pos = { type: SealType.Block, objectId: randomBytes(16), index: 0 }
    const older = seal(key, pos, randomBytes(128 * 1024))
    const current = seal(key, pos, randomBytes(128 * 1024))
    const cidOlder = s.put(older)
    const cidCurrent = s.put(current)
    const wm = await s.sync()
    await s.close()
    await substitute(dir, older, current)

    const s2 = await PackStore.open(dir, wm)
    // Both authenticate under the file's key and position: only the CID tells them apart.
    assert.ok(openSealed(key, pos, older).length > 0)
    await assert.rejects(s2.get(cidCurrent), { code: 'ERR_CID_MISMATCH', message: new RegExp(`block ${cidCurrent.toString()} .*does not match its CID`) })
    assert.ok(Buffer.from(await s2.get(cidOlder)).equals(older), 'the record that holds its own bytes still reads')
    await s2.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('blocks are checked against sha2-256 CIDs of old stores too, and CIDs of other hash functions are refused', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null)
    const sha = (b: Uint8Array): CID => CID.createV1(0x55, createDigest(0x12, createHash('sha256').update(b).digest()))
    const a = randomBytes(3000)
    const b = randomBytes(3000)
    const cidA = s.putWithCid(sha(a), a)
    const cidB = s.putWithCid(sha(b), b)
    const c = randomBytes(100)
    const cidC = s.putWithCid(CID.createV1(0x55, createDigest(0x16, createHash('sha3-256').update(c).digest())), c)
    const wm = await s.sync()
    await s.close()
    await substitute(dir, a, b)
    const s2 = await PackStore.open(dir, wm)
    assert.ok(Buffer.from(await s2.get(cidA)).equals(a))
    await assert.rejects(s2.get(cidB), { code: 'ERR_CID_MISMATCH' })
    await assert.rejects(s2.get(cidC), { code: 'ERR_CID_UNSUPPORTED', message: /hash function 0x16/ })
    await s2.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a sync whose fdatasync failed does not count as synced: the next check still covers its bytes', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null)
    s.put(randomBytes(1000))
    const first = await s.syncStart()
    await first.durable
    const pack = (s as unknown as { files: { packs: Map<number, { fh: { datasync: () => Promise<void> } }> } }).files.packs.get(first.wm.pack)!
    const real = pack.fh.datasync.bind(pack.fh)
    let fail = true
    pack.fh.datasync = async () => {
      if (fail) { fail = false; throw Object.assign(new Error('EIO'), { code: 'EIO' }) }
      await real()
    }
    s.put(randomBytes(2000))
    const failed = await s.syncStart()
    assert.equal(failed.check?.from, first.wm.offset)
    await assert.rejects(failed.durable, { code: 'ERR_IO' })
    s.put(randomBytes(3000))
    const next = await s.syncStart()
    assert.equal(next.check?.from, first.wm.offset, 'from the last sync that reached the disk, not from the failed one')
    const all = readFileSync(join(dir, '00000001.pack')).subarray(first.wm.offset, next.wm.offset)
    assert.equal(next.check?.crc, crc32(all), 'the CRC covers the failed sync\'s bytes too')
    await next.durable
    s.put(randomBytes(500))
    const after = await s.syncStart()
    assert.equal(after.check?.from, next.wm.offset, 'a sync that succeeded moves the start')
    await after.durable
    await s.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('putFresh stores bytes without a dedupe probe: readable before the flush, after it and after a reopen', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null)
    const a = seal(randomBytes(32), { type: SealType.Block, objectId: randomBytes(16), index: 0 }, randomBytes(5000))
    const cid = s.putFresh(cidOf(a), a)
    assert.deepEqual(Buffer.from(await s.get(cid)), a, 'before the flush')
    const wm = await s.sync()
    assert.deepEqual(Buffer.from(await s.get(cid)), a, 'after it')
    await s.close()
    const s2 = await PackStore.open(dir, wm)
    assert.deepEqual(Buffer.from(await s2.get(cid)), a, 'after a reopen')
    await s2.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a listener of appended blocks that throws is dropped and leaves the pack whole: later appends overwrite nothing', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null)
    let calls = 0
    s.onAppended(() => { if (++calls === 2) throw new RangeError('Array buffer allocation failed') })
    const blocks = Array.from({ length: 4 }, () => randomBytes(3000))
    const cids = blocks.map(b => s.put(b))
    await s.flush()
    const more = randomBytes(7000)
    const cidMore = s.put(more)
    const wm = await s.sync()
    await s.close()
    assert.equal(calls, 2, 'not called again once it threw')
    const s2 = await PackStore.open(dir, wm)
    for (let i = 0; i < blocks.length; i++) assert.deepEqual(Buffer.from(await s2.get(cids[i])), blocks[i])
    assert.deepEqual(Buffer.from(await s2.get(cidMore)), more)
    await s2.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
