// Device log entries: round trips, the strict decoder's refusals (each with its stable code),
// sealed roots bound to drive and position, device and revocation records, block list chains,
// the frozen derivation vector and the frozen entry fixture (test/fixtures/sync/).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { cidOf } from '../../src/store/cid.js'
import { certifyDeviceRecord } from '../../src/keys/identity.js'
import {
  checkDeviceRecord, checkRevocation, decodeBlockListBlock, decodeDeviceRecord, decodeEntry, decodeRevocation,
  encodeBlockList, encodeDeviceRecord, encodeRevocation, readBlockList, revokeDevice, verifyEntry, BLOCK_LIST_MAX,
  dagCid, defaultDeviceName, isSyncError, type SyncErrorCode
} from '../../src/sync/index.js'
import { sealDeviceName, openDeviceName, DeviceNames, SEALED_NAME_LEN } from '../../src/sync/devices.js'
import { deriveDriveId, deriveSyncKey, openRoot, sealRoot } from '../../src/sync/entry-keys.js'
import { LogWriter, device, identity, otherIdentity, payload, remap } from './helpers.js'
import * as cbor from '@ipld/dag-cbor'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

function refuses (fn: () => unknown, code: SyncErrorCode, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSyncError(err), `expected a SyncError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (message !== undefined) assert.match(err.message, message)
    return true
  })
}

describe('entry encoding', () => {
  const laptop = device('laptop', 1)
  const phone = device('phone', 2)

  it('round-trips a signed entry: same fields, a dag-cbor BLAKE3 CID, a valid signature', () => {
    const w = new LogWriter(laptop)
    const p = new LogWriter(phone)
    const ph = p.next()
    const first = w.next()
    const s = w.next({ heads: [{ dev: phone.key.publicKey, seq: 1, cid: ph.cid }] })
    const d = decodeEntry(s.bytes)
    assert.ok(d.cid.equals(s.cid))
    assert.equal(d.cid.code, 0x71)
    assert.equal(d.cid.multihash.code, 0x1e)
    assert.match(d.cid.toString(), /^bafyr4i/)
    assert.equal(d.entry.seq, 2)
    assert.equal(String(d.entry.prev), String(first.cid))
    assert.deepEqual(d.entry.heads.map(h => [h.dev.toString('hex'), h.seq, h.cid.toString()]), [[phone.key.publicKey.toString('hex'), 1, ph.cid.toString()]])
    assert.equal(d.entry.cert.name, 'laptop')
    assert.deepEqual(d.entry.dev, laptop.key.publicKey)
    verifyEntry(d, { drive: w.drive, identity: identity().signing.publicKey })
  })

  it('sorts heads by device key when signing', () => {
    const w = new LogWriter(laptop)
    const a = new LogWriter(device('a', 9)).next()
    const b = new LogWriter(device('b', 3)).next()
    const s = w.next({ heads: [{ dev: a.entry.dev, seq: 1, cid: a.cid }, { dev: b.entry.dev, seq: 1, cid: b.cid }] })
    const devs = s.entry.heads.map(h => h.dev.toString('hex'))
    assert.deepEqual(devs, [...devs].sort())
  })

  it('refuses an unknown version, a missing, extra or mistyped field with their codes', () => {
    const s = new LogWriter(laptop).next()
    refuses(() => decodeEntry(remap(s.bytes, m => { m.v = 2 })), 'ERR_SYNC_VERSION', /version 2/)
    refuses(() => decodeEntry(remap(s.bytes, m => { delete m.time })), 'ERR_SYNC_FORMAT', /no field "time"/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.extra = 1 })), 'ERR_SYNC_FORMAT', /unknown field "extra"/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.seq = '1' })), 'ERR_SYNC_FORMAT', /"seq"/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.seq = -1 })), 'ERR_SYNC_FORMAT', /"seq"/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.drive = new Uint8Array(15) })), 'ERR_SYNC_FORMAT', /"drive" must be 16 bytes/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.sig = new Uint8Array(63) })), 'ERR_SYNC_FORMAT', /"sig"/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.cert.extra = 1 })), 'ERR_SYNC_FORMAT', /"cert".*unknown field/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.prev = s.cid })), 'ERR_SYNC_FORMAT', /null exactly at sequence 1/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.seq = 0 })), 'ERR_SYNC_FORMAT', /start at 1/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.blocks = cidOf(Buffer.from('x')) })), 'ERR_SYNC_FORMAT', /"blocks" must be a CIDv1 dag-cbor/)
    refuses(() => decodeEntry(cbor.encode([1, 2])), 'ERR_SYNC_FORMAT', /not a map/)
    refuses(() => decodeEntry(Buffer.from('not cbor at all')), 'ERR_SYNC_FORMAT')
    refuses(() => decodeEntry(Buffer.alloc(1024 * 1024 + 1)), 'ERR_SYNC_FORMAT', /at most 1048576/)
  })

  it('refuses heads that are unsorted, repeated, or name the writer itself', () => {
    const w = new LogWriter(laptop)
    const a = new LogWriter(device('a', 9)).next()
    const b = new LogWriter(device('b', 3)).next()
    const s = w.next({ heads: [{ dev: a.entry.dev, seq: 1, cid: a.cid }, { dev: b.entry.dev, seq: 1, cid: b.cid }] })
    refuses(() => decodeEntry(remap(s.bytes, m => { m.heads.reverse() })), 'ERR_SYNC_FORMAT', /sorted by device key/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.heads[1] = m.heads[0] })), 'ERR_SYNC_FORMAT', /one per device/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.heads = [[m.dev, 1, a.cid]] })), 'ERR_SYNC_FORMAT', /writer's own log/)
    refuses(() => decodeEntry(remap(s.bytes, m => { m.heads = [[m.dev, 1]] })), 'ERR_SYNC_FORMAT', /head 0/)
  })

  it('refuses non-canonical CBOR (a non-minimal integer) and bytes that do not match the expected CID', () => {
    const s = new LogWriter(laptop).next()
    const b = Buffer.from(s.bytes)
    assert.deepEqual([...b.subarray(0, 4)], [0xab, 0x61, 0x76, 0x01]) // map(11), "v", 1
    const loose = Buffer.concat([b.subarray(0, 3), Buffer.from([0x18, 0x01]), b.subarray(4)])
    refuses(() => decodeEntry(loose), 'ERR_SYNC_FORMAT')
    const other = new LogWriter(phoneLike()).next()
    refuses(() => decodeEntry(s.bytes, other.cid), 'ERR_SYNC_CID_MISMATCH', /hash to/)
    assert.ok(decodeEntry(s.bytes, s.cid).cid.equals(s.cid))
  })

  it('a changed field breaks the signature; another drive and another identity are refused', () => {
    const w = new LogWriter(laptop)
    const s = w.next()
    const ctx = { drive: w.drive, identity: identity().signing.publicKey }
    refuses(() => verifyEntry(decodeEntry(remap(s.bytes, m => { m.time = m.time + 1 })), ctx), 'ERR_SYNC_SIGNATURE', /entry 1 of device "laptop" \([0-9a-f]{8}\)/)
    refuses(() => verifyEntry(s, { ...ctx, drive: Buffer.alloc(16, 7) }), 'ERR_SYNC_DRIVE', /entry 1 of device "laptop".*belongs to drive/)
    const stranger = device('laptop', 1, otherIdentity())
    const forged = new LogWriter(stranger).next({ drive: w.drive })
    refuses(() => verifyEntry(forged, ctx), 'ERR_SYNC_CERT', /another identity/)
    // A certificate lifted from another device: the record names a key that did not sign.
    const lifted = decodeEntry(remap(s.bytes, m => { m.dev = device('x', 5).key.publicKey }))
    refuses(() => verifyEntry(lifted, ctx), 'ERR_SYNC_CERT', /carries the certificate of device "laptop"/)
  })
})

function phoneLike (): ReturnType<typeof device> { return device('phone', 2) }

describe('sealed root', () => {
  const id = identity()
  const drive = deriveDriveId(id.driveMaster)
  const key = deriveSyncKey(id.driveMaster)

  it('derives the frozen drive id and sync key from the all-zero test identity', () => {
    assert.equal(drive.toString('hex'), DRIVE_ID_VECTOR)
    assert.equal(key.toString('hex'), SYNC_KEY_VECTOR)
  })

  it('opens only with its key, drive and sequence number', () => {
    const sealed = sealRoot(key, drive, 3, payload(3))
    const back = openRoot(key, drive, 3, sealed)
    assert.equal(back.root.n, '')
    assert.ok((back.root.d as CID).equals(payload(3).root.d as CID))
    refuses(() => openRoot(key, drive, 4, sealed), 'ERR_SYNC_ROOT', /entry 4 fails authentication/)
    refuses(() => openRoot(key, Buffer.alloc(16), 3, sealed), 'ERR_SYNC_ROOT')
    refuses(() => openRoot(deriveSyncKey(otherIdentity().driveMaster), drive, 3, sealed), 'ERR_SYNC_ROOT')
  })

  it('carries the link table reference when there is one', () => {
    const links = { i: Buffer.alloc(16, 4), k: Buffer.alloc(32, 5), d: cidOf(Buffer.from('links')) }
    const back = openRoot(key, drive, 1, sealRoot(key, drive, 1, { ...payload(1), links }))
    assert.deepEqual(Buffer.from(back.links!.i), links.i)
    assert.ok(back.links!.d.equals(links.d))
  })
})

describe('device and revocation records', () => {
  const id = identity()
  const dev = device('laptop', 1)

  it('a device record round-trips and verifies against its identity only', () => {
    const back = decodeDeviceRecord(encodeDeviceRecord(dev.record))
    assert.equal(back.name, 'laptop')
    checkDeviceRecord(back, id.signing.publicKey, dev.key.publicKey)
    assert.throws(() => checkDeviceRecord(back, otherIdentity().signing.publicKey), (e: unknown) => isSyncError(e, 'ERR_SYNC_CERT'))
    const renamed = decodeDeviceRecord(remap(encodeDeviceRecord(dev.record), m => { m.name = 'desktop' }))
    assert.throws(() => checkDeviceRecord(renamed, id.signing.publicKey), /signature on its certificate does not verify/)
  })

  it('a v2 device record seals its name: the record and its encoding hold no name, only the identity\'s devices open it, and the seal is bound to device and time', () => {
    const syncKey = deriveSyncKey(id.driveMaster)
    const at = 1_764_000_000_000
    const sealed = sealDeviceName(syncKey, dev.key.publicKey, at, 'laptop')
    assert.equal(sealed.length, SEALED_NAME_LEN)
    assert.deepEqual(sealDeviceName(syncKey, dev.key.publicKey, at, 'laptop'), sealed, 'the same name seals to the same bytes')
    assert.equal(sealDeviceName(syncKey, dev.key.publicKey, at, 'x'.repeat(64)).length, SEALED_NAME_LEN, 'every name seals to one length')
    const rec = certifyDeviceRecord(id.signing, dev.key.publicKey, 'laptop', at, sealed)
    const bytes = encodeDeviceRecord(rec)
    assert.equal(Buffer.from(bytes).includes(Buffer.from('laptop')), false, 'the encoded record holds no name')
    const back = decodeDeviceRecord(bytes)
    assert.equal(back.version, 2)
    assert.equal(back.name, '', 'decoded without the key, the name is unknown')
    checkDeviceRecord(back, id.signing.publicKey, dev.key.publicKey) // the hub's check needs no name
    assert.equal(openDeviceName(syncKey, back), 'laptop')
    assert.equal(new DeviceNames(syncKey).of(back), 'laptop')
    assert.equal(back.name, 'laptop')
    assert.equal(openDeviceName(deriveSyncKey(otherIdentity().driveMaster), decodeDeviceRecord(bytes)), null, 'another identity\'s key opens nothing')
    // Moved to another device or time, the seal does not open; a flipped byte breaks the signature.
    assert.equal(openDeviceName(syncKey, { ...decodeDeviceRecord(bytes), devicePublicKey: device('other', 9).key.publicKey }), null)
    assert.equal(openDeviceName(syncKey, { ...decodeDeviceRecord(bytes), issuedAt: at + 1 }), null)
    const flipped = decodeDeviceRecord(remap(bytes, m => { const n = Buffer.from(m.name as Uint8Array); n[20] ^= 1; m.name = n }))
    assert.throws(() => checkDeviceRecord(flipped, id.signing.publicKey), /signature on its certificate does not verify/)
    assert.equal(openDeviceName(syncKey, flipped), null)
    // A v2 record whose name is not 93 bytes is malformed.
    refuses(() => decodeDeviceRecord(remap(bytes, m => { m.name = Buffer.alloc(92) })), 'ERR_SYNC_FORMAT')
    refuses(() => decodeDeviceRecord(remap(bytes, m => { m.name = 'laptop' })), 'ERR_SYNC_FORMAT')
  })

  it('a device name takes 1 to 64 bytes without control characters', () => {
    assert.throws(() => certifyDeviceRecord(id.signing, dev.key.publicKey, ''), RangeError)
    assert.throws(() => certifyDeviceRecord(id.signing, dev.key.publicKey, 'x'.repeat(65)), RangeError)
    assert.throws(() => certifyDeviceRecord(id.signing, dev.key.publicKey, 'a\nb'), RangeError)
    certifyDeviceRecord(id.signing, dev.key.publicKey, 'é'.repeat(32))
  })

  it('a default device name is the hostname, cleaned and cut to 64 bytes on a character boundary', () => {
    assert.equal(defaultDeviceName('laptop\n'), 'laptop')
    const long = defaultDeviceName('é'.repeat(40))
    assert.equal(long, 'é'.repeat(32))
    assert.equal(defaultDeviceName('\u0001'), 'device')
    certifyDeviceRecord(id.signing, dev.key.publicKey, defaultDeviceName())
  })

  it('a revocation round-trips and verifies against its identity only', () => {
    const r = revokeDevice(id.signing, dev.key.publicKey, 3, 1_764_000_000_000)
    const back = decodeRevocation(encodeRevocation(r))
    assert.equal(back.after, 3)
    checkRevocation(back, id.signing.publicKey)
    assert.throws(() => checkRevocation(back, otherIdentity().signing.publicKey), /another identity/)
    // Keys out of canonical order ("id" before "at"): cborg decodes it, the re-encoding check refuses it.
    const b = Buffer.from(encodeRevocation(r))
    assert.deepEqual([...b.subarray(0, 7)], [0xa6, 0x61, 0x76, 0x01, 0x62, 0x61, 0x74]) // map(6), "v", 1, "at"
    const at = b.subarray(4, 4 + 3 + 9)
    const idPair = b.subarray(16, 16 + 3 + 2 + 32)
    assert.deepEqual([...idPair.subarray(0, 3)], [0x62, 0x69, 0x64])
    const swapped = Buffer.concat([b.subarray(0, 4), idPair, at, b.subarray(16 + 37)])
    refuses(() => decodeRevocation(swapped), 'ERR_SYNC_FORMAT', /not canonical/)
    const moved = decodeRevocation(remap(encodeRevocation(r), m => { m.after = 9 }))
    assert.throws(() => checkRevocation(moved, id.signing.publicKey), /signature does not verify/)
  })
})

describe('block lists', () => {
  const cids = Array.from({ length: 2 * BLOCK_LIST_MAX + 10 }, (_, i) => cidOf(Buffer.from(`block ${i}`)))

  it('chains long lists and reads back every CID sorted, once', async () => {
    const { head, blocks } = encodeBlockList([...cids, cids[0], cids[1]])
    assert.equal(blocks.length, 3)
    assert.ok(head!.equals(blocks[0].cid))
    const store = new Map(blocks.map(b => [b.cid.toString(), b.bytes]))
    const r = await readBlockList(head!, c => store.get(c.toString()))
    assert.equal(r.cids.length, cids.length)
    assert.deepEqual(r.listBlocks.map(String), blocks.map(b => String(b.cid)))
    assert.equal(r.missing, null)
    const sorted = [...cids].sort((a, b) => Buffer.compare(a.bytes, b.bytes)).map(String)
    assert.deepEqual(r.cids.map(String), sorted)
  })

  it('names the first missing list block; an empty list is null', async () => {
    const { head, blocks } = encodeBlockList(cids)
    const r = await readBlockList(head!, c => c.equals(blocks[2].cid) ? undefined : blocks.find(b => b.cid.equals(c))?.bytes)
    assert.ok(r.missing?.equals(blocks[2].cid))
    assert.equal(encodeBlockList([]).head, null)
  })

  it('refuses a tampered list block, an unsorted chain, and a CID that is not a raw block', async () => {
    const { blocks } = encodeBlockList(cids.slice(0, 5))
    const tampered = remap(blocks[0].bytes, m => { m.b.pop() })
    refuses(() => decodeBlockListBlock(blocks[0].cid, tampered), 'ERR_SYNC_CID_MISMATCH')
    const unsorted = cbor.encode({ v: 1, b: [cids[0], cids[0]], next: null })
    await assert.rejects(readBlockList(dagCid(unsorted), () => unsorted), /sorted and appear once/)
    const notRaw = cbor.encode({ v: 1, b: [dagCid(unsorted)], next: null })
    refuses(() => decodeBlockListBlock(dagCid(notRaw), notRaw), 'ERR_SYNC_FORMAT', /raw/)
    assert.throws(() => encodeBlockList([dagCid(unsorted)]), /raw/)
  })
})

describe('frozen entry fixture (test/fixtures/sync)', () => {
  it('decodes, verifies and opens the entries made by make-entries.mjs', () => {
    const dir = `${ROOT}test/fixtures/sync/`
    const meta = JSON.parse(readFileSync(dir + 'entries.json', 'utf8')) as { entries: Array<{ file: string, cid: string, seq: number }>, identity: string, drive: string, phone: { file: string, cid: string }, blockList: { file: string, cid: string } }
    const id = identity()
    assert.equal(meta.identity, id.signing.publicKey.toString('hex'))
    const drive = deriveDriveId(id.driveMaster)
    assert.equal(meta.drive, drive.toString('hex'))
    let prev: CID | null = null
    for (const f of meta.entries) {
      const s = decodeEntry(readFileSync(dir + f.file), CID.parse(f.cid))
      verifyEntry(s, { drive, identity: id.signing.publicKey })
      assert.equal(s.entry.seq, f.seq)
      assert.equal(String(s.entry.prev), String(prev))
      const root = openRoot(deriveSyncKey(id.driveMaster), drive, s.entry.seq, s.entry.root)
      assert.equal(root.root.t, 2)
      prev = s.cid
    }
    assert.equal(meta.entries.length, 2)
    const e2 = decodeEntry(readFileSync(dir + 'entry-2.cbor'))
    assert.equal(String(e2.entry.heads[0].cid), meta.phone.cid)
    verifyEntry(decodeEntry(readFileSync(dir + meta.phone.file), CID.parse(meta.phone.cid)), { drive, identity: id.signing.publicKey })
    const e1 = decodeEntry(readFileSync(dir + 'entry-1.cbor'))
    assert.equal(String(e1.entry.blocks), meta.blockList.cid)
    assert.equal(decodeBlockListBlock(CID.parse(meta.blockList.cid), readFileSync(dir + meta.blockList.file)).cids.length, 2)
    const rec = decodeDeviceRecord(readFileSync(dir + 'device-record.cbor'))
    checkDeviceRecord(rec, id.signing.publicKey, e1.entry.dev)
    assert.equal(rec.name, 'fixture-laptop')
    const rev = decodeRevocation(readFileSync(dir + 'revocation.cbor'))
    checkRevocation(rev, id.signing.publicKey)
    assert.equal(rev.after, 1)
  })
})

const DRIVE_ID_VECTOR = 'c514a29a43dae56e59fad39c7a21bf84'
const SYNC_KEY_VECTOR = '3388f141ffa860cf305b8835b60b24f001ce6d52ba281ef28f05633a36c5b180'

describe('tampering', () => {
  it('every single bit flipped anywhere in an entry is refused with a SyncError, never accepted or crashed on', () => {
    const dir = `${ROOT}test/fixtures/sync/`
    const good = readFileSync(dir + 'entry-2.cbor')
    const id = identity()
    const ctx = { drive: deriveDriveId(id.driveMaster), identity: id.signing.publicKey }
    const codes = new Map<string, number>()
    for (let i = 0; i < good.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Buffer.from(good)
        bad[i] ^= 1 << bit
        try {
          verifyEntry(decodeEntry(bad), ctx)
          assert.fail(`byte ${i} bit ${bit} flipped: accepted`)
        } catch (err) {
          assert.ok(isSyncError(err), `byte ${i} bit ${bit} flipped: ${String(err)}`)
          codes.set(err.code, (codes.get(err.code) ?? 0) + 1)
        }
      }
    }
    assert.ok((codes.get('ERR_SYNC_SIGNATURE') ?? 0) > 0 && (codes.get('ERR_SYNC_FORMAT') ?? 0) > 0, JSON.stringify([...codes]))
  })
})
