// Two devices of one identity and a hub, all real processes on 127.0.0.1, each device a real
// daemon with its own config, data dir and mount: a file written in A's mount appears in B's and
// the other way round, concurrent edits of different files combine on both, and the hub's data
// dir holds none of the names or contents.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, type Dirs } from '../helpers/mount.js'
import { cli, baseEnv, mnemonicFrom, startHub, scanForSecrets, type HubProcess } from '../keys/helpers.js'

const INSECURE = ['--keystore', 'file', '--insecure-no-passphrase']

async function until (what: string, ok: () => boolean, ms = 20_000): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    try { if (ok()) return Date.now() - t0 } catch {}
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

const read = (p: string): string | null => existsSync(p) ? readFileSync(p, 'utf8') : null

describe('two devices and a hub', { timeout: 180_000 }, () => {
  let hub: HubProcess
  let hubDirs: Dirs
  const devs: Array<{ dirs: Dirs, m: Mount | null }> = []

  before(async () => {
    hubDirs = tempDirs('space-sync-hub-')
    hub = await startHub(join(hubDirs.base, 'hub'))
    for (const name of ['alpha', 'beta']) {
      const dirs = tempDirs(`space-sync-${name}-`)
      devs.push({ dirs, m: null })
    }
    const a = await cli(['init', '--config-dir', devs[0].dirs.config, ...INSECURE], { env: baseEnv() })
    assert.equal(a.code, 0, a.stderr)
    const words = mnemonicFrom(a.stdout)
    const b = await cli(['init', '--restore', '--config-dir', devs[1].dirs.config, ...INSECURE], { input: words.split(' ').join('\n') + '\n', env: baseEnv() })
    assert.equal(b.code, 0, b.stderr)
    for (const [i, name] of ['alpha', 'beta'].entries()) {
      const r = await cli(['sync', 'hub', hub.url, '--device-name', name, '--config-dir', devs[i].dirs.config], { env: baseEnv() })
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, new RegExp(`as ${name}`))
    }
    for (const d of devs) d.m = await Mount.start(d.dirs)
  })

  after(async () => {
    for (const d of devs) await d.m?.cleanup()
    await hub?.stop()
    for (const d of devs) removeDirs(d.dirs)
    if (hubDirs != null) removeDirs(hubDirs)
  })

  it('a file written in one mount appears in the other, both ways, and a folder with it', async () => {
    const [A, B] = devs.map(d => d.m!)
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
    const [A, B] = devs.map(d => d.m!)
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
    const found = scanForSecrets(hub.dataDir, {
      content: Buffer.from('hello from alpha'),
      name: Buffer.from('from-alpha.txt'),
      folder: Buffer.from('plan.md'),
      bulk: Buffer.from('a'.repeat(64))
    })
    assert.deepEqual(found, [])
  })
})
