import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs'
import { open as openFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { PackStore } from '../../src/store/pack-store.js'
import { DirectAppender } from '../../src/store/direct-append.js'
import { copyBytes, nativeCopy } from '../../src/crypto/copy.js'
import { CID } from '../../src/store/cid.js'

// On disk, not tmpfs: O_DIRECT is the point here. /var/tmp is ext4 on this machine kind.
const DISK_TMP = process.env.SPACE_TEST_DISK_TMP ?? '/var/tmp'
const tmp = (): string => mkdtempSync(join(DISK_TMP, 'space-direct-'))
const BLOCK = 131072 + 30

test('direct appends at any offset keep the bytes already there and the file readable', async () => {
  const dir = tmp()
  try {
    const path = join(dir, 'f')
    const head = randomBytes(1000) // the file's logical end is not page-aligned
    writeFileSync(path, head)
    const fh = await openFile(path, 'r+')
    const d = await DirectAppender.open(path, fh)
    assert.ok(d != null, `${DISK_TMP} must take O_DIRECT (set SPACE_TEST_DISK_TMP to a disk-backed dir)`)
    const parts = [randomBytes(37), randomBytes(BLOCK), randomBytes(5000)]
    let end = head.length
    const want = [head]
    for (let round = 0; round < 3; round++) {
      await d.append(end, parts) // the second and later rounds reuse the kept tail page
      want.push(...parts)
      end += parts.reduce((n, p) => n + p.length, 0)
    }
    // A buffered write in between: the appender reads the tail back from the file.
    const mid = randomBytes(300)
    await fh.write(mid, 0, mid.length, end)
    d.invalidate()
    want.push(mid)
    end += mid.length
    await d.append(end, [parts[1]])
    want.push(parts[1])
    end += parts[1].length
    await d.close()
    const size = statSync(path).size
    assert.ok(size >= end && size < end + 4096 && size % 4096 === 0, `file runs to the next page (${size} for ${end})`)
    await fh.truncate(end)
    await fh.close()
    assert.deepEqual(readFileSync(path), Buffer.concat(want))
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a pack store writes big batches directly: rotation, reopen and a crash keep every committed block', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null, { packLimit: 6 * 1024 * 1024 })
    const blocks = new Map<string, Buffer>()
    const put = (b: Buffer): void => { blocks.set(s.put(b).toString(), b) }
    for (let i = 0; i < 5; i++) put(randomBytes(100 + i * 777)) // small: buffered
    await s.sync()
    for (let i = 0; i < 60; i++) put(randomBytes(BLOCK)) // ~7.5 MiB: direct, across a pack switch
    put(randomBytes(999))
    for (let i = 0; i < 20; i++) put(randomBytes(BLOCK))
    const wm = await s.sync()
    assert.ok(wm.pack >= 2, 'rotated')
    // Written after the last commit and then "killed": never closed, never synced.
    const lost = randomBytes(BLOCK)
    for (let i = 0; i < 12; i++) s.put(i === 0 ? lost : randomBytes(BLOCK))
    await s.flush()

    const s2 = await PackStore.open(dir, wm)
    for (const [cid, b] of blocks) assert.deepEqual(Buffer.from(await s2.get(CID.parse(cid))), b, cid)
    assert.equal(statSync(join(dir, `${String(wm.pack).padStart(8, '0')}.pack`)).size, wm.offset, 'cut back to the watermark')
    // Closed packs were cut to their logical end, so their scan found no stray zeros.
    await s2.close()
    await s.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('with direct I/O off (or refused by the file system) big batches go through the page cache', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null, { directIo: false })
    const blocks = Array.from({ length: 40 }, () => randomBytes(BLOCK))
    const cids = blocks.map(b => s.put(b))
    const wm = await s.sync()
    await s.close()
    assert.equal(statSync(join(dir, '00000001.pack')).size, wm.offset)
    const s2 = await PackStore.open(dir, wm)
    for (let i = 0; i < blocks.length; i++) assert.deepEqual(Buffer.from(await s2.get(cids[i])), blocks[i])
    await s2.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('buffered appends of small records, records larger than the staging buffer and shared-memory bodies read back', async () => {
  const dir = tmp()
  try {
    const s = await PackStore.open(dir, null, { directIo: false })
    const sizes = [100, 5000, 300_000, 7, 131_597, 131_597, 600_000, 4125, 4125]
    const blocks = sizes.map(n => randomBytes(n))
    const cids = blocks.map((b, i) => {
      if (i % 3 !== 1) return s.put(b)
      const shared = Buffer.from(new SharedArrayBuffer(b.length)) // as the sealing slots hand them over
      b.copy(shared)
      return s.put(shared)
    })
    const wm = await s.sync()
    await s.close()
    const s2 = await PackStore.open(dir, wm)
    for (let i = 0; i < blocks.length; i++) assert.deepEqual(Buffer.from(await s2.get(cids[i])), blocks[i], `record ${i} (${sizes[i]} bytes)`)
    await s2.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('copyBytes copies between shared and unshared memory and checks bounds', () => {
  assert.ok(nativeCopy, 'native/build/Release/space_mem.node is built')
  const shared = Buffer.from(new SharedArrayBuffer(1 << 20))
  const src = randomBytes(300_000)
  assert.equal(copyBytes(shared, 1000, src, 7, 200_000), 200_000)
  assert.deepEqual(shared.subarray(1000, 201_000), src.subarray(7, 200_007))
  const back = Buffer.alloc(200_000)
  copyBytes(back, 0, shared, 1000, 200_000)
  assert.deepEqual(back.subarray(0, 200_000), src.subarray(7, 200_007))
  assert.throws(() => copyBytes(back, 1, shared, 0, 200_000), RangeError)
  assert.throws(() => copyBytes(back, 0, shared, (1 << 20) - 10, 11), RangeError)
  assert.throws(() => copyBytes(back, -1, shared, 0, 1), RangeError)
})
