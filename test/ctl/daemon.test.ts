// `space daemon` and the CLI as thin clients of the socket: start in the background, status,
// log, events, unmount --keep-daemon, mount handed to the daemon, key backup through it, stop;
// then the no-daemon fallbacks and exit codes. Real processes, real mount, real socket.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { CLI, isMounted, removeDirs, space, tempDirs } from '../helpers/mount.js'
import { pidAlive } from '../../src/daemon.js'
import { progressReporter } from '../../src/cli/progress.js'

describe('space daemon and the CLI over the socket', () => {
  const dirs = tempDirs('space-daemon-')
  const sock = join(dirs.base, 'ctl.sock')
  const args = ['--socket', sock, '--data-dir', dirs.data, '--config-dir', dirs.config]
  const env = { XDG_STATE_HOME: join(dirs.base, 'state') }
  let pid = 0
  after(() => {
    if (pid !== 0 && pidAlive(pid)) process.kill(pid, 'SIGKILL') // only the daemon this test started
    if (isMounted(dirs.mnt)) spawnSync('fusermount', ['-uz', dirs.mnt])
    removeDirs(dirs)
  })

  it('init creates the master token once; the daemon keeps it', () => {
    const r = space(['init', '--keystore', 'file', '--insecure-no-passphrase', '--config-dir', dirs.config])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /app token\s+master token created in .*master\.token \(0600\)/)
    assert.equal(statSync(join(dirs.config, 'master.token')).mode & 0o777, 0o600)
  })

  it('starts in the background, answers, and is a thin server for status, log and whoami', () => {
    const before = readFileSync(join(dirs.config, 'master.token'), 'utf8')
    const r = space(['daemon', dirs.mnt, ...args], { env })
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`mounted ${dirs.mnt}`))
    pid = Number(/pid (\d+)/.exec(r.stdout)![1])
    assert.ok(pidAlive(pid) && pid !== process.pid)
    assert.ok(isMounted(dirs.mnt))
    assert.equal(readFileSync(join(dirs.config, 'master.token'), 'utf8'), before, 'the master token is kept')
    assert.ok(existsSync(join(dirs.base, 'state', 'space', 'daemon.log')))

    writeFileSync(join(dirs.mnt, 'hello.txt'), 'hi')
    const st = JSON.parse(space(['status', '--json', ...args]).stdout)
    assert.equal(st.daemon, true)
    assert.equal(st.pid, pid)
    assert.equal(st.mountpoint, dirs.mnt)
    assert.match(st.identity.fingerprint, /^[0-9a-f]{4}-/)
    const human = space(['status', ...args]).stdout
    assert.match(human, new RegExp(`^mounted at ${dirs.mnt} \\(pid ${pid}\\)`))
    assert.match(space(['whoami', ...args]).stdout, /fingerprint\s+[0-9a-f]{4}-/)
    // A second start finds it running.
    const again = space(['daemon', dirs.mnt, ...args], { env })
    assert.equal(again.status, 0)
    assert.match(again.stdout, /already running/)
  })

  it('streams events to `space events`', async () => {
    const child = spawn(process.execPath, [CLI, 'events', '--json', '--count', '2', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', d => { out += d })
    const exited = new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', d => { err += d; if (err.includes('subscribed')) resolve() })
        child.on('exit', () => reject(new Error(`events exited: ${err}`)))
      })
      writeFileSync(join(dirs.mnt, 'new.txt'), 'x')
      spawnSync('mv', [join(dirs.mnt, 'new.txt'), join(dirs.mnt, 'renamed.txt')])
      assert.equal(await exited, 0, err)
    } finally {
      child.kill()
    }
    const evs = out.trim().split('\n').map(l => JSON.parse(l))
    assert.deepEqual(evs.map(e => e.kind), ['created', 'renamed'])
    assert.deepEqual([evs[1].path, evs[1].to], ['/new.txt', '/renamed.txt'])
  })

  it('backs up keys through the daemon, with its scope', () => {
    const file = join(dirs.base, 'backup.box')
    const r = space(['backup-keys', '--to', file, '--passphrase-stdin', ...args], { input: 'correct horse battery\n' })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    const reader = space(['token', 'create', '--name', 'ro', '--allow', 'status:read', ...args]).stdout.trim()
    const denied = space(['backup-keys', '--to', file + '2', '--passphrase-stdin', ...args], { input: 'correct horse battery\n', env: { SPACE_TOKEN: reader } })
    assert.equal(denied.status, 48, denied.stderr)
    assert.ok(!existsSync(file + '2'), 'nothing happened')
    const other = join(dirs.base, 'restored')
    const rec = space(['recover-keys', '--from', file, '--passphrase-stdin', '--keystore', 'file', '--insecure-no-passphrase', '--config-dir', other, '--socket', join(dirs.base, 'none.sock')], { input: 'correct horse battery\n' })
    assert.equal(rec.status, 0, rec.stderr)
    assert.equal(/fingerprint\s+(\S+)/.exec(rec.stdout)![1], JSON.parse(space(['whoami', '--json', ...args]).stdout).fingerprint)
  })

  it('unmounts keeping the daemon, mounts again through it, lists the log over the socket', () => {
    const u = space(['unmount', '--keep-daemon', ...args])
    assert.equal(u.status, 0, u.stderr)
    assert.ok(!isMounted(dirs.mnt))
    assert.ok(pidAlive(pid))
    assert.match(space(['status', ...args]).stdout, /^not mounted\n[\s\S]*daemon pid/)
    assert.equal(space(['unmount', ...args]).status, 17, 'nothing mounted')
    const m = space(['mount', dirs.mnt, ...args])
    assert.equal(m.status, 0, m.stderr)
    assert.match(m.stdout, /by the daemon/)
    assert.equal(readFileSync(join(dirs.mnt, 'renamed.txt'), 'utf8'), 'x')
    const log = space(['log', '--json', ...args])
    assert.equal(log.status, 0, log.stderr)
    assert.ok(log.stdout.trim().split('\n').every(l => /^baf/.test(JSON.parse(l).root)))
    assert.equal(space(['mount', dirs.mnt, ...args]).status, 12, 'already served: the store is in use')
  })

  it('stops, then the CLI falls back to the store or says there is no daemon', () => {
    const s = space(['daemon', '--stop', ...args])
    assert.equal(s.status, 0, s.stderr)
    assert.ok(!pidAlive(pid), 'the process has finished when --stop returns')
    assert.ok(!isMounted(dirs.mnt))
    assert.ok(!existsSync(sock), 'the socket is removed')
    const st = space(['status', ...args])
    assert.equal(st.status, 0)
    assert.match(st.stdout, /^not mounted\n[\s\S]*daemon not running/)
    assert.equal(JSON.parse(space(['status', '--json', ...args]).stdout).pid, null)
    const log = space(['log', ...args])
    assert.equal(log.status, 0, log.stderr)
    assert.ok(log.stdout.split('\n').length > 1, 'read from the store directly')
    assert.equal(space(['unmount', ...args]).status, 17)
    assert.equal(space(['token', 'list', ...args]).status, 40)
    assert.equal(space(['events', ...args]).status, 40)
    assert.equal(space(['daemon', '--stop', ...args]).status, 40)
    const h = space(['token', '--help'])
    assert.equal(h.status, 0)
    assert.match(h.stdout, /space token create --name NAME --allow/)
    assert.equal(space(['token', 'frobnicate', ...args]).status, 2)
  })

  it('reports a daemon that cannot start with the mount error code', () => {
    const r = space(['daemon', join(dirs.base, 'missing'), ...args], { env })
    assert.equal(r.status, 10, r.stderr)
    assert.match(r.stderr, /does not exist/)
  })
})

describe('progress reporter', () => {
  const sink = (): { s: NodeJS.WritableStream, text: () => string } => {
    let t = ''
    return { s: { write: (x: string) => { t += x; return true } } as unknown as NodeJS.WritableStream, text: () => t }
  }
  it('draws one redrawn bar on a terminal and clears it', () => {
    const o = sink()
    const p = progressReporter(o.s, { tty: true, delayMs: 0 })
    p.update({ stage: 'scanning', done: 5, total: 10 })
    p.update({ stage: 'scanning', done: 10, total: 10 })
    p.end()
    assert.match(o.text(), /^\r\x1b\[K\[#{12}\.{12}\]  50% scanning/)
    assert.match(o.text(), /\[#{24}\] 100% scanning/)
    assert.ok(o.text().endsWith('\r\x1b[K'))
    assert.ok(!o.text().includes('\n'))
  })
  it('prints plain lines per stage and per 10 % elsewhere, and nothing for quick work', () => {
    const o = sink()
    const p = progressReporter(o.s, { tty: false, delayMs: 0 })
    for (let i = 0; i <= 100; i++) p.update({ stage: 'scanning', done: i, total: 100 })
    p.update({ stage: 'uploading', done: 0, total: null })
    p.end()
    assert.equal(o.text().split('\n').filter(Boolean).length, 12)
    assert.match(o.text(), /^scanning 0\/100\nscanning 10\/100\n/)
    assert.match(o.text(), /uploading\n$/)
    const q = sink()
    const quick = progressReporter(q.s, { tty: false, delayMs: 10_000 })
    quick.update({ stage: 'x', done: 1, total: 1 })
    quick.end()
    assert.equal(q.text(), '')
  })
})
