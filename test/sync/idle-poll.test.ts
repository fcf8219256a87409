// A device with nothing to do asks the hub little: once its own entries are on the hub, its
// long-poll for other devices' entries waits at the hub (a handful of requests a minute), not a
// busy loop of answers that carry only its own entries back. Real hub and daemons, a counting
// proxy in between.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Hub, HubProxy, devicesOf, cleanupDevices, until, read, tempDirs, removeDirs, type Device, type Dirs } from './helpers-devices.js'

describe('an idle device and the hub', { timeout: 120_000 }, () => {
  let hub: Hub
  let hubDirs: Dirs
  const proxies: HubProxy[] = []
  let devs: Device[] = []

  before(async () => {
    hubDirs = tempDirs('space-idle-hub-')
    hub = new Hub(join(hubDirs.base, 'hub'))
    await hub.start()
    for (let i = 0; i < 2; i++) {
      const p = new HubProxy(() => hub.port)
      await p.start()
      proxies.push(p)
    }
    devs = await devicesOf(['alpha', 'beta'], i => proxies[i].url)
    for (const d of devs) await d.start()
  })

  after(async () => {
    await cleanupDevices(devs)
    for (const p of proxies) await p.stop()
    await hub?.stop()
    if (hubDirs != null) removeDirs(hubDirs)
  })

  it('after a change has gone across, neither device polls the hub more than a few times in 3 s', async () => {
    const [A, B] = devs
    writeFileSync(A.path('idle.txt'), 'from alpha\n')
    await until('the file in beta\'s mount', () => read(B.path('idle.txt')) === 'from alpha\n')
    await until('both queues pushed', () => devs.every(d => { const q = d.queue(); return q != null && q.pushed === q.seq }))
    await new Promise(resolve => setTimeout(resolve, 1500)) // the merge's own commit published and pushed
    const polls = (i: number): number => proxies[i].seen.filter(r => r.startsWith('GET ') && r.endsWith('/entries')).length
    const before = [polls(0), polls(1)]
    await new Promise(resolve => setTimeout(resolve, 3000))
    const during = [polls(0) - before[0], polls(1) - before[1]]
    // A long-poll waits up to 25 s: a new one starts only when the other device publishes.
    assert.ok(during.every(n => n <= 3), `entry polls in 3 idle seconds (alpha, beta): ${during.join(', ')}`)
  })
})
