// A hub that lies, played by a proxy between alpha and a real hub: it serves blocks with wrong
// bytes, a forged entry (bad signature), a replayed old entry, a fork (another entry with a
// sequence number alpha has seen), and an entry of a revoked device. Each is refused with a log
// line and a `space sync status` refusal naming the device and the sequence numbers, nothing of
// it reaches alpha's mount, and alpha keeps serving its mount and syncing honest traffic.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import * as cbor from '@ipld/dag-cbor'
import { Cluster, until, read, type Hub, type HubProxy, type Device } from './helpers-devices.js'
import { decodeEntry, signEntry, type SignedEntry } from '../../src/sync/entry.js'
import { revokeDevice, encodeRevocation } from '../../src/sync/devices.js'
import { postRevocation } from '../../src/sync/transport-http.js'
import { openAccount } from '../../src/keys/account.js'

const pad = (n: number): string => String(n).padStart(10, '0')

describe('a hub that lies to a device', { timeout: 150_000 }, () => {
  let c: Cluster
  let hub: Hub
  let proxies: HubProxy[] = []
  let devs: Device[] = []

  /** Beta's own entry `seq`, from its push queue. */
  const betaEntry = (seq: number): SignedEntry => decodeEntry(readFileSync(join(devs[1].dirs.data, 'sync', 'out', `${pad(seq)}.entry`)))
  /**
   * The newest entry of beta's that alpha has taken, checked to be beta's real one (beta keeps
   * writing honest entries as it merges alpha's changes, so the number itself moves on).
   */
  async function alphaSeesBeta (): Promise<number> {
    const head = (await devs[0].status()).logs.find(l => l.name === 'beta')
    assert.ok(head != null)
    assert.equal(head.cid, betaEntry(head.seq).cid.toString(), `alpha's head of beta's log is beta's own entry ${head.seq}`)
    return head.seq
  }

  /** Beta writes a file and alpha shows it: beta's log moves on, honestly. */
  async function honestChange (name: string, text: string): Promise<number> {
    writeFileSync(devs[1].path(name), text)
    await until(`${name} in alpha's mount`, () => read(devs[0].path(name)) === text, 20_000)
    await until('beta\'s queue pushed', () => { const q = devs[1].queue()!; return q.pushed === q.seq })
    return devs[1].queue()!.seq
  }

  /**
   * Beta's log stops moving: every entry of it pushed and taken by alpha, then beta's daemon
   * stopped (it would otherwise go on writing honest entries as it merges alpha's changes).
   * The number of beta's newest entry on the hub.
   */
  async function quietBeta (): Promise<number> {
    await until('beta\'s queue pushed', () => { const q = devs[1].queue()!; return q.pushed === q.seq })
    await devs[1].stop()
    const k = devs[1].queue()!.pushed // a last commit at the stop may wait in the queue: not on the hub
    await until(`alpha has taken beta's entry ${k}`, async () => await alphaSeesBeta() === k)
    return k
  }

  /** Alpha refused entry `seq` of beta with `code`: in its log and in `space sync status`. */
  async function refused (seq: number, code: string): Promise<void> {
    const line = new RegExp(`refused device "beta" \\([0-9a-f]{8}\\) entry ${seq} \\(${code}\\)`)
    await devs[0].mount.waitForLog(line, 15_000)
    const s = await devs[0].status()
    assert.ok(s.refused?.some(r => r.seq === seq && r.code === code && /beta/.test(r.device)), JSON.stringify(s.refused))
  }

  /** Alpha's mount still serves reads and writes. */
  function stillServes (tag: string): void {
    const p = devs[0].path(`alive-${tag}.txt`)
    writeFileSync(p, `alpha after ${tag}\n`)
    assert.equal(readFileSync(p, 'utf8'), `alpha after ${tag}\n`)
    assert.ok(readdirSync(devs[0].mnt).includes(`alive-${tag}.txt`))
  }

  before(async () => {
    // Files on demand: a content block is fetched when read, so the test decides which fetch meets
    // the lying proxy (a background download could fetch it first, honestly).
    c = await Cluster.start('space-hostile', ['alpha', 'beta'], { proxies: true, syncArgs: ['--on-demand'] })
    ;({ hub, proxies, devs } = c)
    await honestChange('start.txt', 'honest start\n')
  })

  after(async () => { await c?.stop() })

  it('blocks with wrong bytes are refused: the merge waits, a read fails instead of returning them, and honest blocks then go through', async () => {
    const [A, B] = devs
    await proxies[0].corruptBlocks(true)
    writeFileSync(B.path('tampered.txt'), 'the real bytes\n')
    await A.mount.waitForLog(/sync: pull: .*(hash|mismatch|CID)/i, 20_000)
    assert.ok(proxies[0].lies.includes('block'))
    assert.equal(existsSync(A.path('tampered.txt')), false, 'nothing of the entry whose blocks were wrong is applied')
    assert.match((await A.status()).lastError ?? '', /hash|mismatch/i)
    stillServes('bad-blocks')
    await proxies[0].corruptBlocks(false)
    await until('the honest merge', () => read(A.path('tampered.txt')) === 'the real bytes\n', 20_000)

    // A file's content blocks fetched on demand: wrong bytes are an error, never the content.
    const big = Buffer.alloc(400_000, 7)
    writeFileSync(B.path('content.bin'), big)
    // Whole: listed at a commit between B's create and its write, the file is empty on A, and
    // reading an empty file fetches nothing to lie about.
    await until('content.bin listed on alpha at its size', () => existsSync(A.path('content.bin')) && statSync(A.path('content.bin')).size === big.length, 20_000)
    await proxies[0].corruptBlocks(true)
    try {
      assert.throws(() => readFileSync(A.path('content.bin')), /EIO|EFAULT|error/i)
    } finally {
      await proxies[0].corruptBlocks(false) // the later tests need an honest proxy whatever happened here
    }
    assert.ok(readFileSync(A.path('content.bin')).equals(big))
  })

  it('a forged entry (signature does not verify) is refused, nothing of it applied', async () => {
    const k = await honestChange('before-forgery.txt', 'fine\n')
    const real = betaEntry(k)
    // Entry k+1 that beta never signed: beta's entry k re-labelled, its signature kept.
    const m = cbor.decode(real.bytes) as Record<string, unknown>
    const forged = cbor.encode({ ...m, seq: k + 1, prev: real.cid, time: Date.now() })
    await proxies[0].inject([forged])
    await refused(k + 1, 'ERR_SYNC_SIGNATURE')
    assert.ok(await alphaSeesBeta() >= k)
    stillServes('forgery')
  })

  it('a replayed old entry is refused as going backwards', async () => {
    const k = await honestChange('before-replay.txt', 'fine\n')
    assert.ok(k >= 2)
    await proxies[0].inject([betaEntry(1).bytes])
    await refused(1, 'ERR_SYNC_REGRESSION')
    assert.match(devs[0].log, /entry 1 goes backwards: entry \d+ was already seen/)
    assert.ok(await alphaSeesBeta() >= k)
    stillServes('replay')
  })

  it('a fork (another validly signed entry with a sequence number already seen) is refused', async () => {
    await honestChange('before-fork.txt', 'fine\n')
    const k = await quietBeta()
    const real = betaEntry(k).entry
    const beta = await openAccount(devs[1].dirs.config)
    // Beta's own key signs a second entry k: a copied key on another machine could.
    const fork = signEntry(beta.device.privateKey, { drive: real.drive, cert: real.cert, seq: k, prev: real.prev, heads: real.heads, root: real.root, blocks: real.blocks, time: real.time + 1 })
    await proxies[0].inject([fork.bytes])
    await refused(k, 'ERR_SYNC_FORK')
    assert.match(devs[0].log, new RegExp(`fork at entry ${k}`))
    assert.equal(await alphaSeesBeta(), k)
    stillServes('fork')
    await devs[1].start()
  })

  it('an entry of a revoked device past its revocation is refused, though the hub serves it', async () => {
    const [A, B] = devs
    await honestChange('last-from-beta.txt', 'last valid\n')
    const k = await quietBeta()
    const alpha = await openAccount(A.dirs.config)
    const beta = await openAccount(B.dirs.config)
    await postRevocation(hub.url, encodeRevocation(revokeDevice(alpha.identity.signing, beta.device.publicKey, k)))
    await B.start()
    writeFileSync(B.path('after-revocation.txt'), 'must not arrive\n')
    const entryFile = join(B.dirs.data, 'sync', 'out', `${pad(k + 1)}.entry`)
    await until('beta wrote entry k+1 (the hub will not take it)', () => existsSync(entryFile), 20_000)
    await proxies[0].inject([readFileSync(entryFile)])
    await refused(k + 1, 'ERR_SYNC_REVOKED')
    assert.match(A.log, new RegExp(`revoked after entry ${k}`))
    assert.equal(existsSync(A.path('after-revocation.txt')), false)
    assert.equal(read(A.path('last-from-beta.txt')), 'last valid\n')
    assert.equal(await alphaSeesBeta(), k)
    stillServes('revoked')
  })
})
