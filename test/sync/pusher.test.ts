// The pusher over a real queue (LocalLog over a real pack store) and a recording hub: several
// pending entries go up as one upload, each entry is appended only after the upload holding its
// blocks was acknowledged, in order, and a failed upload appends none of them.
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
import { decodeEntry } from '../../src/sync/entry.js'
import type { Block, BlockTransport } from '../../src/sync/transport.js'
import { deriveDriveId, deriveSyncKey } from '../../src/sync/entry-keys.js'
import { device, identity, payload } from './helpers.js'

class RecordingHub implements BlockTransport {
  readonly held = new Set<string>()
  readonly events: string[] = []
  failPut = false
  async missing (cids: CID[]): Promise<CID[]> { return cids.filter(c => !this.held.has(c.toString())) }
  async put (blocks: AsyncIterable<Block> | Iterable<Block>): Promise<{ blocks: number, bytes: number }> {
    let n = 0; let bytes = 0
    for await (const b of blocks) { n++; bytes += b.bytes.length; if (!this.failPut) this.held.add(b.cid.toString()) }
    if (this.failPut) throw new Error('hub went away')
    this.events.push(`put ${n}`)
    return { blocks: n, bytes }
  }
  async * get (): AsyncGenerator<Block> {}
  async close (): Promise<void> {}
  async append (entry: Uint8Array): Promise<void> { this.events.push(`entry ${decodeEntry(entry).entry.seq}`) }
}

async function fixture (base: string): Promise<{ store: PackStore, log: LocalLog, publish: (n: number, blocks: number) => Promise<void> }> {
  const packs = join(base, 'packs')
  const store = await PackStore.open(packs, null)
  const dev = device('alpha', 7)
  const id = identity()
  const log = await LocalLog.open({ dir: join(base, 'out'), packsDir: packs, drive: deriveDriveId(id.driveMaster), syncKey: deriveSyncKey(id.driveMaster), device: { privateKey: dev.key.privateKey, record: dev.record } })
  const publish = async (n: number, blocks: number): Promise<void> => {
    for (let i = 0; i < blocks; i++) store.put(randomBytes(3000))
    await log.publish({ localSeq: n, time: 1_764_000_000_000 + n, payload: payload(n), watermark: await store.sync() }, [])
  }
  return { store, log, publish }
}

test('pending entries go up as one upload, and each entry is appended after it, in order', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-pusher-'))
  try {
    const { store, log, publish } = await fixture(base)
    for (let n = 1; n <= 3; n++) await publish(n, 5)
    const hub = new RecordingHub()
    await new Pusher({ log, transport: hub, entries: hub, store }).kick()
    // 15 content blocks and each entry's block list block.
    assert.deepEqual(hub.events, ['put 18', 'entry 1', 'entry 2', 'entry 3'])
    assert.deepEqual({ pushed: log.state.pushed, pending: log.pending() }, { pushed: 3, pending: [] })
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})

test('a failed upload appends none of its entries, and the retry sends only what the hub lacks', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-pusher-'))
  try {
    const { store, log, publish } = await fixture(base)
    await publish(1, 4)
    await publish(2, 4)
    const hub = new RecordingHub()
    hub.failPut = true
    const pusher = new Pusher({ log, transport: hub, entries: hub, store })
    await assert.rejects(pusher.kick(), /hub went away/)
    assert.deepEqual(hub.events, [])
    assert.equal(log.state.pushed, 0)
    hub.failPut = false
    for (const c of (await log.entry(1)).list) hub.held.add(c.cid.toString()) // acknowledged before the failure
    await pusher.kick()
    assert.deepEqual(hub.events, ['put 9', 'entry 1', 'entry 2'])
    assert.equal(log.state.pushed, 2)
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})
