// Native reads under a merge: alpha holds a file open for reading and reads it, so its blocks are
// answered natively; beta rewrites parts of it; once the merge is swapped in under alpha's mount
// (Tree.adopt updates the open file's node in place), reads through the handle alpha held all
// along return beta's bytes, not the blocks the native table knew before the swap.
// Real processes on 127.0.0.1: a hub and two daemons of one identity (test/sync helpers).
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Cluster, until, type Device } from '../sync/helpers-devices.js'
import { bindingName, readAt } from '../helpers/mount.js'

const B = 128 * 1024
const skip = bindingName() === 'fuse2' ? 'native reads are the libfuse 3 binding\'s' : false

describe('native reads while a merge is swapped in under an open reader', { skip, timeout: 180_000 }, () => {
  let c: Cluster | undefined
  let devs: Device[] = []

  before(async () => {
    process.env.SPACE_DEBUG_NATIVE_READS = '1'
    c = await Cluster.start('space-nread-merge', ['alpha', 'beta'])
    devs = c.devs
  })

  after(async () => { await c?.stop() })

  it('reads through the handle alpha held across the swap return beta\'s bytes', async () => {
    const [A, Bdev] = devs
    const before = randomBytes(16 * B + 100)
    fs.writeFileSync(A.path('data.bin'), before)
    await until('the file in beta\'s mount', () => { try { return fs.readFileSync(Bdev.path('data.bin')).equals(before) } catch { return false } }, 30_000)
    const fd = fs.openSync(A.path('data.bin'), fs.constants.O_RDONLY | fs.constants.O_DIRECT)
    try {
      // Every 4 KiB page, twice: the first pass checks and puts each block, the second is native.
      for (let pass = 0; pass < 2; pass++) {
        for (let p = 0; p < before.length; p += 4096) assert.ok(readAt(fd, p, 4096).equals(before.subarray(p, p + 4096)), `alpha before, page at ${p}`)
      }
      // Beta rewrites a page in every other block (and nothing else).
      const after = Buffer.from(before)
      const w = fs.openSync(Bdev.path('data.bin'), 'r+')
      for (let i = 0; i < 16; i += 2) {
        const page = randomBytes(4096)
        page.copy(after, i * B + 8192)
        fs.writeSync(w, page, 0, 4096, i * B + 8192)
      }
      fs.fsyncSync(w)
      fs.closeSync(w)
      // A fresh open on alpha sees the merge (its lookup loads the swapped-in folder, which
      // updates the open node); then the held handle must too.
      await until('beta\'s bytes in alpha\'s mount', () => { try { return fs.readFileSync(A.path('data.bin')).equals(after) } catch { return false } }, 60_000)
      for (let p = 0; p < after.length; p += 4096) {
        assert.ok(readAt(fd, p, 4096).equals(after.subarray(p, p + 4096)), `alpha's held handle after the merge, page at ${p} (block ${Math.floor(p / B)})`)
      }
    } finally {
      fs.closeSync(fd)
    }
    const log = await A.stop()
    const line = /native reads: (\d+) answered natively/.exec(log)
    assert.ok(line != null && Number(line[1]) >= 16 * 32, `alpha answered the second pass natively: ${line?.[0] ?? 'no stats line'}`)
  })
})
