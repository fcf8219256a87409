// The drive: one store (packs + commit journal) and the tree on top, opened under the store's
// lock by the recovery rules of recover.ts. Knows no FUSE; mounting is daemon.ts's.
import { promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { PackStore } from '../store/pack-store.js'
import { Journal } from '../store/journal.js'
import { BlockCache } from '../store/block-cache.js'
import { Tree, type CommitInfo, type BlockStore } from '../fs/tree/tree.js'
import { CommitLog } from '../fs/tree/commit-log.js'
import { BLOCK_SIZE, FORMAT_VERSION, Kind, msToNs, type CommitRecord } from '../fs/tree/format.js'
import { SealPool, randomId, randomKey } from '../crypto/index.js'
import { copyTree, type ResealProgress } from './reseal.js'
import { DriveError, damaged } from './errors.js'
import { takeLock, releaseLock, writeLock } from './lock.js'
import { loadMeta, upgradeMeta } from './store-meta.js'
import { checkWatermark, decodeOrRefuse, headBytesHold, keepTornTail, readJournal, withoutLast } from './recover.js'
import { JournalDamaged } from '../store/journal.js'
import { packsHoldRecords } from './quarantine.js'
import { memoryShares } from './memory-budget.js'

export interface DriveOptions {
  /** The decrypted-block cache's budget (default: its share of the memory budget). */
  cacheBytes?: number
  /** What the buffer pools and caches hold together at most (memory-budget.ts). */
  memoryBudget?: number
  log?: (line: string) => void
  /** Create an empty store when the directory has none (false: a missing store is an error). */
  create?: boolean
  /**
   * The store the tree reads through, given the drive's own (sync: one that fetches missing
   * blocks from the hub and keeps them here, src/sync/fetching-store.ts).
   */
  wrapStore?: (local: PackStore) => BlockStore
}

export interface CommitEntry { seq: number, time: number, root: string }

const noSink = { append: async () => {} }

/** An open drive: one store, its commit journal and the tree on top. Holds the store's lock. */
export class Drive {
  private constructor (
    readonly dataDir: string,
    readonly tree: Tree,
    readonly store: PackStore,
    private readonly journal: Journal,
    private readonly lockPath: string,
    private readonly history: CommitEntry[],
    private readonly sealer: SealPool,
    private readonly commits: CommitLog,
    private readonly cache: BlockCache,
    private readonly logLine: (line: string) => void,
    /** The newest commit record (null before the first commit). */
    private headRecord: CommitRecord | null
  ) {}

  private readonly listeners = new Set<(record: CommitRecord) => void>()

  /** The newest commit record, null before the first commit. */
  get head (): CommitRecord | null { return this.headRecord }

  /** Calls `fn` with each commit record once it is durable (sync publishes them); returns the unsubscribe. */
  onCommitted (fn: (record: CommitRecord) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  private committed (info: CommitInfo): void {
    this.history.push({ seq: info.seq, time: info.time, root: info.root?.toString() ?? '' })
    if (info.record == null) return
    this.headRecord = info.record
    for (const fn of this.listeners) {
      try { fn(info.record) } catch (err) { this.logLine(`error: commit listener: ${(err as Error).message}`) }
    }
  }

  static async open (dataDir: string, masterKey: Buffer, opts: DriveOptions = {}): Promise<Drive> {
    dataDir = resolve(dataDir)
    const log = opts.log ?? (() => {})
    await fsp.mkdir(dataDir, { recursive: true, mode: 0o700 })
    const lockPath = join(dataDir, 'lock')
    await takeLock(lockPath)
    try {
      const meta = await loadMeta(dataDir, masterKey, opts.create ?? true)
      const storeId = Buffer.from(meta.id, 'hex')
      // Everything is checked before anything is cut: a refusal changes nothing.
      let jb = await readJournal(dataDir)
      const decoded = decodeOrRefuse(dataDir, r => new CommitLog(masterKey, storeId, noSink).decodeAll(r), jb.scan.records)
      const unacked = decoded.length > 0 && !await headBytesHold(dataDir, decoded.at(-1)!)
      if (unacked) { jb = withoutLast(jb); decoded.pop() }
      const head = decoded.at(-1) ?? null
      await checkWatermark(dataDir, head)
      const kept = await keepTornTail(dataDir, jb, head)
      // The packs first (indexed before anything in them is cut), then the journal's torn tail.
      let store: PackStore
      try {
        store = await PackStore.open(join(dataDir, 'packs'), head == null ? null : { pack: head.pack[0], offset: head.pack[1] }, {
          log,
          onDamage: d => log(`damage: pack ${d.pack}: ${d.skipped} bytes from byte ${d.offset} skipped (${d.reason}); blocks there read as EIO; run "space fsck --data-dir ${dataDir}"`)
        })
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code === 'ERR_STORE_CORRUPT') throw damaged(dataDir, (err as Error).message, err)
        throw new DriveError('ERR_STORE_CORRUPT', `store ${dataDir} is corrupt: ${(err as Error).message}`, { cause: err })
      }
      let journal: Journal
      try {
        const opened = await Journal.open(join(dataDir, 'journal'), { end: jb.scan.end })
        journal = opened.journal
        if (opened.cutBytes > 0) log(`recovery: cut ${opened.cutBytes} bytes of an unfinished commit from the journal${unacked ? ' (its pack bytes had not all reached the disk)' : ''} (kept in ${kept ?? '-'})`)
      } catch (err) {
        await store.close()
        throw err
      }
      // Only once every check passed (a refusal changes nothing): everything sealed from now on is v2.
      await upgradeMeta(dataDir, meta).catch(async err => { await store.close(); await journal.close(); throw err })
      const commits = new CommitLog(masterKey, storeId, journal)
      const shares = memoryShares(opts.memoryBudget, opts.cacheBytes)
      const cache = new BlockCache(shares.cacheBytes)
      const history = decoded.map(r => ({ seq: r.seq, time: r.time, root: r.root.d?.toString() ?? '' }))
      const sealer = new SealPool(BLOCK_SIZE, shares.sealSlots)
      let drive: Drive | null = null
      const tree = new Tree({
        store: opts.wrapStore?.(store) ?? store, cache, sink: commits, head, log, sealer,
        dirtyBudget: shares.dirtyBudget, keptBuffers: shares.keptBuffers, maxSeals: shares.maxSeals,
        onCommit: info => drive!.committed(info)
      })
      drive = new Drive(dataDir, tree, store, journal, lockPath, history, sealer, commits, cache, log, head)
      return drive
    } catch (err) {
      await releaseLock(lockPath)
      throw err
    }
  }

  async commit (): Promise<CommitInfo> { return await this.tree.commit() }

  /** Resolves once the sealing threads have started (SealPool.ready): the mount is announced after it. */
  get started (): Promise<void> { return this.sealer.ready }

  /**
   * Gives back what only speeds up the next burst of work: the decrypted blocks cached, the
   * pages of the sealing slots, the block maps of files not in use and, with `unloadTree` (no
   * handle open), the loaded tree below the root (Tree.releaseMemory; memory.ts calls it once the
   * daemon is quiet).
   */
  releaseMemory (opts: { unloadTree?: boolean } = {}): { maps: number, unloaded: boolean } {
    this.cache.clear()
    this.sealer.trim()
    this.tree.releaseBuffers()
    return this.tree.releaseMemory(opts)
  }

  /** Every commit of this store, oldest first; each names the root directory's CID. */
  log (): CommitEntry[] { return [...this.history] }

  /** Reads the commit history without taking the lock (the drive may be mounted elsewhere). */
  static async readLog (dataDir: string, masterKey: Buffer): Promise<CommitEntry[]> {
    dataDir = resolve(dataDir)
    const meta = await loadMeta(dataDir, masterKey, false)
    let records: Buffer[]
    try {
      records = await Journal.read(join(dataDir, 'journal'))
    } catch (err) {
      if (err instanceof JournalDamaged) throw damaged(dataDir, err.message, err)
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      // No journal: a store never committed to has no history; one whose packs hold blocks lost it.
      if (await packsHoldRecords(join(dataDir, 'packs'))) throw damaged(dataDir, 'the commit journal is missing but the packs hold blocks', err)
      return []
    }
    const decoded = decodeOrRefuse(dataDir, r => new CommitLog(masterKey, Buffer.from(meta.id, 'hex'), noSink).decodeAll(r), records)
    return decoded.map(r => ({ seq: r.seq, time: r.time, root: r.root.d?.toString() ?? '' }))
  }

  /**
   * Copies the whole drive into a tree with fresh random ids and keys over the same store and
   * journal, and commits it as the next version (reseal.ts says why). The drive must not be
   * mounted; reopen it afterwards to serve the new version.
   */
  async reseal (progress?: (p: ResealProgress) => void): Promise<ResealProgress> {
    await this.tree.commit()
    const old = this.tree.root.attrs
    const t = Date.now()
    const head: CommitRecord = {
      v: FORMAT_VERSION,
      seq: this.tree.head.seq,
      time: t,
      root: { n: '', t: Kind.Dir, m: old.mode, u: old.uid, g: old.gid, a: msToNs(old.atime), mt: msToNs(old.mtime), c: msToNs(t), i: randomId(), k: randomKey() },
      pack: [0, 0] // not read: a commit records the store's watermark of its own
    }
    const fresh = new Tree({
      store: this.store, cache: this.cache, sink: this.commits, head, log: this.logLine, sealer: this.sealer,
      onCommit: info => this.committed(info)
    })
    const done = await copyTree(this.tree, fresh, progress)
    await fresh.commit()
    return done
  }

  async setMountpoint (mountpoint: string | null): Promise<void> { await writeLock(this.lockPath, mountpoint) }

  /** Commits and releases everything; when the commit fails, still releases, then throws. */
  async close (): Promise<void> {
    try {
      await this.commit()
    } finally {
      await this.store.close()
      await this.sealer.close()
      await this.journal.close()
      await releaseLock(this.lockPath)
    }
  }
}
