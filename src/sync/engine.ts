// The sync engine of one device: keeps the mounted drive in step with the other devices of the
// identity through the hub (docs/sync.md). Three loops around the drive:
//   publish  every local commit becomes this device's next signed entry (local-log.ts), at once;
//   push     queued entries go to the hub, blocks first (pusher.ts);
//   pull     a long-poll on the hub brings the other logs' new entries; each is checked
//            (log-state.ts), its tree fetched as needed, merged three-way against the common
//            ancestor (merge.ts) and swapped in under the running mount (LiveDrive.adopt).
// Knows no HTTP and no FUSE: the hub is behind BlockTransport and EntryHub, the drive behind
// LiveDrive; each is declared here as the engine needs it.
import type { CID } from 'multiformats/cid'
import { decodeEntry, verifyEntry, type SignedEntry, type EntryHead } from './entry.js'
import { openRoot, type RootPayload } from './entry-keys.js'
import type { LogState } from './log-state.js'
import { decodeRevocation, deviceLabel, type Revocation } from './devices.js'
import type { LocalLog } from './local-log.js'
import { Pusher } from './pusher.js'
import type { BlockTransport } from './transport.js'
import { readSnapshot, emptySnapshot, ROOT, type Snapshot, type TreeRef } from './snapshot.js'
import { merge3, type Conflict } from './merge.js'
import { materialize, diffSnapshots, type PathChange } from './snapshot-write.js'
import { EntryCache } from './entry-cache.js'
import { commonAncestor } from './ancestry.js'
import type { Watermark } from '../store/types.js'

/** What the engine needs of the hub's entry API. */
export interface EntryHub {
  append: (entry: Uint8Array) => Promise<void>
  /** Entries of this drive's logs past `after` (device key hex -> seq); waits up to `timeoutMs` for one. */
  since: (after: Record<string, number>, timeoutMs: number, signal?: AbortSignal) => Promise<Uint8Array[]>
  /** The identity's revocation records the hub holds (each is checked here against the identity). */
  revocations?: () => Promise<Uint8Array[]>
}

/** A local commit as the engine sees it. */
export interface LocalHead { localSeq: number, time: number, ref: TreeRef, watermark: Watermark }

/** What the engine needs of the mounted drive. */
export interface LiveDrive {
  /** Commits whatever changed locally; the head after it. */
  commit: () => Promise<LocalHead>
  /**
   * Swaps in `ref` as the drive's tree and commits it, unless the drive changed since local
   * commit `expect` (then false: merge again). Invalidates the kernel's caches for `changes`.
   */
  adopt: (ref: TreeRef, changes: PathChange[], expect: number) => Promise<boolean>
  /** The root directory's and the link table's ids and keys: a tree swapped in must keep them. */
  keys: () => { root: { i: Buffer, k: Buffer }, links: { i: Buffer, k: Buffer } }
  /** Blocks: local first, fetched from the hub (and kept) when missing. */
  store: { get: (cid: CID) => Promise<Uint8Array>, put: (bytes: Uint8Array) => CID }
}

export interface EngineDeps {
  drive: LiveDrive
  log: LocalLog
  state: LogState
  entries: EntryCache
  transport: BlockTransport
  hub: EntryHub
  driveId: Buffer
  identity: Buffer
  syncKey: Buffer
  device: { publicKey: Buffer, name: string }
  logLine?: (line: string) => void
  onEvent?: (e: SyncEvent) => void
}

export type SyncEvent =
  | { kind: 'pushed', entries: number, blocks: number, bytes: number }
  | { kind: 'merged', device: string, seq: number, changes: number, conflicts: Conflict[] }
  | { kind: 'refused', device: string, seq: number, code: string, message: string }
  | { kind: 'error', message: string }

export interface SyncStatus {
  device: string
  lastEntry: { seq: number, cid: string | null }
  pendingUp: number
  logs: Array<{ device: string, name: string | null, seq: number, cid: string }>
  lastContact: number | null
  lastError: string | null
  pushed: { entries: number, blocks: number, bytes: number }
  refused: Refusal[]
}

/** An entry refused on receipt: whose (name and key prefix), which, and why. */
export interface Refusal { device: string, seq: number, code: string, message: string, at: number }

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex')
/** The longest wait between retries: a hub back from a restart is found within this. */
const MAX_BACKOFF_MS = 10_000
const MAX_REFUSALS = 20

/**
 * Each device seals its root directory and link table under its own ids and keys (they came from
 * its own store), so the merged tree takes this device's: the other side's sealed root can never
 * be reused here, since this tree could not open it.
 */
function keepOwnIds (merged: Snapshot, ours: Snapshot, keys: ReturnType<LiveDrive['keys']>): void {
  const root = merged.nodes.get(ROOT)!
  root.content = { ...root.content, i: keys.root.i, k: keys.root.k }
  merged.sealed.set(ROOT, ours.sealed.get(ROOT) ?? [])
  if (merged.linkTable != null || merged.links.size > 0) {
    merged.linkTable = { i: hexOf(keys.links.i), k: hexOf(keys.links.k) }
    merged.sealed.set('links', ours.sealed.get('links') ?? [])
  }
}

export class SyncEngine {
  private readonly pusher: Pusher
  /** The newest entry of each other log that the drive's tree has merged (the next entry's heads). */
  private readonly merged = new Map<string, EntryHead>()
  private publishing: Promise<unknown> = Promise.resolve()
  private stopped = false
  private readonly abort = new AbortController()
  private pulling: Promise<void> | null = null
  private lastContact: number | null = null
  private lastError: string | null = null
  private pushRetry: NodeJS.Timeout | null = null
  /** The latest entries refused on receipt, oldest first: `space sync status` shows them. */
  private readonly refused: Refusal[] = []
  private pushBackoff = 500

  constructor (private readonly deps: EngineDeps) {
    this.pusher = new Pusher({
      log: deps.log, transport: deps.transport, entries: deps.hub, store: deps.drive.store, logLine: deps.logLine,
      onProgress: p => { this.lastContact = Date.now(); deps.onEvent?.({ kind: 'pushed', entries: p.entries, blocks: p.blocks, bytes: p.bytes }) }
    })
  }

  /** Resumes what the queue holds and starts pulling. */
  async start (): Promise<void> {
    const last = this.deps.log.state
    if (last.seq > 0) for (const h of decodeEntry((await this.deps.log.entry(last.seq)).bytes).entry.heads) this.merged.set(hexOf(h.dev), h)
    this.kickPush()
    this.pulling = this.pullLoop()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.pushRetry != null) clearTimeout(this.pushRetry)
    this.abort.abort()
    await this.pulling?.catch(() => {})
    await this.publishing.catch(() => {})
  }

  /** A local commit is durable: publish it as the next entry, then push. Serial, in commit order. */
  committed (head: LocalHead): void {
    this.publishing = this.publishing.then(async () => {
      if (head.localSeq <= this.deps.log.state.localSeq) return
      const signed = await this.deps.log.publish({ localSeq: head.localSeq, time: head.time, payload: head.ref as RootPayload, watermark: head.watermark }, [...this.merged.values()])
      await this.deps.entries.put(signed)
      this.kickPush()
    }).catch(err => this.fail(`publishing local commit ${head.localSeq}`, err))
  }

  status (): SyncStatus {
    const st = this.deps.log.state
    return {
      device: this.deps.device.name,
      lastEntry: { seq: st.seq, cid: st.cid?.toString() ?? null },
      pendingUp: st.seq - st.pushed,
      logs: this.deps.state.heads().map(h => ({ device: hexOf(h.dev), name: this.deps.state.head(h.dev)?.name ?? null, seq: h.seq, cid: h.cid.toString() })),
      lastContact: this.lastContact,
      lastError: this.lastError ?? this.pusher.lastError?.message ?? null,
      pushed: { ...this.pusher.totals },
      refused: [...this.refused]
    }
  }

  /**
   * Starts a push round. A failed round (hub away, a refused batch) is retried by one timer,
   * with backoff from 0.5 s to 10 s; every kick that found a round running shares its failure,
   * so the retries do not multiply.
   */
  private kickPush (): void {
    if (this.stopped) return
    this.pusher.kick().then(() => { this.pushBackoff = 500 }, () => {
      if (this.stopped || this.pushRetry != null) return
      this.pushRetry = setTimeout(() => { this.pushRetry = null; this.kickPush() }, this.pushBackoff)
      this.pushRetry.unref()
      this.pushBackoff = Math.min(this.pushBackoff * 2, MAX_BACKOFF_MS)
    })
  }

  private fail (what: string, err: unknown): void {
    const line = `${what}: ${(err as Error).message}`
    if (line !== this.lastError) this.deps.logLine?.(`sync: ${line}`) // once per cause, not per retry
    this.lastError = line
    this.deps.onEvent?.({ kind: 'error', message: this.lastError })
  }

  private async pullLoop (): Promise<void> {
    let backoff = 500
    while (!this.stopped) {
      try {
        const after: Record<string, number> = {}
        for (const h of this.deps.state.heads()) after[hexOf(h.dev)] = h.seq
        // Entries accepted before a failure or a crash and not merged yet. While one will not
        // merge (its blocks do not come), the poll is short: a newer entry may replace it.
        const merged = await this.mergePending().then(() => true, () => false)
        const batch = await this.deps.hub.since(after, merged ? 25_000 : backoff, this.abort.signal)
        this.lastContact = Date.now()
        if (this.lastError?.startsWith('pull: ') === true) this.lastError = null // the hub answers again
        if (batch.length > 0) await this.learnRevocations() // before the entries they may refuse
        await this.receive(batch)
        backoff = 500
      } catch (err) {
        if (this.stopped) return
        this.fail('pull', err)
        await new Promise(resolve => setTimeout(resolve, backoff).unref())
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
      }
    }
  }

  /**
   * Checks a batch of entries, then merges the newest accepted entry of each log that the tree
   * has not merged yet: the ones just accepted, and any accepted earlier whose merge failed (a
   * block that would not come) or was cut off (kill -9 after the state recorded the entry).
   */
  async receive (batch: Uint8Array[]): Promise<void> {
    const ours = hexOf(this.deps.device.publicKey)
    const decoded = batch.map(b => decodeEntry(b)).sort((x, y) => Buffer.compare(x.entry.dev, y.entry.dev) || x.entry.seq - y.entry.seq)
    for (const s of decoded) {
      const dev = hexOf(s.entry.dev)
      if (dev === ours) continue
      try {
        verifyEntry(s, { drive: this.deps.driveId, identity: this.deps.identity })
        if (this.deps.state.check(s).status === 'duplicate') continue
        // In the cache before the state names it: a crash between the two leaves an entry the
        // state does not know (taken again next time), never a head without its entry.
        await this.deps.entries.put(s)
        await this.deps.state.accept(s)
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'ERR_SYNC'
        const refusal = { device: deviceLabel(s.entry.dev, s.entry.cert.name), seq: s.entry.seq, code, message: (err as Error).message, at: Date.now() }
        this.deps.logLine?.(`sync: refused ${refusal.device} entry ${refusal.seq} (${code}): ${refusal.message}; nothing of it is applied`)
        this.refused.push(refusal)
        if (this.refused.length > MAX_REFUSALS) this.refused.shift()
        this.deps.onEvent?.({ kind: 'refused', device: s.entry.cert.name, seq: s.entry.seq, code, message: (err as Error).message })
      }
    }
    await this.mergePending()
  }

  /**
   * Records the revocations the hub knows, so that a revoked device's later entries are refused
   * here even when a hub serves them. Each record must be signed by the identity: a hub can
   * withhold a revocation, never make one up.
   */
  private async learnRevocations (): Promise<void> {
    if (this.deps.hub.revocations == null) return
    for (const bytes of await this.deps.hub.revocations()) {
      let r: Revocation
      try {
        r = decodeRevocation(bytes)
        const known = this.deps.state.revocation(r.devicePublicKey)
        if (known != null && known.after <= r.after) continue
        await this.deps.state.revoke(r)
      } catch (err) {
        this.fail('a revocation record from the hub', err)
        continue
      }
      this.deps.logLine?.(`sync: ${deviceLabel(r.devicePublicKey, this.deps.state.head(r.devicePublicKey)?.name)} is revoked: its entries after ${r.after} are refused`)
    }
  }

  /** Merges, log by log, every accepted head the drive's tree has not merged. */
  private async mergePending (): Promise<void> {
    const ours = this.deps.device.publicKey
    let first: unknown = null
    for (const h of this.deps.state.heads()) {
      if (h.dev.equals(ours) || (this.merged.get(hexOf(h.dev))?.seq ?? 0) >= h.seq) continue
      try {
        const s = await this.deps.entries.get(h.cid)
        if (s == null) throw new Error(`entry ${h.seq} of ${deviceLabel(h.dev, this.deps.state.head(h.dev)?.name)} was accepted but is not in the entry cache`)
        await this.mergeEntry(s)
      } catch (err) {
        first ??= err // one log that will not merge does not hold up the others
      }
    }
    if (first != null) throw first
  }

  private async refOf (s: SignedEntry): Promise<TreeRef> {
    return openRoot(this.deps.syncKey, this.deps.driveId, s.entry.seq, s.entry.root) as TreeRef
  }

  /** Merges one remote entry into the drive; retried while local writes keep landing first. */
  private async mergeEntry (s: SignedEntry): Promise<void> {
    const { drive } = this.deps
    const theirsRef = await this.refOf(s)
    for (let attempt = 0; attempt < 20; attempt++) {
      const head = await drive.commit()
      await this.publishing // our entry for `head` exists before the ancestor search
      const mine = this.deps.log.state.cid
      const baseEntry = mine == null ? null : await commonAncestor(this.deps.entries, mine, s.cid)
      const base: Snapshot = baseEntry == null ? emptySnapshot() : await readSnapshot(await this.refOf(baseEntry), drive.store)
      const ours = await readSnapshot(head.ref, drive.store)
      const theirs = await readSnapshot(theirsRef, drive.store)
      const { snapshot, conflicts } = merge3(base, ours, theirs, { ours: this.deps.device.name, theirs: s.entry.cert.name })
      // Own ids first: the other side's root ids alone are no change, and counting them as one
      // made every merge commit, and each commit the other device's next merge (ping-pong).
      keepOwnIds(snapshot, ours, drive.keys())
      const changes = diffSnapshots(ours, snapshot)
      this.merged.set(hexOf(s.entry.dev), { dev: s.entry.dev, seq: s.entry.seq, cid: s.cid })
      if (changes.length === 0) return // nothing new for this tree: the next entry carries the head
      const m = materialize(snapshot, drive.store, { before: ours })
      if (await drive.adopt({ root: m.root, links: m.links }, changes, head.localSeq)) {
        this.deps.onEvent?.({ kind: 'merged', device: s.entry.cert.name, seq: s.entry.seq, changes: changes.length, conflicts })
        return
      }
    }
    throw new Error(`could not merge ${deviceLabel(s.entry.dev, s.entry.cert.name)} entry ${s.entry.seq}: local changes kept landing first`)
  }
}
