// Devices and revocation with real processes on 127.0.0.1: a hub and two daemons (alpha, beta)
// of one identity, each with its own mount. `space devices` lists both; `space devices revoke
// beta` on alpha makes the hub refuse beta's writes (alpha's mount does not change); and when a
// hub that forgot the revocation (restored from an old backup) serves beta's later entries,
// alpha refuses them itself: its mount still does not change. Alpha's event stream reports the
// merge of beta's earlier file and the refusal.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { Mount, tempDirs, removeDirs, type Dirs } from '../helpers/mount.js'
import { cli, baseEnv, mnemonicFrom, MAIN } from '../keys/helpers.js'
import { Hub, INSECURE, waitFor } from './helpers-devices.js'

const read = (p: string): string | null => existsSync(p) ? readFileSync(p, 'utf8') : null

/** `space events --json` on a device: every event it printed, parsed. */
class Events {
  readonly lines: Array<Record<string, any>> = []
  readonly child: ChildProcess
  private err = ''
  constructor (d: Dirs) {
    this.child = spawn(process.execPath, [MAIN, 'events', '--json', '--config-dir', d.config, '--data-dir', d.data], { stdio: ['ignore', 'pipe', 'pipe'] })
    let buf = ''
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buf += s
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) { this.lines.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1) }
    })
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => { this.err += s })
  }

  async subscribed (): Promise<void> { await waitFor('events subscribed', () => this.err.includes('subscribed')) }
  stop (): void { if (this.child.exitCode == null) this.child.kill('SIGTERM') }
}

describe('devices and revocation', { timeout: 120_000 }, () => {
  let hub: Hub
  let hubDirs: Dirs
  const dirs: Dirs[] = []
  const mounts: Mount[] = []
  let events: Events | null = null
  let revokedAfter = 0

  const devices = async (d: Dirs): Promise<Array<Record<string, any>>> => {
    const r = await cli(['devices', '--json', '--config-dir', d.config, '--data-dir', d.data], { env: { ...process.env } })
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout).devices
  }
  const outState = (d: Dirs): { seq: number, pushed: number } => JSON.parse(readFileSync(join(d.data, 'sync', 'out', 'state.json'), 'utf8'))

  before(async () => {
    hubDirs = tempDirs('space-devices-hub-')
    hub = new Hub(join(hubDirs.base, 'hub'))
    await hub.start()
    for (const n of ['alpha', 'beta']) dirs.push(tempDirs(`space-devices-${n}-`))
    const a = await cli(['init', '--config-dir', dirs[0].config, ...INSECURE], { env: baseEnv() })
    assert.equal(a.code, 0, a.stderr)
    const b = await cli(['init', '--restore', '--config-dir', dirs[1].config, ...INSECURE], { input: mnemonicFrom(a.stdout).split(' ').join('\n') + '\n', env: baseEnv() })
    assert.equal(b.code, 0, b.stderr)
    for (const [i, name] of ['alpha', 'beta'].entries()) {
      const r = await cli(['sync', 'hub', hub.url, '--device-name', name, '--config-dir', dirs[i].config], { env: baseEnv() })
      assert.equal(r.code, 0, r.stderr)
    }
    for (const d of dirs) mounts.push(await Mount.start(d))
    events = new Events(dirs[0])
    await events.subscribed()
  })

  after(async () => {
    events?.stop()
    for (const m of mounts) await m.cleanup()
    await hub?.stop()
    for (const d of dirs) removeDirs(d)
    if (hubDirs != null) removeDirs(hubDirs)
  })

  it('space devices lists both devices of the identity, and the event stream reports a merge', async () => {
    const [A, B] = mounts
    writeFileSync(B.path('from-beta.txt'), 'written on beta\n')
    await waitFor('beta\'s file in alpha\'s mount', () => read(A.path('from-beta.txt')) === 'written on beta\n')
    await waitFor('beta pushed', () => { const s = outState(dirs[1]); return s.seq >= 1 && s.pushed === s.seq })
    const list = await devices(dirs[0])
    assert.deepEqual(list.map(d => d.name).sort(), ['alpha', 'beta'])
    const beta = list.find(d => d.name === 'beta')!
    assert.equal(beta.thisDevice, false)
    assert.equal(beta.revoked, null)
    assert.match(beta.key, /^[0-9a-f]{8}$/)
    assert.ok(beta.seq >= 1, JSON.stringify(beta))
    assert.equal(list.find(d => d.name === 'alpha')!.thisDevice, true)
    const text = await cli(['devices', '--config-dir', dirs[0].config, '--data-dir', dirs[0].data], { env: { ...process.env } })
    assert.match(text.stdout, /^\* alpha .* active$/m)
    assert.match(text.stdout, /^ {2}beta .* active$/m)
    const merged = await waitFor('a merged event', () => events!.lines.find(e => e.kind === 'sync' && e.sync?.event === 'merged' && e.sync.device === 'beta') ?? false)
    assert.ok(merged.sync.changes >= 1 && merged.sync.conflicts === 0, JSON.stringify(merged))
    assert.ok(events!.lines.some(e => e.kind === 'created' && e.path === '/from-beta.txt'), JSON.stringify(events!.lines))
    // alpha's own entry for the merged tree goes up as well
    await waitFor('a pushed event', () => events!.lines.some(e => e.kind === 'sync' && e.sync?.event === 'pushed' && e.sync.entries >= 1))
  })

  it('after space devices revoke beta, the hub refuses beta\'s writes and alpha\'s mount does not change', async () => {
    const [A, B] = mounts
    const seq = outState(dirs[1]).seq
    const self = await cli(['devices', 'revoke', 'alpha', '--config-dir', dirs[0].config, '--data-dir', dirs[0].data], { env: { ...process.env } })
    assert.notEqual(self.code, 0, 'a device cannot revoke itself')
    assert.match(self.stderr, /this device/)
    const r = await cli(['devices', 'revoke', 'beta', '--config-dir', dirs[0].config, '--data-dir', dirs[0].data], { env: { ...process.env } })
    assert.equal(r.code, 0, r.stderr)
    // beta may have published more entries (its own merges) since `seq` was read: the hub's highest counts.
    const m = /^revoked "beta" \([0-9a-f]{8}\): its entries up to (\d+) stay/.exec(r.stdout)
    assert.ok(m != null, r.stdout)
    revokedAfter = Number(m[1])
    assert.ok(revokedAfter >= seq, `${revokedAfter} >= ${seq}`)
    const beta = (await devices(dirs[0])).find(d => d.name === 'beta')!
    assert.equal(beta.revoked?.after, revokedAfter)

    writeFileSync(B.path('after-revoke.txt'), 'beta, revoked\n')
    await B.waitForLog(/device_revoked|revoked by its identity/, 15_000)
    const st = await cli(['sync', 'status', '--json', '--config-dir', dirs[1].config, '--data-dir', dirs[1].data], { env: { ...process.env } })
    assert.match(JSON.parse(st.stdout).lastError ?? '', /revoked/)
    await new Promise(resolve => setTimeout(resolve, 2000))
    assert.equal(read(A.path('after-revoke.txt')), null)
    const listed = (await devices(dirs[0])).find(d => d.name === 'beta')!
    assert.equal(listed.seq, revokedAfter, 'the hub serves nothing of beta past the revocation')
    assert.ok(outState(dirs[1]).seq > revokedAfter, 'beta did write entries after it')
  })

  it('when a hub that forgot the revocation serves beta\'s later entries, alpha refuses them and its mount does not change', async () => {
    const [A] = mounts
    await hub.stop()
    const db = new DatabaseSync(join(hub.dataDir, 'entries.sqlite'))
    assert.ok((db.prepare('DELETE FROM revocations').run().changes as number) >= 1)
    db.close()
    await hub.start()
    await waitFor('beta pushed its entries to the forgetful hub', () => { const s = outState(dirs[1]); return s.pushed === s.seq && s.seq > 1 }, 30_000)
    const refused = await waitFor('alpha refused beta\'s entry', () => events!.lines.find(e => e.kind === 'sync' && e.sync?.event === 'refused') ?? false, 30_000)
    assert.equal(refused.sync.device, 'beta')
    assert.equal(refused.sync.code, 'ERR_SYNC_REVOKED')
    assert.match(A.stderr, /refused device "beta" \([0-9a-f]{8}\) entry \d+ .*revoked after entry/)
    await new Promise(resolve => setTimeout(resolve, 1500))
    assert.equal(read(A.path('after-revoke.txt')), null)
    assert.deepEqual(readdirSync(A.mnt).sort(), ['from-beta.txt'])
  })

  it('without a daemon, space devices revoke sends the revocation this device holds to the hub again, and space devices shows it', async () => {
    assert.equal(await mounts[0].stop(), 0)
    const before = (await devices(dirs[0])).find(d => d.name === 'beta')!
    assert.equal(before.revoked, null, 'the hub forgot the revocation')
    const r = await cli(['devices', 'revoke', 'beta', '--json', '--config-dir', dirs[0].config, '--data-dir', dirs[0].data], { env: { ...process.env } })
    assert.equal(r.code, 0, r.stderr)
    const beta = (await devices(dirs[0])).find(d => d.name === 'beta')!
    assert.ok(before.seq > revokedAfter, `the hub took entries past the revocation (${before.seq})`)
    assert.equal(beta.revoked?.after, revokedAfter, 'the revocation this device held, not the hub\'s newer entries')
    const text = await cli(['devices', '--config-dir', dirs[0].config, '--data-dir', dirs[0].data], { env: { ...process.env } })
    assert.match(text.stdout, new RegExp(`^ {2}beta .* revoked .*, entries after ${beta.revoked.after as number} refused$`, 'm'))
  })
})
