// The device side of block transfer: the CAR reader on any chunking and on broken input, and the
// HTTP transport against a hostile hub on 127.0.0.1 that serves wrong, extra or cut-short blocks.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID, cidOf } from '../../src/store/cid.js'
import { carHeader, readCar, sectionPrefix, type Block } from '../../src/sync/transport-car.js'
import { TransportError } from '../../src/sync/transport.js'
import { BufferPool } from '../../src/store/buffer-pool.js'
import { HttpBlockTransport, type DeviceCredentials, type HttpTransportOptions } from '../../src/sync/transport-http.js'
import { newDeviceKey, certifyDevice } from '../../src/keys/identity.js'
import { randomBlocks, carOf } from '../hub/replication-helpers.js'

async function * chunks (b: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size)
}

async function collect (it: AsyncIterable<Block>): Promise<Block[]> {
  const out: Block[] = []
  for await (const b of it) out.push(b)
  return out
}

const failsWith = async (p: Promise<unknown>, code: string, text?: string): Promise<void> => {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TransportError, String(err))
    assert.equal(err.code, code, err.message)
    if (text !== undefined) assert.ok(err.message.includes(text), err.message)
    return true
  })
}

describe('CAR reader', () => {
  it('reads the same blocks whatever the chunking, one byte at a time included', async () => {
    const blocks = randomBlocks(5, 3000)
    const car = carOf(blocks)
    for (const size of [1, 7, 3000, 1 << 20]) {
      const got = await collect(readCar(chunks(car, size)))
      assert.equal(got.length, 5, `chunks of ${size}`)
      got.forEach((b, i) => { assert.ok(b.cid.equals(blocks[i].cid)); assert.ok(Buffer.from(b.bytes).equals(blocks[i].bytes)) })
    }
  })

  it('reads dag-cbor and sha2-256 blocks, and refuses other codecs and hashes', async () => {
    const bytes = dagCbor.encode({ hello: 'entry' })
    const { sha256 } = await import('multiformats/hashes/sha2')
    const cbor: Block = { cid: CID.createV1(0x71, await sha256.digest(bytes)), bytes }
    assert.equal((await collect(readCar(chunks(carOf([cbor]), 5)))).length, 1)
    const pb: Block = { cid: CID.createV1(0x70, await sha256.digest(bytes)), bytes }
    await failsWith(collect(readCar(chunks(carOf([pb]), 64))), 'ERR_CID_UNSUPPORTED')
  })

  it('names the CID of a block whose bytes do not match it, and yields the blocks before it only', async () => {
    const [a, b] = randomBlocks(2, 500)
    const seen: Block[] = []
    const bad = carOf([a, { cid: b.cid, bytes: randomBytes(500) }])
    await failsWith((async () => { for await (const x of readCar(chunks(bad, 100))) seen.push(x) })(), 'ERR_BLOCK_MISMATCH', b.cid.toString())
    assert.equal(seen.length, 1)
  })

  it('refuses a cut stream, a wrong header, an oversized section and a stream over its limit', async () => {
    const car = carOf(randomBlocks(3, 1000))
    await failsWith(collect(readCar(chunks(car.subarray(0, car.length - 10), 64))), 'ERR_CAR_FORMAT')
    const v2 = dagCbor.encode({ version: 2, roots: [] })
    await failsWith(collect(readCar(chunks(Buffer.concat([Buffer.from([v2.length]), v2]), 64))), 'ERR_CAR_FORMAT')
    const huge = Buffer.concat([carHeader(), Buffer.from([0x80, 0x80, 0x80, 0x02])]) // a 4 MiB section
    await failsWith(collect(readCar(chunks(huge, 64))), 'ERR_TOO_LARGE')
    await failsWith(collect(readCar(chunks(car, 64), { maxBytes: 2000 })), 'ERR_TOO_LARGE')
    const padded = Buffer.concat([carHeader(), Buffer.from([0x85, 0x00])]) // 5 as a two-byte varint
    await failsWith(collect(readCar(chunks(padded, 64))), 'ERR_CAR_FORMAT')
  })

  it('reads a stream of declared length into one pooled buffer: the same blocks as views of it, the buffer reused only once every block is released', async () => {
    const blocks = randomBlocks(6, 4000)
    const car = carOf(blocks)
    const pool = new BufferPool(64 * 1024, 2)
    const got = await collect(readCar(chunks(car, 1000), { length: car.length, pool }))
    assert.equal(got.length, 6)
    got.forEach((b, i) => { assert.ok(b.cid.equals(blocks[i].cid)); assert.ok(Buffer.from(b.bytes).equals(blocks[i].bytes)) })
    assert.ok(got.every(b => b.bytes.buffer === got[0].bytes.buffer), 'views of one buffer')
    assert.ok(got.every(b => b.cid.bytes.buffer !== got[0].bytes.buffer), 'CIDs on bytes of their own (kept by indexes after the batch)')
    for (const b of got.slice(0, 5)) b.release?.()
    assert.equal(pool.idle, 0, 'one block is still held')
    got[5].release?.()
    assert.equal(pool.idle, 1)
    // The next batch reuses it: the blocks read before were released, so nothing reads them any more.
    const again = await collect(readCar(chunks(car, 4096), { length: car.length, pool }))
    assert.equal(again[0].bytes.buffer, got[0].bytes.buffer)
  })

  it('refuses, in one buffer as in chunks, a stream shorter or longer than declared and a block that does not match its CID', async () => {
    const [a, b] = randomBlocks(2, 500)
    const car = carOf([a, b])
    await failsWith(collect(readCar(chunks(car, 100), { length: car.length + 1 })), 'ERR_CAR_FORMAT', 'ends after')
    // Declared one byte short: its last section runs past the declared end.
    await failsWith(collect(readCar(chunks(car, 100), { length: car.length - 1 })), 'ERR_CAR_FORMAT', 'ends inside a section')
    // Declared right, then more bytes than that.
    await failsWith(collect(readCar((async function * () { yield * chunks(car, 100); yield Buffer.from([1]) })(), { length: car.length })), 'ERR_CAR_FORMAT', 'longer')
    await failsWith(collect(readCar(chunks(car, 100), { length: car.length, maxBytes: 100 })), 'ERR_TOO_LARGE')
    const bad = carOf([a, { cid: b.cid, bytes: randomBytes(500) }])
    const seen: Block[] = []
    await failsWith((async () => { for await (const x of readCar(chunks(bad, 100), { length: bad.length, pool: new BufferPool(4096, 1) })) seen.push(x) })(), 'ERR_BLOCK_MISMATCH', b.cid.toString())
    assert.equal(seen.length, 1)
  })
})

describe('HTTP transport against a hostile hub', () => {
  // A hub that authenticates anyone and answers fetches with whatever `serve` returns.
  let serve: (cids: CID[]) => Buffer = () => Buffer.alloc(0)
  let server: Server
  let url = ''
  before(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.on('data', d => { body += d })
      req.on('end', () => {
        if (req.url === '/sync/v1/auth/challenge') return res.end(JSON.stringify({ challengeId: randomBytes(16).toString('base64url'), challenge: randomBytes(32).toString('base64url'), expiresIn: 60 }))
        if (req.url === '/sync/v1/auth/token') return res.end(JSON.stringify({ token: randomBytes(32).toString('base64url'), expiresIn: 600 }))
        if (req.url === '/sync/v1/blocks/fetch') return res.end(serve((JSON.parse(body) as { cids: string[] }).cids.map(c => CID.parse(c))))
        if (req.url?.startsWith('/ipfs/') === true) return res.end(serve([CID.parse(req.url.slice(6).split('?')[0])]).subarray(-100))
        res.statusCode = 404
        res.end('{}')
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })

  const creds = (): DeviceCredentials => {
    const deviceKey = newDeviceKey()
    return { userId: randomBytes(16), deviceKey, certificate: certifyDevice(newDeviceKey(), deviceKey.publicKey) }
  }
  const device = (opts: HttpTransportOptions = {}): HttpBlockTransport => new HttpBlockTransport(url, creds(), opts)

  it('refuses a block with the wrong bytes with ERR_BLOCK_MISMATCH naming its CID, in CAR and raw modes', async () => {
    const blocks = randomBlocks(3, 100)
    serve = cids => carOf(cids.map((c, i) => ({ cid: c, bytes: i === 1 ? randomBytes(100) : blocks[i].bytes })))
    const t = device()
    const seen: Block[] = []
    await failsWith((async () => { for await (const b of t.get(blocks.map(b => b.cid))) seen.push(b) })(), 'ERR_BLOCK_MISMATCH', blocks[1].cid.toString())
    assert.equal(seen.length, 0, 'nothing of a batch with a bad block is yielded')
    serve = () => Buffer.from(randomBytes(100))
    const raw = device({ getMode: 'raw' })
    await failsWith(collect(raw.get([blocks[0].cid])), 'ERR_BLOCK_MISMATCH', blocks[0].cid.toString())
    await Promise.all([t.close(), raw.close()])
  })

  it('refuses a block that was not asked for, and a batch cut short', async () => {
    const [a, b, c] = randomBlocks(3, 100)
    serve = () => carOf([a, c])
    const t = device()
    await failsWith(collect(t.get([a.cid, b.cid])), 'ERR_UNEXPECTED_BLOCK', c.cid.toString())
    serve = () => carOf([a])
    await failsWith(collect(t.get([a.cid, b.cid])), 'ERR_UNEXPECTED_BLOCK', b.cid.toString())
    serve = () => Buffer.concat([carHeader(), sectionPrefix(b.cid, 100), Buffer.from(b.bytes.subarray(0, 50))])
    await failsWith(collect(t.get([b.cid])), 'ERR_CAR_FORMAT')
    await t.close()
  })

  it('cuts fetch batches by the sizes the caller gives: many small blocks to a request, by count otherwise', async () => {
    const blocks = randomBlocks(600, 100)
    const byCid = new Map(blocks.map(b => [b.cid.toString(), b]))
    let requests = 0
    serve = cids => { requests++; return carOf(cids.map(c => byCid.get(c.toString())!)) }
    const t = device()
    const sized = await collect(t.get(blocks.map(b => b.cid), { sizeOf: () => 100 }))
    assert.deepEqual(sized.map(b => b.cid.toString()), blocks.map(b => b.cid.toString()))
    assert.equal(requests, 2) // 512 CIDs to a request at most
    requests = 0
    assert.equal((await collect(t.get(blocks.map(b => b.cid)))).length, 600)
    assert.equal(requests, 19) // 32 to a request, sized for 128 KiB blocks (~4 MiB)
    await t.close()
  })

  it('says the hub is unavailable when nothing listens', async () => {
    const t = new HttpBlockTransport('http://127.0.0.1:1', { userId: randomBytes(16), deviceKey: newDeviceKey(), certificate: certifyDevice(newDeviceKey(), newDeviceKey().publicKey) })
    await failsWith(t.missing([cidOf(randomBytes(4))]), 'ERR_UNAVAILABLE')
    await t.close()
  })

  it('refuses plain http to a hub that is not on this machine', () => {
    assert.throws(() => new HttpBlockTransport('http://192.0.2.1:7470', { userId: randomBytes(16), deviceKey: newDeviceKey(), certificate: certifyDevice(newDeviceKey(), newDeviceKey().publicKey) }),
      (err: unknown) => err instanceof TransportError && /https/.test(err.message))
  })
})
