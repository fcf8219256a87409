// The early upload (src/sync/uplink.ts) with the pusher over a real queue and pack store and a
// recording hub: blocks go up as the store appends them, before their entry is published; the
// push then sends only what is left, and nothing twice; an early upload that failed, or that a
// restarted hub lost, is sent by the pusher itself, and no entry is appended before its blocks.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { PackStore } from '../../src/store/pack-store.js'
import { LocalLog } from '../../src/sync/local-log.js'
import { Pusher } from '../../src/sync/pusher.js'
import { Uplink } from '../../src/sync/uplink.js'
import { AppendedBlocks } from '../../src/sync/new-blocks.js'
import { decodeEntry, readBlockList } from '../../src/sync/entry.js'
import type { Block, BlockTransport } from '../../src/sync/transport.js'
import { readCar } from '../../src/sync/transport-car.js'
import { deriveDriveId, deriveSyncKey } from '../../src/sync/entry-keys.js'
import { device, identity, payload } from './helpers.js'

/** Holds what it is sent; `lose()` forgets it all (a hub killed before its group commit). */
class Hub implements BlockTransport {
  readonly held = new Map<string, Uint8Array>()
  readonly sent: string[] = []
  readonly events: string[] = []
  failPuts = 0
  asked = 0
  async missing (cids: CID[]): Promise<CID[]> { this.asked += cids.length; return cids.filter(c => !this.held.has(c.toString())) }
  async put (blocks: AsyncIterable<Block> | Iterable<Block>): Promise<{ blocks: number, bytes: number }> {
    const got: Block[] = []
    for await (const b of blocks) got.push(b)
    if (this.failPuts > 0) { this.failPuts--; throw new Error('hub went away') }
    for (const b of got) { this.held.set(b.cid.toString(), b.bytes); this.sent.push(b.cid.toString()) }
    this.events.push(`put ${got.length}`)
    return { blocks: got.length, bytes: got.reduce((n, b) => n + b.bytes.length, 0) }
  }

  async * get (): AsyncGenerator<Block> {}
  async close (): Promise<void> {}
  /** As the hub does: an entry only when every block it lists is here. */
  async append (entry: Uint8Array): Promise<void> {
    const e = decodeEntry(entry).entry
    if (e.blocks != null) {
      const list = await readBlockList(e.blocks, cid => this.held.get(cid.toString()))
      if (list.missing != null || !list.cids.every(c => this.held.has(c.toString()))) throw new Error(`entry ${e.seq}: blocks missing`)
    }
    this.events.push(`entry ${e.seq}`)
  }

  lose (): void { this.held.clear() }

  /** The early upload's CAR batches: each block checked against its CID as it is read (readCar). */
  cars = 0
  /** While set, a CAR batch waits for it before it is answered (a slow hub). */
  gate: Promise<void> | null = null
  async putCar (car: Buffer): Promise<void> {
    const got: Block[] = []
    const copy = Buffer.from(car) // the uplink reuses its buffer once answered
    for await (const b of readCar((async function * () { yield copy })())) got.push(b)
    if (this.gate != null) await this.gate
    if (this.failPuts > 0) { this.failPuts--; throw new Error('hub went away') }
    for (const b of got) { this.held.set(b.cid.toString(), b.bytes); this.sent.push(b.cid.toString()) }
    this.cars++
    this.events.push(`car ${got.length}`)
  }
}

/** The pack store with its reads counted: the uplink sends from the appends' bytes, not from reads. */
function counted (store: PackStore): { store: PackStore, reads: () => number } {
  let reads = 0
  const get = store.get.bind(store)
  store.get = async (cid, scratch) => { reads++; return await get(cid, scratch) }
  return { store, reads: () => reads }
}

async function fixture (base: string, hub: Hub, opts: { inFlight?: number, ready?: number } = {}): Promise<{ store: PackStore, log: LocalLog, uplink: Uplink, reads: () => number, write: (blocks: number) => Promise<void>, publish: (n: number) => Promise<void> }> {
  const packs = join(base, 'packs')
  const { store, reads } = counted(await PackStore.open(packs, null))
  const recent = new AppendedBlocks(store)
  const dev = device('alpha', 7)
  const id = identity()
  const log = await LocalLog.open({ dir: join(base, 'out'), packsDir: packs, drive: deriveDriveId(id.driveMaster), syncKey: deriveSyncKey(id.driveMaster), device: { privateKey: dev.key.privateKey, record: dev.record }, recent })
  const uplink = new Uplink(hub, store, { batchBytes: 64 * 1024, lingerMs: 10, ...opts })
  recent.onBlock = (b, body) => uplink.add(b, body)
  // Appended (and so told of) once the pack writer has written them: a flush, as the drive's writes do.
  const write = async (blocks: number): Promise<void> => { for (let i = 0; i < blocks; i++) store.put(randomBytes(20_000)); await store.flush() }
  const publish = async (n: number): Promise<void> => {
    await log.publish({ localSeq: n, time: 1_764_000_000_000 + n, payload: payload(n), watermark: await store.sync() }, [])
  }
  return { store, log, uplink, reads, write, publish }
}

const settle = async (): Promise<void> => await new Promise(resolve => setTimeout(resolve, 200))

test('blocks go up as the store appends them, before their entry exists; the push sends only the entry\'s list and asks about nothing else', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-uplink-'))
  try {
    const hub = new Hub()
    const { store, log, uplink, reads, write, publish } = await fixture(base, hub)
    await write(12)
    await settle()
    assert.equal(hub.sent.length, 12, 'every appended block is on the hub before any entry is published')
    assert.equal(reads(), 0, 'sent from the bytes the pack writer appended: none read back from the pack')
    assert.equal(uplink.totals.copied, 12)
    assert.ok(hub.cars >= 4, `in CAR batches of at most 64 KiB (${hub.cars})`)
    assert.equal(log.state.seq, 0)
    await publish(1)
    await new Pusher({ log, transport: hub, entries: hub, store, uplink }).kick()
    assert.equal(hub.events.at(-1), 'entry 1')
    assert.equal(hub.sent.length, 13, 'the push sent the block list block and none of the 12 again')
    assert.equal(new Set(hub.sent).size, hub.sent.length, 'nothing sent twice')
    assert.equal(hub.asked, 1, 'the hub was asked about the list block only')
    assert.equal(log.state.pushed, 1)
    uplink.stop()
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})

test('an early upload that failed is sent by the push; one a restarted hub lost is found when the entry is refused, and sent again', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-uplink-'))
  try {
    const hub = new Hub()
    const { store, log, uplink, write, publish } = await fixture(base, hub)
    hub.failPuts = 1
    await write(6)
    await settle()
    assert.equal(hub.sent.length, 0, 'the early batch failed')
    await write(3) // while early uploads are off (until a push round succeeds): left to the push
    await settle()
    await publish(1)
    const pusher = new Pusher({ log, transport: hub, entries: hub, store, uplink })
    await pusher.kick()
    assert.equal(hub.events.at(-1), 'entry 1')
    assert.equal(hub.sent.length, 10, 'the push sent all 9 blocks and the list block')
    // Early uploads resumed; then the hub loses what it was sent early (killed before its commit).
    await write(5)
    await settle()
    assert.equal(hub.sent.length, 15, 'early uploads resume after a successful round')
    hub.lose()
    await publish(2)
    await assert.rejects(pusher.kick(), /entry 2: blocks missing/)
    assert.equal(log.state.pushed, 1, 'no entry before its blocks')
    await pusher.kick()
    assert.equal(hub.events.at(-1), 'entry 2')
    assert.equal(log.state.pushed, 2)
    uplink.stop()
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})

test('with the hub slower than the writes, the uplink holds at most its buffers; what found none is read back from the pack later (also when the push asks for it), and nothing goes twice', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-uplink-'))
  try {
    const hub = new Hub()
    let open!: () => void
    hub.gate = new Promise(resolve => { open = resolve })
    // One request in flight, one buffer filling, none waiting: two 64 KiB buffers at most.
    const { store, log, uplink, reads, write, publish } = await fixture(base, hub, { inFlight: 1, ready: 0 })
    let most = 0
    for (let i = 0; i < 10; i++) {
      await write(3)
      most = Math.max(most, uplink.held.buffers)
    }
    await settle()
    assert.ok(most <= 2, `at most two batch buffers held (${most})`)
    assert.equal(hub.sent.length, 0, 'the hub has answered nothing yet')
    assert.ok(uplink.totals.copied <= 6, `only what fits two buffers was copied (${uplink.totals.copied})`)
    // The push starts while the hub is still slow: it leaves the blocks to the uplink and waits.
    await publish(1)
    const pusher = new Pusher({ log, transport: hub, entries: hub, store, uplink })
    const pushed = pusher.kick()
    await settle()
    assert.equal(hub.events.filter(e => e.startsWith('entry')).length, 0, 'no entry before its blocks')
    open()
    hub.gate = null
    await pushed
    assert.equal(hub.sent.length, 31, 'every block went up early, and the push sent only the list block')
    assert.equal(new Set(hub.sent).size, 31, 'nothing sent twice')
    assert.equal(pusher.totals.blocks, 1)
    assert.ok(uplink.totals.readBack >= 24, `the rest read back into the uplink's batches (${uplink.totals.readBack})`)
    assert.equal(reads(), uplink.totals.readBack, 'one read per block read back, none for those copied, none by the push')
    assert.equal(uplink.held.buffers, 0, 'no batch memory held once everything is answered')
    assert.equal(hub.events.at(-1), 'entry 1')
    assert.equal(log.state.pushed, 1)
    uplink.stop()
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})

test('the push waits for blocks copied into a batch that has not gone yet, instead of reading and sending them itself', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-uplink-'))
  try {
    const hub = new Hub()
    const { store, log, uplink, reads, write, publish } = await fixture(base, hub)
    // A long linger: the part-filled batch would wait; the push's settle() sends it at once.
    ;(uplink as unknown as { lingerMs: number }).lingerMs = 60_000
    await write(2)
    assert.equal(hub.sent.length, 0, 'two 20 kB blocks wait in a part-filled batch')
    await publish(1)
    const t0 = Date.now()
    await new Pusher({ log, transport: hub, entries: hub, store, uplink }).kick()
    assert.ok(Date.now() - t0 < 5000)
    assert.deepEqual(hub.events, ['car 2', 'put 1', 'entry 1'], 'the batch went first, then the list block, then the entry')
    assert.equal(reads(), 0)
    uplink.stop()
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})
