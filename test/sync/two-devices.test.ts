// Two devices of one identity and a hub, all real processes on 127.0.0.1, each device a real
// daemon with its own config, data dir and mount: a file written in A's mount appears in B's and
// the other way round, concurrent edits of different files combine on both, and the hub's data
// dir holds none of the names or contents.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { cli, scanForSecrets } from '../keys/helpers.js'
import { Cluster, until, read, type Device } from './helpers-devices.js'

describe('two devices and a hub', { timeout: 180_000 }, () => {
  let c: Cluster
  let devs: Device[]
  let hubDataDir = ''

  before(async () => {
    c = await Cluster.start('space-sync', ['alpha', 'beta'])
    devs = c.devs
    hubDataDir = c.hub.dataDir
  })

  after(async () => { await c?.stop() })

  it('a file written in one mount appears in the other, both ways, and a folder with it', async () => {
    const [A, B] = devs.map(d => d.mount)
    writeFileSync(A.path('hello.txt'), 'hello from alpha\n')
    mkdirSync(A.path('docs'))
    writeFileSync(A.path('docs', 'plan.md'), '# the plan\n')
    const ms = await until('alpha\'s files in beta\'s mount', () => read(B.path('docs', 'plan.md')) === '# the plan\n' && read(B.path('hello.txt')) === 'hello from alpha\n')
    assert.ok(ms < 20_000)
    writeFileSync(B.path('reply.txt'), 'hello from beta\n')
    await until('beta\'s reply in alpha\'s mount', () => read(A.path('reply.txt')) === 'hello from beta\n')
    assert.deepEqual(readdirSync(A.mnt).sort(), readdirSync(B.mnt).sort())
  })

  it('changes to different files made at once on both devices combine on both', async () => {
    const [A, B] = devs.map(d => d.mount)
    writeFileSync(A.path('from-alpha.txt'), 'a'.repeat(300_000))
    writeFileSync(B.path('from-beta.txt'), 'b'.repeat(200_000))
    writeFileSync(A.path('hello.txt'), 'hello again from alpha\n')
    for (const m of [A, B]) {
      await until('both new files everywhere', () => read(m.path('from-alpha.txt'))?.length === 300_000 && read(m.path('from-beta.txt'))?.length === 200_000 && read(m.path('hello.txt')) === 'hello again from alpha\n', 30_000)
    }
    assert.deepEqual(readdirSync(A.mnt).sort(), readdirSync(B.mnt).sort())
    const status = await cli(['sync', 'status', '--json', '--config-dir', devs[0].dirs.config, '--data-dir', devs[0].dirs.data], { env: { ...process.env } })
    assert.equal(status.code, 0, status.stderr)
    const s = JSON.parse(status.stdout)
    assert.equal(s.device, 'alpha')
    assert.ok(s.lastEntry.seq >= 2)
    assert.ok(s.logs.some((l: { name: string | null }) => l.name === 'beta'), JSON.stringify(s))
  })

  it('the hub\'s data dir holds no name or content of the drive', async () => {
    await until('alpha pushed everything', () => {
      const r = JSON.parse(readFileSync(join(devs[0].dirs.data, 'sync', 'out', 'state.json'), 'utf8'))
      return r.pushed === r.seq
    })
    const found = scanForSecrets(hubDataDir, {
      content: Buffer.from('hello from alpha'),
      name: Buffer.from('from-alpha.txt'),
      folder: Buffer.from('plan.md'),
      bulk: Buffer.from('a'.repeat(64)),
      device: Buffer.from('alpha') // device names are sealed in their records (format.md, "Device record")
    })
    assert.deepEqual(found, [])
  })
})
