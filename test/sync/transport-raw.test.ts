// The fetch route's own HTTP/1.1 client (src/sync/transport-raw.ts) against real servers on
// 127.0.0.1: answers read in place into the caller's buffer, keep-alive reuse, error answers
// (chunked, or ended by a close), a kept connection the server dropped, and an abandoned answer
// whose later bytes must never land in the buffer.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { CID } from '../../src/store/cid.js'
import { TransportError } from '../../src/sync/transport.js'
import { RawHttp, dechunk } from '../../src/sync/transport-raw.js'
import { HttpBlockTransport, type DeviceCredentials } from '../../src/sync/transport-http.js'
import { newDeviceKey, certifyDevice } from '../../src/keys/identity.js'
import { randomBlocks, carOf } from '../hub/replication-helpers.js'

const creds = (): DeviceCredentials => {
  const deviceKey = newDeviceKey()
  return { userId: randomBytes(16), deviceKey, certificate: certifyDevice(newDeviceKey(), deviceKey.publicKey) }
}

describe('fetch answers over the raw client', () => {
  const blocks = randomBlocks(40, 128 * 1024)
  const byCid = new Map(blocks.map(b => [b.cid.toString(), b]))
  let server: Server
  let url = ''
  let connections = 0
  /** The n-th fetch request on a connection (1-based) gets `onFetch(n)`'s say. */
  let onFetch: (n: number, res: import('node:http').ServerResponse, cids: CID[]) => boolean = () => false
  let tokens = 0
  let refuseToken = ''
  before(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.on('data', d => { body += d })
      req.on('end', () => {
        if (req.url === '/sync/v1/auth/challenge') return res.end(JSON.stringify({ challengeId: randomBytes(16).toString('base64url'), challenge: randomBytes(32).toString('base64url'), expiresIn: 60 }))
        if (req.url === '/sync/v1/auth/token') { tokens++; return res.end(JSON.stringify({ token: `t${tokens}`, expiresIn: 600 })) }
        if (req.url === '/sync/v1/blocks/fetch') {
          const sock = req.socket as Socket & { fetches?: number }
          sock.fetches = (sock.fetches ?? 0) + 1
          const cids = (JSON.parse(body) as { cids: string[] }).cids.map(c => CID.parse(c))
          if (req.headers.authorization === `Bearer ${refuseToken}`) { res.writeHead(401, { 'content-type': 'application/json' }); res.end(JSON.stringify({ error: 'unauthorized', message: 'token expired' })); return }
          if (onFetch(sock.fetches, res, cids)) return
          return res.end(carOf(cids.map(c => byCid.get(c.toString())!)))
        }
        res.statusCode = 404
        res.end('{}')
      })
    })
    server.on('connection', () => { connections++ })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })

  it('reads each answer in place into one pooled buffer, and sends request after request on one connection', async () => {
    onFetch = () => false
    const t = new HttpBlockTransport(url, creds(), { inFlight: 1, fetchBlocks: 10 })
    const before = connections
    const got: Array<{ cid: CID, bytes: Uint8Array, release?: () => void }> = []
    for await (const b of t.get(blocks.map(b => b.cid))) got.push(b)
    assert.deepEqual(got.map(b => b.cid.toString()), blocks.map(b => b.cid.toString()))
    for (let i = 0; i < blocks.length; i++) assert.ok(Buffer.from(got[i].bytes).equals(Buffer.from(blocks[i].bytes)), `block ${i} bytes`)
    // Views of a batch buffer (5 MiB, pooled), each with its release; not a buffer per socket read.
    for (const b of got) {
      assert.equal(b.bytes.buffer.byteLength, 5 * 1024 * 1024)
      assert.equal(typeof b.release, 'function')
    }
    assert.equal(new Set(got.slice(0, 10).map(b => b.bytes.buffer)).size, 1, 'one batch, one buffer')
    // Token and challenge through node's client; the four fetches on one connection of their own.
    assert.equal(connections - before, 2)
    for (const b of got) b.release?.()
    await t.close()
  })

  it('gives an error answer sent chunked to the caller as the hub\'s error, and re-authenticates once on a 401', async () => {
    onFetch = (_n, res) => {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.write('{"error":"not_found",')
      res.end('"message":"no block bafk for this user"}')
      return true
    }
    const t = new HttpBlockTransport(url, creds())
    await assert.rejects(async () => { for await (const _ of t.get([blocks[0].cid])) { /* none */ } },
      (err: unknown) => err instanceof TransportError && err.code === 'ERR_NOT_FOUND' && err.message.includes('no block bafk for this user'))
    onFetch = () => false
    // The token the device holds is refused once: a new one is fetched and the request sent again.
    refuseToken = `t${tokens}`
    const before = tokens
    const got = []
    for await (const b of t.get([blocks[1].cid])) got.push(b)
    assert.equal(got.length, 1)
    assert.equal(tokens, before + 1)
    refuseToken = ''
    await t.close()
  })

  it('sends a request again on a new connection when the kept one was dropped by the server', async () => {
    // The second fetch on any connection: the server drops the connection without an answer.
    onFetch = (n, res) => { if (n < 2) return false; res.socket?.destroy(); return true }
    const t = new HttpBlockTransport(url, creds(), { inFlight: 1 })
    const before = connections
    for (let round = 0; round < 3; round++) {
      const got = []
      for await (const b of t.get([blocks[round].cid])) got.push(b)
      assert.equal(got.length, 1)
    }
    // Each round after the first: a dropped kept connection, then a new one.
    assert.equal(connections - before, 2 + 2)
    onFetch = () => false
    await t.close()
  })
})

describe('raw HTTP client', () => {
  let srv: NetServer
  let port = 0
  let handle: (s: Socket) => void = () => {}
  before(async () => {
    srv = createNetServer(s => handle(s))
    await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
    port = (srv.address() as AddressInfo).port
  })
  after(async () => { await new Promise(resolve => srv.close(resolve)) })

  it('closes an abandoned answer\'s connection: bytes the server sends later never land in the buffer', async () => {
    let later: (() => void) | null = null
    const closed = new Promise<void>(resolve => {
      handle = s => {
        s.once('data', () => {
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 200000\r\n\r\n')
          s.write(Buffer.alloc(100_000, 1))
          later = () => { s.write(Buffer.alloc(100_000, 2)) }
        })
        s.on('close', () => resolve())
        s.on('error', () => {})
      }
    })
    const raw = new RawHttp('127.0.0.1', port, 10_000)
    const buf = Buffer.alloc(200_000)
    const a = await raw.request({ method: 'POST', path: '/x', headers: {}, body: Buffer.from('{}'), into: n => n <= buf.length ? buf : null })
    assert.equal(a.status, 200)
    assert.equal(a.length, 200_000)
    let have = 0
    while (have < 100_000) have = (await a.filled!.next()).value as number
    a.close()
    await closed
    buf.fill(0, have)
    ;(later as (() => void) | null)?.()
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(buf.subarray(have).every(x => x === 0), true)
    raw.close()
  })

  it('reads an answer with no length up to the close, and a chunked one whole', async () => {
    handle = s => {
      s.once('data', () => { s.end('HTTP/1.1 500 Internal\r\ncontent-type: text/plain\r\n\r\nhub broke') })
      s.on('error', () => {})
    }
    const raw = new RawHttp('127.0.0.1', port, 10_000)
    const a = await raw.request({ method: 'GET', path: '/', headers: {} })
    assert.equal(a.status, 500)
    assert.equal(a.bytes?.toString(), 'hub broke')
    handle = s => {
      s.once('data', () => {
        s.write('HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n')
        setTimeout(() => s.write('6\r\n world\r\n0\r\n\r\n'), 20)
      })
      s.on('error', () => {})
    }
    const b = await raw.request({ method: 'GET', path: '/', headers: {} })
    assert.equal(b.status, 404)
    assert.equal(b.bytes?.toString(), 'hello world')
    raw.close()
  })

  it('says the hub is unavailable when nothing listens', async () => {
    const raw = new RawHttp('127.0.0.1', 1, 10_000)
    await assert.rejects(raw.request({ method: 'GET', path: '/', headers: {} }), (err: unknown) => err instanceof TransportError && err.code === 'ERR_UNAVAILABLE')
  })

  it('decodes chunked bodies only once they are complete', () => {
    const whole = Buffer.from('3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n')
    assert.equal(dechunk(whole)?.toString(), 'abcde')
    for (let i = 0; i < whole.length; i++) assert.equal(dechunk(whole.subarray(0, i)), null, `cut at ${i}`)
  })
})
