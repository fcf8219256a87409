// The path A -> hub -> B without waits, with real processes (a hub and two daemons with their
// own mounts): A's blocks go to the hub as they reach its pack, before the commit that names them
// is published, and B fetches the blocks an entry lists as soon as it accepts the entry, while it
// merges, not after a scan of the merged tree. Seen in the daemons' stage trace
// (SPACE_SYNC_TRACE=1, docs/performance.md "Replication"); the bytes are checked in B's mount.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs'
import { Cluster, until } from './helpers-devices.js'

describe('replication pipeline', { timeout: 180_000 }, () => {
  let c: Cluster
  const traced = process.env.SPACE_SYNC_TRACE

  before(async () => {
    process.env.SPACE_SYNC_TRACE = '1' // the daemons' environment (the hub's is cleaned)
    try {
      c = await Cluster.start('space-pipe', ['alpha', 'beta'])
    } finally {
      if (traced === undefined) delete process.env.SPACE_SYNC_TRACE
      else process.env.SPACE_SYNC_TRACE = traced
    }
  })

  after(async () => { await c?.stop() })

  it('a file\'s blocks go up early from A and are fetched by B with its entry, and B\'s mount reads it back whole', async () => {
    const [A, B] = c.devs
    // A warm-up change, so B already follows A's log when the file's entries come (a device
    // catching up on a log it never saw leaves that to the background download).
    const { writeFileSync } = await import('node:fs')
    writeFileSync(A.path('warm.txt'), 'warm\n')
    await until('warm-up in beta\'s mount', () => { try { return readFileSync(B.path('warm.txt'), 'utf8') === 'warm\n' } catch { return false } })
    // 12 MiB: the pack writer hands blocks to the file (and so to the uplink) 4 MiB at a time,
    // so a second of this stream holds blocks appended before its commit.
    const bytes = randomBytes(12 * 1024 * 1024)
    const publishedBefore = [...A.log.matchAll(/published entry (\d+)/g)].length
    const fd = openSync(A.path('big.bin'), 'w')
    // A steady stream for ~1.5 s (as a copy or a download writes), so commits come once a second
    // and the blocks sealed between them have time to go up first.
    for (let at = 0; at < bytes.length; at += 128 * 1024) {
      writeSync(fd, bytes, at, 128 * 1024)
      await new Promise(resolve => setTimeout(resolve, 15))
    }
    closeSync(fd)
    // About a commit a second while A writes, not one per round trip: B's entries that only merged
    // A's are not merged back (each such merge committed A's writes so far, which B echoed again).
    const published = [...A.log.matchAll(/published entry (\d+)/g)].length - publishedBefore
    assert.ok(published <= 8, `A published ${published} entries while it wrote for ~1.5 s`)
    await until('big.bin whole in beta\'s mount', () => { try { return statSync(B.path('big.bin')).size === bytes.length } catch { return false } }, 60_000)
    assert.equal(createHash('sha256').update(readFileSync(B.path('big.bin'))).digest('hex'), createHash('sha256').update(bytes).digest('hex'))
    // A: its pushes found at least a quarter of the file's 96 blocks already sent.
    const early = [...A.log.matchAll(/push entries \d+\.\.\d+: (\d+) cids, (\d+) sent early/g)].map(m => Number(m[2]))
    assert.ok(early.reduce((n, x) => n + x, 0) >= 24, `blocks sent early by A: ${early.join(', ')}\n${A.log}`)
    // B: the entries' listed blocks (the 48 file blocks at least) were asked for as the entries
    // were accepted (what the reads above had not fetched first is fetched there).
    const fetched = (): number[] => [...B.log.matchAll(/prefetch: (\d+) blocks in/g)].map(m => Number(m[1]))
    await until('beta fetched the listed blocks', () => fetched().reduce((n, x) => n + x, 0) >= 48, 20_000).catch(() => {})
    assert.ok(fetched().reduce((n, x) => n + x, 0) >= 48, `blocks B fetched with their entries: ${fetched().join(', ')}\n${B.log}`)
    const listed = [...B.log.matchAll(/prefetch entries [\d,]+: (\d+) listed blocks/g)].map(m => Number(m[1]))
    assert.ok(listed.reduce((n, x) => n + x, 0) >= 48, `listed blocks of B's accepted entries: ${listed.join(', ')}`)
  })
})
