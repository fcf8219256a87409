// What a device remembers of a drive's logs: per device, the highest entry seen (seq and CID),
// and the revocations it knows. `check` applies the receipt checks of docs/format.md ("Checks on
// receipt"); `accept` records an entry durably before the caller applies anything of it [S4].
// The sequence rules are exported for the hub, which holds every entry (checkSequence).
import { createHash, randomBytes } from 'node:crypto'
import { open as openFile, readFile, rename, mkdir, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { CID } from 'multiformats/cid'
import { SyncError } from './errors.js'
import { checkRevocation, decodeRevocation, deviceLabel, encodeRevocation, type Revocation } from './devices.js'
import { verifyEntry, type Entry, type SignedEntry } from './entry.js'
import { hex } from './entry-codec.js'

export const STATE_FORMAT = 'space-sync-state'
export const STATE_VERSION = 1

/** Where a device keeps a drive's log state: `<data dir>/sync/<drive id hex>.state`. */
export const statePath = (dataDir: string, driveId: Uint8Array): string => join(dataDir, 'sync', `${hex(driveId)}.state`)

export interface LogHead { seq: number, cid: CID, name?: string }

export interface CheckResult {
  status: 'new' | 'duplicate'
  device: string // hex
  seq: number
  cid: CID
}

/** Throws ERR_SYNC_REVOKED when `revocation` covers entry `e`. */
export function checkNotRevoked (e: Entry, revocation: Pick<Revocation, 'after'> | undefined): void {
  if (revocation !== undefined && e.seq > revocation.after) {
    throw new SyncError('ERR_SYNC_REVOKED', `entry ${e.seq} of ${deviceLabel(e.dev, e.cert.name)}: the device was revoked after entry ${revocation.after}`,
      { device: hex(e.dev), seq: e.seq, last: revocation.after })
  }
}

/**
 * The continuity rules against the last entry known of the log. `cidAt` (the hub, which keeps
 * every entry) tells a duplicate of an older entry from a fork; without it, anything below the
 * last entry is a regression.
 */
export function checkSequence (e: Entry, cid: CID, last: Pick<LogHead, 'seq' | 'cid'> | undefined, cidAt?: (seq: number) => CID | undefined): 'new' | 'duplicate' {
  const who = deviceLabel(e.dev, e.cert.name)
  const lastSeq = last?.seq ?? 0
  const details = { device: hex(e.dev), seq: e.seq, last: lastSeq }
  if (last !== undefined && e.seq <= last.seq) {
    const known = e.seq === last.seq ? last.cid : cidAt?.(e.seq)
    if (known !== undefined && known.equals(cid)) return 'duplicate'
    if (known !== undefined) {
      throw new SyncError('ERR_SYNC_FORK', `${who}: fork at entry ${e.seq}: another entry ${e.seq} (${known.toString()}) was seen, this one is ${cid.toString()}; highest seen ${lastSeq}`, details)
    }
    throw new SyncError('ERR_SYNC_REGRESSION', `${who}: entry ${e.seq} goes backwards: entry ${lastSeq} was already seen (a replay of an old entry)`, details)
  }
  if (e.seq > lastSeq + 1) {
    throw new SyncError('ERR_SYNC_SKIP', `${who}: entry ${e.seq} skips: the highest seen is ${lastSeq}, so ${lastSeq + 1} comes next`, details)
  }
  if (last !== undefined && (e.prev === null || !e.prev.equals(last.cid))) {
    throw new SyncError('ERR_SYNC_PREV', `${who}: entry ${e.seq} does not follow entry ${lastSeq}: its prev is ${e.prev?.toString() ?? 'null'}, entry ${lastSeq} is ${last.cid.toString()}`, details)
  }
  return 'new'
}

interface StateBody {
  drive: string
  identity: string
  logs: Record<string, { seq: number, cid: string, name?: string }>
  revoked: Record<string, { after: number, at: number, record: string }>
}

const byKey = (a: [string, unknown], b: [string, unknown]): number => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0

const damaged = (path: string, why: string): SyncError =>
  new SyncError('ERR_SYNC_STATE_DAMAGED', `sync state ${path} is damaged (${why}); it is not reset, since forgetting it would let an old entry or a fork through. Move it aside only if you trust every source of entries`)

export class LogState {
  private logs = new Map<string, LogHead>()
  private revoked = new Map<string, Revocation>()
  private queue: Promise<unknown> = Promise.resolve()

  private constructor (readonly drive: Buffer, readonly identity: Buffer, private readonly path: string | null) {}

  /** A state that lives in memory only (tests, one-shot checks). */
  static inMemory (drive: Uint8Array, identity: Uint8Array): LogState {
    return new LogState(Buffer.from(drive), Buffer.from(identity), null)
  }

  /** Opens the state file at `path`, or starts an empty one if there is none; refuses a damaged one. */
  static async open (path: string, drive: Uint8Array, identity: Uint8Array): Promise<LogState> {
    const s = new LogState(Buffer.from(drive), Buffer.from(identity), path)
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return s
      throw err
    }
    s.load(text, path)
    return s
  }

  private load (text: string, path: string): void {
    let file: { format?: unknown, v?: unknown, sha256?: unknown, body?: unknown }
    try {
      file = JSON.parse(text)
    } catch {
      throw damaged(path, 'not JSON')
    }
    if (typeof file !== 'object' || file === null || file.format !== STATE_FORMAT) throw damaged(path, 'not a sync state file')
    if (file.v !== STATE_VERSION) throw damaged(path, `version ${String(file.v)}, this build reads ${STATE_VERSION}`)
    const bodyText = JSON.stringify(file.body)
    if (typeof file.sha256 !== 'string' || createHash('sha256').update(bodyText).digest('hex') !== file.sha256) throw damaged(path, 'checksum mismatch')
    const body = file.body as StateBody
    if (body.drive !== hex(this.drive)) throw damaged(path, `it is drive ${String(body.drive)}'s`)
    if (body.identity !== hex(this.identity)) throw damaged(path, 'it belongs to another identity')
    try {
      for (const [dev, l] of Object.entries(body.logs)) {
        if (!/^[0-9a-f]{64}$/.test(dev) || !Number.isSafeInteger(l.seq) || l.seq < 1) throw new Error(dev)
        this.logs.set(dev, { seq: l.seq, cid: CID.parse(l.cid), name: l.name })
      }
      for (const [dev, r] of Object.entries(body.revoked)) {
        const rec = decodeRevocation(Buffer.from(r.record, 'base64'))
        checkRevocation(rec, this.identity)
        if (hex(rec.devicePublicKey) !== dev) throw new Error(dev)
        this.revoked.set(dev, rec)
      }
    } catch (err) {
      throw damaged(path, `bad log or revocation entry: ${(err as Error).message}`)
    }
  }

  /** The highest entry seen of a device's log (hex device key or raw bytes). */
  head (dev: Uint8Array | string): LogHead | undefined {
    return this.logs.get(typeof dev === 'string' ? dev : hex(dev))
  }

  /** Every log's highest entry, sorted by device key: what a new entry's `heads` draws from. */
  heads (): Array<{ dev: Buffer, seq: number, cid: CID }> {
    return [...this.logs.entries()].sort(byKey)
      .map(([dev, h]) => ({ dev: Buffer.from(dev, 'hex'), seq: h.seq, cid: h.cid }))
  }

  revocation (dev: Uint8Array | string): Revocation | undefined {
    return this.revoked.get(typeof dev === 'string' ? dev : hex(dev))
  }

  /** Every check, in the documented order; changes nothing. Throws a SyncError naming device and seqs. */
  check (s: SignedEntry): CheckResult {
    const e = s.entry
    verifyEntry(s, { drive: this.drive, identity: this.identity })
    checkNotRevoked(e, this.revoked.get(hex(e.dev)))
    const status = checkSequence(e, s.cid, this.logs.get(hex(e.dev)))
    return { status, device: hex(e.dev), seq: e.seq, cid: s.cid }
  }

  /**
   * check(), then the new head is made durable (when the state has a file) before this
   * resolves; on any failure nothing changes, in memory or on disk.
   */
  async accept (s: SignedEntry): Promise<CheckResult> {
    return await this.serial(async () => {
      const r = this.check(s)
      if (r.status === 'duplicate') return r
      const logs = new Map(this.logs)
      logs.set(r.device, { seq: r.seq, cid: r.cid, name: s.entry.cert.name })
      await this.persist(logs, this.revoked)
      this.logs = logs
      return r
    })
  }

  /**
   * check() of a group in order, each entry against the state as if the ones before it that
   * pass were accepted; changes nothing. Per entry its result or the error that refuses it.
   */
  checkAll (group: SignedEntry[]): Array<CheckResult | Error> { return this.checkGroup(group).results }

  /**
   * checkAll(), then the new heads are made durable at once (one state write for the group, not
   * one per entry) before this resolves; a failed write changes nothing, in memory or on disk.
   */
  async acceptAll (group: SignedEntry[]): Promise<Array<CheckResult | Error>> {
    return await this.serial(async () => {
      const { results, logs } = this.checkGroup(group)
      if (results.some(r => !(r instanceof Error) && r.status === 'new')) {
        await this.persist(logs, this.revoked)
        this.logs = logs
      }
      return results
    })
  }

  private checkGroup (group: SignedEntry[]): { results: Array<CheckResult | Error>, logs: Map<string, LogHead> } {
    const logs = new Map(this.logs)
    const results = group.map(s => {
      try {
        const e = s.entry
        verifyEntry(s, { drive: this.drive, identity: this.identity })
        checkNotRevoked(e, this.revoked.get(hex(e.dev)))
        const status = checkSequence(e, s.cid, logs.get(hex(e.dev)))
        if (status === 'new') logs.set(hex(e.dev), { seq: e.seq, cid: s.cid, name: e.cert.name })
        return { status, device: hex(e.dev), seq: e.seq, cid: s.cid }
      } catch (err) {
        return err as Error
      }
    })
    return { results, logs }
  }

  /** Records a revocation signed by this identity; of two for one device the smaller `after` stays. */
  async revoke (r: Revocation): Promise<void> {
    await this.serial(async () => {
      checkRevocation(r, this.identity)
      const dev = hex(r.devicePublicKey)
      const known = this.revoked.get(dev)
      if (known !== undefined && known.after <= r.after) return
      const revoked = new Map(this.revoked)
      revoked.set(dev, r)
      await this.persist(this.logs, revoked)
      this.revoked = revoked
    })
  }

  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => {})
    return await run
  }

  private async persist (logs: Map<string, LogHead>, revoked: Map<string, Revocation>): Promise<void> {
    if (this.path === null) return
    const body: StateBody = { drive: hex(this.drive), identity: hex(this.identity), logs: {}, revoked: {} }
    for (const [dev, l] of [...logs.entries()].sort(byKey)) body.logs[dev] = l.name === undefined ? { seq: l.seq, cid: l.cid.toString() } : { seq: l.seq, cid: l.cid.toString(), name: l.name }
    for (const [dev, r] of [...revoked.entries()].sort(byKey)) body.revoked[dev] = { after: r.after, at: r.at, record: Buffer.from(encodeRevocation(r)).toString('base64') }
    const bodyText = JSON.stringify(body)
    const text = `{"format":"${STATE_FORMAT}","v":${STATE_VERSION},"sha256":"${createHash('sha256').update(bodyText).digest('hex')}","body":${bodyText}}\n`
    await writeDurably(this.path, text)
  }
}

/** Write to a temporary file, fsync, rename over `path`, fsync the directory. */
export async function writeDurably (path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
  const fh = await openFile(tmp, 'wx', 0o600)
  try {
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
  const d = await openFile(dir, 'r')
  try { await d.sync() } finally { await d.close() }
}
