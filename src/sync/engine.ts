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
import { deviceLabel } from './devices.js'
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
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex')

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
    this.abort.abort()
    await this.pulling?.catch(() => {})
    await this.publishing.catch(() => {})
  }

  /**
   * A local commit is durable: publish it as the next entry, then push. Serial, in commit order.
   * The heads are taken now, as of this commit's tree: a merge that starts before the publish
   * runs must not lend its head to a commit without its changes (the other device would then
   * take the difference for a change of ours and make conflict copies of its own files).
   */
  committed (head: LocalHead): void {
    const heads = [...this.merged.values()]
    this.publishing = this.publishing.then(async () => {
      if (head.localSeq <= this.deps.log.state.localSeq) return
      const signed = await this.deps.log.publish({ localSeq: head.localSeq, time: head.time, payload: head.ref as RootPayload, watermark: head.watermark }, heads)
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
      pushed: { ...this.pusher.totals }
    }
  }

  private kickPush (): void {
    if (this.stopped) return
    this.pusher.kick().catch(() => { if (!this.stopped) setTimeout(() => this.kickPush(), 2000).unref() })
  }

  private fail (what: string, err: unknown): void {
    this.lastError = `${what}: ${(err as Error).message}`
    this.deps.logLine?.(`sync: ${this.lastError}`)
    this.deps.onEvent?.({ kind: 'error', message: this.lastError })
  }

  private async pullLoop (): Promise<void> {
    let backoff = 500
    while (!this.stopped) {
      try {
        const after: Record<string, number> = {}
        for (const h of this.deps.state.heads()) after[hexOf(h.dev)] = h.seq
        const batch = await this.deps.hub.since(after, 25_000, this.abort.signal)
        this.lastContact = Date.now()
        backoff = 500
        await this.receive(batch)
      } catch (err) {
        if (this.stopped) return
        this.fail('pull', err)
        await new Promise(resolve => setTimeout(resolve, backoff).unref())
        backoff = Math.min(backoff * 2, 30_000)
      }
    }
  }

  /** Checks a batch of entries, then merges the newest accepted entry of each log. */
  async receive (batch: Uint8Array[]): Promise<void> {
    const ours = hexOf(this.deps.device.publicKey)
    const newest = new Map<string, SignedEntry>()
    const decoded = batch.map(b => decodeEntry(b)).sort((x, y) => Buffer.compare(x.entry.dev, y.entry.dev) || x.entry.seq - y.entry.seq)
    for (const s of decoded) {
      const dev = hexOf(s.entry.dev)
      if (dev === ours) continue
      try {
        verifyEntry(s, { drive: this.deps.driveId, identity: this.deps.identity })
        const r = await this.deps.state.accept(s)
        if (r.status === 'duplicate') continue
        await this.deps.entries.put(s)
        newest.set(dev, s)
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'ERR_SYNC'
        this.deps.logLine?.(`sync: refused ${deviceLabel(s.entry.dev, s.entry.cert.name)} entry ${s.entry.seq}: ${(err as Error).message}`)
        this.deps.onEvent?.({ kind: 'refused', device: s.entry.cert.name, seq: s.entry.seq, code, message: (err as Error).message })
      }
    }
    for (const s of [...newest.values()].sort((x, y) => Buffer.compare(x.entry.dev, y.entry.dev))) await this.mergeEntry(s)
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
      const changes = diffSnapshots(ours, snapshot)
      const dev = hexOf(s.entry.dev)
      const had = this.merged.get(dev)
      const now: EntryHead = { dev: s.entry.dev, seq: s.entry.seq, cid: s.cid }
      if (changes.length === 0) { this.merged.set(dev, now); return } // the tree holds it already: the next entry carries the head
      keepOwnIds(snapshot, ours, drive.keys())
      const m = materialize(snapshot, drive.store, { before: ours })
      // Set in the same turn as adopt() swaps the tree in (it checks and swaps before its first
      // await), so the commit that records the merge is the first to carry the head.
      this.merged.set(dev, now)
      if (await drive.adopt({ root: m.root, links: m.links }, changes, head.localSeq)) {
        this.deps.onEvent?.({ kind: 'merged', device: s.entry.cert.name, seq: s.entry.seq, changes: changes.length, conflicts })
        return
      }
      if (had == null) this.merged.delete(dev); else this.merged.set(dev, had)
    }
    throw new Error(`could not merge ${deviceLabel(s.entry.dev, s.entry.cert.name)} entry ${s.entry.seq}: local changes kept landing first`)
  }
}
