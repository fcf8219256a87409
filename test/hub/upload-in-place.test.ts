// Block uploads whose body the hub reads from the socket into its batch buffer itself
// (`Upgrade: space-car-body`, hub/replication/socket-body.ts), on a real `space hub` process:
// the same answers and checks as a plain PUT (every block against its CID, all or nothing),
// the connection closed after each answer, and nothing of a batch cut short stored.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CAR_TYPE, SYNC_API, UPLOAD_UPGRADE } from '../../src/sync/transport-protocol.js'
import { startHub, tempDir, type HubProcess } from '../keys/helpers.js'
import { carOf, deviceToken, newDevice, randomBlocks, registerUser, transport, type Device, type User } from './replication-helpers.js'
import type { Block } from '../../src/sync/transport-car.js'

const root = tempDir('space-inplace-')
let hub: HubProcess | undefined
let alice: User
let device: Device
let token: string
before(async () => {
  hub = await startHub(join(root, 'hub'))
  alice = await registerUser(hub.url, 'alice')
  device = newDevice(alice.identity)
  token = await deviceToken(hub.url, alice, device)
})
after(async () => {
  await hub?.stop()
  rmSync(root, { recursive: true, force: true })
})

interface Answer { status: number, headers: Map<string, string>, body: string, closedByHub: boolean }

/**
 * One request on a connection of its own, as written: the head, then `body` (only its first
 * `cutAfter` bytes, and then the connection dropped, when given). Resolves with the answer read
 * up to the hub's close.
 */
async function rawRequest (head: string, body: Buffer, cutAfter?: number): Promise<Answer> {
  const u = new URL(hub!.url)
  return await new Promise<Answer>((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname)
    const chunks: Buffer[] = []
    let ended = false
    sock.on('data', c => chunks.push(c))
    sock.on('end', () => { ended = true })
    sock.on('error', () => {}) // a write after the hub answered and closed
    sock.on('close', () => {
      const all = Buffer.concat(chunks)
      const end = all.indexOf('\r\n\r\n')
      if (end < 0) { resolve({ status: 0, headers: new Map(), body: '', closedByHub: ended }); return }
      const lines = all.toString('latin1', 0, end).split('\r\n')
      const headers = new Map(lines.slice(1).map(l => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
      resolve({ status: Number(lines[0].split(' ')[1]), headers, body: all.toString('utf8', end + 4), closedByHub: ended })
    })
    sock.once('connect', () => {
      sock.write(head)
      if (cutAfter !== undefined) {
        sock.write(body.subarray(0, cutAfter), () => setTimeout(() => sock.destroy(), 50))
        return
      }
      for (let i = 0; i < body.length; i += 1 << 20) sock.write(body.subarray(i, i + (1 << 20)))
    })
    setTimeout(() => { sock.destroy(); reject(new Error('no answer in 30 s')) }, 30_000).unref()
  })
}

function putHead (length: number | null, opts: { path?: string, method?: string, bearer?: string | null, upgrade?: string } = {}): string {
  const lines = [
    `${opts.method ?? 'PUT'} ${opts.path ?? `${SYNC_API.blocks}?durable=with-entry`} HTTP/1.1`,
    'host: hub',
    'connection: Upgrade',
    `upgrade: ${opts.upgrade ?? UPLOAD_UPGRADE}`,
    `content-type: ${CAR_TYPE}`
  ]
  if (opts.bearer !== null) lines.push(`authorization: Bearer ${opts.bearer ?? token}`)
  if (length !== null) lines.push(`content-length: ${length}`)
  return lines.join('\r\n') + '\r\n\r\n'
}

async function missing (blocks: Block[]): Promise<number> {
  const t = transport(hub!.url, alice, device)
  try {
    return (await t.missing(blocks.map(b => b.cid))).length
  } finally {
    await t.close()
  }
}

describe('uploads read in place', () => {
  it('stores an upload read from the socket, answers as a plain PUT does, and closes the connection after the answer', async () => {
    const blocks = randomBlocks(70) // ~8.8 MiB: a batch as devices send it
    const body = carOf(blocks)
    const a = await rawRequest(putHead(body.length), body)
    assert.equal(a.status, 200, a.body)
    assert.deepEqual(JSON.parse(a.body), { blocks: 70, bytes: 70 * 128 * 1024, added: 70 })
    assert.equal(a.headers.get('connection'), 'close', 'the in-place route answers and closes')
    assert.ok(a.closedByHub)
    assert.equal(await missing(blocks), 0)
    const t = transport(hub!.url, alice, device)
    try {
      let i = 0
      for await (const b of t.get(blocks.map(x => x.cid))) assert.ok(Buffer.from(b.bytes).equals(Buffer.from(blocks[i++].bytes)), `block ${i - 1} comes back as sent`)
      assert.equal(i, 70)
    } finally {
      await t.close()
    }
  })

  it('refuses a batch with one block whose bytes do not match its CID, after reading its body, and stores none of it', async () => {
    const blocks = randomBlocks(20)
    const bad = blocks.map((b, i) => i === 13 ? { cid: b.cid, bytes: Buffer.from(b.bytes).fill(7, 100, 200) } : b)
    const body = carOf(bad)
    const a = await rawRequest(putHead(body.length), body)
    assert.equal(a.status, 400)
    assert.equal(JSON.parse(a.body).error, 'cid_mismatch')
    assert.match(JSON.parse(a.body).message, new RegExp(blocks[13].cid.toString()))
    assert.equal(await missing(blocks), 20, 'nothing of the batch, not even the good blocks before the bad one')
  })

  it('answers a refusal (no token, no length, over the cap, a foreign upgrade, a CAR cut short) with the plain route\'s codes', async () => {
    const body = carOf(randomBlocks(4))
    const noToken = await rawRequest(putHead(body.length, { bearer: null }), body)
    assert.equal(noToken.status, 401)
    assert.equal(JSON.parse(noToken.body).error, 'unauthorized')
    const noLength = await rawRequest(putHead(null), Buffer.alloc(0))
    assert.equal(noLength.status, 411)
    // Declared over the 32 MiB cap: refused once the body's first 64 MiB are read (here: all of it).
    const big = carOf(randomBlocks(34 * 8))
    const tooLarge = await rawRequest(putHead(big.length), big)
    assert.equal(tooLarge.status, 413)
    // Another upgrade (h2c, websocket) is served as a plain request; ours on another route is refused.
    const foreign = await rawRequest(putHead(0, { method: 'GET', path: '/v1/health', upgrade: 'h2c' }), Buffer.alloc(0))
    assert.equal(foreign.status, 200, foreign.body)
    const elsewhere = await rawRequest(putHead(0, { method: 'GET', path: '/v1/health' }), Buffer.alloc(0))
    assert.equal(elsewhere.status, 400)
    const cut = carOf(randomBlocks(2, 1000))
    const short = await rawRequest(putHead(1500), cut.subarray(0, 1500)) // ends inside a section
    assert.equal(short.status, 400)
    assert.equal(JSON.parse(short.body).error, 'bad_car')
  })

  it('stores nothing of an upload whose connection drops mid-body, and stores the next one intact in the reused buffer', async () => {
    const first = randomBlocks(60)
    const body = carOf(first)
    const cut = await rawRequest(putHead(body.length), body, 3 * 1024 * 1024)
    assert.equal(cut.status, 0, 'no answer to a body cut short')
    assert.equal(await missing(first), 60)
    for (let round = 0; round < 3; round++) {
      const next = randomBlocks(60)
      const b = carOf(next)
      const a = await rawRequest(putHead(b.length), b)
      assert.equal(a.status, 200, a.body)
      const t = transport(hub!.url, alice, device)
      try {
        let i = 0
        for await (const got of t.get(next.map(x => x.cid))) assert.ok(Buffer.from(got.bytes).equals(Buffer.from(next[i++].bytes)))
      } finally {
        await t.close()
      }
    }
  })

  it('ends an upload at once when its client half-closes mid-body, and stores nothing of it', async () => {
    const blocks = randomBlocks(40)
    const body = carOf(blocks)
    const u = new URL(hub!.url)
    const started = Date.now()
    await new Promise<void>((resolve, reject) => {
      const sock = connect(Number(u.port), u.hostname)
      sock.on('error', () => {})
      sock.on('data', () => {})
      sock.on('close', () => resolve())
      sock.once('connect', () => { sock.write(putHead(body.length)); sock.write(body.subarray(0, body.length >> 1), () => sock.end()) })
      setTimeout(() => { sock.destroy(); reject(new Error('the hub kept a half-closed upload open for 20 s')) }, 20_000).unref()
    })
    assert.ok(Date.now() - started < 10_000, `closed after ${Date.now() - started} ms`)
    assert.equal(await missing(blocks), 40)
  })

  it('is what the device transport uses over plain http, and a plain PUT still works beside it', async () => {
    for (const uploadInPlace of [true, false]) {
      const blocks = randomBlocks(40)
      const t = transport(hub!.url, alice, device, { uploadInPlace })
      try {
        await t.put(blocks, { durable: 'with-entry' })
        assert.equal((await t.missing(blocks.map(b => b.cid))).length, 0, `uploadInPlace ${String(uploadInPlace)}`)
      } finally {
        await t.close()
      }
    }
  })
})
