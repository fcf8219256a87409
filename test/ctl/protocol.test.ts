// The control protocol against a real daemon (`space mount` with its socket): handshake, every
// request error, every token error, limits, the socket's permissions, events and progress.
import assert from 'node:assert/strict'
import { statSync, writeFileSync, renameSync, unlinkSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { removeDirs, space } from '../helpers/mount.js'
import { CtlClient } from '../../src/ctl/client.js'
import { isCtlError } from '../../src/ctl/errors.js'
import { MAX_MESSAGE_BYTES } from '../../src/ctl/protocol.js'
import { errCode, Raw, serveDrive, type Served } from './helpers.js'

describe('control socket protocol', () => {
  let d: Served
  const opened: Raw[] = []
  const raw = async (): Promise<Raw> => { const r = await Raw.open(d.sock); opened.push(r); return r }
  const authed = async (token?: string): Promise<Raw> => {
    const r = await raw()
    const h = await r.hello(token ?? d.master)
    assert.equal(h.error, undefined, JSON.stringify(h.error))
    return r
  }
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof space> => space([...args, ...d.args], { env })
  const token = (name: string, allow: string, extra: string[] = []): string => {
    const r = cli(['token', 'create', '--name', name, '--allow', allow, ...extra])
    assert.equal(r.status, 0, r.stderr)
    return r.stdout.trim()
  }

  before(async () => { d = await serveDrive({ handshakeTimeoutMs: 400, idleTimeoutMs: 2500, maxQueued: 8, maxSendBuffer: 65536 }) })
  after(async () => {
    for (const r of opened) r.close()
    await d?.m.cleanup()
    if (d !== undefined) removeDirs(d.dirs)
  })

  it('creates the socket 0600 in a 0700 directory, and the master token hashed, 0600', () => {
    assert.equal(statSync(d.sock).mode & 0o777, 0o600)
    assert.equal(statSync(dirname(d.sock)).mode & 0o777, 0o700)
    assert.equal(statSync(join(d.dirs.config, 'master.token')).mode & 0o777, 0o600)
    assert.equal(statSync(join(d.dirs.config, 'tokens.json')).mode & 0o777, 0o600)
    const table = readFileSync(join(d.dirs.config, 'tokens.json'), 'utf8')
    const secret = d.master.slice('spc1_0123456789abcdef_'.length)
    assert.equal(secret.length, 43)
    assert.ok(!table.includes(secret), 'tokens.json holds no secret, only hashes')
  })

  it('answers hello with versions and the token it saw', async () => {
    const r = await raw()
    const h = await r.hello(d.master)
    assert.equal(h.result.protocol, 1)
    assert.equal(h.result.pid, d.m.pid)
    assert.deepEqual(h.result.token.allow, ['*'])
    assert.equal(h.result.limits.maxMessageBytes, MAX_MESSAGE_BYTES)
    const bad = await r.hello(d.master, 99)
    assert.equal(errCode(bad), 'ERR_PROTOCOL_VERSION')
    assert.deepEqual(bad.error!.data.supported, [1])
  })

  it('refuses requests before hello, and every token problem by name', async () => {
    const r = await raw()
    assert.equal(errCode(await r.call(1, 'status')), 'ERR_HANDSHAKE_REQUIRED')
    assert.equal(errCode(await r.hello(undefined)), 'ERR_TOKEN_MISSING')
    assert.equal(errCode(await r.hello('')), 'ERR_TOKEN_MISSING')
    assert.equal(errCode(await r.hello('not-a-token')), 'ERR_TOKEN_INVALID')
    const wrong = d.master.slice(0, -4) + (d.master.endsWith('AAAA') ? 'BBBB' : 'AAAA')
    const w = await r.hello(wrong)
    assert.equal(errCode(w), 'ERR_TOKEN_INVALID')
    assert.equal(w.error!.code, -32011)
    assert.equal(errCode(await r.call(2, 'status')), 'ERR_HANDSHAKE_REQUIRED', 'a failed hello grants nothing')
    // Five failed hellos end the connection.
    await r.hello('x')
    await r.closed
  })

  it('checks scope, revocation and expiry on every request', async () => {
    const t = token('reader', 'status:read,log')
    const r = await authed(t)
    assert.ok((await r.call(1, 'status')).result.mounted)
    assert.ok(Array.isArray((await r.call(2, 'log')).result.entries), 'a method name in --allow grants that method')
    const f = await r.call(3, 'whoami')
    assert.equal(errCode(f), 'ERR_FORBIDDEN')
    assert.match(f.error!.message, /"reader" may not call "whoami"/)
    assert.equal(errCode(await r.call(4, 'tokens.create', { name: 'x', allow: ['status:read'] })), 'ERR_FORBIDDEN')
    assert.equal(errCode(await r.call(5, 'unmount')), 'ERR_FORBIDDEN', 'and nothing happens')
    assert.equal(cli(['status', '--json']).stdout.includes('"mounted":true'), true)

    assert.equal(cli(['token', 'revoke', 'reader']).status, 0)
    const rv = await r.call(6, 'status')
    assert.equal(errCode(rv), 'ERR_TOKEN_REVOKED', 'revocation reaches open connections')
    assert.match(rv.error!.message, /"reader" was revoked/)
    const r2 = await raw()
    assert.equal(errCode(await r2.hello(t)), 'ERR_TOKEN_REVOKED')

    const short = token('short', 'status:read', ['--expires', '1s'])
    const r3 = await authed(short)
    assert.ok((await r3.call(1, 'status')).result)
    await new Promise(resolve => setTimeout(resolve, 1100))
    assert.equal(errCode(await r3.call(2, 'status')), 'ERR_TOKEN_EXPIRED')
    assert.equal(errCode(await (await raw()).hello(short)), 'ERR_TOKEN_EXPIRED')
  })

  it('maps token errors to exit codes in the CLI', () => {
    const t = token('cli-reader', 'status:read')
    assert.equal(cli(['status'], { SPACE_TOKEN: t }).status, 0)
    let r = cli(['whoami'], { SPACE_TOKEN: t })
    assert.equal(r.status, 48)
    assert.match(r.stderr, /may not call "whoami"/)
    assert.equal(cli(['status'], { SPACE_TOKEN: 'spc1_0000000000000000_' + 'A'.repeat(43) }).status, 45)
    assert.equal(cli(['token', 'revoke', 'cli-reader']).status, 0)
    assert.equal(cli(['status'], { SPACE_TOKEN: t }).status, 46)
    assert.equal(cli(['token', 'revoke', 'nope']).status, 49)
    assert.equal(cli(['token', 'revoke', 'master']).status, 48, 'the master token cannot be revoked')
    const ex = token('cli-exp', 'status:read', ['--expires', '1s'])
    spaceSleep(1100)
    assert.equal(cli(['status'], { SPACE_TOKEN: ex }).status, 47)
    r = cli(['token', 'create', '--name', 'dup', '--allow', 'status:read'])
    assert.equal(cli(['token', 'create', '--name', 'dup', '--allow', 'status:read']).status, 50)
    assert.equal(cli(['token', 'create', '--name', 'bad', '--allow', 'root:all']).status, 2)
    assert.equal(cli(['token', 'create', '--name', 'bad', '--allow', 'status:read', '--expires', 'soon']).status, 2)
    const list = JSON.parse(cli(['token', 'list', '--json']).stdout) as Array<{ name: string, revokedAt: string | null }>
    assert.ok(list.some(x => x.name === 'cli-reader' && x.revokedAt !== null), 'revoked tokens stay listed')
    assert.ok(!JSON.stringify(list).includes('spc1_'), 'list shows no secrets')
  })

  it('lets a token grant only what it holds', async () => {
    const admin = token('admin', 'tokens:admin,status:read')
    const r = await authed(admin)
    const ok = await r.call(1, 'tokens.create', { name: 'sub', allow: ['status:read'] })
    assert.match(ok.result.token, /^spc1_/)
    const esc = await r.call(2, 'tokens.create', { name: 'sub2', allow: ['keys:admin'] })
    assert.equal(errCode(esc), 'ERR_FORBIDDEN')
    assert.equal(errCode(await r.call(3, 'tokens.create', { name: 'star', allow: ['*'] })), 'ERR_INVALID_PARAMS')
  })

  it('answers malformed requests with the JSON-RPC error for each, and keeps the connection', async () => {
    const r = await authed()
    r.send('{not json\n')
    assert.equal((await r.next()).error!.code, -32700)
    r.send('[{"jsonrpc":"2.0","id":1,"method":"status"}]\n')
    assert.equal(errCode(await r.next()), 'ERR_INVALID_REQUEST')
    r.send('42\n')
    assert.equal(errCode(await r.next()), 'ERR_INVALID_REQUEST')
    r.send('{"jsonrpc":"2.0","id":{"a":1},"method":"status"}\n')
    const badId = await r.next()
    assert.equal(errCode(badId), 'ERR_INVALID_REQUEST')
    assert.equal(badId.id, null)
    r.send('{"jsonrpc":"1.0","id":7,"method":"status"}\n')
    assert.deepEqual([errCode(await r.next()), 7], ['ERR_INVALID_REQUEST', 7])
    r.send('{"jsonrpc":"2.0","id":8,"method":12}\n')
    assert.equal(errCode(await r.reply(8)), 'ERR_INVALID_REQUEST')
    const nf = await r.call(9, 'format.disk')
    assert.deepEqual([nf.error!.code, errCode(nf)], [-32601, 'ERR_METHOD_NOT_FOUND'])
    assert.equal(errCode(await r.call(10, 'log', { limit: 'ten' })), 'ERR_INVALID_PARAMS')
    assert.equal(errCode(await r.call(11, 'log', { limit: -1 })), 'ERR_INVALID_PARAMS')
    assert.equal(errCode(await r.call(12, 'log', [5])), 'ERR_INVALID_PARAMS')
    const typo = await r.call(13, 'log', { limt: 5 })
    assert.match(typo.error!.message, /unknown parameter "limt"/)
    assert.equal(errCode(await r.call(14, 'mount', { mountpoint: 5 })), 'ERR_INVALID_PARAMS')
    assert.equal(errCode(await r.call(15, 'tokens.create', { name: 'n', allow: 'status:read' })), 'ERR_INVALID_PARAMS')
    assert.equal(errCode(await r.call(16, 'mount', { mountpoint: '/elsewhere' })), 'ERR_ALREADY_MOUNTED')
    // A notification (no id) runs but gets no answer, even an error.
    r.send('{"jsonrpc":"2.0","method":"no.such"}\n')
    r.send('\n\r\n')
    assert.ok((await r.call(17, 'status')).result.mounted)
    assert.deepEqual(r.messages.filter(m => m.method !== 'progress'), [], 'nothing else was sent')
  })

  it('ends a connection whose message is too large, after saying so', async () => {
    const r = await authed()
    r.send(Buffer.alloc(MAX_MESSAGE_BYTES + 10, 'a'))
    const m = await r.next()
    assert.equal(errCode(m), 'ERR_MESSAGE_TOO_LARGE')
    assert.equal(m.error!.data.limit, MAX_MESSAGE_BYTES)
    await r.closed
    // Just under the limit is parsed (and refused as JSON, not for size).
    const r2 = await authed()
    r2.send('"' + 'b'.repeat(MAX_MESSAGE_BYTES - 3) + '"\n')
    assert.equal(errCode(await r2.next()), 'ERR_INVALID_REQUEST')
  })

  it('drops silent clients, idle clients, half-sent messages and request floods', async () => {
    const silent = await raw()
    const t0 = Date.now()
    const m = await silent.next()
    assert.equal(errCode(m), 'ERR_TIMEOUT')
    assert.match(m.error!.message, /no hello within 400 ms/)
    await silent.closed
    assert.ok(Date.now() - t0 < 3000)

    const idle = await authed()
    assert.match((await idle.next()).error!.message, /idle for 2500 ms/)
    await idle.closed

    const half = await authed()
    half.send('{"jsonrpc":"2.0","id":1,"meth')
    half.close()

    const flood = await authed()
    flood.send(Array.from({ length: 50 }, (_, i) => JSON.stringify({ jsonrpc: '2.0', id: i, method: 'status' })).join('\n') + '\n')
    await flood.closed
    assert.ok(flood.messages.some(x => errCode(x) === 'ERR_BUSY'), 'more than maxQueued waiting requests end the connection')

    const r = await authed()
    assert.ok((await r.call(1, 'status')).result.mounted, 'the daemon serves others throughout')
  })

  it('streams file changes, coalescing writes to one file', async () => {
    const r = await authed()
    assert.deepEqual((await r.call(1, 'events.subscribe')).result, { subscribed: true })
    writeFileSync(d.m.path('ev.txt'), 'x')
    await r.next(m => m.method === 'event' && m.params.path === '/ev.txt')
    // Many writes to one file inside the window: a handful of "updated", not thousands.
    const fd = await import('node:fs').then(f => f.openSync(d.m.path('ev.txt'), 'a'))
    const fs = await import('node:fs')
    for (let i = 0; i < 2000; i++) fs.writeSync(fd, 'y')
    fs.closeSync(fd)
    mkdirSync(d.m.path('dir'))
    renameSync(d.m.path('ev.txt'), d.m.path('dir', 'moved.txt'))
    unlinkSync(d.m.path('dir', 'moved.txt'))
    const removed = await r.next(m => m.method === 'event' && m.params.kind === 'removed')
    assert.equal(removed.params.path, '/dir/moved.txt')
    const events = r.messages.filter(m => m.method === 'event').map(m => m.params)
    const renamed = events.find(e => e.kind === 'renamed')
    assert.deepEqual([renamed.path, renamed.to], ['/ev.txt', '/dir/moved.txt'])
    assert.ok(events.some(e => e.kind === 'created' && e.path === '/dir'))
    const updates = events.filter(e => e.kind === 'updated' && e.path === '/ev.txt').length
    assert.ok(updates >= 1 && updates < 50, `2000 writes coalesced into ${updates} events`)
    assert.ok(events.every(e => typeof e.time === 'number'))
    assert.deepEqual((await r.call(2, 'events.unsubscribe')).result, { subscribed: false })
  })

  it('drops a subscriber that stops reading instead of buffering for it', async () => {
    const slow = await authed()
    await slow.call(1, 'events.subscribe')
    slow.sock.pause() // reads nothing from here on
    const fast = await authed()
    await fast.call(1, 'events.subscribe')
    assert.equal((await fast.call(2, 'status')).result.subscribers, 2)
    // Renames of long names are not coalesced: ~500 bytes of events each, over many windows
    // (the check is per window), ~1.5 MB in all: more than the kernel and the 64 KiB limit hold.
    const a = 'a'.repeat(240)
    const b = 'b'.repeat(240)
    writeFileSync(d.m.path(a), '')
    const fs = await import('node:fs/promises')
    for (let i = 0; i < 3000; i++) {
      await fs.rename(d.m.path(i % 2 === 0 ? a : b), d.m.path(i % 2 === 0 ? b : a))
      if (i % 300 === 299) await new Promise(resolve => setTimeout(resolve, 250))
    }
    await fast.next(m => m.method === 'event' && m.params.kind === 'renamed', 5000)
    assert.equal((await fast.call(3, 'status')).result.subscribers, 1, 'the slow one is gone, the fast one stays')
    slow.sock.resume()
    await Promise.race([slow.closed, new Promise((_resolve, reject) => setTimeout(() => reject(new Error('slow subscriber still connected')), 5000))])
    const got = slow.messages.filter(m => m.method === 'event').length
    assert.ok(got < 3000, `the slow client got ${got} of 3000 events before it was dropped`)
    // If it read in time it was told why (a client that never reads is cut off after 2 s).
    const dropped = slow.messages.find(m => m.method === 'dropped')
    if (dropped !== undefined) assert.match(dropped.params.reason, /reads too slowly/)
    await fs.unlink(d.m.path(a)).catch(async () => await fs.unlink(d.m.path(b)))
  })

  it('streams progress for a long request', async () => {
    const r = await authed()
    const res = await r.call(1, 'status')
    assert.ok(res.result.storeFiles > 0)
    const progress = r.messages.filter(m => m.method === 'progress')
    assert.ok(progress.length > 0)
    assert.equal(progress.at(-1)!.params.id, 1)
    assert.equal(progress.at(-1)!.params.done, progress.at(-1)!.params.total, 'the last one says done')
  })

  it('has a typed client that surfaces errors as CtlError', async () => {
    const c = await CtlClient.connect(d.sock, d.master)
    try {
      await assert.rejects(c.call('whoami'), (e: unknown) => isCtlError(e, 'ERR_KEYS') && e.data.cause === 'ERR_NO_IDENTITY')
      const seen: unknown[] = []
      const st = await c.call('status', {}, { onProgress: p => seen.push(p) }) as { mounted: boolean }
      assert.ok(st.mounted)
      assert.ok(seen.length > 0)
    } finally { c.close() }
    await assert.rejects(CtlClient.connect(d.sock, 'nope'), (e: unknown) => isCtlError(e, 'ERR_TOKEN_INVALID'))
    await assert.rejects(CtlClient.connect(d.sock + '.none', d.master), (e: unknown) => isCtlError(e, 'ERR_NO_DAEMON'))
  })

  it('refuses a second daemon on the same socket, and a socket path that is not a socket', () => {
    const other = join(d.dirs.base, 'other')
    mkdirSync(join(other, 'mnt'), { recursive: true })
    const r = space(['mount', join(other, 'mnt'), '--data-dir', join(other, 'data'), '--config-dir', join(other, 'config'), '--socket', d.sock])
    assert.equal(r.status, 41, r.stderr)
    assert.match(r.stderr, /another daemon answers/)
    const file = join(other, 'plain')
    writeFileSync(file, 'x')
    const r2 = space(['mount', join(other, 'mnt'), '--data-dir', join(other, 'data'), '--config-dir', join(other, 'config'), '--socket', file])
    assert.equal(r2.status, 42, r2.stderr)
    assert.equal(readFileSync(file, 'utf8'), 'x', 'left alone')
  })
})

function spaceSleep (ms: number): void { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms) }
