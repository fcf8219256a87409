// The CLI never hands a secret to someone else's socket: a squatter running as another uid that
// made /tmp/space-<uid>/ first, or that listens behind a socket file that looks like ours, gets
// a clear refusal from the CLI and not one byte. And the daemon refuses a socket directory it
// does not own or that others may write to. Real processes; the squatter runs as uid 12345.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, renameSync, rmSync, existsSync, readdirSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { space } from '../helpers/mount.js'
import { prepareSocketDir } from '../../src/ctl/paths.js'
import { isCtlError } from '../../src/ctl/errors.js'

const OTHER = 12345
const FAKE_TOKEN = 'spc1_0123456789abcdef_' + 'A'.repeat(43)

// Listens on argv[1]; prints "listening", then one line per chunk it receives ("got N").
const SQUATTER = `
const net = require('node:net')
const s = net.createServer(c => { c.on('data', d => process.stdout.write('got ' + d.length + '\\n')); c.on('error', () => {}) })
s.listen(process.argv[1], () => process.stdout.write('listening\\n'))
`

interface Squatter { child: ChildProcess, out: () => string }

async function squat (path: string): Promise<Squatter> {
  const child = spawn('setpriv', [`--reuid=${OTHER}`, `--regid=${OTHER}`, '--clear-groups', process.execPath, '-e', SQUATTER, path], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let errText = ''
  child.stdout!.on('data', d => { out += String(d) })
  child.stderr!.on('data', d => { errText += String(d) })
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`squatter did not start: ${errText}`)), 10_000)
    child.stdout!.on('data', () => { if (out.includes('listening')) { clearTimeout(t); resolve() } })
    child.once('exit', code => { clearTimeout(t); reject(new Error(`squatter exited ${String(code)}: ${errText}`)) })
  })
  return { child, out: () => out }
}

function stop (s: Squatter | null): void {
  if (s !== null && s.child.exitCode === null) s.child.kill('SIGKILL') // only the child this test started
}

describe('the control socket of another user', () => {
  const base = mkdtempSync(join(tmpdir(), 'space-trust-'))
  chmodSync(base, 0o755) // the squatter (uid 12345) must reach its directory
  const squatters: Squatter[] = []
  after(() => {
    for (const s of squatters) stop(s)
    rmSync(base, { recursive: true, force: true })
  })

  it('a squatter that made /tmp/space-<uid>/ first gets nothing from the CLI, which says why', async () => {
    // TMPDIR stands in for /tmp; without XDG_RUNTIME_DIR the socket is <tmp>/space-<uid>/ctl.sock.
    const tmp = join(base, 'tmp1')
    mkdirSync(tmp, { mode: 0o1777 })
    chmodSync(tmp, 0o1777)
    const dir = join(tmp, `space-${process.getuid!()}`)
    mkdirSync(dir, { mode: 0o700 })
    chownSync(dir, OTHER, OTHER)
    const s = await squat(join(dir, 'ctl.sock'))
    squatters.push(s)
    const env = { TMPDIR: tmp, XDG_RUNTIME_DIR: '', SPACE_SOCKET: '', SPACE_TOKEN: FAKE_TOKEN, XDG_DATA_HOME: join(base, 'data'), XDG_CONFIG_HOME: join(base, 'config') }

    const st = space(['status'], { env })
    assert.equal(st.status, 42, st.stderr)
    assert.match(st.stderr, /refusing to talk to .*ctl\.sock: the socket belongs to uid 12345, not to you \(uid 0\).*nothing was sent/)

    const mnt = join(base, 'mnt1')
    mkdirSync(mnt)
    const m = space(['mount', mnt], { env })
    assert.equal(m.status, 42, m.stderr)
    assert.doesNotMatch(m.stdout, /mounted/)
    assert.match(m.stderr, /refusing to talk to .*uid 12345/)

    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(s.out().replace('listening\n', ''), '', 'the squatter received nothing')
  })

  it('a socket file and directory that look like ours but lead to another uid\'s process are refused by the peer check', async () => {
    // The squatter binds in its own dir; the file is then moved into our 0700 dir and chowned to
    // us: every path check passes, only SO_PEERCRED tells who is listening.
    const theirs = join(base, 'theirs')
    mkdirSync(theirs)
    chownSync(theirs, OTHER, OTHER)
    const s = await squat(join(theirs, 'ctl.sock'))
    squatters.push(s)
    const ours = join(base, 'ours')
    mkdirSync(ours, { mode: 0o700 })
    const sock = join(ours, 'ctl.sock')
    renameSync(join(theirs, 'ctl.sock'), sock)
    chownSync(sock, 0, 0)
    chmodSync(sock, 0o600)

    const r = space(['status', '--socket', sock, '--token', FAKE_TOKEN, '--data-dir', join(base, 'data2'), '--config-dir', join(base, 'config2')])
    assert.equal(r.status, 42, r.stderr)
    assert.match(r.stderr, /refusing to talk to .*ctl\.sock: the process listening there \(pid \d+\) runs as uid 12345, not as you \(uid 0\)/)
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(s.out().replace('listening\n', ''), '', 'the squatter received nothing')
  })

  it('a socket path that is a symbolic link is refused before connecting', async () => {
    const dir = join(base, 'link')
    mkdirSync(dir, { mode: 0o700 })
    const s = await squat(join(base, 'theirs', 'other.sock'))
    squatters.push(s)
    symlinkSync(join(base, 'theirs', 'other.sock'), join(dir, 'ctl.sock'))
    const r = space(['status', '--socket', join(dir, 'ctl.sock'), '--token', FAKE_TOKEN, '--data-dir', join(base, 'data3'), '--config-dir', join(base, 'config3')])
    assert.equal(r.status, 42, r.stderr)
    assert.match(r.stderr, /it is a symbolic link/)
    assert.equal(s.out().replace('listening\n', ''), '')
  })
})

describe('the daemon\'s socket directory', () => {
  const base = mkdtempSync(join(tmpdir(), 'space-sockdir-'))
  after(() => rmSync(base, { recursive: true, force: true }))

  const refused = async (dir: string, ownDir: boolean, re: RegExp): Promise<void> => {
    await assert.rejects(prepareSocketDir(join(dir, 'ctl.sock'), { ownDir }), (e: unknown) => isCtlError(e, 'ERR_SOCKET_UNSAFE') && re.test((e as Error).message))
  }

  it('refuses a pre-existing directory owned by another uid, and creates nothing in it', async () => {
    const dir = join(base, 'squatted')
    mkdirSync(dir, { mode: 0o700 })
    chownSync(dir, OTHER, OTHER)
    await refused(dir, true, /belongs to uid 12345/)
    assert.deepEqual(readdirSync(dir), [])
  })

  it('refuses a directory of ours that others may write to, even its own runtime dir', async () => {
    const dir = join(base, 'open')
    mkdirSync(dir)
    chmodSync(dir, 0o733)
    await refused(dir, true, /open to other users \(mode 733\)/)
    await refused(dir, false, /open to other users/)
  })

  it('refuses a link in place of the directory', async () => {
    const real = join(base, 'real')
    mkdirSync(real, { mode: 0o700 })
    symlinkSync(real, join(base, 'alias'))
    await refused(join(base, 'alias'), true, /not a directory/)
  })

  it('closes its own runtime dir back to 0700 when it is merely readable by others, and creates a missing one 0700', async () => {
    const dir = join(base, 'readable')
    mkdirSync(dir)
    chmodSync(dir, 0o755)
    await prepareSocketDir(join(dir, 'ctl.sock'), { ownDir: true })
    const fresh = join(base, 'fresh', 'space')
    await prepareSocketDir(join(fresh, 'ctl.sock'), { ownDir: true })
    assert.ok(existsSync(fresh))
  })
})
