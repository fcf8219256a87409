// Clients that flood and never read: the handshake timeout is a deadline from connecting (a
// client sending requests before hello, even ones that get no answer, is cut when it passes),
// and a connection whose unread output passes the cap is cut at once; and the daemon cannot dump
// core. A real daemon and mount.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { removeDirs } from '../helpers/mount.js'
import { Raw, serveDrive, type Served } from './helpers.js'

/** A connection that never reads; resolves with whether (and when) the daemon closed it. */
async function nonReader (path: string): Promise<{ sock: Socket, closedAt: Promise<number> }> {
  const sock = createConnection(path)
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  sock.pause()
  sock.on('error', () => {})
  const t0 = Date.now()
  return { sock, closedAt: new Promise(resolve => sock.once('close', () => resolve(Date.now() - t0))) }
}

const within = async (p: Promise<number>, ms: number): Promise<number | null> =>
  await Promise.race([p, new Promise<null>(resolve => setTimeout(() => resolve(null), ms))])

describe('clients that flood and never read', () => {
  let d: Served
  const socks: Socket[] = []
  // A queue deeper than the requests the output-cap test sends: on a loaded machine the daemon
  // answers slower than they arrive, and a full queue would end that connection another way.
  before(async () => { d = await serveDrive({ handshakeTimeoutMs: 500, maxOutputBytes: 8192, maxQueued: 8192 }) })
  after(async () => {
    for (const s of socks) s.destroy()
    await d?.m.cleanup()
    if (d !== undefined) removeDirs(d.dirs)
  })

  it('the daemon runs with core dumps off (RLIMIT_CORE 0, soft and hard)', () => {
    const line = readFileSync(`/proc/${d.m.pid}/limits`, 'utf8').split('\n').find(l => l.startsWith('Max core file size'))
    assert.match(line ?? '', /^Max core file size\s+0\s+0\s+bytes/)
  })

  it('cuts a client that keeps sending before hello when the handshake deadline passes', async () => {
    const { sock, closedAt } = await nonReader(d.sock)
    socks.push(sock)
    // Requests without an id get no answer, so nothing ever backs up: only a deadline ends this.
    const note = JSON.stringify({ jsonrpc: '2.0', method: 'status' }) + '\n'
    const tick = setInterval(() => { if (!sock.destroyed) sock.write(note) }, 20)
    try {
      const t = await within(closedAt, 4000)
      assert.notEqual(t, null, 'still connected 4 s after connecting, with a 500 ms handshake timeout')
      assert.ok(t! < 1500, `closed after ${t} ms`)
    } finally {
      clearInterval(tick)
    }
  })

  it('cuts a client whose unread answers pass the output cap, without waiting for it', async () => {
    const r = await Raw.open(d.sock)
    assert.equal((await r.hello(d.master)).error, undefined)
    r.sock.pause() // from now on it never reads
    r.sock.removeAllListeners('data')
    // Paced so the request queue never fills (that would end it another way): the kernel's
    // buffer fills first, then ours, and the cap is what cuts it.
    const closed = new Promise<number>(resolve => r.sock.once('close', () => resolve(Date.now())))
    const line = JSON.stringify({ jsonrpc: '2.0', id: 'x'.repeat(200), method: 'status' }) + '\n'
    let sent = 0
    const tick = setInterval(() => { if (!r.sock.destroyed && sent < 4000) { r.sock.write(line); sent++ } }, 1)
    try {
      const at = await Promise.race([closed, new Promise<null>(resolve => setTimeout(() => resolve(null), 15_000))])
      assert.notEqual(at, null, `still connected after ${sent} unread answers`)
      await d.m.waitForLog(/control: connection \d+ dropped: more than 8192 bytes of output unread/, 2000)
    } finally {
      clearInterval(tick)
    }
    const ok = await Raw.open(d.sock)
    assert.equal((await ok.hello(d.master)).error, undefined, 'the daemon serves others')
    assert.ok((await ok.call(1, 'status')).result.mounted)
    ok.close()
  })
})
