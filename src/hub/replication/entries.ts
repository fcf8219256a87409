// The hub's entry store: per (user, drive, device log) the signed entries it accepted, after the
// same receipt checks a device makes and only once every block an entry lists is durable here
// [S1, S2]; listing after a sequence number; and a long-poll wait for any new entry of a drive.
// Service level, no HTTP: the routes (and device authentication) wrap it. It sees public keys,
// CIDs and sealed roots only; it imports nothing that holds a drive key [I14].
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { CID } from 'multiformats/cid'
import {
  SyncError, checkDeviceRecord, checkNotRevoked, checkRevocation, checkSequence, decodeDeviceRecord, decodeEntry,
  decodeRevocation, deviceLabel, encodeDeviceRecord, readBlockList, verifyEntry,
  type CheckResult, type DeviceRecord, type Revocation, type SignedEntry
} from '../../sync/index.js'

export const ENTRIES_DB_FILE = 'entries.sqlite'
const SCHEMA_VERSION = 1

/** What the store needs of the hub's block store: the consumer's slice. */
export interface DurableBlocks {
  /** True when every one of `cids` is durable (fsync'd) in the block store, as `user`'s. */
  hasBlocks: (cids: CID[], user: Uint8Array) => Promise<boolean> | boolean
  /** The bytes of a durable block of `user`'s, or undefined; used to read block list blocks. */
  getBlock: (cid: CID, user: Uint8Array) => Promise<Uint8Array | undefined> | Uint8Array | undefined
}

/** Who is writing: the authenticated hub user and the identity public key of that account. */
export interface Owner { user: Uint8Array, identity: Uint8Array }

export interface StoredEntry { dev: Buffer, seq: number, cid: CID, bytes: Buffer }
export interface LogHeadRow { dev: Buffer, seq: number, cid: CID }
export interface DeviceInfo { record: DeviceRecord, revocation?: Revocation }
export interface WaitResult { changed: boolean, heads: LogHeadRow[] }

const buf = (v: unknown): Buffer => Buffer.from(v as Uint8Array)
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex')

export class EntryStore {
  private readonly db: DatabaseSync
  private readonly waiters = new Map<string, Set<() => void>>()

  constructor (dataDir: string, private readonly blocks: DurableBlocks, private readonly now: () => number = Date.now) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    this.db = new DatabaseSync(join(dataDir, ENTRIES_DB_FILE))
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;')
    const version = (this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version
    if (version > SCHEMA_VERSION) throw new Error(`hub entry database schema ${version} is newer than this build (${SCHEMA_VERSION})`)
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS drives (
        user BLOB NOT NULL, drive BLOB NOT NULL, identity BLOB NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (user, drive));
      CREATE TABLE IF NOT EXISTS entries (
        user BLOB NOT NULL, drive BLOB NOT NULL, dev BLOB NOT NULL, seq INTEGER NOT NULL,
        cid BLOB NOT NULL, bytes BLOB NOT NULL, received_at INTEGER NOT NULL,
        PRIMARY KEY (user, drive, dev, seq));
      CREATE TABLE IF NOT EXISTS devices (
        user BLOB NOT NULL, dev BLOB NOT NULL, record BLOB NOT NULL, issued_at INTEGER NOT NULL,
        PRIMARY KEY (user, dev));
      CREATE TABLE IF NOT EXISTS revocations (
        user BLOB NOT NULL, dev BLOB NOT NULL, after INTEGER NOT NULL, at INTEGER NOT NULL, record BLOB NOT NULL,
        PRIMARY KEY (user, dev));
      PRAGMA user_version = ${SCHEMA_VERSION};`)
  }

  close (): void {
    for (const set of this.waiters.values()) for (const wake of set) wake()
    this.waiters.clear()
    this.db.close()
  }

  /**
   * Accepts one entry of drive `drive` from `owner`, or throws a SyncError (nothing stored).
   * An entry identical to one stored is a duplicate: answered as accepted, nothing new.
   */
  async append (owner: Owner, drive: Uint8Array, bytes: Uint8Array, expected?: CID): Promise<CheckResult> {
    return (await this.appendAll(owner, drive, [bytes], expected))[0]
  }

  /**
   * Accepts a group of entries of drive `drive` (one device's next entries, in order) as one:
   * each gets every receipt check an entry alone gets (signature, certificate, chain: the second
   * follows the first, ...), the blocks all of them list are made durable together (one group
   * commit) and the entries are recorded in one transaction (one fsync). Refused as a whole: a
   * SyncError naming the entry at fault, and nothing of the group is stored.
   */
  async appendAll (owner: Owner, drive: Uint8Array, entries: Uint8Array[], expected?: CID): Promise<CheckResult[]> {
    const signed = entries.map((b, i) => decodeEntry(b, i === 0 ? expected : undefined))
    const first = this.checkAll(owner, drive, signed)
    if (first.every(r => r.status === 'duplicate')) return first
    await this.checkBlocks(signed.filter((_, i) => first[i].status === 'new'), owner.user)
    // The awaits above let other appends run: check again and insert without yielding.
    const results = this.checkAll(owner, drive, signed)
    const fresh = signed.map((s, i) => ({ s, bytes: entries[i] })).filter((_, i) => results[i].status === 'new')
    if (fresh.length === 0) return results
    this.db.exec('BEGIN IMMEDIATE')
    try {
      this.db.prepare('INSERT OR IGNORE INTO drives (user, drive, identity, created_at) VALUES (?, ?, ?, ?)').run(owner.user, drive, owner.identity, this.now())
      const insert = this.db.prepare('INSERT INTO entries (user, drive, dev, seq, cid, bytes, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      for (const { s, bytes } of fresh) {
        insert.run(owner.user, drive, s.entry.dev, s.entry.seq, s.cid.bytes, bytes, this.now())
        this.storeDevice(owner.user, s.entry.cert)
      }
      this.db.exec('COMMIT')
    } catch (err) {
      this.db.exec('ROLLBACK')
      throw err
    }
    this.wake(owner.user, drive)
    return results
  }

  /** Records a device (its identity-signed record) before or besides its entries: `space devices`. */
  putDevice (owner: Owner, recordBytes: Uint8Array): DeviceRecord {
    const rec = decodeDeviceRecord(recordBytes)
    checkDeviceRecord(rec, owner.identity)
    this.storeDevice(owner.user, rec)
    return rec
  }

  /** Records a revocation signed by the owner's identity; the device's later entries are refused. */
  revoke (owner: Owner, recordBytes: Uint8Array): Revocation {
    const r = decodeRevocation(recordBytes)
    checkRevocation(r, owner.identity)
    const known = this.revocation(owner.user, r.devicePublicKey)
    if (known !== undefined && known.after <= r.after) return known
    this.db.prepare(`INSERT INTO revocations (user, dev, after, at, record) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(user, dev) DO UPDATE SET after = excluded.after, at = excluded.at, record = excluded.record`)
      .run(owner.user, r.devicePublicKey, r.after, r.at, recordBytes)
    return r
  }

  /** Every revoked (user, device): what device authentication refuses, loaded at start. */
  allRevoked (): Array<{ user: Buffer, dev: Buffer }> {
    return (this.db.prepare('SELECT user, dev FROM revocations').all() as Array<{ user: Uint8Array, dev: Uint8Array }>).map(r => ({ user: buf(r.user), dev: buf(r.dev) }))
  }

  /** A user's revocation records as they were signed (for devices to check entries against). */
  revocationRecords (user: Uint8Array): Buffer[] {
    return (this.db.prepare('SELECT record FROM revocations WHERE user = ? ORDER BY at, dev').all(user) as Array<{ record: Uint8Array }>).map(r => buf(r.record))
  }

  revocation (user: Uint8Array, dev: Uint8Array): Revocation | undefined {
    const row = this.db.prepare('SELECT record FROM revocations WHERE user = ? AND dev = ?').get(user, dev) as { record: Uint8Array } | undefined
    return row === undefined ? undefined : decodeRevocation(buf(row.record))
  }

  /** This user's devices, each with its revocation if any, ordered by issue time. */
  devices (user: Uint8Array): DeviceInfo[] {
    const rows = this.db.prepare('SELECT dev, record FROM devices WHERE user = ? ORDER BY issued_at, dev').all(user) as Array<{ dev: Uint8Array, record: Uint8Array }>
    return rows.map(r => {
      const revocation = this.revocation(user, buf(r.dev))
      const record = decodeDeviceRecord(buf(r.record))
      return revocation === undefined ? { record } : { record, revocation }
    })
  }

  /** Entries of one log with seq > `after`, in order, at most `limit`; none past a revocation. */
  list (user: Uint8Array, drive: Uint8Array, dev: Uint8Array, after: number, limit = 1000): StoredEntry[] {
    const cap = this.revocation(user, dev)?.after ?? Number.MAX_SAFE_INTEGER
    const rows = this.db.prepare('SELECT seq, cid, bytes FROM entries WHERE user = ? AND drive = ? AND dev = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?')
      .all(user, drive, dev, after, cap, limit) as Array<{ seq: number, cid: Uint8Array, bytes: Uint8Array }>
    return rows.map(r => ({ dev: Buffer.from(dev), seq: Number(r.seq), cid: CID.decode(buf(r.cid)), bytes: buf(r.bytes) }))
  }

  /** The newest entry of every log of a drive (a revoked log: its last valid one), by device key. */
  heads (user: Uint8Array, drive: Uint8Array): LogHeadRow[] {
    const rows = this.db.prepare('SELECT dev, MAX(seq) AS seq FROM entries WHERE user = ? AND drive = ? GROUP BY dev ORDER BY dev')
      .all(user, drive) as Array<{ dev: Uint8Array, seq: number }>
    const out: LogHeadRow[] = []
    for (const r of rows) {
      const dev = buf(r.dev)
      const seq = Math.min(Number(r.seq), this.revocation(user, dev)?.after ?? Number.MAX_SAFE_INTEGER)
      const cid = this.cidAt(user, drive, dev, seq)
      if (cid !== undefined) out.push({ dev, seq, cid })
    }
    return out
  }

  /**
   * Long-poll: resolves as soon as some log of the drive is past what `after` lists (a log not in
   * `after` counts from 0), at once if one already is; else after `timeoutMs` with changed false.
   */
  async wait (user: Uint8Array, drive: Uint8Array, after: Array<{ dev: Uint8Array, seq: number }>, timeoutMs: number, signal?: AbortSignal): Promise<WaitResult> {
    const known = new Map(after.map(a => [hexOf(a.dev), a.seq]))
    const ahead = (): WaitResult | null => {
      const heads = this.heads(user, drive)
      return heads.some(h => h.seq > (known.get(hexOf(h.dev)) ?? 0)) ? { changed: true, heads } : null
    }
    const now = ahead()
    if (now !== null || timeoutMs <= 0 || signal?.aborted === true) return now ?? { changed: false, heads: this.heads(user, drive) }
    const key = waitKey(user, drive)
    return await new Promise<WaitResult>(resolve => {
      let set = this.waiters.get(key)
      if (set === undefined) this.waiters.set(key, set = new Set())
      const done = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        set!.delete(wake)
        if (set!.size === 0 && this.waiters.get(key) === set) this.waiters.delete(key)
        let heads: LogHeadRow[] = []
        try { heads = this.heads(user, drive) } catch { /* closed */ }
        resolve({ changed: heads.some(h => h.seq > (known.get(hexOf(h.dev)) ?? 0)), heads })
      }
      const wake = (): void => done()
      const timer = setTimeout(done, timeoutMs)
      signal?.addEventListener('abort', done, { once: true })
      set.add(wake)
    })
  }

  /**
   * The receipt checks of a group, in order: an entry's chain is checked against the entries
   * before it in the group as if those were stored (the group is stored whole or not at all).
   */
  private checkAll (owner: Owner, drive: Uint8Array, group: SignedEntry[]): CheckResult[] {
    const ahead = new Map<string, Map<number, CID>>() // dev -> seq -> cid, of this group's new entries
    return group.map(s => {
      const dev = hexOf(s.entry.dev)
      const mine = ahead.get(dev)
      const r = this.check(owner, drive, s, mine)
      if (r.status === 'new') {
        if (mine === undefined) ahead.set(dev, new Map([[s.entry.seq, s.cid]]))
        else mine.set(s.entry.seq, s.cid)
      }
      return r
    })
  }

  private check (owner: Owner, drive: Uint8Array, s: SignedEntry, ahead?: Map<number, CID>): CheckResult {
    const e = s.entry
    const bound = this.db.prepare('SELECT identity FROM drives WHERE user = ? AND drive = ?').get(owner.user, drive) as { identity: Uint8Array } | undefined
    if (bound !== undefined && !buf(bound.identity).equals(Buffer.from(owner.identity))) {
      throw new SyncError('ERR_SYNC_CERT', `drive ${hexOf(drive)} belongs to another identity on this hub`, { device: hexOf(e.dev), seq: e.seq })
    }
    verifyEntry(s, { drive, identity: owner.identity })
    checkNotRevoked(e, this.revocation(owner.user, e.dev))
    let last = this.lastOf(owner.user, drive, e.dev)
    if (ahead !== undefined && ahead.size > 0) {
      const seq = Math.max(...ahead.keys())
      if (last === undefined || seq > last.seq) last = { seq, cid: ahead.get(seq)! }
    }
    const status = checkSequence(e, s.cid, last, seq => ahead?.get(seq) ?? this.cidAt(owner.user, drive, e.dev, seq))
    return { status, device: hexOf(e.dev), seq: e.seq, cid: s.cid }
  }

  /**
   * Every block the entries list is durable here (their block list blocks are read first): one
   * durability check, so one group commit, for the whole group.
   */
  private async checkBlocks (group: SignedEntry[], user: Uint8Array): Promise<void> {
    const all: CID[] = []
    let count = 0
    for (const s of group) {
      const e = s.entry
      if (e.blocks === null) continue
      const who = `entry ${e.seq} of ${deviceLabel(e.dev, e.cert.name)}`
      const list = await readBlockList(e.blocks, async cid => await this.blocks.getBlock(cid, user))
      if (list.missing !== null) {
        throw new SyncError('ERR_SYNC_BLOCKS_MISSING', `${who}: its block list block ${list.missing.toString()} is not here yet; upload blocks before the entry`, { device: hexOf(e.dev), seq: e.seq })
      }
      all.push(...list.listBlocks, ...list.cids)
      count += list.cids.length
    }
    if (all.length === 0) return
    if (!await this.blocks.hasBlocks(all, user)) {
      const e = group[0].entry
      const who = group.length === 1 ? `entry ${e.seq} of ${deviceLabel(e.dev, e.cert.name)}` : `entries ${e.seq}..${group[group.length - 1].entry.seq} of ${deviceLabel(e.dev, e.cert.name)}`
      const them = group.length === 1 ? 'its' : 'their'
      throw new SyncError('ERR_SYNC_BLOCKS_MISSING', `${who}: not every one of ${them} ${count} blocks is durable here yet; upload blocks before the entry`, { device: hexOf(e.dev), seq: e.seq })
    }
  }

  private lastOf (user: Uint8Array, drive: Uint8Array, dev: Uint8Array): { seq: number, cid: CID } | undefined {
    const row = this.db.prepare('SELECT seq, cid FROM entries WHERE user = ? AND drive = ? AND dev = ? ORDER BY seq DESC LIMIT 1').get(user, drive, dev) as { seq: number, cid: Uint8Array } | undefined
    return row === undefined ? undefined : { seq: Number(row.seq), cid: CID.decode(buf(row.cid)) }
  }

  private cidAt (user: Uint8Array, drive: Uint8Array, dev: Uint8Array, seq: number): CID | undefined {
    const row = this.db.prepare('SELECT cid FROM entries WHERE user = ? AND drive = ? AND dev = ? AND seq = ?').get(user, drive, dev, seq) as { cid: Uint8Array } | undefined
    return row === undefined ? undefined : CID.decode(buf(row.cid))
  }

  private storeDevice (user: Uint8Array, rec: DeviceRecord): void {
    // A later record of the same device (a rename) replaces an earlier one, never the reverse; of
    // two issued at the same time, one with a sealed name (v2) replaces one with the name in the clear.
    const old = this.db.prepare('SELECT record, issued_at FROM devices WHERE user = ? AND dev = ?').get(user, rec.devicePublicKey) as { record: Uint8Array, issued_at: number } | undefined
    if (old !== undefined) {
      const was = Number(old.issued_at)
      const sealsOld = rec.issuedAt === was && rec.sealedName != null && decodeDeviceRecord(buf(old.record)).sealedName == null
      if (rec.issuedAt < was || (rec.issuedAt === was && !sealsOld)) return
    }
    this.db.prepare(`INSERT INTO devices (user, dev, record, issued_at) VALUES (?, ?, ?, ?)
      ON CONFLICT(user, dev) DO UPDATE SET record = excluded.record, issued_at = excluded.issued_at`)
      .run(user, rec.devicePublicKey, encodeDeviceRecord(rec), rec.issuedAt)
  }

  private wake (user: Uint8Array, drive: Uint8Array): void {
    const set = this.waiters.get(waitKey(user, drive))
    if (set !== undefined) for (const wake of [...set]) wake()
  }
}

const waitKey = (user: Uint8Array, drive: Uint8Array): string => `${hexOf(user)}/${hexOf(drive)}`
