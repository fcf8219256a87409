// kill -9 in the middle of a transfer, on each side: a device while it uploads a large file, a
// device while it fetches one (during the merge, and while reading it), and the hub while blocks
// stream in. A proxy holds the transfer so the kill lands mid-way every run; after a restart
// everything resumes by itself and both mounts end with the whole file.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync, existsSync, openSync, writeSync, fsyncSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { Hub, HubProxy, devicesOf, cleanupDevices, until, read, tempDirs, removeDirs, type Device, type Dirs } from './helpers-devices.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const shaOf = (p: string): string | null => existsSync(p) ? sha(readFileSync(p)) : null
const MiB = 1024 * 1024

describe('kill -9 mid-transfer', { timeout: 150_000 }, () => {
  let hubDirs: Dirs
  let hub: Hub
  const proxies: HubProxy[] = []
  let devs: Device[] = []

  before(async () => {
    hubDirs = tempDirs('space-crash-hub-')
    hub = new Hub(join(hubDirs.base, 'hub'))
    await hub.start()
    for (let i = 0; i < 2; i++) {
      const p = new HubProxy(() => hub.port)
      await p.start()
      proxies.push(p)
    }
    devs = await devicesOf(['alpha', 'beta'], i => proxies[i].url)
    for (const d of devs) await d.start()
    writeFileSync(devs[0].path('warm.txt'), 'up\n')
    await until('a first file across', () => read(devs[1].path('warm.txt')) === 'up\n')
  })

  after(async () => {
    for (const p of proxies) await p.release().catch(() => {})
    await cleanupDevices(devs)
    for (const p of proxies) await p.stop()
    await hub?.stop()
    if (hubDirs != null) removeDirs(hubDirs)
  })

  it('a device killed while it uploads a large file pushes it after the restart, and the other device gets it whole', async () => {
    const [A, B] = devs
    const big = randomBytes(24 * MiB)
    await proxies[0].hold('PUT', '/sync/v1/blocks', 1) // one batch reaches the hub, the next hangs
    // Made durable (fsync commits) before the kill: a kill -9 loses writes not yet committed, and
    // the upload can reach the held batch before the commit after the last write.
    const fd = openSync(A.path('upload.bin'), 'w')
    writeSync(fd, big)
    fsyncSync(fd)
    closeSync(fd)
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
    await until('alpha has beta\'s file', () => read(A.path('beta-during-crash.txt')) === 'beta wrote this while the hub was down\n', 20_000)
    for (const d of devs) await until(`${d.name}'s queue empty`, () => { const q = d.queue()!; return q.pushed === q.seq })
  })
})
