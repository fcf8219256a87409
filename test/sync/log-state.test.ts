// What a device remembers per log, and every refusal of docs/format.md "Checks on receipt": each
// names the device and the sequence numbers and changes nothing; the state survives a reopen
// and a damaged state file is an error, never a fresh start.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { LogState, decodeEntry, isSyncError, revokeDevice, type SyncErrorCode } from '../../src/sync/index.js'
import { deriveDriveId, deriveSyncKey, openRoot } from '../../src/sync/entry-keys.js'
import { nextEntry } from '../../src/sync/log-writer.js'
import { LogWriter, device, identity, otherIdentity, payload, remap } from './helpers.js'

const id = identity()
const drive = deriveDriveId(id.driveMaster)
const idKey = id.signing.publicKey
const laptop = device('laptop', 1)
const phone = device('phone', 2)
const dirs: string[] = []
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'space-logstate-')); dirs.push(d); return d }
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

async function refuses (p: Promise<unknown> | (() => unknown), code: SyncErrorCode, message: RegExp): Promise<void> {
  const check = (err: unknown): boolean => {
    assert.ok(isSyncError(err), `expected a SyncError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    return true
  }
  if (typeof p === 'function') assert.throws(p, check)
  else await assert.rejects(p, check)
}

/** A state that has accepted entries 1..n of a fresh laptop log. */
async function withLog (n: number, state = LogState.inMemory(drive, idKey)): Promise<{ state: LogState, w: LogWriter, entries: ReturnType<LogWriter['next']>[] }> {
  const w = new LogWriter(laptop)
  const entries = []
  for (let i = 0; i < n; i++) {
    const s = w.next()
    assert.equal((await state.accept(s)).status, 'new')
    entries.push(s)
  }
  return { state, w, entries }
}

describe('log state: receipt checks', () => {
  it('accepts a log in order and remembers its highest entry per device', async () => {
    const { state, entries } = await withLog(3)
    const p = new LogWriter(phone)
    await state.accept(p.next())
    assert.equal(state.head(laptop.key.publicKey)?.seq, 3)
    assert.ok(state.head(laptop.key.publicKey)?.cid.equals(entries[2].cid))
    assert.deepEqual(state.heads().map(h => h.seq).sort(), [1, 3])
  })

  it('takes the entry seen last again as a duplicate, nothing new', async () => {
    const { state, entries } = await withLog(2)
    assert.equal((await state.accept(decodeEntry(entries[1].bytes))).status, 'duplicate')
    assert.equal(state.head(laptop.key.publicKey)?.seq, 2)
  })

  it('refuses a replay of an older entry (goes backwards), naming device and sequence numbers', async () => {
    const { state, entries } = await withLog(3)
    await refuses(state.accept(entries[0]), 'ERR_SYNC_REGRESSION', /device "laptop" \([0-9a-f]{8}\): entry 1 goes backwards: entry 3 was already seen/)
  })

  it('refuses a fork: another entry with a sequence number already seen', async () => {
    const { state, w } = await withLog(3)
    const other = w.build({ seq: 3, prev: w.build({ seq: 2 }).entry.prev, time: 99 })
    await refuses(state.accept(other), 'ERR_SYNC_FORK', /device "laptop".*fork at entry 3: another entry 3 \(bafyr4i/)
  })

  it('refuses a skip, also as the first entry of a log never seen', async () => {
    const { state, w } = await withLog(3)
    w.next() // 4, never delivered
    await refuses(state.accept(w.next()), 'ERR_SYNC_SKIP', /entry 5 skips: the highest seen is 3, so 4 comes next/)
    const p = new LogWriter(phone)
    p.next()
    await refuses(state.accept(p.next()), 'ERR_SYNC_SKIP', /device "phone".*entry 2 skips: the highest seen is 0/)
  })

  it('refuses an entry whose prev is not the entry seen before it', async () => {
    const { state, w, entries } = await withLog(3)
    await refuses(state.accept(w.build({ prev: entries[1].cid })), 'ERR_SYNC_PREV', /entry 4 does not follow entry 3/)
  })

  it('refuses a bad signature, another identity\'s certificate and another drive', async () => {
    const { state, entries } = await withLog(1)
    const w = new LogWriter(laptop)
    w.next()
    const tampered = decodeEntry(remap(w.build().bytes, m => { m.time = 1 }))
    await refuses(state.accept(tampered), 'ERR_SYNC_SIGNATURE', /entry 2 of device "laptop".*signature does not verify/)
    const stranger = new LogWriter(device('intruder', 7, otherIdentity()))
    await refuses(state.accept(stranger.build({ drive })), 'ERR_SYNC_CERT', /device "intruder".*entry 1: certified by another identity/)
    await refuses(state.accept(new LogWriter(phone).build({ drive: Buffer.alloc(16, 3) })), 'ERR_SYNC_DRIVE', /entry 1 of device "phone".*belongs to drive 0303/)
    assert.equal(state.head(laptop.key.publicKey)?.seq, 1)
    assert.ok(state.head(laptop.key.publicKey)?.cid.equals(entries[0].cid))
    assert.equal(state.head(phone.key.publicKey), undefined)
  })

  it('refuses a revoked device\'s entries after its revocation, keeps the ones before', async () => {
    const { state, w } = await withLog(2)
    await state.revoke(revokeDevice(id.signing, laptop.key.publicKey, 2))
    await refuses(state.accept(w.next()), 'ERR_SYNC_REVOKED', /entry 3 of device "laptop".*revoked after entry 2/)
    assert.equal(state.head(laptop.key.publicKey)?.seq, 2)
    // A later revocation with a larger `after` does not widen what stays valid.
    await state.revoke(revokeDevice(id.signing, laptop.key.publicKey, 5))
    assert.equal(state.revocation(laptop.key.publicKey)?.after, 2)
    await assert.rejects(state.revoke(revokeDevice(otherIdentity().signing, phone.key.publicKey, 0)), /another identity/)
  })

  it('of two racing entries with one sequence number, one is accepted and the other is a fork', async () => {
    const { state, w } = await withLog(1)
    const a = w.build({ time: 1 })
    const b = w.build({ time: 2 })
    const results = await Promise.allSettled([state.accept(a), state.accept(b)])
    assert.equal(results[0].status, 'fulfilled')
    assert.equal(results[1].status, 'rejected')
    assert.ok(isSyncError((results[1] as PromiseRejectedResult).reason, 'ERR_SYNC_FORK'))
  })
})

describe('log state: persistence', () => {
  it('survives a reopen: heads and revocations stay, a replay is still refused', async () => {
    const path = join(tmp(), 'sync', 'state')
    const { entries, w } = await withLog(3, await LogState.open(path, drive, idKey))
    const s1 = await LogState.open(path, drive, idKey)
    await s1.revoke(revokeDevice(id.signing, phone.key.publicKey, 0))
    const s2 = await LogState.open(path, drive, idKey)
    assert.equal(s2.head(laptop.key.publicKey)?.seq, 3)
    assert.ok(s2.head(laptop.key.publicKey)?.cid.equals(entries[2].cid))
    assert.equal(s2.head(laptop.key.publicKey)?.name, 'laptop')
    assert.equal(s2.revocation(phone.key.publicKey)?.after, 0)
    await refuses(s2.accept(entries[1]), 'ERR_SYNC_REGRESSION', /entry 2 goes backwards: entry 3/)
    assert.equal((await s2.accept(w.next())).status, 'new')
    assert.equal((await LogState.open(path, drive, idKey)).head(laptop.key.publicKey)?.seq, 4)
  })

  it('a refused entry leaves the state file as it was', async () => {
    const path = join(tmp(), 'state')
    const { state, entries } = await withLog(2, await LogState.open(path, drive, idKey))
    const before = readFileSync(path)
    await assert.rejects(state.accept(entries[0]))
    assert.deepEqual(readFileSync(path), before)
  })

  it('an entry whose recording fails is not taken in memory either', async () => {
    const dir = tmp()
    const path = join(dir, 'state')
    const state = await LogState.open(path, drive, idKey)
    mkdirSync(join(path, 'x'), { recursive: true }) // rename onto a non-empty directory fails
    const w = new LogWriter(laptop)
    const e1 = w.next()
    await assert.rejects(state.accept(e1))
    assert.equal(state.head(laptop.key.publicKey), undefined)
    assert.deepEqual(readdirSync(dir), ['state'], 'no temporary file left behind')
    rmSync(path, { recursive: true })
    assert.equal((await state.accept(e1)).status, 'new')
  })

  it('refuses a damaged state file with a clear error and does not reset it', async () => {
    const path = join(tmp(), 'state')
    await withLog(2, await LogState.open(path, drive, idKey))
    const good = readFileSync(path, 'utf8')
    const cases: Array<[string, string, RegExp]> = [
      ['truncated', good.slice(0, good.length / 2), /not JSON/],
      ['a changed sequence number', good.replace('"seq":2', '"seq":9'), /checksum mismatch/],
      ['another version', good.replace('"v":1', '"v":7'), /version 7/],
      ['empty', '', /not JSON/],
      ['not a state file', '{"hello":1}', /not a sync state file/]
    ]
    for (const [what, text, message] of cases) {
      writeFileSync(path, text)
      await refuses(LogState.open(path, drive, idKey), 'ERR_SYNC_STATE_DAMAGED', message)
      assert.equal(readFileSync(path, 'utf8'), text, `${what}: left as it was`)
    }
    writeFileSync(path, good)
    await refuses(LogState.open(path, Buffer.alloc(16, 9), idKey), 'ERR_SYNC_STATE_DAMAGED', /it is drive c514/)
    await refuses(LogState.open(path, drive, otherIdentity().signing.publicKey), 'ERR_SYNC_STATE_DAMAGED', /another identity/)
    assert.equal((await LogState.open(path, drive, idKey)).head(laptop.key.publicKey)?.seq, 2)
  })
})

describe('log writer', () => {
  it('writes the entry after the recorded head, with the other logs\' heads and a root for that position', async () => {
    const state = LogState.inMemory(drive, idKey)
    const keys = { driveId: drive, syncKey: deriveSyncKey(id.driveMaster) }
    const signer = { privateKey: laptop.key.privateKey, record: laptop.record }
    const e1 = nextEntry(state, signer, keys, { root: payload(1), blocks: null, time: 1 })
    assert.equal(e1.entry.seq, 1)
    assert.equal(e1.entry.prev, null)
    await state.accept(e1)
    const ph = new LogWriter(phone).next()
    await state.accept(ph)
    const e2 = nextEntry(state, signer, keys, { root: payload(2), blocks: null })
    assert.equal(e2.entry.seq, 2)
    assert.ok(e2.entry.prev?.equals(e1.cid))
    assert.deepEqual(e2.entry.heads.map(h => [h.dev.toString('hex'), h.seq]), [[phone.key.publicKey.toString('hex'), 1]])
    assert.equal(openRoot(keys.syncKey, drive, 2, e2.entry.root).root.a, 2)
    assert.equal((await state.accept(e2)).status, 'new')
  })
})
