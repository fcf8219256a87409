// kill -9 in the middle of a transfer, on each side: a device while it uploads a large file, a
// device while it fetches one (during the merge, and while reading it), and the hub while blocks
// stream in. A proxy holds the transfer so the kill lands mid-way every run; after a restart
// everything resumes by itself and both mounts end with the whole file.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs'
import { Cluster, until, read, type Hub, type HubProxy, type Device } from './helpers-devices.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const shaOf = (p: string): string | null => existsSync(p) ? sha(readFileSync(p)) : null
const MiB = 1024 * 1024

/** Writes `data` to `p` and fsyncs it (a commit of the drive). */
function writeDurably (p: string, data: Uint8Array): void {
  const fd = openSync(p, 'w')
  try {
    for (let o = 0; o < data.length;) o += writeSync(fd, data, o)
    fsyncSync(fd)
  } finally { closeSync(fd) }
}

describe('kill -9 mid-transfer', { timeout: 150_000 }, () => {
  let c: Cluster
  let hub: Hub
  let proxies: HubProxy[] = []
  let devs: Device[] = []

  const prefetch = process.env.SPACE_SYNC_PREFETCH
  before(async () => {
    // Blocks read on demand (the second test kills beta mid-read): none fetched ahead with their
    // entries (the daemons inherit this environment).
    process.env.SPACE_SYNC_PREFETCH = '0'
    c = await Cluster.start('space-crash', ['alpha', 'beta'], { proxies: true })
    ;({ hub, proxies, devs } = c)
    writeFileSync(devs[0].path('warm.txt'), 'up\n')
    await until('a first file across', () => read(devs[1].path('warm.txt')) === 'up\n')
  })

  after(async () => {
    if (prefetch === undefined) delete process.env.SPACE_SYNC_PREFETCH
    else process.env.SPACE_SYNC_PREFETCH = prefetch
    await c?.stop()
  })

  it('a device killed while it uploads a large file pushes it after the restart, and the other device gets it whole', async () => {
    const [A, B] = devs
    const big = randomBytes(24 * MiB)
    await proxies[0].hold('PUT', '/sync/v1/blocks', 1) // one batch reaches the hub, the next hangs
    // fsync'd: a commit made while the file was still being written may be the one whose upload
    // is held, and kill -9 may only lose what was never made durable.
    writeDurably(A.path('upload.bin'), big)
    await until('alpha mid-upload', () => proxies[0].held > 0)
    const log = await A.kill()
    assert.doesNotMatch(log, /pushed/) // it really was cut off before the entry
    await proxies[0].release()
    await A.start()
    assert.equal(shaOf(A.path('upload.bin')), sha(big), 'alpha still has the file it wrote before the kill')
    await until('beta has the whole upload', () => shaOf(B.path('upload.bin')) === sha(big), 40_000)
    await until('alpha\'s queue empty', () => { const q = A.queue()!; return q.pushed === q.seq })
  })

  it('a device killed while it fetches (merging, then reading a large file) finishes after the restart', async () => {
    const [A, B] = devs
    const big = randomBytes(16 * MiB)
    await proxies[1].hold('POST', '/sync/v1/blocks/fetch')
    writeFileSync(A.path('download.bin'), big)
    writeFileSync(A.path('small.txt'), 'small and new\n')
    await until('beta fetching alpha\'s new tree', () => proxies[1].held > 0, 20_000)
    await B.kill()
    await proxies[1].release()
    await B.start()
    await until('beta merged alpha\'s entry after its restart', () => read(B.path('small.txt')) === 'small and new\n', 20_000)

    // Now the file's blocks: beta reads them on demand; kill it mid-read.
    await proxies[1].hold('POST', '/sync/v1/blocks/fetch', 2)
    const reader = spawn('sha256sum', [B.path('download.bin')], { stdio: 'ignore' })
    const readerDone = new Promise(resolve => reader.once('exit', resolve))
    await until('beta mid-read', () => proxies[1].held > 0, 20_000)
    await B.kill()
    await readerDone
    await proxies[1].release()
    await B.start()
    assert.equal(shaOf(B.path('download.bin')), sha(big))
    assert.equal(shaOf(A.path('download.bin')), sha(big))
  })

  it('the hub killed while blocks stream in: the devices resume on their own once it is back, nothing lost', async () => {
    const [A, B] = devs
    const big = randomBytes(32 * MiB)
    await proxies[0].hold('PUT', '/sync/v1/blocks', 2)
    writeFileSync(A.path('through-crash.bin'), big)
    writeFileSync(B.path('beta-during-crash.txt'), 'beta wrote this while the hub was down\n')
    await until('alpha mid-upload', () => proxies[0].held > 0)
    await hub.kill()
    await proxies[0].release() // the held batch meets a dead hub
    await new Promise(resolve => setTimeout(resolve, 1500))
    await hub.start()
    await until('beta has the file alpha was uploading', () => shaOf(B.path('through-crash.bin')) === sha(big), 40_000)
    await until('alpha has beta\'s file', () => read(A.path('beta-during-crash.txt')) === 'beta wrote this while the hub was down\n', 40_000) // reconnects back off up to 10 s
    for (const d of devs) await until(`${d.name}'s queue empty`, () => { const q = d.queue()!; return q.pushed === q.seq })
  })
})
