// The merge matrix of issue 9 point 4 through real processes on 127.0.0.1: a hub and three devices
// of one identity (alpha, beta, gamma), each a real daemon with its own config, data dir and
// mount. Edits are made concurrent deterministically: the hub is stopped, each device edits its
// mount (the edits commit locally and queue), the hub starts again on the same port and data
// dir. All cases of a round share one outage and one convergence wait. Arrival order is varied
// by keeping one device's daemon down until the other two have merged (it then receives their
// merged entries, not the originals). Every round ends with all three mounts identical (listing,
// kinds, contents, modes, mtimes, symlink targets) and with each case's documented result
// (docs/sync-merge.md).
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createServer } from 'node:net'
import { chmodSync, existsSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Mount, tempDirs, removeDirs, type Dirs } from '../helpers/mount.js'
import { MAIN, cli, baseEnv, mnemonicFrom } from '../keys/helpers.js'

const INSECURE = ['--keystore', 'file', '--insecure-no-passphrase']
const NAMES = ['alpha', 'beta', 'gamma'] as const

async function freePort (): Promise<number> {
  const srv = createServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>(resolve => srv.close(() => resolve()))
  return port
}

/** `space hub` on a fixed port, so that it can be stopped and started again under the same URL. */
class Hub {
  private child: ReturnType<typeof spawn> | null = null
  private exited: Promise<void> = Promise.resolve()
  constructor (readonly dataDir: string, readonly port: number) {}
  get url (): string { return `http://127.0.0.1:${this.port}` }
  async start (): Promise<void> {
    const child = spawn(process.execPath, [MAIN, 'hub', '--host', '127.0.0.1', '--port', String(this.port), '--data-dir', this.dataDir], { env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    this.exited = new Promise(resolve => child.once('exit', () => resolve()))
    let stderr = ''
    child.stderr!.on('data', d => { stderr += d })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hub not up: ${stderr}`)), 20_000)
      createInterface({ input: child.stdout! }).on('line', l => { if (l.includes('listening on')) { clearTimeout(timer); resolve() } })
      child.once('exit', code => { clearTimeout(timer); reject(new Error(`hub exited with ${code}: ${stderr}`)) })
    })
  }

  async stop (): Promise<void> {
    const c = this.child
    if (c != null && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM')
    await this.exited
    this.child = null
  }
}

interface Device { name: string, dirs: Dirs, m: Mount | null }

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex').slice(0, 16)

/** Everything a user sees of a tree, by path: kind, mode, size, content or target, mtime (not for folders). */
function walk (root: string): Record<string, string> {
  const out: Record<string, string> = {}
  const visit = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`
      const st = lstatSync(join(root, p))
      const mode = (st.mode & 0o7777).toString(8)
      if (st.isDirectory()) { out[p] = `dir ${mode}`; visit(p) } else if (st.isSymbolicLink()) {
        out[p] = `symlink -> ${readlinkSync(join(root, p))} ${st.mtimeMs}`
      } else out[p] = `file ${mode} ${st.size} ${sha(readFileSync(join(root, p)))} ${st.mtimeMs}`
    }
  }
  visit('')
  return out
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const at = (iso: string): Date => new Date(iso)
const read = (p: string): string | null => existsSync(p) ? readFileSync(p, 'utf8') : null
const xattr = (p: string, name: string): string | null => {
  const r = spawnSync('getfattr', ['--only-values', '-n', name, p], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout : null
}

describe('the merge matrix through three real mounts', { timeout: 240_000 }, () => {
  let hub: Hub
  let hubDirs: Dirs
  const devs: Device[] = []
  const dev = (name: string): Device => devs.find(d => d.name === name)!
  const mnt = (name: string, ...p: string[]): string => dev(name).m!.path(...p)

  /** Until the given devices show one tree and have exchanged every entry (each knows the others' last seq). */
  async function converged (names: readonly string[], ms = Number(process.env.MATRIX_WAIT ?? 40_000)): Promise<Record<string, string>> {
    const t0 = Date.now()
    let last = ''
    for (;;) {
      if (Date.now() - t0 > ms) throw new Error(`not converged within ${ms} ms:\n${last}\n${names.map(n => `${n} log: ${dev(n).m!.stderr.slice(-3000)}`).join('\n')}`)
      const trees = names.map(n => { try { return JSON.stringify(walk(dev(n).m!.mnt)) } catch (err) { return String(err) } })
      const pushed = names.every(n => {
        try { const s = JSON.parse(readFileSync(join(dev(n).dirs.data, 'sync', 'out', 'state.json'), 'utf8')); return s.pushed === s.seq } catch { return false }
      })
      last = names.map((n, i) => `${n}: ${trees[i]}\n  queue ${read(join(dev(n).dirs.data, 'sync', 'out', 'state.json'))}`).join('\n')
      if (pushed && trees.every(t => t === trees[0])) {
        // What each device has accepted of the others' logs (its log state) against their queues.
        const own = (n: string): number => JSON.parse(readFileSync(join(dev(n).dirs.data, 'sync', 'out', 'state.json'), 'utf8')).seq
        const seen = (n: string): Record<string, number> => {
          const dir = join(dev(n).dirs.data, 'sync')
          const file = readdirSync(dir).find(f => f.endsWith('.state'))
          const logs = file == null ? {} : JSON.parse(readFileSync(join(dir, file), 'utf8')).body.logs as Record<string, { seq: number, name?: string }>
          return Object.fromEntries(Object.values(logs).map(l => [l.name ?? '', l.seq]))
        }
        const known = names.map(seen)
        last += '\n' + JSON.stringify(known)
        const everyoneKnows = names.every((n, i) => names.every(o => o === n || own(o) === 0 || known[i][o] === own(o)))
        const again = names.map(n => JSON.stringify(walk(dev(n).m!.mnt)))
        if (process.env.MATRIX_TRACE != null) console.log(`converged ${names.join(',')}: ${Date.now() - t0} ms (status ${everyoneKnows})`)
        if (everyoneKnows && again.every(t => t === trees[0])) return JSON.parse(trees[0])
      }
      await sleep(50)
    }
  }

  /** One round: the hub down while `edit` runs on every device; `late` devices stay down until the others agree. */
  async function round (edit: (name: string) => void, late: string[] = []): Promise<Record<string, string>> {
    const t0 = Date.now()
    const trace = (what: string): void => { if (process.env.MATRIX_TRACE != null) console.log(`${what}: ${Date.now() - t0} ms`) }
    await hub.stop()
    trace('hub stopped')
    for (const n of NAMES) edit(n)
    trace('edited')
    for (const n of late) { await dev(n).m!.stop(); dev(n).m = null }
    trace('late stopped')
    await hub.start()
    trace('hub started')
    const early = NAMES.filter(n => !late.includes(n))
    if (late.length > 0) {
      await converged(early)
      trace('early converged')
      for (const n of late) dev(n).m = await Mount.start(dev(n).dirs)
      trace('late started')
    }
    return await converged(NAMES)
  }

  before(async () => {
    hubDirs = tempDirs('space-matrix-hub-')
    hub = new Hub(join(hubDirs.base, 'hub'), await freePort())
    await hub.start()
    for (const name of NAMES) devs.push({ name, dirs: tempDirs(`space-matrix-${name}-`), m: null })
    const a = await cli(['init', '--config-dir', devs[0].dirs.config, ...INSECURE], { env: baseEnv() })
    assert.equal(a.code, 0, a.stderr)
    const words = mnemonicFrom(a.stdout).split(' ').join('\n') + '\n'
    await Promise.all(devs.slice(1).map(async d => {
      const r = await cli(['init', '--restore', '--config-dir', d.dirs.config, ...INSECURE], { input: words, env: baseEnv() })
      assert.equal(r.code, 0, r.stderr)
    }))
    for (const d of devs) {
      const r = await cli(['sync', 'hub', hub.url, '--device-name', d.name, '--config-dir', d.dirs.config], { env: baseEnv() })
      assert.equal(r.code, 0, r.stderr)
    }
    await Promise.all(devs.map(async d => { d.m = await Mount.start(d.dirs) }))
  })

  after(async () => {
    for (const d of devs) await d.m?.cleanup()
    await hub?.stop()
    for (const d of devs) removeDirs(d.dirs)
    if (hubDirs != null) removeDirs(hubDirs)
  })

  it('two devices\' concurrent changes of every kind merge as documented, identically on all three devices', async () => {
    // The common ancestor, made on alpha.
    const A = (...p: string[]): string => mnt('alpha', ...p)
    for (const f of ['combine-a.txt', 'combine-b.txt', 'doc.txt', 'gone.txt', 'ren.txt', 'both.txt', 'readme', 'modes.txt', 'modes2.txt', 'xa.txt']) writeFileSync(A(f), `base ${f}\n`)
    mkdirSync(A('dir', 'sub'), { recursive: true })
    for (const tag of ['t1', 't2']) { // the three-device rounds' bases, seeded with this one
      mkdirSync(A(tag))
      for (const f of ['tri.txt', 'del.txt', 'ren.txt', 'mode.txt']) writeFileSync(A(tag, f), `base ${f}\n`)
    }
    writeFileSync(A('dir', 'old1.txt'), 'old1\n')
    writeFileSync(A('dir', 'sub', 'old2.txt'), 'old2\n')
    await converged(NAMES)

    const tree = await round(name => {
      const p = (...q: string[]): string => mnt(name, ...q)
      if (name === 'alpha') {
        writeFileSync(p('combine-a.txt'), 'alpha combines\n')
        writeFileSync(p('doc.txt'), 'alpha doc\n'); utimesSync(p('doc.txt'), at('2026-01-02T03:04:10Z'), at('2026-01-02T03:04:10Z'))
        unlinkSync(p('gone.txt'))
        renameSync(p('ren.txt'), p('ren-new.txt'))
        renameSync(p('both.txt'), p('both-a.txt'))
        rmSync(p('dir'), { recursive: true })
        renameSync(p('readme'), p('README')); utimesSync(p('README'), at('2026-01-03T00:00:00Z'), at('2026-01-03T00:00:00Z'))
        chmodSync(p('modes.txt'), 0o640)
        chmodSync(p('modes2.txt'), 0o600)
        chmodSync(p('xa.txt'), 0o600)
        mkdirSync(p('shared')); writeFileSync(p('shared', 'from-alpha.txt'), 'a\n')
        writeFileSync(p('ab.txt'), 'lower\n')
        writeFileSync(p('caf\u00e9.txt'), 'nfc\n')
        symlinkSync('target-alpha', p('ln-new')); lutimesSync(p('ln-new'), at('2026-01-04T00:00:00Z'), at('2026-01-04T00:00:00Z'))
      } else if (name === 'beta') {
        writeFileSync(p('combine-b.txt'), 'beta combines\n')
        writeFileSync(p('doc.txt'), 'beta doc\n'); utimesSync(p('doc.txt'), at('2026-01-02T03:05:00Z'), at('2026-01-02T03:05:00Z'))
        writeFileSync(p('gone.txt'), 'beta kept it\n')
        writeFileSync(p('ren.txt'), 'beta edited ren\n')
        renameSync(p('both.txt'), p('both-b.txt'))
        writeFileSync(p('dir', 'new.txt'), 'new in dir\n')
        writeFileSync(p('README'), 'beta README\n'); utimesSync(p('README'), at('2026-01-03T00:00:05Z'), at('2026-01-03T00:00:05Z'))
        chmodSync(p('modes.txt'), 0o600)
        writeFileSync(p('modes2.txt'), 'beta modes2\n')
        const r = spawnSync('setfattr', ['-n', 'user.tag', '-v', 'beta', p('xa.txt')], { encoding: 'utf8' })
        assert.equal(r.status, 0, r.stderr)
        mkdirSync(p('shared')); writeFileSync(p('shared', 'from-beta.txt'), 'b\n')
        writeFileSync(p('AB.txt'), 'upper\n')
        writeFileSync(p('cafe\u0301.txt'), 'nfd\n')
        symlinkSync('target-beta', p('ln-new')); lutimesSync(p('ln-new'), at('2026-01-04T00:00:05Z'), at('2026-01-04T00:00:05Z'))
      }
    })

    const G = (...p: string[]): string => mnt('gamma', ...p)
    assert.equal(read(G('combine-a.txt')), 'alpha combines\n')
    assert.equal(read(G('combine-b.txt')), 'beta combines\n')
    // Same file on both: the later mtime keeps the name, the other is a conflict copy named after alpha and its time.
    assert.equal(read(G('doc.txt')), 'beta doc\n')
    assert.equal(read(G('doc (conflict from alpha 2026-01-02 030410).txt')), 'alpha doc\n', JSON.stringify(tree, null, 1))
    assert.equal(read(G('gone.txt')), 'beta kept it\n', 'an edit beats a delete')
    assert.equal(read(G('ren-new.txt')), 'beta edited ren\n', 'rename vs edit: the edit under the new name')
    assert.ok(!existsSync(G('ren.txt')))
    const boths = Object.keys(tree).filter(p => p.startsWith('both'))
    assert.deepEqual(boths, ['both-b.txt'], 'rename vs rename: one name (the greater), no duplicate')
    assert.equal(read(G('both-b.txt')), 'base both.txt\n')
    assert.deepEqual(readdirSync(G('dir')), ['new.txt'], 'the deleted folder stays for the added file, and only for it')
    assert.equal(read(G('README')), 'beta README\n')
    assert.equal(read(G('README (conflict from alpha 2026-01-03 000000)')), 'base readme\n', 'a case-only rename never overwrites')
    assert.ok(!existsSync(G('readme')))
    assert.equal(tree['modes.txt'].split(' ')[1], '640', 'chmod vs chmod: the greater mode')
    assert.equal(tree['modes2.txt'].split(' ')[1], '600')
    assert.equal(read(G('modes2.txt')), 'beta modes2\n', 'chmod and edit combine')
    assert.equal(tree['xa.txt'].split(' ')[1], '600')
    for (const n of NAMES) assert.equal(xattr(mnt(n, 'xa.txt'), 'user.tag'), 'beta', `chmod and xattr combine (${n})`)
    assert.deepEqual(readdirSync(G('shared')).sort(), ['from-alpha.txt', 'from-beta.txt'], 'one folder of one name')
    assert.equal(read(G('ab.txt')), 'lower\n')
    assert.equal(read(G('AB.txt')), 'upper\n')
    assert.equal(read(G('caf\u00e9.txt')), 'nfc\n')
    assert.equal(read(G('cafe\u0301.txt')), 'nfd\n')
    assert.equal(readlinkSync(G('ln-new')), 'target-beta')
    const lnCopies = Object.keys(tree).filter(p => p.startsWith('ln-new (conflict from alpha '))
    assert.equal(lnCopies.length, 1, JSON.stringify(Object.keys(tree)))
    assert.equal(readlinkSync(G(lnCopies[0])), 'target-alpha')
    const paths = Object.keys(tree).filter(p => !p.includes('/') && !/^t[12]$/.test(p)).sort()
    assert.deepEqual(paths, ['AB.txt', 'README', 'README (conflict from alpha 2026-01-03 000000)', 'ab.txt', 'both-b.txt', 'caf\u00e9.txt', 'cafe\u0301.txt', 'combine-a.txt', 'combine-b.txt', 'dir', 'doc (conflict from alpha 2026-01-02 030410).txt', 'doc.txt', 'gone.txt', lnCopies[0], 'ln-new', 'modes.txt', 'modes2.txt', 'ren-new.txt', 'shared', 'xa.txt'].sort())
  })

  /** Three devices change the same things at once; `late` joins after the other two merged. */
  async function threeWay (tag: string, late: string): Promise<void> {
    const times: Record<string, string> = { alpha: '2026-02-01T00:00:01Z', beta: '2026-02-01T00:00:02Z', gamma: '2026-02-01T00:00:03Z' }
    const tree = await round(name => {
      const p = (...q: string[]): string => mnt(name, tag, ...q)
      writeFileSync(p(`own-${name}.txt`), `${name}\n`)
      writeFileSync(p('tri.txt'), `${name} tri\n`); utimesSync(p('tri.txt'), at(times[name]), at(times[name]))
      mkdirSync(p('made')); writeFileSync(p('made', `${name}.txt`), `${name} made\n`)
      if (name === 'alpha') unlinkSync(p('del.txt'))
      if (name === 'beta') writeFileSync(p('del.txt'), 'beta kept del\n')
      if (name === 'gamma') renameSync(p('del.txt'), p('del-moved.txt'))
      renameSync(p('ren.txt'), p(`ren-${name}.txt`))
      chmodSync(p('mode.txt'), { alpha: 0o600, beta: 0o640, gamma: 0o604 }[name]!)
    }, [late])
    const G = (...p: string[]): string => mnt(late, tag, ...p)
    for (const n of NAMES) assert.equal(read(G(`own-${n}.txt`)), `${n}\n`)
    assert.equal(read(G('tri.txt')), 'gamma tri\n', 'the latest version keeps the name')
    const triContents = Object.keys(tree).filter(p => p.startsWith(`${tag}/tri`)).map(p => read(mnt(late, p))).sort()
    assert.deepEqual(triContents, ['alpha tri\n', 'beta tri\n', 'gamma tri\n'], `every version stays once: ${JSON.stringify(Object.keys(tree))}`)
    const listing = Object.keys(tree).filter(p => p.startsWith(`${tag}/`))
    assert.deepEqual(listing.filter(p => p.startsWith(`${tag}/made`)), ['made', 'made/alpha.txt', 'made/beta.txt', 'made/gamma.txt'].map(p => `${tag}/${p}`), `one folder of the three: ${JSON.stringify(listing)}`)
    assert.equal(read(G('del-moved.txt')), 'beta kept del\n', 'delete, edit and rename: the edit under the new name')
    assert.ok(!existsSync(G('del.txt')))
    assert.deepEqual(Object.keys(tree).filter(p => p.startsWith(`${tag}/ren`)), [`${tag}/ren-gamma.txt`], 'three renames: one name')
    assert.equal(tree[`${tag}/mode.txt`].split(' ')[1], '640')
  }

  it('three devices\' concurrent changes converge to one tree when gamma\'s entries arrive last', async () => {
    await threeWay('t1', 'gamma')
  })

  it('and to the same result when alpha\'s arrive last', async () => {
    await threeWay('t2', 'alpha')
  })
})
