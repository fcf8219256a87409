// A big (sharded) folder across two real devices and a hub: 3,000 files made in A's mount reach
// B's; then both change the folder at once (new files, removals, a rename, an edit) and both
// mounts end with the same folder holding every change.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { Cluster, until, read, type Device } from './helpers-devices.js'

const N = 3000
const name = (i: number): string => `f${String(i).padStart(5, '0')}.txt`

describe('a big folder changed on two devices', { timeout: 300_000 }, () => {
  let c: Cluster
  let devs: Device[] = []

  before(async () => {
    c = await Cluster.start('space-bigfolder', ['alpha', 'beta'])
    devs = c.devs
  })
  after(async () => { await c?.stop() })

  it('reaches the other device whole, and concurrent changes on both sides combine on both', async () => {
    const [A, B] = devs.map(d => d.mount)
    mkdirSync(A.path('big'))
    for (let i = 0; i < N; i++) writeFileSync(A.path('big', name(i)), `${i}\n`)
    await until('the folder in beta\'s mount', () => { try { return readdirSync(B.path('big')).length === N } catch { return false } }, 120_000)
    assert.equal(read(B.path('big', name(1234))), '1234\n')
    // At once on both sides, different names of the one folder.
    for (let i = 0; i < 20; i++) writeFileSync(A.path('big', `from-alpha-${i}`), `a${i}\n`)
    for (let i = 0; i < 20; i++) unlinkSync(A.path('big', name(i)))
    renameSync(A.path('big', name(100)), A.path('big', 'renamed-by-alpha'))
    for (let i = 0; i < 20; i++) writeFileSync(B.path('big', `from-beta-${i}`), `b${i}\n`)
    for (let i = 50; i < 70; i++) unlinkSync(B.path('big', name(i)))
    writeFileSync(B.path('big', name(200)), 'edited by beta\n')
    const want = N - 20 - 20 + 20 + 20 // removed on each side, added on each side (the rename keeps the count)
    for (const m of [A, B]) {
      await until('both sides\' changes in each mount', () => {
        try {
          return readdirSync(m.path('big')).length === want && read(m.path('big', 'from-alpha-19')) === 'a19\n' &&
            read(m.path('big', 'from-beta-19')) === 'b19\n' && read(m.path('big', name(200))) === 'edited by beta\n' &&
            read(m.path('big', 'renamed-by-alpha')) === '100\n' && read(m.path('big', name(55))) === null && read(m.path('big', name(5))) === null
        } catch { return false }
      }, 120_000)
    }
    assert.deepEqual(readdirSync(A.path('big')).sort(), readdirSync(B.path('big')).sort())
  })
})
