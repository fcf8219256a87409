// Offline hours, compressed: the hub is stopped while both devices keep working (alpha makes 200
// changes, beta a few), then comes back on the same port and data dir. Each device's queue and
// pull loop must resume by themselves, and both mounts end with every change of both devices.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdirSync, renameSync, unlinkSync, statSync } from 'node:fs'
import { Cluster, until, read, treeOf, type Hub, type HubProxy, type Device } from './helpers-devices.js'

describe('devices that work while the hub is away', { timeout: 120_000 }, () => {
  let c: Cluster
  let hub: Hub
  let proxies: HubProxy[] = []
  let devs: Device[] = []

  before(async () => {
    c = await Cluster.start('space-robust', ['alpha', 'beta'], { proxies: true })
    ;({ hub, proxies, devs } = c)
  })

  after(async () => { await c?.stop() })

  it('alpha\'s 200 changes made offline reach beta after the hub is back, and beta\'s offline changes reach alpha', async () => {
    const [A, B] = devs
    writeFileSync(A.path('before.txt'), 'written while online\n')
    mkdirSync(A.path('gone'))
    for (let i = 0; i < 10; i++) writeFileSync(A.path('gone', `old-${i}.txt`), `old ${i}\n`)
    await until('the first files in beta\'s mount', () => read(B.path('gone', 'old-9.txt')) === 'old 9\n' && read(B.path('before.txt')) != null)

    await hub.stop()
    // 200 changes on alpha, in separate commits where the timing allows: 150 new files in
    // folders, 20 overwrites, 10 renames, 10 deletes, 10 in one big-ish file.
    let changes = 0
    for (let f = 0; f < 5; f++) mkdirSync(A.path(`batch-${f}`))
    for (let i = 0; i < 150; i++) { writeFileSync(A.path(`batch-${i % 5}`, `file-${i}.txt`), `offline ${i} ${'x'.repeat(i * 37)}\n`); changes++ }
    for (let i = 0; i < 20; i++) { writeFileSync(A.path(`batch-${i % 5}`, `file-${i}.txt`), `rewritten ${i}\n`); changes++ }
    for (let i = 0; i < 10; i++) { renameSync(A.path('gone', `old-${i}.txt`), A.path(`batch-0`, `moved-${i}.txt`)); changes++ }
    for (let i = 20; i < 30; i++) { unlinkSync(A.path(`batch-${i % 5}`, `file-${i}.txt`)); changes++ }
    for (let i = 0; i < 10; i++) { writeFileSync(A.path('big.bin'), Buffer.alloc(1024 * 1024 + i * 4096, i + 1)); changes++ }
    assert.equal(changes, 200)
    writeFileSync(B.path('from-beta-offline.txt'), 'beta worked offline too\n')
    mkdirSync(B.path('beta-dir'))
    writeFileSync(B.path('beta-dir', 'note.md'), '# beta\n')
    // Both daemons keep committing and queueing while the hub is away.
    await until('alpha\'s offline commits queued as entries', () => { const q = A.queue(); return q != null && q.seq > q.pushed }, 15_000)
    const offline = await A.status()
    assert.ok(offline.pendingUp > 0, JSON.stringify(offline))
    assert.match(offline.lastError ?? '', /hub|ECONNREFUSED|socket|unavailable/i)

    await new Promise(resolve => setTimeout(resolve, 3000)) // offline for a while: backoff grows
    await hub.start()
    const want = treeOf(A.mnt)
    // Alpha's tree as it is now, plus beta's three; beta's tree converges to the same.
    await until('beta has all of alpha\'s offline changes', () => read(B.path('batch-4', 'file-149.txt')) === `offline 149 ${'x'.repeat(149 * 37)}\n` &&
      statSync(B.path('big.bin')).size === 1024 * 1024 + 9 * 4096 && read(B.path('batch-0', 'moved-9.txt')) === 'old 9\n', 40_000)
    await until('alpha has beta\'s offline changes', () => read(A.path('beta-dir', 'note.md')) === '# beta\n' && read(A.path('from-beta-offline.txt')) === 'beta worked offline too\n', 20_000)
    await until('both trees identical', () => {
      const a = treeOf(A.mnt)
      const b = treeOf(B.mnt)
      return JSON.stringify([...a]) === JSON.stringify([...b])
    }, 20_000)
    const a = treeOf(A.mnt)
    for (const [k, v] of want) assert.equal(a.get(k), v, `alpha's ${k} after the merge`)
    assert.equal(a.get('gone/'), 'dir')
    assert.equal(a.has('gone/old-0.txt'), false)
    assert.equal(a.has('batch-0/file-20.txt'), false)
    assert.equal(read(A.path('batch-3', 'file-3.txt')), 'rewritten 3\n')
    assert.equal(statSync(A.path('big.bin')).size, 1024 * 1024 + 9 * 4096)
    await until('alpha\'s queue empty', () => { const q = A.queue()!; return q.pushed === q.seq })
    await until('beta\'s queue empty', () => { const q = B.queue()!; return q.pushed === q.seq })
    const s = await A.status()
    assert.equal(s.pendingUp, 0)
    // Converged devices fall quiet: no entry ping-pong of merges that change nothing.
    const seqs = devs.map(d => d.queue()!.seq)
    await new Promise(resolve => setTimeout(resolve, 3000))
    assert.deepEqual(devs.map(d => d.queue()!.seq), seqs, 'no new entries once both trees are the same')
  })
})
