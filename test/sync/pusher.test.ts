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

test('the next group\'s blocks go up while the previous group\'s entries are being appended; entries stay in order', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-pusher-'))
  try {
    const { store, log, publish } = await fixture(base)
    // 700 blocks per entry: a group holds one entry (1,024 listed blocks at most).
    for (let n = 1; n <= 3; n++) await publish(n, 700)
    const hub = new RecordingHub()
    // The hub takes its time over each entry (its disk sync): 150 ms an entry.
    const slow = { append: async (entry: Uint8Array): Promise<void> => { hub.events.push(`entry ${decodeEntry(entry).entry.seq} starts`); await new Promise(resolve => setTimeout(resolve, 150)); await hub.append(entry) } }
    const transport: BlockTransport = {
      missing: async c => await hub.missing(c),
      put: async b => { hub.events.push('put starts'); return await hub.put(b) },
      get: () => hub.get(),
      close: async () => {}
    }
    await new Pusher({ log, transport, entries: slow, store }).kick()
    const at = (e: string, from = 0): number => hub.events.indexOf(e, from)
    const secondPut = at('put starts', at('put starts') + 1)
    assert.ok(secondPut > at('entry 1 starts') && secondPut < at('entry 1'), `group 2 goes up while entry 1 is appended: ${hub.events.join(', ')}`)
    assert.deepEqual(hub.events.filter(e => /^entry \d$/.test(e)), ['entry 1', 'entry 2', 'entry 3'])
    assert.ok(at('entry 2 starts') > at('entry 1') && at('entry 3 starts') > at('entry 2'), 'each entry after the one before it')
    assert.equal(log.state.pushed, 3)
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})

test('when an entry is refused, the next group\'s upload stops there and none of its entries is appended', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-pusher-'))
  try {
    const { store, log, publish } = await fixture(base)
    for (let n = 1; n <= 3; n++) await publish(n, 700)
    const hub = new RecordingHub()
    const refusing = { append: async (entry: Uint8Array): Promise<void> => { await new Promise(resolve => setTimeout(resolve, 50)); if (decodeEntry(entry).entry.seq === 1) throw new Error('hub refused entry 1'); await hub.append(entry) } }
    await assert.rejects(new Pusher({ log, transport: hub, entries: refusing, store }).kick(), /refused entry 1/)
    assert.ok(!hub.events.some(e => e.startsWith('entry')), hub.events.join(', '))
    assert.equal(log.state.pushed, 0)
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})

test('a group\'s entries are recorded as pushed together; when one is refused, those before it are recorded and their lists removed', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-pusher-'))
  try {
    const { store, log, publish } = await fixture(base)
    for (let n = 1; n <= 4; n++) await publish(n, 3)
    const hub = new RecordingHub()
    const third = { append: async (entry: Uint8Array): Promise<void> => { if (decodeEntry(entry).entry.seq === 3) throw new Error('hub refused entry 3'); await hub.append(entry) } }
    await assert.rejects(new Pusher({ log, transport: hub, entries: third, store }).kick(), /refused entry 3/)
    assert.deepEqual(hub.events, ['put 16', 'entry 1', 'entry 2'])
    assert.deepEqual({ pushed: log.state.pushed, pending: log.pending() }, { pushed: 2, pending: [3, 4] })
    assert.deepEqual((await log.entry(1)).list, [], 'a pushed entry\'s block list is gone')
    assert.ok((await log.entry(3)).list.length > 0, 'a pending one keeps it')
    await new Pusher({ log, transport: hub, entries: hub, store }).kick()
    assert.deepEqual(hub.events.slice(-2), ['entry 3', 'entry 4'])
    assert.equal(log.state.pushed, 4)
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})

test('a group\'s entries go to a hub that takes groups in one request; a refused group is sent again one by one, so those before the refusal get in', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-pusher-'))
  try {
    const { store, log, publish } = await fixture(base)
    for (let n = 1; n <= 3; n++) await publish(n, 2)
    const hub = new RecordingHub()
    const grouping = {
      append: async (entry: Uint8Array): Promise<void> => await hub.append(entry),
      appendGroup: async (entries: Uint8Array[]): Promise<void> => {
        const seqs = entries.map(e => decodeEntry(e).entry.seq)
        if (seqs.includes(5)) throw new Error('hub refused the group: entry 5')
        hub.events.push(`group ${seqs.join(',')}`)
      }
    }
    await new Pusher({ log, transport: hub, entries: grouping, store }).kick()
    assert.deepEqual(hub.events, ['put 9', 'group 1,2,3'])
    assert.equal(log.state.pushed, 3)
    for (let n = 4; n <= 6; n++) await publish(n, 2)
    const refusing = { ...grouping, append: async (entry: Uint8Array): Promise<void> => { if (decodeEntry(entry).entry.seq === 5) throw new Error('hub refused entry 5'); await hub.append(entry) } }
    await assert.rejects(new Pusher({ log, transport: hub, entries: refusing, store }).kick(), /refused entry 5/)
    assert.deepEqual(hub.events.slice(2), ['put 9', 'entry 4'])
    assert.deepEqual({ pushed: log.state.pushed, pending: log.pending() }, { pushed: 4, pending: [5, 6] })
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})
