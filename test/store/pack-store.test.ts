import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, appendFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { PackStore } from '../../src/store/pack-store.js'
import { Journal } from '../../src/store/journal.js'
import { cidOf } from '../../src/store/cid.js'

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
    await assert.rejects(PackStore.open(dir, { pack: wm.pack, offset: wm.offset + 10 }), { code: 'ERR_CORRUPT_STORE' })
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
