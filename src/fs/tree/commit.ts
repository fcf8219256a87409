// Commits: seal what changed (content blocks still dirty or sealing, then every dirty directory
// from the leaves up, then the link table when it changed) into the store, make the store durable, and append the new root to the
// commit sink. Concurrent callers share the next commit; a failed commit leaves the tree dirty.
import type { CID } from 'multiformats/cid'
import { type CommitRecord, FORMAT_VERSION } from './format.js'
import type { DirNode, LinkTable } from './nodes.js'
import { sealDirectory } from './dir-entries.js'
import { entryOf, linkedRecordOf, sealDirShard, sealLinkTable } from './codec.js'
import type { FileBlocks } from './file-blocks.js'
import type { BlockStore, CommitSink, CommitInfo } from './ports.js'
import { cidOf } from '../../store/cid.js'

export interface CommitDeps {
  root: DirNode
  links: LinkTable
  store: Pick<BlockStore, 'put' | 'sync' | 'syncStart' | 'backlog'> & Partial<Pick<BlockStore, 'putFresh'>>
  sink: CommitSink
  fileBlocks: Pick<FileBlocks, 'sealsInFlight' | 'waitForAllSeals' | 'takeOverSeals' | 'sealAllDirty'>
  now: () => number
  /** Called after each commit is durable. */
  onCommit: (info: CommitInfo) => void
  /** The last committed record, or null for a new tree. */
  head: CommitRecord | null
  /** With SPACE_DEBUG_COMMITS=1, one line per commit: callers, phases, bytes (docs/performance.md). */
  log?: (line: string) => void
}

export class Committer {
  private seq: number
  private headRoot: CID | null
  private pending: Promise<CommitInfo> | null = null
  private chain: Promise<unknown> = Promise.resolve()
  private failed = false
  /** A commit record reached the journal but its pack bytes failed to: no commit may follow it. */
  private broken: Error | null = null
  /** A tree was swapped in (adopt.ts): the next commit records it though nothing is dirty. */
  private adopted = false
  /** Callers that share the pending commit, for the debug line. */
  private callers = 0
  private readonly debug: ((line: string) => void) | null
  /** How long the last commit held the event loop sealing (ms): the commit policy spaces commits by it. */
  busyMs = 0

  constructor (private readonly deps: CommitDeps) {
    this.seq = deps.head?.seq ?? 0
    this.headRoot = deps.head != null ? deps.root.cid : null
    this.debug = process.env.SPACE_DEBUG_COMMITS === '1' ? deps.log ?? null : null
  }

  /** Something changed since the last durable commit (or the last one failed). */
  get dirty (): boolean { return this.deps.root.dirty || this.deps.links.dirty || this.failed || this.adopted }

  /** The root and link table now name another committed tree: record it at the next commit. */
  markAdopted (): void { this.adopted = true }

  get head (): CommitInfo { return { seq: this.seq, root: this.headRoot, time: this.deps.now() } }

  /**
   * Makes every change so far durable. Callers arriving while a commit runs share the next one,
   * so a burst of fsyncs costs one commit.
   */
  commit (): Promise<CommitInfo> {
    this.callers++
    if (this.pending != null) return this.pending
    const asked = performance.now()
    const run = this.chain.then(async () => {
      this.pending = null
      const callers = this.callers
      this.callers = 0
      return await this.commitNow(this.debug != null ? { asked, callers } : null)
    })
    this.pending = run
    this.chain = run.catch(() => {})
    return run
  }

  private async commitNow (dbg: { asked: number, callers: number } | null): Promise<CommitInfo> {
    const { root, store, fileBlocks } = this.deps
    const t0 = performance.now()
    if (fileBlocks.sealsInFlight > 0) await fileBlocks.waitForAllSeals()
    if (!this.dirty) return this.head
    const t1 = performance.now()
    const b0 = store.backlog
    // Everything up to the journal append is synchronous: the snapshot is consistent.
    fileBlocks.takeOverSeals()
    fileBlocks.sealAllDirty()
    if (root.dirty) this.sealDir(root)
    const rootEntry = entryOf(root, store) as CommitRecord['root']
    const rootCid = root.cid
    const links = this.sealLinks()
    if (this.broken != null) throw this.broken
    const t2 = performance.now()
    this.busyMs = t2 - t1
    const sealed = store.backlog - b0
    try {
      // With a check of the new pack bytes, the record goes to the journal while the pack's
      // fdatasync runs: one fdatasync in series instead of two. An open verifies the head
      // record's bytes and sets it aside if they did not all reach the disk (it was never
      // acknowledged: this returns only once both are durable).
      const s = store.syncStart != null ? await store.syncStart() : { wm: await store.sync(), check: null, durable: Promise.resolve() }
      const wm = s.wm
      const rec: CommitRecord = { v: FORMAT_VERSION, seq: this.seq + 1, time: this.deps.now(), root: rootEntry, pack: [wm.pack, wm.offset] }
      if (links != null) rec.links = links
      if (s.check == null) {
        await s.durable
        await this.deps.sink.append(rec)
      } else {
        rec.pc = [s.check.from, s.check.crc]
        const [pack, journal] = await Promise.allSettled([s.durable, this.deps.sink.append(rec)])
        if (pack.status === 'rejected') {
          // The record may be in the journal already: no later record may follow it under this
          // sequence number, so this tree takes no more commits (a remount verifies it).
          if (journal.status === 'fulfilled') this.broken = pack.reason as Error
          throw pack.reason
        }
        if (journal.status === 'rejected') throw journal.reason
      }
      this.seq = rec.seq
      this.headRoot = rootCid
      this.failed = false
      this.adopted = false
      const info = { seq: rec.seq, root: rootCid, time: rec.time, record: rec }
      this.deps.onCommit(info)
      if (dbg != null) {
        const t3 = performance.now()
        this.debug!(`commit ${rec.seq}: ${dbg.callers} callers, waited ${(t0 - dbg.asked).toFixed(2)} ms for the last commit, ${(t1 - t0).toFixed(2)} ms for seals; sealed ${(t2 - t1).toFixed(2)} ms, ${sealed} bytes; durable ${(t3 - t2).toFixed(2)} ms${s.check != null ? ' (one fdatasync)' : ''}`)
      }
      return info
    } catch (err) {
      this.failed = true
      throw err
    }
  }

  /** Seals one dirty directory (its node, or its changed shards), its dirty subdirectories first, and sets its `cid`. */
  private sealDir (dir: DirNode): void {
    const store = this.deps.store
    // Sealed under a fresh nonce, a shard is bytes no record holds yet: no dedupe probe of the
    // current pack's index (a cold .idx read per shard, on the event loop: 0.4 ms per create into
    // the 1M folder read from disk).
    const put = store.putFresh != null ? (b: Uint8Array) => store.putFresh!(cidOf(b), b) : (b: Uint8Array) => store.put(b)
    dir.cid = sealDirectory(dir, sub => this.sealDir(sub), (name, node) => entryOf(node, store, name), (index, body) => put(sealDirShard(dir, index, body)))
    dir.dirty = false
  }

  /** Seals the link table when it changed; its reference for the commit record, once it exists. */
  private sealLinks (): CommitRecord['links'] {
    const t = this.deps.links
    if (t.dirty && t.nodes != null) {
      const records = [...t.nodes.values()].map(n => linkedRecordOf(n, this.deps.store))
      records.sort((x, y) => Buffer.compare(x.h, y.h))
      t.cid = this.deps.store.put(sealLinkTable(t, records))
      t.dirty = false
    }
    return t.cid != null ? { i: t.id, k: t.key, d: t.cid } : undefined
  }
}
