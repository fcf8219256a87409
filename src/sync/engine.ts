// The sync engine of one device: keeps the mounted drive in step with the other devices of the
// identity through the hub (docs/sync.md). Three loops around the drive:
//   publish  every local commit becomes this device's next signed entry (local-log.ts), at once;
//   push     queued entries go to the hub, blocks first (pusher.ts);
//   pull     a long-poll on the hub brings the other logs' new entries; each is checked
//            (log-state.ts), its tree fetched as needed; the drive's tree and the new heads are
//            merged in device-name order, each against its common ancestor (merge-heads.ts), and
//            swapped in under the running mount (LiveDrive.adopt).
// Knows no HTTP and no FUSE: the hub is behind BlockTransport and EntryHub, the drive behind
// LiveDrive; each is declared here as the engine needs it.
import type { CID } from 'multiformats/cid'
import { decodeEntry, decodeBlockListBlock, readBlockList, verifyEntry, type SignedEntry, type EntryHead } from './entry.js'
import { openRoot, type RootPayload } from './entry-keys.js'
import type { LogState } from './log-state.js'
import { decodeRevocation, deviceLabel, type DeviceNames, type Revocation } from './devices.js'
import type { LocalLog } from './local-log.js'
import { Pusher } from './pusher.js'
import { Uplink } from './uplink.js'
import type { NewBlock } from './new-blocks.js'
import type { BlockTransport } from './transport.js'
import { readSnapshot, emptySnapshot, ROOT, type Snapshot, type TreeRef } from './snapshot.js'
import type { Conflict } from './merge.js'
import { materialize, diffSnapshots, type PathChange } from './snapshot-write.js'
import { EntryCache } from './entry-cache.js'
import { commonAncestors } from './ancestry.js'
import { foldHeads, adoptable, Origins, type Head } from './merge-heads.js'
import type { Watermark } from '../store/types.js'
import { trace } from './trace.js'

/** What the engine needs of the hub's entry API. */
export interface EntryHub {
  append: (entry: Uint8Array) => Promise<void>
  /** One log's next entries in one request, accepted or refused as a whole (pusher.ts). */
  appendGroup?: (entries: Uint8Array[]) => Promise<void>
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
   * Swaps in `ref` as the drive's tree and commits it ('adopted'), unless the drive changed
   * since local commit `expect` ('changed': merge again) or `changes` touch a file open for
   * writing ('open': merge again once it is closed). Invalidates the kernel's caches for
   * `changes`. `swapped` runs at the swap, before the commit that records it (any commit after
   * it holds the merge; one before it must not be published with the merge's heads).
   */
  adopt: (ref: TreeRef, changes: PathChange[], expect: number, swapped: () => void) => Promise<'adopted' | 'changed' | 'open'>
  /**
   * Holds the drive's changes of names and attributes (and lookups) until the release is called
   * or `maxMs` passed; writes to open files go on (Tree.hold). Absent: never held.
   */
  hold?: (maxMs: number) => Promise<(() => void) | null>
  /** The root directory's and the link table's ids and keys: a tree swapped in must keep them. */
  keys: () => { root: { i: Buffer, k: Buffer }, links: { i: Buffer, k: Buffer } }
  /** Blocks: local first, fetched from the hub (and kept) when missing. */
  store: { get: (cid: CID) => Promise<Uint8Array>, put: (bytes: Uint8Array) => CID }
  /** A local block's stored size, or 0 when it is not here. */
  blockSize?: (cid: CID) => number
  /**
   * Fetches those of `cids` not here yet (kept, as fetched blocks are): the blocks an accepted
   * entry lists, asked for as soon as it is accepted, while it merges. Absent: blocks come on
   * demand and with the background download only (a device that keeps files on the hub).
   */
  prefetch?: (cids: CID[]) => Promise<void>
}

/** The longest a merge holds the drive's changes of names (LiveDrive.hold): FUSE calls wait that long at worst. */
const HOLD_MS = 2000
/** Attempts of one merge that may hold the drive (the mount's name calls wait up to HOLD_MS in each). */
const HOLDS = 3

/** What each attempt of one merge needs (SyncEngine.mergeHeads, mergeOnce). */
interface MergeJob {
  entries: SignedEntry[]
  theirs: Head[]
  baseOf: (folded: CID[], next: CID[]) => Promise<Snapshot>
  label: string
  /** When the merge started, and when the other heads' trees had been read (for the trace). */
  t0: number
  t1: number
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
  /** Opens the other devices' sealed names (device records v2): in messages and conflict copies. */
  names?: DeviceNames
  device: { publicKey: Buffer, name: string }
  logLine?: (line: string) => void
  onEvent?: (e: SyncEvent) => void
  /** The store's appends as they happen (new-blocks.ts AppendedBlocks): they go up early (uplink.ts). */
  appended?: { onBlock: ((b: NewBlock, body: Uint8Array) => void) | null }
}

export type SyncEvent =
  | { kind: 'pushed', entries: number, blocks: number, bytes: number }
  | { kind: 'merged', device: string, seq: number, changes: number, conflicts: Conflict[] }
  | { kind: 'refused', device: string, seq: number, code: string, message: string }
  | { kind: 'error', message: string }
  | { kind: 'download', files: number, bytes: number, done: number, total: number }
  | { kind: 'upload', seq: number, blocks: number, bytes: number, totalBlocks: number }

export interface SyncStatus {
  device: string
  lastEntry: { seq: number, cid: string | null }
  pendingUp: number
  logs: Array<{ device: string, name: string | null, seq: number, cid: string, revokedAfter: number | null }>
  lastContact: number | null
  lastError: string | null
  pushed: { entries: number, blocks: number, bytes: number }
  /** The upload under way: entry seq, blocks and bytes acknowledged of the blocks it sends. */
  uploading: { seq: number, blocks: number, bytes: number, totalBlocks: number } | null
  refused: Refusal[]
}

/** An entry refused on receipt: whose (name and key prefix), which, and why. */
export interface Refusal { device: string, seq: number, code: string, message: string, at: number }

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const isNew = (r: { status: string } | Error): boolean => !(r instanceof Error) && r.status === 'new'
/** The longest wait between retries: a hub back from a restart is found within this. */
const MAX_BACKOFF_MS = 10_000
const MAX_REFUSALS = 20
/** Entries of one log in a poll answer whose listed blocks are fetched ahead; past it, none of them. */
const MAX_PREFETCH_ENTRIES = 64
/** Listed blocks per prefetch call at most (~512 MiB of 128 KiB blocks). */
const MAX_PREFETCH_BLOCKS = 4096

export class SyncEngine {
  private readonly pusher: Pusher
  private readonly uplink: Uplink | null
  /** The newest entry of each other log that the drive's tree has merged (the next entry's heads). */
  private readonly merged = new Map<string, EntryHead>()
  private publishing: Promise<unknown> = Promise.resolve()
  private stopped = false
  private readonly abort = new AbortController()
  private pulling: Promise<void> | null = null
  private lastContact: number | null = null
  private lastError: string | null = null
  /** Revoked logs: the highest refused seq, so the hub is not asked for those entries again. */
  private readonly refusedUpTo = new Map<string, number>()
  private uploadReported = 0
  private upCache: { key: string, value: { entries: number, files: number, bytes: number } } | null = null
  private readonly origins = new Origins()
  private pushRetry: NodeJS.Timeout | null = null
  /** The latest entries refused on receipt, oldest first: `space sync status` shows them. */
  private readonly refused: Refusal[] = []
  private pushBackoff = 500
  /** The newest local commit not yet published, with the heads its tree had merged. */
  private newest: { head: LocalHead, heads: EntryHead[] } | null = null
  /** The highest entry of our own log the hub has sent back (polls ask past it). */
  private ownSeen = 0
  /** Accepted entries' block lists being read, in order; then their blocks queued for the prefetch worker. */
  private lists: Promise<void> = Promise.resolve()
  private prefetchWant: CID[] = []
  private prefetchWorker: Promise<void> | null = null

  constructor (private readonly deps: EngineDeps) {
    const t = deps.transport
    this.uplink = deps.appended == null || t.putCar == null ? null : new Uplink({ putCar: async (car, o) => await t.putCar!(car, o) }, deps.drive.store)
    this.pusher = new Pusher({
      log: deps.log, transport: deps.transport, entries: deps.hub, store: deps.drive.store, logLine: deps.logLine, uplink: this.uplink ?? undefined,
      onProgress: p => { this.lastContact = Date.now(); deps.onEvent?.({ kind: 'pushed', entries: p.entries, blocks: p.blocks, bytes: p.bytes }) },
      onUpload: u => {
        this.lastContact = Date.now()
        if (Date.now() - this.uploadReported < 1000) return // a long upload reports once a second
        this.uploadReported = Date.now()
        deps.onEvent?.({ kind: 'upload', ...u })
      }
    })
  }

  /** Resumes what the queue holds and starts pulling. */
  async start (): Promise<void> {
    const last = this.deps.log.state
    if (last.seq > 0) for (const h of decodeEntry((await this.deps.log.entry(last.seq)).bytes).entry.heads) this.merged.set(hexOf(h.dev), h)
    this.kickPush()
    this.pulling = this.pullLoop()
    if (this.uplink != null && this.deps.appended != null) {
      const uplink = this.uplink
      this.deps.appended.onBlock = (b, body) => uplink.add(b, body)
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.deps.appended != null) this.deps.appended.onBlock = null
    this.uplink?.stop()
    if (this.pushRetry != null) clearTimeout(this.pushRetry)
    this.abort.abort()
    await this.pulling?.catch(() => {})
    await this.publishing.catch(() => {})
    await this.lists
    await this.prefetchWorker
  }

  /**
   * A local commit is durable: publish it as the next entry, then push. Serial, in commit order.
   * The heads are taken now, as of this commit's tree: a merge that starts before the publish
   * runs must not lend its head to a commit without its changes (the other device would then
   * take the difference for a change of ours and make conflict copies of its own files).
   */
  committed (head: LocalHead): void {
    const heads = [...this.merged.values()]
    // Commits that came while an earlier publish ran are published as one entry, the newest: its
    // block range holds theirs and its heads theirs (fewer entries while the disk is slow, each
    // of them three fsyncs here, an append on the hub and a merge on every other device).
    if (this.newest == null || head.localSeq > this.newest.head.localSeq) this.newest = { head, heads }
    this.publishing = this.publishing.then(async () => {
      const next = this.newest
      if (next == null || next.head.localSeq <= this.deps.log.state.localSeq) return
      this.newest = null
      const { head, heads } = next
      const signed = await this.deps.log.publish({ localSeq: head.localSeq, time: head.time, payload: head.ref as RootPayload, watermark: head.watermark }, heads)
      // The push needs only the queue; the entry cache (ancestor searches) is written meanwhile,
      // and merges wait for this chain before they search.
      this.kickPush()
      await this.deps.entries.put(signed)
    }).catch(err => this.fail(`publishing local commit ${head.localSeq}`, err))
  }

  status (): SyncStatus {
    const st = this.deps.log.state
    return {
      device: this.deps.device.name,
      lastEntry: { seq: st.seq, cid: st.cid?.toString() ?? null },
      pendingUp: st.seq - st.pushed,
      logs: this.deps.state.heads().map(h => ({ device: hexOf(h.dev), name: this.deps.state.head(h.dev)?.name ?? null, seq: h.seq, cid: h.cid.toString(), revokedAfter: this.deps.state.revocation(h.dev)?.after ?? null })),
      lastContact: this.lastContact,
      lastError: this.lastError ?? this.pusher.lastError?.message ?? null,
      // Blocks sent early count as pushed: they are on the hub.
      pushed: { entries: this.pusher.totals.entries, blocks: this.pusher.totals.blocks + (this.uplink?.totals.blocks ?? 0), bytes: this.pusher.totals.bytes + (this.uplink?.totals.bytes ?? 0) },
      uploading: this.pusher.current == null ? null : { ...this.pusher.current },
      refused: [...this.refused]
    }
  }

  /**
   * What is not on the hub yet: entries, the files (paths) they change since the last pushed
   * entry, and the stored bytes of the blocks they add. Computed once per queue state.
   */
  async pendingUpDetail (): Promise<{ entries: number, files: number, bytes: number }> {
    const { log, drive } = this.deps
    const st = log.state
    const entries = st.seq - st.pushed
    if (entries <= 0) return { entries: 0, files: 0, bytes: 0 }
    const key = `${st.pushed}/${st.seq}`
    if (this.upCache?.key === key) return this.upCache.value
    const snapAt = async (seq: number): Promise<Snapshot> => seq === 0 ? emptySnapshot() : await readSnapshot(await this.refOf(decodeEntry((await log.entry(seq)).bytes)), drive.store)
    const files = diffSnapshots(await snapAt(st.pushed), await snapAt(st.seq)).length
    let bytes = 0
    for (const seq of log.pending()) {
      for (const b of (await log.entry(seq)).list) for (const cid of decodeBlockListBlock(b.cid, b.bytes).cids) bytes += drive.blockSize?.(cid) ?? 0
    }
    const value = { entries, files, bytes }
    this.upCache = { key, value }
    return value
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
        for (const [dev, seq] of this.refusedUpTo) after[dev] = Math.max(after[dev] ?? 0, seq)
        // Our own log too: without it the hub has something "new" for every poll (our own
        // entries) and answers at once, and the long-poll becomes a busy loop.
        after[hexOf(this.deps.device.publicKey)] = Math.max(this.deps.log.state.seq, this.ownSeen)
        // Entries accepted before a failure or a crash and not merged yet. While one will not
        // merge (its blocks do not come), the poll is short: a newer entry may replace it.
        const merged = await this.mergePending().then(() => true, () => false)
        const batch = await this.deps.hub.since(after, merged ? 25_000 : backoff, this.abort.signal)
        this.lastContact = Date.now()
        trace(() => `pull: ${batch.length} entries`)
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
    const accepted: Array<{ s: SignedEntry, known: boolean }> = []
    const knownBefore = new Set(this.deps.state.heads().map(h => hexOf(h.dev)))
    const theirs: SignedEntry[] = []
    for (const s of decoded) {
      if (hexOf(s.entry.dev) === ours) this.ownSeen = Math.max(this.ownSeen, s.entry.seq)
      else theirs.push(s)
    }
    for (const s of theirs) this.nameOf(s) // the state records it: sync status names the device
    // The group at once: in the cache before the state names them (a crash between the two leaves
    // entries the state does not know, taken again next time, never a head without its entry),
    // then one state write for all of them (one fsync, not two per entry).
    const pre = this.deps.state.checkAll(theirs)
    theirs.forEach((s, i) => { const r = pre[i]; if (r instanceof Error) this.refuse(s, r) })
    const fresh = theirs.filter((_, i) => isNew(pre[i]))
    await Promise.all(fresh.map(async s => await this.deps.entries.put(s)))
    const results = fresh.length === 0 ? [] : await this.deps.state.acceptAll(fresh)
    fresh.forEach((s, i) => {
      const r = results[i]
      if (r instanceof Error) this.refuse(s, r)
      else if (r.status === 'new') accepted.push({ s, known: knownBefore.has(hexOf(s.entry.dev)) })
    })
    this.prefetchListed(accepted)
    await this.mergePending()
  }

  private refuse (s: SignedEntry, err: Error): void {
    const code = (err as { code?: string }).code ?? 'ERR_SYNC'
    const dev = hexOf(s.entry.dev)
    const refusal = { device: deviceLabel(s.entry.dev, this.nameOf(s)), seq: s.entry.seq, code, message: err.message, at: Date.now() }
    this.deps.logLine?.(`sync: refused ${refusal.device} entry ${refusal.seq} (${code}): ${refusal.message}; nothing of it is applied`)
    this.refused.push(refusal)
    if (this.refused.length > MAX_REFUSALS) this.refused.shift()
    this.deps.onEvent?.({ kind: 'refused', device: this.nameOf(s), seq: s.entry.seq, code, message: err.message })
    if (code === 'ERR_SYNC_REVOKED') this.refusedUpTo.set(dev, Math.max(this.refusedUpTo.get(dev) ?? 0, s.entry.seq))
  }

  /**
   * Starts fetching the blocks the accepted entries list (what each one's commit added), so they
   * arrive while the entries merge instead of after the merged tree is scanned. Only for logs
   * followed live (this device had seen the log before the batch) and a few entries at a time:
   * a device catching up on a long history (a fresh device, days offline) would fetch every
   * superseded version; its background download fetches what the merged tree holds instead.
   */
  private prefetchListed (accepted: Array<{ s: SignedEntry, known: boolean }>): void {
    const { prefetch, store } = this.deps.drive
    if (prefetch == null) return
    const perLog = new Map<string, number>()
    for (const a of accepted) perLog.set(hexOf(a.s.entry.dev), (perLog.get(hexOf(a.s.entry.dev)) ?? 0) + 1)
    const wanted = accepted.filter(a => a.known && a.s.entry.blocks !== null && (perLog.get(hexOf(a.s.entry.dev)) ?? 0) <= MAX_PREFETCH_ENTRIES)
    if (wanted.length === 0) return
    const t0 = Date.now()
    // The lists of all of them at once (their blocks are asked for in one request), then their blocks.
    const lists = Promise.all(wanted.map(async ({ s }) => await readBlockList(s.entry.blocks!, async cid => await store.get(cid))))
    // Handled below once the batches before it are done; until then a rejection must not be unhandled (it ends the process).
    lists.catch(() => {})
    this.lists = this.lists.then(async () => {
      const got = await lists
      const cids = got.flatMap(l => l.cids)
      trace(() => `prefetch entries ${wanted.map(w => w.s.entry.seq).join(',')}: ${cids.length} listed blocks (lists read in ${Date.now() - t0} ms)`)
      this.prefetchWant.push(...cids)
      this.prefetchWorker ??= this.prefetchLoop(prefetch).finally(() => { this.prefetchWorker = null })
    }).catch(err => { if (!this.stopped) trace(() => `prefetch: ${(err as Error).message}`) }) // the download and the reads fetch what did not come
  }

  /** Fetches the queued listed blocks, all that is queued at a time (the transport keeps its requests in flight across entries). */
  private async prefetchLoop (prefetch: (cids: CID[]) => Promise<void>): Promise<void> {
    while (this.prefetchWant.length > 0 && !this.stopped) {
      const take = this.prefetchWant.splice(0, MAX_PREFETCH_BLOCKS)
      const t0 = Date.now()
      try {
        await prefetch(take)
        trace(() => `prefetch: ${take.length} blocks in ${Date.now() - t0} ms`)
      } catch (err) {
        if (!this.stopped) trace(() => `prefetch: ${(err as Error).message}`) // the download and the reads fetch what did not come
      }
    }
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

  /**
   * Merges every accepted head the drive's tree has not merged, all together (mergeHeads). When
   * that fails (one head's blocks will not come), each head alone: one log that will not merge
   * does not hold up the others.
   */
  private async mergePending (): Promise<void> {
    const ours = this.deps.device.publicKey
    const pending: SignedEntry[] = []
    for (const h of this.deps.state.heads()) {
      if (h.dev.equals(ours) || (this.merged.get(hexOf(h.dev))?.seq ?? 0) >= h.seq) continue
      const s = await this.deps.entries.get(h.cid)
      if (s == null) throw new Error(`entry ${h.seq} of ${deviceLabel(h.dev, this.deps.state.head(h.dev)?.name)} was accepted but is not in the entry cache`)
      pending.push(s)
    }
    if (pending.length === 0) return
    try {
      await this.mergeHeads(pending)
      return
    } catch (err) {
      if (pending.length === 1) throw err
    }
    let first: unknown = null
    for (const s of pending) {
      try { await this.mergeHeads([s]) } catch (err) { first ??= err }
    }
    if (first != null) throw first
  }

  /**
   * Whether entry `s` of another log, read as `snap`, holds exactly the tree of the entry of this
   * device's log that it names as merged: it merged ours and changed nothing.
   */
  private async echoes (s: SignedEntry, snap: Snapshot): Promise<boolean> {
    const mine = s.entry.heads.find(h => h.dev.equals(this.deps.device.publicKey))
    if (mine == null || mine.seq > this.deps.log.state.seq) return false
    let own: SignedEntry
    try {
      own = decodeEntry((await this.deps.log.entry(mine.seq)).bytes)
    } catch { return false }
    if (!own.cid.equals(mine.cid)) return false
    const ownSnap = await readSnapshot(await this.refOf(own), this.deps.drive.store)
    // Each device's root directory has its own id and key (the root's content): that alone is no change.
    const bare = (x: Snapshot): string => JSON.stringify({ ...x.nodes.get(ROOT), content: null }, (_k, v) => typeof v === 'bigint' ? String(v) : v)
    return diffSnapshots(ownSnap, snap).every(c => c.id === ROOT && bare(ownSnap) === bare(snap))
  }

  /** Records a revocation this device made (space devices revoke): its later entries are refused from now on. */
  async revoke (bytes: Uint8Array): Promise<void> {
    await this.deps.state.revoke(decodeRevocation(bytes))
  }

  /** The highest entry seen of a device's log, or 0. */
  seen (dev: string): number { return this.deps.state.head(dev)?.seq ?? 0 }
  revokedAfter (dev: string): number | null { return this.deps.state.revocation(dev)?.after ?? null }

  /** The name of an entry's device, opened from its record (v2 seals it), or '' when it does not open. */
  private nameOf (s: SignedEntry): string { return this.deps.names?.of(s.entry.cert) ?? s.entry.cert.name }

  private async refOf (s: SignedEntry): Promise<TreeRef> {
    return openRoot(this.deps.syncKey, this.deps.driveId, s.entry.seq, s.entry.root) as TreeRef
  }

  /**
   * Merges other logs' new entries into the drive, together: the drive's tree and theirs folded
   * in device-name order (merge-heads.ts), so the result does not depend on which entry arrived
   * first. Retried while local writes keep landing first.
   */
  private async mergeHeads (entries: SignedEntry[]): Promise<void> {
    const { drive, entries: src } = this.deps
    // Entries another of them has merged stay in: folded first (by name), their devices are the
    // ones conflict copies are named after, not the device that merged them.
    const heads = entries
    const t0 = Date.now()
    const theirs: Head[] = []
    for (const s of heads) theirs.push({ device: this.nameOf(s), key: hexOf(s.entry.dev), cids: [s.cid], snapshot: await readSnapshot(await this.refOf(s), drive.store) })
    // The base of a step: the best common ancestor, or after a criss-cross the merge of all of
    // them (folded the same way), so that neither side's merged changes look like its own.
    const baseOf = async (folded: CID[], next: CID[], depth = 0): Promise<Snapshot> => {
      const bs = next.length === 0 || folded.length === 0 ? [] : await commonAncestors(src, folded, next)
      if (bs.length === 0) return emptySnapshot()
      if (bs.length === 1 || depth > 8) return await readSnapshot(await this.refOf(bs[0]), drive.store)
      const hs: Head[] = []
      for (const b of bs) hs.push({ device: this.nameOf(b), key: hexOf(b.entry.dev), cids: [b.cid], snapshot: await readSnapshot(await this.refOf(b), drive.store) })
      return (await foldHeads(hs, async (f, n) => await baseOf(f, n, depth + 1))).snapshot
    }
    const label = heads.map(s => `${deviceLabel(s.entry.dev, this.nameOf(s))} entry ${s.entry.seq}`).join(', ')
    // Entries that only merged ours: merged as they are. Merging would commit this device's
    // writes so far first and publish them, the other device would echo that too, and so on: a
    // commit per round trip for as long as this device writes.
    let echoes = true
    for (let i = 0; i < heads.length && echoes; i++) echoes = await this.echoes(heads[i], theirs[i].snapshot)
    if (echoes) {
      for (const s of heads) this.merged.set(hexOf(s.entry.dev), { dev: s.entry.dev, seq: s.entry.seq, cid: s.cid })
      trace(() => `merge ${label}: holds our entry's tree, nothing to merge`)
      return
    }
    const job: MergeJob = { entries, theirs, baseOf, label, t0, t1: Date.now() }
    let changed = 0 // attempts refused because local changes landed first
    let held = 0
    for (let attempt = 0; attempt < 20; attempt++) {
      // After two such refusals the drive's changes of names wait while this attempt runs (a
      // device creating file after file would refuse every one): at most HOLD_MS, released at
      // the swap, and in at most HOLDS attempts (each stalls the mount's name calls). Not for a
      // file open for writing: holding would not make it close.
      const release = changed >= 2 && held < HOLDS ? await drive.hold?.(HOLD_MS) ?? undefined : undefined
      if (release != null) held++
      let outcome: 'adopted' | 'changed' | 'open'
      try {
        outcome = await this.mergeOnce(job, release)
      } finally {
        release?.()
      }
      if (outcome === 'adopted') return
      if (outcome === 'changed') changed++
      // Refused: a local change landed first, or the merge changes a file open for writing. Wait a little.
      await new Promise(resolve => setTimeout(resolve, Math.min(1000, 50 * (attempt + 1))).unref())
    }
    throw new Error(`could not merge ${label}: local changes kept landing first`)
  }

  /**
   * One attempt of mergeHeads: commits, folds the heads into the tree it committed and swaps the
   * result in ('adopted', also when there was nothing new for this tree), or says why the swap was
   * refused. `release` ends the drive's hold (if one is on) at the swap.
   */
  private async mergeOnce (job: MergeJob, release: (() => void) | undefined): Promise<'adopted' | 'changed' | 'open'> {
    const { drive } = this.deps
    const { entries, theirs, baseOf, label, t0, t1 } = job
    const ta = Date.now()
    const head = await drive.commit()
    await this.publishing // our entry for `head` exists before the ancestor search
    const tb = Date.now()
    const ours = await readSnapshot(head.ref, drive.store)
    const tc = Date.now()
    this.origins.apply(ours)
    // The drive's tree holds what it merged even where no entry of its own says so yet (a merge
    // that changed nothing publishes nothing): its history is its entry and those heads.
    const own = this.deps.log.state.cid
    const mine: Head = { device: this.deps.device.name, key: hexOf(this.deps.device.publicKey), cids: [...(own != null ? [own] : []), ...[...this.merged.values()].map(h => h.cid)], snapshot: ours }
    const folded = await foldHeads([mine, ...theirs], baseOf)
    const td = Date.now()
    // Merged once the tree holds them: the drive's history (mine, above) counts these heads.
    const done = (): void => { for (const s of entries) this.merged.set(hexOf(s.entry.dev), { dev: s.entry.dev, seq: s.entry.seq, cid: s.cid }) }
    const { snapshot, changes } = adoptable(folded.snapshot, ours, drive.keys())
    if (changes.length === 0) { done(); return 'adopted' } // nothing new for this tree: the next entry carries the heads
    const m = materialize(snapshot, drive.store, { before: ours })
    // Set at the swap: the commit it makes is published with these heads, and a commit of the
    // tree before it (while the drive prepares the swap) is not. Undone when the swap is
    // refused, or the next attempt would take its own input as its base.
    const before = new Map(this.merged)
    const te = Date.now()
    const outcome = await drive.adopt({ root: m.root, links: m.links }, changes, head.localSeq, () => { release?.(); done() })
    trace(() => `merge ${label}: theirs read ${t1 - t0} ms, commit ${tb - ta} ms, ours read ${tc - tb} ms, fold ${td - tc} ms, materialize ${te - td} ms, adopt ${Date.now() - te} ms (${outcome}${release != null ? ', held' : ''}, ${ours.nodes.size} nodes)`)
    if (outcome === 'adopted') {
      this.origins.remember(snapshot)
      this.deps.logLine?.(`sync: merged ${label}: ${changes.length} changes, ${folded.conflicts.length} resolved`)
      entries.forEach((s, i) => this.deps.onEvent?.({ kind: 'merged', device: this.nameOf(s), seq: s.entry.seq, changes: changes.length, conflicts: i === 0 ? folded.conflicts : [] }))
      return outcome
    }
    this.merged.clear()
    for (const [k, v] of before) this.merged.set(k, v)
    return outcome
  }
}
