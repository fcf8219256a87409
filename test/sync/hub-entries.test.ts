// The hub's entry store: the device's receipt checks plus "blocks first" (an entry is stored only
// when every block it lists is durable), listing and heads per log, persistence across a reopen,
// revocation, and the long-poll resolving within milliseconds of an append.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { CID } from 'multiformats/cid'
import { EntryStore, type DurableBlocks, type Owner } from '../../src/hub/replication/entries.js'
import { encodeBlockList, encodeDeviceRecord, encodeRevocation, isSyncError, revokeDevice, signEntry, type SyncErrorCode } from '../../src/sync/index.js'
import { deriveDriveId, deriveSyncKey, sealRoot } from '../../src/sync/entry-keys.js'
import { cidOf } from '../../src/store/cid.js'
import { LogWriter, device, identity, otherIdentity, remap } from './helpers.js'
import { certifyDeviceRecord } from '../../src/keys/identity.js'
import { sealDeviceName, openDeviceName } from '../../src/sync/devices.js'

const id = identity()
const drive = deriveDriveId(id.driveMaster)
const owner: Owner = { user: Buffer.alloc(16, 0xaa), identity: id.signing.publicKey }
const laptop = device('laptop', 1)
const phone = device('phone', 2)
const dirs: string[] = []
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'space-hub-entries-')); dirs.push(d); return d }
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

/** An in-memory block store standing in for the hub's: what `put` holds counts as durable. */
class Blocks implements DurableBlocks {
  readonly map = new Map<string, Uint8Array>()
  put (cid: CID, bytes: Uint8Array): void { this.map.set(cid.toString(), bytes) }
  hasBlocks = (cids: CID[]): boolean => cids.every(c => this.map.has(c.toString()))
  getBlock = (cid: CID): Uint8Array | undefined => this.map.get(cid.toString())
}

async function refuses (p: Promise<unknown>, code: SyncErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isSyncError(err), `expected a SyncError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    return true
  })
}

function open (dir = tmp(), blocks = new Blocks()): { store: EntryStore, blocks: Blocks, dir: string } {
  return { store: new EntryStore(dir, blocks), blocks, dir }
}

describe('hub entry store', () => {
  it('stores a log in order, lists entries after a sequence number and reports heads', async () => {
    const { store } = open()
    const w = new LogWriter(laptop)
    const p = new LogWriter(phone)
    const sent = [w.next(), w.next(), w.next()]
    for (const s of sent) assert.equal((await store.append(owner, drive, s.bytes)).status, 'new')
    await store.append(owner, drive, p.next().bytes)
    const listed = store.list(owner.user, drive, laptop.key.publicKey, 1)
    assert.deepEqual(listed.map(e => e.seq), [2, 3])
    assert.deepEqual(listed.map(e => e.cid.toString()), [sent[1].cid.toString(), sent[2].cid.toString()])
    assert.deepEqual(Buffer.from(listed[1].bytes), Buffer.from(sent[2].bytes))
    const heads = store.heads(owner.user, drive)
    assert.equal(heads.length, 2)
    assert.equal(heads.find(h => h.dev.equals(laptop.key.publicKey))?.seq, 3)
    assert.deepEqual(store.list(Buffer.alloc(16, 1), drive, laptop.key.publicKey, 0), [], 'another user sees nothing')
    store.close()
  })

  it('accepts an entry only when every listed block and the list blocks are durable', async () => {
    const { store, blocks } = open()
    const content = Array.from({ length: 5000 }, (_, i) => ({ cid: cidOf(Buffer.from(`c${i}`)), bytes: Buffer.from(`c${i}`) }))
    const list = encodeBlockList(content.map(c => c.cid))
    assert.equal(list.blocks.length, 2)
    const s = new LogWriter(laptop).next({ blocks: list.head })
    await refuses(store.append(owner, drive, s.bytes), 'ERR_SYNC_BLOCKS_MISSING', /entry 1 of device "laptop".*block list block bafyr4i.*not here yet/)
    for (const b of list.blocks) blocks.put(b.cid, b.bytes)
    for (const c of content.slice(0, -1)) blocks.put(c.cid, c.bytes)
    await refuses(store.append(owner, drive, s.bytes), 'ERR_SYNC_BLOCKS_MISSING', /not every one of its 5000 blocks is durable/)
    assert.deepEqual(store.list(owner.user, drive, laptop.key.publicKey, 0), [], 'nothing stored')
    const last = content[content.length - 1]
    blocks.put(last.cid, last.bytes)
    assert.equal((await store.append(owner, drive, s.bytes)).status, 'new')
    store.close()
  })

  it('makes the same refusals as a device, and tells a duplicate of an old entry from a fork', async () => {
    const { store } = open()
    const w = new LogWriter(laptop)
    const sent = [w.next(), w.next(), w.next()]
    for (const s of sent) await store.append(owner, drive, s.bytes)
    assert.equal((await store.append(owner, drive, sent[0].bytes)).status, 'duplicate', 'a retried upload is answered, not refused')
    const fork1 = w.build({ seq: 1, prev: null, time: 5 })
    await refuses(store.append(owner, drive, fork1.bytes), 'ERR_SYNC_FORK', /fork at entry 1: another entry 1/)
    w.next() // 4, never sent
    await refuses(store.append(owner, drive, w.next().bytes), 'ERR_SYNC_SKIP', /entry 5 skips: the highest seen is 3/)
    const w2 = new LogWriter(laptop)
    w2.seq = 3
    w2.prev = sent[1].cid
    await refuses(store.append(owner, drive, w2.build().bytes), 'ERR_SYNC_PREV', /entry 4 does not follow entry 3/)
    const p = new LogWriter(phone)
    await refuses(store.append(owner, drive, remap(p.build().bytes, m => { m.time = 7 })), 'ERR_SYNC_SIGNATURE', /entry 1 of device "phone"/)
    await refuses(store.append(owner, drive, new LogWriter(device('x', 8, otherIdentity())).build({ drive }).bytes), 'ERR_SYNC_CERT', /another identity/)
    await refuses(store.append(owner, Buffer.alloc(16, 5), p.build().bytes), 'ERR_SYNC_DRIVE', /belongs to drive c514/)
    await refuses(store.append(owner, drive, sent[0].bytes, sent[1].cid), 'ERR_SYNC_CID_MISMATCH', /hash to/)
    await refuses(store.append(owner, drive, Buffer.from('garbage')), 'ERR_SYNC_FORMAT', /not dag-cbor/)
    assert.deepEqual(store.heads(owner.user, drive).map(h => h.seq), [3])
    store.close()
  })

  it('accepts a group of entries whole: one durability check of all their blocks, one transaction', async () => {
    const blocks = new Blocks()
    let checks = 0
    const counting: DurableBlocks = { hasBlocks: cids => { checks++; return blocks.hasBlocks(cids) }, getBlock: blocks.getBlock }
    const store = new EntryStore(tmp(), counting)
    const w = new LogWriter(laptop)
    const group = [0, 1, 2, 3].map(i => {
      const content = [cidOf(Buffer.from(`g${i}a`)), cidOf(Buffer.from(`g${i}b`))]
      const list = encodeBlockList(content)
      for (const b of list.blocks) blocks.put(b.cid, b.bytes)
      for (const c of content) blocks.put(c, Buffer.alloc(1))
      return w.next({ blocks: list.head })
    })
    const rs = await store.appendAll(owner, drive, group.map(s => s.bytes))
    assert.deepEqual(rs.map(r => [r.seq, r.status]), [[1, 'new'], [2, 'new'], [3, 'new'], [4, 'new']])
    assert.equal(checks, 1, 'the blocks of the four entries are checked (and made durable) at once')
    assert.deepEqual(store.list(owner.user, drive, laptop.key.publicKey, 0).map(e => e.cid.toString()), group.map(s => s.cid.toString()))
    // Sent again (an answer lost on the way): duplicates, nothing new; a group past them is new.
    const again = await store.appendAll(owner, drive, [...group.slice(2), w.next()].map(s => s.bytes))
    assert.deepEqual(again.map(r => r.status), ['duplicate', 'duplicate', 'new'])
    store.close()
  })

  it('refuses a group as a whole when one of its entries fails a check: nothing of it is stored', async () => {
    const { store, blocks } = open()
    const w = new LogWriter(laptop)
    const first = w.next()
    await store.append(owner, drive, first.bytes)
    // Entry 2 fine, entry 3 a fork of the group's own entry 2's successor chain (prev not entry 2).
    const two = w.next()
    const bad = w.build({ prev: first.cid })
    await refuses(store.appendAll(owner, drive, [two.bytes, bad.bytes]), 'ERR_SYNC_PREV', /entry 3 does not follow entry 2/)
    // A skip inside the group, a bad signature, blocks not here: each refuses the group.
    const skip = new LogWriter(laptop); skip.seq = 3; skip.prev = two.cid
    await refuses(store.appendAll(owner, drive, [two.bytes, skip.build({ seq: 5 }).bytes]), 'ERR_SYNC_SKIP', /entry 5 skips: the highest seen is 2/)
    await refuses(store.appendAll(owner, drive, [two.bytes, remap(w.build().bytes, m => { m.time = 9 })]), 'ERR_SYNC_SIGNATURE', /entry 3 of device "laptop"/)
    const content = [cidOf(Buffer.from('never uploaded'))]
    const list = encodeBlockList(content)
    for (const b of list.blocks) blocks.put(b.cid, b.bytes)
    await refuses(store.appendAll(owner, drive, [two.bytes, w.build({ blocks: list.head }).bytes]), 'ERR_SYNC_BLOCKS_MISSING', /entries 2\.\.3 of device "laptop".*not every one of their 1 blocks is durable/)
    assert.deepEqual(store.list(owner.user, drive, laptop.key.publicKey, 0).map(e => e.seq), [1], 'entry 2 was not stored with any of the refused groups')
    assert.equal((await store.appendAll(owner, drive, [two.bytes, w.next({ prev: two.cid }).bytes]))[1].status, 'new')
    store.close()
  })

  it('of two racing uploads with one sequence number, one is stored and the other is a fork', async () => {
    const blocks = new Blocks()
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    // Both appends wait in hasBlocks, so both pass the first check before either inserts.
    const slow: DurableBlocks = { hasBlocks: async (c) => { await gate; return blocks.hasBlocks(c) }, getBlock: blocks.getBlock }
    const store = new EntryStore(tmp(), slow)
    const list = encodeBlockList([cidOf(Buffer.from('b'))])
    for (const b of list.blocks) blocks.put(b.cid, b.bytes)
    blocks.put(cidOf(Buffer.from('b')), Buffer.from('b'))
    const w = new LogWriter(laptop)
    const a = store.append(owner, drive, w.build({ blocks: list.head, time: 1 }).bytes)
    const b = store.append(owner, drive, w.build({ blocks: list.head, time: 2 }).bytes)
    release()
    const r = await Promise.allSettled([a, b])
    assert.equal(r[0].status, 'fulfilled')
    assert.ok(r[1].status === 'rejected' && isSyncError(r[1].reason, 'ERR_SYNC_FORK'))
    store.close()
  })

  it('keeps entries, devices and revocations across a reopen; refuses a revoked device\'s later entries', async () => {
    const dir = tmp()
    const blocks = new Blocks()
    let store = new EntryStore(dir, blocks)
    const w = new LogWriter(laptop)
    const p = new LogWriter(phone)
    await store.append(owner, drive, w.next().bytes)
    await store.append(owner, drive, w.next().bytes)
    store.putDevice(owner, encodeDeviceRecord(phone.record))
    assert.throws(() => store.putDevice({ ...owner, identity: otherIdentity().signing.publicKey }, encodeDeviceRecord(phone.record)), /another identity/)
    store.close()
    store = new EntryStore(dir, blocks)
    assert.deepEqual(store.list(owner.user, drive, laptop.key.publicKey, 0).map(e => e.seq), [1, 2])
    store.revoke(owner, encodeRevocation(revokeDevice(id.signing, laptop.key.publicKey, 1)))
    assert.throws(() => store.revoke(owner, encodeRevocation(revokeDevice(otherIdentity().signing, laptop.key.publicKey, 0))), /another identity/)
    store.close()
    store = new EntryStore(dir, blocks)
    await refuses(store.append(owner, drive, w.next().bytes), 'ERR_SYNC_REVOKED', /entry 3 of device "laptop".*revoked after entry 1/)
    assert.deepEqual(store.list(owner.user, drive, laptop.key.publicKey, 0).map(e => e.seq), [1], 'nothing served past the revocation')
    assert.deepEqual(store.heads(owner.user, drive).map(h => h.seq), [1])
    await store.append(owner, drive, p.next().bytes)
    const devs = store.devices(owner.user)
    assert.deepEqual(devs.map(d => d.record.name).sort(), ['laptop', 'phone'])
    assert.equal(devs.find(d => d.record.name === 'laptop')?.revocation?.after, 1)
    assert.equal(devs.find(d => d.record.name === 'phone')?.revocation, undefined)
    store.close()
  })

  it('a device\'s sealed record (v2) replaces its record with the name in the clear, never the reverse, and the hub lists it without its name', () => {
    const { store } = open()
    const at = 1_764_000_000_000
    const syncKey = deriveSyncKey(id.driveMaster)
    const clear = certifyDeviceRecord(id.signing, phone.key.publicKey, 'phone', at)
    const sealed = certifyDeviceRecord(id.signing, phone.key.publicKey, 'phone', at, sealDeviceName(syncKey, phone.key.publicKey, at, 'phone'))
    store.putDevice(owner, encodeDeviceRecord(clear))
    assert.equal(store.devices(owner.user)[0].record.name, 'phone')
    store.putDevice(owner, encodeDeviceRecord(sealed))
    store.putDevice(owner, encodeDeviceRecord(clear))
    const [d] = store.devices(owner.user)
    assert.equal(d.record.version, 2)
    assert.equal(d.record.name, '', 'the hub cannot read it')
    assert.equal(openDeviceName(syncKey, d.record), 'phone')
    store.close()
  })

  it('long-poll: resolves at an append to any log of the drive, not at its timeout to any log of the drive', async () => {
    const { store } = open()
    const w = new LogWriter(laptop)
    await store.append(owner, drive, w.next().bytes)
    const known = [{ dev: laptop.key.publicKey, seq: 1 }]
    const immediate = await store.wait(owner.user, drive, [], 5000)
    assert.equal(immediate.changed, true, 'a log past what the caller knows answers at once')
    const t0 = performance.now()
    const quiet = await store.wait(owner.user, drive, known, 50)
    assert.equal(quiet.changed, false)
    assert.ok(performance.now() - t0 >= 45)
    const delays: number[] = []
    for (let i = 0; i < 5; i++) {
      // What the caller holds: laptop at i (1 before the first round), phone at 1 once it exists.
      const holds = i === 0 ? known : [{ dev: laptop.key.publicKey, seq: i }, { dev: phone.key.publicKey, seq: 1 }]
      let woke = false
      const waiting = store.wait(owner.user, drive, holds, 10_000).then(r => { woke = true; return r })
      await new Promise(resolve => setTimeout(resolve, 20))
      assert.equal(woke, false, `round ${i}: woke before any append`)
      const s = i === 0 ? new LogWriter(phone).next() : w.next()
      const appended = performance.now()
      const r = store.append(owner, drive, s.bytes)
      const got = await waiting
      delays.push(performance.now() - appended)
      await r
      assert.equal(got.changed, true)
      if (i === 0) assert.equal(got.heads.length, 2, 'a new log counts')
    }
    console.log(`# long-poll woke ${delays.map(d => d.toFixed(2)).join(', ')} ms after the appends`)
    // Woken by the append, not by a timer (the wait is 10 s); the bound leaves room for a loaded machine.
    assert.ok(Math.max(...delays) < 1000, `woke ${delays.map(d => d.toFixed(2)).join(', ')} ms after the appends`)
    const ac = new AbortController()
    const aborted = store.wait(owner.user, drive, [{ dev: laptop.key.publicKey, seq: 99 }, { dev: phone.key.publicKey, seq: 99 }], 10_000, ac.signal)
    ac.abort()
    assert.equal((await aborted).changed, false)
    store.close()
  })

  it('its data dir holds no key that opens a root, nor a root\'s plaintext', async () => {
    const { store, dir } = open()
    const secretKey = randomBytes(32)
    const syncKey = deriveSyncKey(id.driveMaster)
    const root = { root: { n: '', t: 2, m: 0o755, u: 0, g: 0, a: 1, mt: 1, c: 1, i: randomBytes(16), k: secretKey, d: cidOf(Buffer.from('d')) } }
    const s = signEntry(laptop.key.privateKey, { drive, cert: laptop.record, seq: 1, prev: null, heads: [], root: sealRoot(syncKey, drive, 1, root), blocks: null, time: 1 })
    await store.append(owner, drive, s.bytes)
    store.close()
    const all = Buffer.concat(readdirSync(dir).map(f => readFileSync(join(dir, f))))
    assert.ok(all.includes(Buffer.from(s.bytes)), 'the entry itself is there (the scan reads what the hub wrote)')
    for (const [what, secret] of [['sync key', syncKey], ['drive master', id.driveMaster], ['root directory key', secretKey], ['identity private key', id.signing.privateKey], ['device private key', laptop.key.privateKey]] as const) {
      assert.equal(all.includes(secret), false, `${what} found in the hub's data dir`)
    }
  })
})
