// The hub's block store and routes on a real `space hub` process on 127.0.0.1, driven by the
// device's HTTP transport and by raw HTTP where the test plays a broken or hostile device.
import assert from 'node:assert/strict'
import { createCipheriv, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { cidOf, CID } from '../../src/store/cid.js'
import { readCar, type Block } from '../../src/sync/transport-car.js'
import { TransportError } from '../../src/sync/transport.js'
import { CAR_TYPE, RAW_TYPE, SYNC_API } from '../../src/sync/transport-protocol.js'
import { startHub, tempDir, type HubProcess } from '../keys/helpers.js'
import { HubBlocks } from '../../src/hub/replication/blocks-store.js'
import { openReplicationDb } from '../../src/hub/replication/blocks-db.js'
import { carOf, deviceToken, newDevice, post, randomBlocks, registerUser, transport, type Device, type User } from './replication-helpers.js'

const root = tempDir('space-replblocks-')
const hubs: HubProcess[] = []
let hub: HubProcess
let alice: User
let aliceDevice: Device
before(async () => {
  hub = await startHub(join(root, 'hub'))
  hubs.push(hub)
  alice = await registerUser(hub.url, 'alice')
  aliceDevice = newDevice(alice.identity)
})
after(async () => {
  for (const h of hubs) await h.stop()
  rmSync(root, { recursive: true, force: true })
})

async function collect (it: AsyncIterable<Block>): Promise<Block[]> {
  const out: Block[] = []
  for await (const b of it) out.push(b)
  return out
}

/** Files under `dir` whose bytes contain `needle`. */
function filesContaining (dir: string, needle: Uint8Array): string[] {
  const hits: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) hits.push(...filesContaining(p, needle))
    else if (readFileSync(p).includes(Buffer.from(needle.buffer, needle.byteOffset, needle.length))) hits.push(p)
  }
  return hits
}

describe('hub blocks', () => {
  it('round trips 64 MiB of random 128 KiB blocks: missing, put, missing again, get as CAR and as raw GETs', async () => {
    const t = transport(hub.url, alice, aliceDevice)
    const blocks = randomBlocks(512)
    const cids = blocks.map(b => b.cid)
    assert.equal((await t.missing(cids)).length, 512)
    const progress: number[] = []
    const put = await t.put(blocks, { onProgress: p => progress.push(p.blocks) })
    assert.deepEqual(put, { blocks: 512, bytes: 64 * 1024 * 1024 })
    assert.ok(progress.length >= 8, `acknowledged in ~8 MiB batches (${progress.length})`)
    assert.deepEqual(await t.missing(cids), [])
    const back = await collect(t.get(cids))
    assert.equal(back.length, 512)
    back.forEach((b, i) => { assert.ok(b.cid.equals(cids[i])); assert.ok(Buffer.from(b.bytes).equals(blocks[i].bytes)) })
    const raw = transport(hub.url, alice, aliceDevice, { getMode: 'raw' })
    const some = await collect(raw.get(cids.slice(0, 40)))
    some.forEach((b, i) => assert.ok(Buffer.from(b.bytes).equals(blocks[i].bytes)))
    await Promise.all([t.close(), raw.close()])
  })

  it('refuses a CAR with one wrong block with a clear error, and stores nothing of it', async () => {
    const t = transport(hub.url, alice, aliceDevice)
    // 1 MiB blocks: the five before the bad one are more than the store buffers before it
    // writes to its pack, so a hub that stored blocks as they came would leave them on disk.
    const good = randomBlocks(9, 1024 * 1024)
    const victim = randomBlocks(1, 4096)[0]
    const wrong: Block = { cid: victim.cid, bytes: randomBytes(4096) }
    const batch = [...good.slice(0, 5), wrong, ...good.slice(5)]
    const token = await deviceToken(hub.url, alice, aliceDevice)
    const res = await fetch(hub.url + SYNC_API.blocks, { method: 'PUT', headers: { 'content-type': CAR_TYPE, authorization: `Bearer ${token}` }, body: new Uint8Array(carOf(batch)) })
    assert.equal(res.status, 400)
    const e = await res.json() as { error: string, message: string }
    assert.equal(e.error, 'cid_mismatch')
    assert.ok(e.message.includes(victim.cid.toString()), e.message)
    assert.match(e.message, /nothing of this batch was stored/)
    // Nothing: not listed as held, not served, not in any file of the data dir.
    assert.equal((await t.missing(batch.map(b => b.cid))).length, 10)
    for (const b of good) assert.deepEqual(filesContaining(hub.dataDir, b.bytes), [], 'a good block of the refused batch was written')
    // The transport reports the same as a typed error naming the block.
    await assert.rejects(t.put(batch), (err: unknown) => err instanceof TransportError && err.code === 'ERR_BLOCK_MISMATCH' && err.message.includes(victim.cid.toString()))
    // The same connection and device go on working.
    await t.put(good)
    assert.deepEqual(await t.missing(good.map(b => b.cid)), [])
    await t.close()
  })

  it('refuses a body over the size cap, a CAR that does not parse, and CIDs it cannot check', async () => {
    const token = await deviceToken(hub.url, alice, aliceDevice)
    const auth = { authorization: `Bearer ${token}` }
    // 34 MiB of good blocks, over the 32 MiB cap: refused on the declared length, and when
    // streamed without one (chunked), once the cap is passed.
    const body = carOf(randomBlocks(34 * 8))
    for (const chunked of [false, true]) {
      const status = await new Promise<number>((resolve, reject) => {
        const u = new URL(hub.url + SYNC_API.blocks)
        const req = request({ hostname: u.hostname, port: u.port, path: u.pathname, method: 'PUT', headers: { ...auth, ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.length) }) } }, r => { r.resume(); resolve(r.statusCode ?? 0) })
        // The hub closes after answering: a write error (EPIPE) is expected; no answer is not.
        req.on('error', () => {})
        req.on('close', () => reject(new Error('closed without an answer')))
        for (let i = 0; i < body.length; i += 1 << 20) req.write(body.subarray(i, i + (1 << 20)))
        req.end()
      })
      assert.equal(status, 413, chunked ? 'chunked' : 'declared')
    }
    const cut = carOf(randomBlocks(2, 1000)).subarray(0, 1500)
    const bad = await fetch(hub.url + SYNC_API.blocks, { method: 'PUT', headers: auth, body: new Uint8Array(cut) })
    assert.equal(bad.status, 400)
    assert.equal(((await bad.json()) as { error: string }).error, 'bad_car')
    const sha = randomBlocks(1, 100)[0]
    const unsupported = await post(hub.url, SYNC_API.missing, { cids: [CID.createV1(0x70, sha.cid.multihash).toString()] }, auth)
    assert.equal(unsupported.status, 400)
    assert.equal(((await unsupported.json()) as { error: string }).error, 'unsupported_cid')
  })

  it('serves blocks under the Trustless Gateway convention: raw and CAR, content types, caching, ETag, 406, 401, 404', async () => {
    const t = transport(hub.url, alice, aliceDevice)
    const [b] = randomBlocks(1, 70_000)
    await t.put([b])
    const token = await deviceToken(hub.url, alice, aliceDevice)
    const auth = { authorization: `Bearer ${token}` }
    const url = `${hub.url}/ipfs/${b.cid.toString()}`

    const raw = await fetch(url + '?format=raw', { headers: auth })
    assert.equal(raw.status, 200)
    assert.equal(raw.headers.get('content-type'), RAW_TYPE)
    assert.equal(raw.headers.get('cache-control'), 'public, max-age=29030400, immutable')
    assert.equal(raw.headers.get('etag'), `"${b.cid.toString()}.raw"`)
    assert.equal(raw.headers.get('content-length'), '70000')
    assert.ok(Buffer.from(await raw.arrayBuffer()).equals(b.bytes))

    const byAccept = await fetch(url, { headers: { ...auth, accept: RAW_TYPE } })
    assert.equal(byAccept.headers.get('content-type'), RAW_TYPE)
    assert.ok(Buffer.from(await byAccept.arrayBuffer()).equals(b.bytes))

    const car = await fetch(url, { headers: { ...auth, accept: `${CAR_TYPE}; version=1` } })
    assert.equal(car.status, 200)
    assert.equal(car.headers.get('content-type'), `${CAR_TYPE}; version=1`)
    assert.equal(car.headers.get('etag'), `"${b.cid.toString()}.car"`)
    let roots: CID[] = []
    const inCar = await collect(readCar(once(new Uint8Array(await car.arrayBuffer())), { onRoots: r => { roots = r } }))
    assert.equal(inCar.length, 1)
    assert.ok(roots[0].equals(b.cid))
    assert.ok(Buffer.from(inCar[0].bytes).equals(b.bytes))

    const again = await fetch(url + '?format=raw', { headers: { ...auth, 'if-none-match': `"${b.cid.toString()}.raw"` } })
    assert.equal(again.status, 304)
    const head = await fetch(url + '?format=raw', { method: 'HEAD', headers: auth })
    assert.equal(head.headers.get('content-length'), '70000')

    assert.equal((await fetch(url, { headers: auth })).status, 406, 'no format asked for')
    assert.equal((await fetch(url + '?format=raw')).status, 401, 'no token')
    const unknown = await fetch(`${hub.url}/ipfs/${cidOf(randomBytes(10)).toString()}?format=raw`, { headers: auth })
    assert.equal(unknown.status, 404)
    assert.equal((await fetch(`${url}/sub/path?format=raw`, { headers: auth })).status, 400)
    await t.close()
  })

  it('lets a user read only blocks they uploaded themselves, and dedups the bytes', async () => {
    const bob = await registerUser(hub.url, 'bob')
    const tb = transport(hub.url, bob, newDevice(bob.identity))
    const ta = transport(hub.url, alice, aliceDevice)
    const [x] = randomBlocks(1, 50_000)
    await tb.put([x])
    // Alice knowing the CID is not enough: it is missing for her, and a 404 like an unknown one.
    assert.equal((await ta.missing([x.cid])).length, 1)
    await assert.rejects(async () => await collect(ta.get([x.cid])), (err: unknown) => err instanceof TransportError && err.code === 'ERR_NOT_FOUND')
    const token = await deviceToken(hub.url, alice, aliceDevice)
    assert.equal((await fetch(`${hub.url}/ipfs/${x.cid.toString()}?format=raw`, { headers: { authorization: `Bearer ${token}` } })).status, 404)
    // Once she uploads it herself she reads it; the pack holds it once.
    await ta.put([x])
    assert.ok(Buffer.from((await collect(ta.get([x.cid])))[0].bytes).equals(x.bytes))
    assert.equal(filesContaining(join(hub.dataDir, 'blocks'), x.bytes).length, 1)
    const packs = readdirSync(join(hub.dataDir, 'blocks'))
    const count = packs.reduce((n, p) => n + countOf(readFileSync(join(hub.dataDir, 'blocks', p)), x.bytes), 0)
    assert.equal(count, 1, 'one copy of the bytes for two users')
    await Promise.all([ta.close(), tb.close()])
  })

  it('holds only the ciphertext it was given: a plaintext marker never reaches its data dir', async () => {
    const marker = Buffer.from('SPACE-PLAINTEXT-MARKER-7f3a9c')
    const key = randomBytes(32)
    const plain = Buffer.concat(Array.from({ length: 2000 }, () => marker))
    const blocks: Block[] = Array.from({ length: 8 }, () => {
      const iv = randomBytes(12)
      const c = createCipheriv('aes-256-gcm', key, iv)
      const bytes = Buffer.concat([iv, c.update(plain), c.final(), c.getAuthTag()])
      return { cid: cidOf(bytes), bytes }
    })
    const t = transport(hub.url, alice, aliceDevice)
    await t.put(blocks)
    await t.close()
    assert.ok(filesContaining(hub.dataDir, blocks[0].bytes).length > 0, 'the scan finds what is there')
    assert.deepEqual(filesContaining(hub.dataDir, marker), [])
    assert.deepEqual(filesContaining(hub.dataDir, key), [])
  })

  it('keeps every acknowledged block across a kill -9 mid-upload; the store reopens and the upload resumes', async () => {
    const dataDir = join(root, 'killed')
    const h1 = await startHub(dataDir)
    hubs.push(h1)
    const carol = await registerUser(h1.url, 'carol')
    const dev = newDevice(carol.identity)
    const acked = randomBlocks(128) // 16 MiB, acknowledged before the kill
    const t1 = transport(h1.url, carol, dev)
    await t1.put(acked)
    const rest = randomBlocks(512)
    let ackedOfRest = 0
    let killed = false
    const interrupted = t1.put(rest, {
      onProgress: p => {
        ackedOfRest = p.blocks
        if (!killed) { killed = true; process.kill(h1.pid, 'SIGKILL') }
      }
    })
    await assert.rejects(interrupted, (err: unknown) => err instanceof TransportError && err.code === 'ERR_UNAVAILABLE')
    await h1.stop()
    await t1.close()
    assert.ok(ackedOfRest > 0 && ackedOfRest < rest.length, `killed mid-upload (${ackedOfRest} of ${rest.length} acknowledged)`)

    const h2 = await startHub(dataDir)
    hubs.push(h2)
    const t2 = transport(h2.url, carol, dev)
    assert.deepEqual(await t2.missing(acked.map(b => b.cid)), [], 'every block acknowledged before the kill')
    const missing = await t2.missing(rest.map(b => b.cid))
    assert.ok(rest.length - missing.length >= ackedOfRest, `at least the acknowledged batches of the interrupted upload are there (${rest.length - missing.length} >= ${ackedOfRest})`)
    // What is held reads back intact; what is missing uploads now.
    const held = rest.filter(b => !missing.some(m => m.equals(b.cid)))
    const back = await collect(t2.get([...acked, ...held].map(b => b.cid)))
    back.forEach((b, i) => assert.ok(Buffer.from(b.bytes).equals([...acked, ...held][i].bytes)))
    await t2.put(rest.filter(b => missing.some(m => m.equals(b.cid))))
    assert.deepEqual(await t2.missing(rest.map(b => b.cid)), [])
    await t2.close()
    await h2.stop()
  })

  it('holds a batch put with durable=with-entry at once without syncing it: lost to a kill -9 until a group commit makes it durable', async () => {
    const dataDir = join(root, 'deferred')
    const h1 = await startHub(dataDir)
    hubs.push(h1)
    const dave = await registerUser(h1.url, 'dave')
    const dev = newDevice(dave.identity)
    const t1 = transport(h1.url, dave, dev)
    const early = randomBlocks(32)
    await t1.put(early, { durable: 'with-entry' })
    // Made durable by the hub's own deadline for pending references (an entry would do it sooner).
    await new Promise(resolve => setTimeout(resolve, 3000))
    const late = randomBlocks(32)
    await t1.put(late, { durable: 'with-entry' })
    assert.deepEqual(await t1.missing(late.map(b => b.cid)), [], 'held (and readable) before it is durable')
    assert.equal((await collect(t1.get([late[0].cid])))[0].bytes.length, late[0].bytes.length)
    process.kill(h1.pid, 'SIGKILL')
    await h1.stop()
    await t1.close()

    const h2 = await startHub(dataDir)
    hubs.push(h2)
    const t2 = transport(h2.url, dave, dev)
    assert.deepEqual(await t2.missing(early.map(b => b.cid)), [], 'the batch the deadline made durable survives')
    assert.equal((await t2.missing(late.map(b => b.cid))).length, late.length, 'the batch no commit covered is missing again, so the device uploads it again')
    await t2.put(late, { durable: 'with-entry' })
    assert.deepEqual(await t2.missing(late.map(b => b.cid)), [])
    await t2.close()
    await h2.stop()
  })

  it('serves a batch fetch without hashing it again: a block damaged on the hub\'s disk reaches the device, which refuses it by its CID', async () => {
    const dataDir = join(root, 'damaged')
    const h1 = await startHub(dataDir)
    hubs.push(h1)
    const erin = await registerUser(h1.url, 'erin')
    const dev = newDevice(erin.identity)
    const t1 = transport(h1.url, erin, dev)
    const blocks = randomBlocks(4)
    await t1.put(blocks)
    await t1.close()
    await h1.stop()
    // Flip one byte in the middle of the third block's body, in its pack.
    const packs = join(dataDir, 'blocks')
    const pack = readdirSync(packs).find(n => n.endsWith('.pack'))!
    const bytes = readFileSync(join(packs, pack))
    const at = bytes.indexOf(Buffer.from(blocks[2].bytes.subarray(0, 64)))
    assert.ok(at > 0)
    bytes[at + 1000] ^= 0xff
    writeFileSync(join(packs, pack), bytes)
    const h2 = await startHub(dataDir)
    hubs.push(h2)
    const t2 = transport(h2.url, erin, dev)
    await assert.rejects(collect(t2.get(blocks.map(b => b.cid))), (err: unknown) => err instanceof TransportError && err.code === 'ERR_BLOCK_MISMATCH' && err.message.includes(blocks[2].cid.toString()))
    await t2.close()
    await h2.stop()
  })

  it('an entry\'s check of its blocks (durable()) runs one group commit for every batch put without syncing, and only then answers true', async () => {
    const dir = join(root, 'group')
    const db = openReplicationDb(dir)
    const blocks = await HubBlocks.open(dir, db)
    const user = randomBytes(16)
    const refsInDb = (): number => Number((db.prepare('SELECT count(*) AS n FROM block_refs').get() as { n: number }).n)
    const a = randomBlocks(8, 4096)
    const b = randomBlocks(8, 4096)
    await blocks.commit(user, a, false)
    await blocks.commit(user, b, false)
    assert.equal(refsInDb(), 0, 'nothing recorded as durable yet')
    assert.ok([...a, ...b].every(x => blocks.has(user, x.cid)), 'but held')
    assert.equal(await blocks.durable(randomBytes(16), [a[0].cid]), false, 'another user\'s blocks are not this one\'s')
    const committing = blocks.durable(user, [...a, ...b].map(x => x.cid))
    // The commit has taken them and waits for the disk: still held, still readable.
    assert.ok([...a, ...b].every(x => blocks.has(user, x.cid)), 'held while the commit runs')
    assert.deepEqual(blocks.missing(user, a.map(x => x.cid)), [])
    assert.ok(Buffer.from((await blocks.get(user, b[0].cid))!).equals(b[0].bytes))
    assert.equal(await committing, true)
    assert.equal(refsInDb(), 16, 'both batches recorded')
    assert.equal(await blocks.durable(user, [randomBlocks(1)[0].cid]), false, 'a block never put is not durable')
    await blocks.close()
    db.close()
  })
})

async function * once (b: Uint8Array): AsyncGenerator<Uint8Array> { yield b }

function countOf (hay: Buffer, needle: Uint8Array): number {
  let n = 0
  for (let i = hay.indexOf(needle); i !== -1; i = hay.indexOf(needle, i + 1)) n++
  return n
}
