// A new device gets the whole drive: a hub and real daemons on 127.0.0.1. Device alpha fills the
// drive; gamma (init --restore --sync-hub, files on demand) mounts and shows the whole drive at
// once, and reading the first bytes of a 16 MiB file fetches a few of its 128 blocks, not all of
// them; delta (recover-keys --sync-hub from the hub's key vault, the default) downloads everything in the background
// (sync status: nothing pending down), and keeps serving every file after the hub is gone.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, openSync, readSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, type Dirs } from '../helpers/mount.js'
import { cli, baseEnv, mnemonicFrom, startHub, type HubProcess } from '../keys/helpers.js'
import { INSECURE, waitFor } from './helpers-devices.js'

const BIG = 16 * 1024 * 1024

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

interface Status {
  fetched: { blocks: number, bytes: number }
  down: { mode: string, state: string, pending: { files: number, bytes: number }, progress: { done: number, total: number } }
  up: { entries: number, files: number, bytes: number }
}

async function status (d: Dirs): Promise<Status> {
  const r = await cli(['sync', 'status', '--json', '--config-dir', d.config, '--data-dir', d.data], { env: { ...process.env } })
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as Status
}

describe('a new device gets the whole drive', { timeout: 120_000 }, () => {
  let hub: HubProcess
  let hubDirs: Dirs
  const dirs: Record<string, Dirs> = {}
  const mounts: Mount[] = []
  let words = ''
  let username = ''
  const big = randomBytes(BIG)
  const files: Record<string, Buffer> = { 'small.txt': Buffer.from('small from alpha\n'), 'docs/readme.md': Buffer.from('# read me\n'), 'big.bin': big }

  before(async () => {
    hubDirs = tempDirs('space-restore-hub-')
    hub = await startHub(join(hubDirs.base, 'hub'))
    for (const n of ['alpha', 'gamma', 'delta']) dirs[n] = tempDirs(`space-restore-${n}-`)
    const a = await cli(['init', '--config-dir', dirs.alpha.config, ...INSECURE], { env: baseEnv() })
    assert.equal(a.code, 0, a.stderr)
    words = mnemonicFrom(a.stdout).split(' ').join('\n') + '\n'
    const s = await cli(['sync', 'hub', hub.url, '--device-name', 'alpha', '--config-dir', dirs.alpha.config], { env: baseEnv() })
    assert.equal(s.code, 0, s.stderr)
    username = /\(user ([^)]+)\)/.exec(s.stdout)![1]
    const A = await Mount.start(dirs.alpha)
    mounts.push(A)
    mkdirSync(A.path('docs'))
    for (const [p, b] of Object.entries(files)) writeFileSync(A.path(p), b)
    await waitFor('alpha pushed the drive', () => {
      const st = join(dirs.alpha.data, 'sync', 'out', 'state.json')
      if (!existsSync(st)) return false
      const r = JSON.parse(readFileSync(st, 'utf8'))
      return r.seq >= 1 && r.pushed === r.seq && readdirSync(A.mnt).includes('big.bin')
    }, 30_000)
    // Every file is in the pushed tree once alpha's status has nothing up.
    await waitFor('alpha has nothing pending up', async () => (await status(dirs.alpha)).up.entries === 0)
  })

  after(async () => {
    for (const m of mounts) await m.cleanup()
    await hub?.stop()
    for (const d of Object.values(dirs)) removeDirs(d)
    if (hubDirs != null) removeDirs(hubDirs)
  })

  it('init --restore --sync-hub and a mount show the drive at once; the first bytes of a large file are readable before the rest was fetched', async (t) => {
    const r = await cli(['init', '--restore', '--sync-hub', hub.url, '--device-name', 'gamma', '--on-demand', '--config-dir', dirs.gamma.config, ...INSECURE], { input: words, env: baseEnv() })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /sync: .* as gamma .*files on demand/)
    const G = await Mount.start(dirs.gamma)
    mounts.push(G)
    await waitFor('the drive in gamma\'s mount', () => existsSync(G.path('big.bin')) && existsSync(G.path('docs', 'readme.md')))
    assert.deepEqual(readdirSync(G.mnt).sort(), ['big.bin', 'docs', 'small.txt'])
    const s0 = await waitFor('gamma lists what is not here yet', async () => { const s = await status(dirs.gamma); return s.down.pending.files === 3 ? s : false })
    assert.equal(s0.down.mode, 'on-demand')
    const text = await cli(['sync', 'status', '--config-dir', dirs.gamma.config, '--data-dir', dirs.gamma.data], { env: { ...process.env } })
    assert.match(text.stdout, /^down +3 files, 16\.0 MiB not here yet; files on demand$/m)
    assert.match(text.stdout, /^device +alpha \([0-9a-f]{8}\): entry \d+$/m)
    assert.ok(s0.down.pending.bytes >= BIG, JSON.stringify(s0.down))

    const fd = openSync(G.path('big.bin'), 'r')
    const head = Buffer.alloc(64 * 1024)
    try { assert.equal(readSync(fd, head, 0, head.length, 0), head.length) } finally { closeSync(fd) }
    assert.ok(head.equals(big.subarray(0, head.length)), 'the first bytes are the file\'s')
    const s1 = await status(dirs.gamma)
    const blocksForHead = s1.fetched.blocks - s0.fetched.blocks
    t.diagnostic(`first 64 KiB of a 16 MiB file: ${blocksForHead} blocks fetched; pending down before: ${s0.down.pending.files} files, ${s0.down.pending.bytes} bytes`)
    assert.ok(blocksForHead >= 1 && blocksForHead < 32, `reading 64 KiB fetched ${blocksForHead} blocks of the file's 128`)
    assert.ok(s1.down.pending.bytes > BIG - 32 * 128 * 1024, JSON.stringify(s1.down))

    assert.equal(sha(readFileSync(G.path('big.bin'))), sha(big))
    assert.equal(readFileSync(G.path('small.txt'), 'utf8'), 'small from alpha\n')
    assert.equal(readFileSync(G.path('docs', 'readme.md'), 'utf8'), '# read me\n')
    const s2 = await status(dirs.gamma)
    assert.ok(s2.fetched.blocks - s0.fetched.blocks >= 128, `the whole file came: ${s2.fetched.blocks - s0.fetched.blocks} blocks`)
    assert.deepEqual(s2.down.pending, { files: 0, bytes: 0 })
  })

  it('recover-keys --sync-hub: by default the whole drive downloads in the background, and every file stays readable once the hub is gone', async (t) => {
    // delta comes back through the hub's key vault: recover-keys --sync-hub
    const b = await cli(['backup-keys', '--hub', hub.url, '--username', username, '--passphrase-stdin', '--config-dir', dirs.alpha.config, '--data-dir', dirs.alpha.data], { input: 'correct horse battery staple\n', env: { ...process.env, SPACE_TEST_CHEAP_KDF: '1' } })
    assert.equal(b.code, 0, b.stderr)
    const r = await cli(['recover-keys', username, '--hub', hub.url, '--passphrase-stdin', '--sync-hub', hub.url, '--device-name', 'delta', '--config-dir', dirs.delta.config, '--data-dir', dirs.delta.data, ...INSECURE], { input: 'correct horse battery staple\n', env: baseEnv() })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /sync: .* as delta/)
    const D = await Mount.start(dirs.delta)
    mounts.push(D)
    const t0 = Date.now()
    await waitFor('the drive in delta\'s mount', () => existsSync(D.path('big.bin')))
    const shown = Date.now() - t0
    const s = await waitFor('delta downloaded everything', async () => {
      const st = await status(dirs.delta)
      return st.down.state === 'idle' && st.down.pending.files === 0 && st.fetched.blocks >= 128 ? st : false
    }, 30_000)
    t.diagnostic(`delta: drive shown ${shown} ms after mount, all ${s.fetched.blocks} blocks (${s.fetched.bytes} bytes) here ${Date.now() - t0} ms after mount`)
    assert.equal(s.down.mode, 'all')
    assert.ok(s.down.progress.total >= BIG && s.down.progress.done === s.down.progress.total, JSON.stringify(s.down))
    await hub.stop()
    for (const [p, b] of Object.entries(files)) assert.equal(sha(readFileSync(D.path(p))), sha(b), p)
  })
})
