// Sync in the serving process: before the drive opens, prepareSync() reads the config and gives
// the drive a store that fetches missing blocks from the hub; once it is mounted, attachSync()
// opens the identity, connects and starts the engine over the mounted drive: every commit is
// published and pushed, other devices' entries are merged in and the kernel is told what changed;
// what a merge changed is reported as file events too, and the background download (or, on
// demand, the reads) brings the blocks of the merged tree.
import type { CID } from 'multiformats/cid'
import type { Drive } from '../drive/drive.js'
import type { CommitRecord } from '../fs/tree/format.js'
import type { FileNode } from '../fs/tree/nodes.js'
import type { PackStore } from '../store/pack-store.js'
import type { BlockStore } from '../fs/tree/ports.js'
import { openAccount, KEYSTORE_PASSPHRASE_ENV } from '../keys/account.js'
import { FetchingStore, Downloader, type DownloadStatus } from './fetching-store.js'
import { HttpBlockTransport } from './transport-http.js'
import { AppendedBlocks } from './new-blocks.js'
import { hubTransport, readSyncConfig, startDeviceSync, type SyncConfig, type DeviceSync } from './device.js'
import type { LiveDrive, LocalHead, SyncEvent, SyncStatus } from './engine.js'
import type { PathChange } from './snapshot-write.js'

/** How long merges and prefetches must have been quiet before the download scans the merged tree. */
const SCAN_QUIET_MS = 1000
/** The longest the download's scan waits for that quiet moment. */
const SCAN_DEFER_MAX_MS = 10_000

/** What sync needs of the mount (daemon.ts MountedDrive). */
export interface MountView {
  drive: Drive
  handles: { openFiles: () => FileNode[], writers: () => FileNode[], afterClose: (node: FileNode, fn: () => void) => void }
  kernel: { invalidatePath: (path: string) => Promise<number>, invalidateEntry: (dir: string, name: string) => Promise<number> }
}

export interface PreparedSync {
  config: SyncConfig
  /** For Drive.open: the store the tree reads through. */
  wrapStore: (local: PackStore) => BlockStore
  fetching: () => FetchingStore | null
  /** The drive store's appends, for listing a commit's new blocks. */
  appended: () => AppendedBlocks | null
  setTransport: (t: HttpBlockTransport) => void
}

export interface FullSyncStatus extends SyncStatus {
  hub: string
  /** Blocks fetched from the hub by this process, on demand and in the background. */
  fetched: { blocks: number, bytes: number }
  /** This device's entries not yet on the hub, the paths they change and the bytes they add. */
  up: { entries: number, files: number, bytes: number }
  /** The merged tree's file blocks not here yet, and the background download. */
  down: DownloadStatus
}

export interface SyncAttachment {
  status: () => Promise<FullSyncStatus>
  /** Records a revocation this device made: the revoked device's later entries are refused. */
  revoke: (record: Uint8Array) => Promise<void>
  /** The highest entry this device has seen of a log (hex device key). */
  seen: (dev: string) => number
  revokedAfter: (dev: string) => number | null
  stop: () => Promise<void>
}

/** A file change a merge made, as the event stream reports it. */
export type MergeChange = { kind: 'created' | 'updated' | 'removed' | 'renamed', path: string, to?: string }

/**
 * A sync event as the event stream carries it (`sync` of a `kind: "sync"` event): `event` says
 * which; a merge gives its number of changes and conflicts and the paths of conflict copies.
 */
export function syncEventJson (e: SyncEvent): Record<string, unknown> {
  const { kind, ...rest } = e
  if (e.kind === 'merged') {
    return { event: kind, device: e.device, seq: e.seq, changes: e.changes, conflicts: e.conflicts.length, copies: e.conflicts.map(c => c.copy ?? c.path).filter(p => p != null) }
  }
  return { event: kind, ...rest }
}

function changeEvents (changes: PathChange[]): MergeChange[] {
  const out: MergeChange[] = []
  for (const c of changes) {
    if (c.old == null && c.new != null) out.push({ kind: 'created', path: c.new })
    else if (c.old != null && c.new == null) out.push({ kind: 'removed', path: c.old })
    else if (c.old != null && c.new != null && c.old !== c.new) out.push({ kind: 'renamed', path: c.old, to: c.new })
    else if (c.new != null && c.new !== '/') out.push({ kind: 'updated', path: c.new })
  }
  return out
}

/** Whether the merge's changes name one of `files` (by file id, or by the path it has now). */
export function changesAny (changes: PathChange[], files: FileNode[]): boolean {
  if (files.length === 0) return false
  const ids = new Set(files.map(f => f.id.toString('hex')))
  const paths = new Set(files.filter(f => f.parent != null).map(f => f.path()))
  return changes.some(c => ids.has(c.id) || (c.old != null && paths.has(c.old)) || (c.new != null && paths.has(c.new)))
}

export async function prepareSync (configDir: string): Promise<PreparedSync | null> {
  const config = await readSyncConfig(configDir)
  if (config == null) return null
  let transport: HttpBlockTransport | null = null
  let fetching: FetchingStore | null = null
  let appended: AppendedBlocks | null = null
  return {
    config,
    wrapStore: local => {
      const a = new AppendedBlocks(local)
      const f = new FetchingStore(local, () => transport)
      // What came from the hub is not this device's to push: its entries do not list it.
      a.fromHub = cid => f.fromHub(cid)
      appended = a
      fetching = f
      return f.store
    },
    fetching: () => fetching,
    appended: () => appended,
    setTransport: t => { transport = t }
  }
}

export function headOf (rec: CommitRecord): LocalHead {
  const ref: LocalHead['ref'] = { root: rec.root }
  if (rec.links != null) ref.links = rec.links
  return { localSeq: rec.seq, time: rec.time, ref, watermark: { pack: rec.pack[0], offset: rec.pack[1] } }
}

const parentOf = (path: string): { dir: string, name: string } => {
  const i = path.lastIndexOf('/')
  return { dir: i <= 0 ? '/' : path.slice(0, i), name: path.slice(i + 1) }
}

/** Tells the kernel about every name a merge changed: the entries in their folders, then the nodes. */
async function invalidate (kernel: MountView['kernel'], changes: PathChange[]): Promise<void> {
  const paths = new Set<string>()
  for (const c of changes) for (const p of [c.old, c.new]) if (p != null) paths.add(p)
  for (const p of paths) {
    if (p !== '/') {
      const { dir, name } = parentOf(p)
      await kernel.invalidateEntry(dir, name).catch(() => 0)
    }
    await kernel.invalidatePath(p).catch(() => 0)
  }
  await kernel.invalidatePath('/').catch(() => 0)
}

/**
 * Files the merge changed that are open here: the kernel's inode outlives the invalidation
 * (with the writeback cache it keeps its old size, fuse_get_cache_mask), so their names are
 * invalidated again after the last close, when nothing holds the inode and the kernel drops it.
 */
function staleWhileOpen (m: MountView, changes: PathChange[]): void {
  const ids = new Set(changes.map(c => c.id))
  for (const f of m.handles.openFiles()) {
    if (!ids.has(f.id.toString('hex'))) continue
    m.handles.afterClose(f, () => {
      if (f.parent == null) return
      const { dir, name } = parentOf(f.path())
      m.kernel.invalidateEntry(dir, name).catch(() => 0)
    })
  }
}

export async function attachSync (prep: PreparedSync, m: MountView, opts: {
  configDir: string
  log?: (line: string) => void
  onEvent?: (e: SyncEvent) => void
  /** File changes a merge made (the mount's own writes are reported by the FUSE layer). */
  onChange?: (c: MergeChange) => void
}): Promise<SyncAttachment> {
  const account = await openAccount(opts.configDir, { passphrase: process.env[KEYSTORE_PASSPHRASE_ENV] })
  const { config } = prep
  const transport = hubTransport(config, account)
  prep.setTransport(transport)
  const { drive } = m
  const tree = drive.tree
  const fetching = prep.fetching()
  const store = fetching ?? drive.store
  const downloader = fetching == null
    ? null
    : new Downloader(fetching, {
      mode: config.download ?? 'all',
      log: opts.log,
      onProgress: d => opts.onEvent?.({ kind: 'download', files: d.pending.files, bytes: d.pending.bytes, done: d.progress.done, total: d.progress.total })
    })
  // After a merge the background download scans the merged tree for blocks not here. While
  // entries' listed blocks are being fetched ahead (LiveDrive.prefetch), that scan would mostly
  // find them in flight (and read every growing file's block map again, per merge): it waits
  // until merges and prefetches have been quiet for a moment, then scans the newest tree once.
  const prefetchAbort = new AbortController()
  let prefetches = 0
  let lastPrefetch = 0
  let deferred: { ref: LocalHead['ref'], timer: NodeJS.Timeout } | null = null
  let deferredSince = 0 // when the scan first waited (0: it is not waiting)
  const scan = (ref: LocalHead['ref']): void => {
    if (deferred != null) { clearTimeout(deferred.timer); deferred = null }
    // At most SCAN_DEFER_MAX_MS in all: a device that commits every half second would otherwise
    // hold off the download of what its prefetches do not cover for as long as it writes.
    const overdue = deferredSince !== 0 && Date.now() - deferredSince > SCAN_DEFER_MAX_MS
    if (overdue || (prefetches === 0 && Date.now() - lastPrefetch > SCAN_QUIET_MS)) { deferredSince = 0; downloader?.schedule(ref); return }
    if (deferredSince === 0) deferredSince = Date.now()
    deferred = { ref, timer: setTimeout(() => { deferred = null; scan(ref) }, SCAN_QUIET_MS) }
    deferred.timer.unref()
  }
  // SPACE_SYNC_PREFETCH=0: blocks only by the background download and on demand (a test of reads
  // on demand needs blocks that are not fetched ahead).
  const prefetch = fetching == null || downloader == null || (config.download ?? 'all') !== 'all' || process.env.SPACE_SYNC_PREFETCH === '0'
    ? undefined
    : async (cids: CID[]): Promise<void> => {
      prefetches++
      lastPrefetch = Date.now()
      try {
        await fetching.prefetch(cids, undefined, prefetchAbort.signal)
      } finally {
        prefetches--
        lastPrefetch = Date.now()
      }
    }
  const live: LiveDrive = {
    commit: async () => {
      await drive.commit()
      if (drive.head == null) throw new Error('the drive has no commit yet')
      return headOf(drive.head)
    },
    adopt: async (ref, changes, expect, swapped) => {
      // Files open for writing stay in the swapped tree with what they wrote (Tree.adopt). A merge
      // that changes one of them (another device edited it) waits until it is closed: the engine
      // retries, and once closed the file's last state is merged like any other.
      const writers = m.handles.writers()
      if (changesAny(changes, writers)) return 'open'
      const info = await tree.adopt(ref, expect, () => m.handles.openFiles(), { writers: () => m.handles.writers(), swapped })
      if (info == null) return tree.refused === 'writer' ? 'open' : 'changed'
      await invalidate(m.kernel, changes)
      staleWhileOpen(m, changes)
      for (const c of changeEvents(changes)) opts.onChange?.(c)
      scan(ref)
      return 'adopted'
    },
    hold: maxMs => tree.hold(maxMs),
    keys: () => ({ root: { i: tree.root.id, k: tree.root.key }, links: { i: tree.links.id, k: tree.links.key } }),
    store: { get: async (cid: CID, scratch?: Buffer) => await store.get(cid, scratch), put: (bytes: Uint8Array) => drive.store.put(bytes) },
    blockSize: (cid: CID) => drive.store.locate(cid)?.length ?? 0,
    prefetch
  }
  let sync: DeviceSync
  try {
    sync = await startDeviceSync({ config, account, dataDir: drive.dataDir, drive: live, transport, log: opts.log, onEvent: opts.onEvent, recent: prep.appended() ?? undefined })
  } catch (err) {
    await transport.close()
    throw err
  }
  const unsubscribe = drive.onCommitted(rec => sync.engine.committed(headOf(rec)))
  if (drive.head != null) sync.engine.committed(headOf(drive.head)) // a commit made while sync was not running
  if (drive.head != null) downloader?.schedule(headOf(drive.head).ref) // what an earlier run left to fetch
  const idle: DownloadStatus = { mode: config.download ?? 'all', state: 'idle', pending: { files: 0, bytes: 0 }, progress: { done: 0, total: 0 }, lastError: null }
  return {
    status: async () => ({
      ...sync.engine.status(),
      hub: config.hub,
      fetched: { ...(fetching?.fetched ?? { blocks: 0, bytes: 0 }) },
      up: await sync.engine.pendingUpDetail().catch(() => ({ entries: sync.engine.status().pendingUp, files: 0, bytes: 0 })),
      down: downloader?.status() ?? idle
    }),
    revoke: async record => await sync.engine.revoke(record),
    seen: dev => sync.engine.seen(dev),
    revokedAfter: dev => sync.engine.revokedAfter(dev),
    stop: async () => {
      unsubscribe()
      if (deferred != null) clearTimeout(deferred.timer)
      prefetchAbort.abort()
      await downloader?.stop()
      await sync.stop()
    }
  }
}
