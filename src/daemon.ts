// Composition root: opens a drive (src/drive/) with the key of a config dir and mounts it with
// the FUSE frontend. The only module that wires the frontend, the binding and the drive.
import { promises as fsp } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { defaultBinding } from './fs/fuse/select.js'
import type { FuseBinding, FuseMount, StatfsLike } from './fs/fuse/binding.js'
import { buildOps } from './fs/fuse/frontend.js'
import { Handles, type ChangeKind } from './fs/fuse/context.js'
import { KernelNames } from './fs/fuse/kernel-names.js'
import { loadDriveKey, RETIRED_KEY_FILE } from './keys/drive-key.js'
import { Drive, type DriveOptions } from './drive/drive.js'
import { DriveError } from './drive/errors.js'
import { checkMountpoint, raiseReadahead } from './drive/mountpoint.js'
import { CommitPolicy } from './drive/commit-policy.js'
import { MemoryTrim } from './memory.js'
import { warmLookups, loadedNames, untilWarm, WARM_WAIT_MS } from './fs/fuse/warm.js'
import { forgetOpenedDirs } from './sync/snapshot.js' // the merge's directory cache, given back with the rest
import { logOptions } from './fs/tree/nodes.js'
import { findRetiredKey, rekey } from './drive/rekey.js'
import { markResealPending, resealPending, clearResealPending } from './drive/reseal.js'

export { Drive, type DriveOptions, type CommitEntry } from './drive/drive.js'
export { DriveError, type DriveErrorCode } from './drive/errors.js'
export { readLock, pidAlive, type LockInfo } from './drive/lock.js'
export { checkMountpoint, isMounted } from './drive/mountpoint.js'
export { STORE_FORMAT } from './drive/store-meta.js'

/**
 * Opens the drive of a config dir. A store made under the temporary key file opens with the
 * identity key after `space init` retired that file: it is moved to the identity key first.
 */
export async function openDriveFromConfig (configDir: string, dataDir: string, opts: DriveOptions = {}): Promise<Drive> {
  const { key, source } = await loadDriveKey(configDir, { create: opts.create ?? true })
  if (source === 'identity') await finishReseal(configDir, dataDir, key, opts)
  try {
    return await Drive.open(dataDir, key, opts)
  } catch (err) {
    if ((err as DriveError).code !== 'ERR_WRONG_KEY' || source !== 'identity') throw err
    const old = await findRetiredKey(configDir, dataDir, RETIRED_KEY_FILE)
    if (old == null) throw err
    // The marker first: from here on, an interrupted migration is finished by the next open.
    await markResealPending(dataDir, old.name)
    await rekey(dataDir, old.key, key)
    await finishReseal(configDir, dataDir, key, opts)
    opts.log?.(`migrated the store in ${dataDir} from the temporary key file ${old.name} to the identity's key: every object re-sealed under fresh keys, the temporary key deleted`)
    return await Drive.open(dataDir, key, opts)
  }
}

/** Finishes a migration's re-seal (drive/reseal.ts) if one is owed, then deletes the retired key. */
async function finishReseal (configDir: string, dataDir: string, key: Buffer, opts: DriveOptions): Promise<void> {
  const marker = await resealPending(dataDir)
  if (marker == null) return
  const log = opts.log ?? (() => {})
  const drive = await Drive.open(dataDir, key, opts)
  let last = 0
  try {
    const done = await drive.reseal(p => {
      if (Date.now() - last < 1000) return
      last = Date.now()
      log(`re-sealing under fresh keys: ${p.files}/${p.totalFiles} files, ${p.bytes >> 20}/${p.totalBytes >> 20} MiB`)
    })
    log(`re-sealed ${done.files} files (${done.bytes >> 20} MiB) under fresh keys`)
  } finally {
    await drive.close()
  }
  await clearResealPending(dataDir)
  if (marker.retiredKeyFile != null && basename(marker.retiredKeyFile) === marker.retiredKeyFile) {
    await fsp.rm(join(configDir, marker.retiredKeyFile), { force: true })
  }
}

export interface MountedDrive {
  readonly drive: Drive
  readonly mountpoint: string
  /** Tells the kernel about changes made to the tree outside FUSE ops (invalidatePath, invalidateEntry). */
  readonly kernel: KernelNames
  /** The open file handles (a merge swapped in keeps their nodes, src/fs/tree/adopt.ts). */
  readonly handles: Handles
  /** Quick commits (commit-policy.ts): on while a hub is configured, so a saved file reaches the other devices soon. */
  quickCommits: (on: boolean) => void
  /** Commits, unmounts and closes the store. Safe to call twice. */
  stop: () => Promise<void>
}

export interface MountConfig {
  mountpoint: string
  allowOther?: boolean
  commitIntervalMs?: number
  binding?: FuseBinding
  log?: (line: string) => void
  onChange?: (kind: ChangeKind, path: string, to?: string) => void
  /** Log lines name files by path (a debug option); by default by id, since logs are plaintext. */
  logPaths?: boolean
}

export async function mountDrive (drive: Drive, cfg: MountConfig): Promise<MountedDrive> {
  const mountpoint = resolve(cfg.mountpoint)
  const binding = cfg.binding ?? defaultBinding()
  const log = cfg.log ?? (() => {})
  await checkMountpoint(mountpoint, binding)
  logOptions.paths = cfg.logPaths === true
  const where = (path: string): string => logOptions.paths ? ` ${path}` : ''
  const statfs = async (): Promise<StatfsLike> => {
    const s = await fsp.statfs(drive.dataDir)
    return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 }
  }
  const policy = new CommitPolicy({ get dirty () { return drive.tree.dirty }, get busyMs () { return drive.tree.commitBusyMs }, commit: async () => await drive.commit() }, log, cfg.commitIntervalMs)
  const kernel = new KernelNames(drive.tree.links)
  const handles = new Handles()
  const ops = buildOps(
    { tree: drive.tree, handles, statfs, changed: (kind, path, to) => { policy.changed(); cfg.onChange?.(kind, path, to) }, kernel },
    {
      onError: (op, path, err) => log(`error: ${op}${where(path)}: ${(err as Error)?.stack ?? String(err)}`),
      onNoSpace: (op, path, err) => policy.noSpace(`${op}${where(path)}: ${(err as Error).message}`)
    }
  )
  let fuse: FuseMount
  try {
    fuse = await binding.mount(mountpoint, ops, {
      fsname: 'space',
      allowOther: cfg.allowOther ?? false,
      defaultPermissions: true,
      // libfuse 3 takes up to 1 MiB per write; libfuse 2 caps it at 128 KiB.
      maxWrite: 1024 * 1024,
      // The kernel's writeback cache, off by default (SPACE_WRITEBACK_CACHE=1): it merges small
      // writes into page writes (SQLite: 35 -> 9 write requests per transaction), but the kernel
      // then keeps a file's size as it knows it while it holds the inode. A merge's entry
      // invalidation drops inodes nothing holds; a file open across the merge shows the old size
      // until its last close (then attach.ts invalidates it again), so test/fs/kernel-cache's
      // open-descriptor case fails with it. docs/performance.md, "Random I/O".
      writebackCache: process.env.SPACE_WRITEBACK_CACHE === '1',
      // 1 s. A hard-linked node's other names are invalidated when it changes (kernel-names.ts);
      // 0 would make every lstat ~30x slower (5 -> 185 us here).
      attrTimeout: 1,
      entryTimeout: 1,
      onKernelCache: k => kernel.attach(k)
    })
  } catch (err) {
    throw new DriveError('ERR_FUSE', `cannot mount ${mountpoint}: ${(err as Error).message}`, { cause: err })
  }
  await drive.setMountpoint(mountpoint)
  await raiseReadahead(mountpoint, log)
  policy.start()
  // What a burst of work used goes back once the daemon is quiet (src/memory.ts).
  const trim = new MemoryTrim({ get dirty () { return drive.tree.dirty }, releaseMemory: () => {
    const r = drive.releaseMemory({ unloadTree: handles.size === 0 })
    forgetOpenedDirs()
    if (process.env.SPACE_DEBUG_MEMORY === '1') log(`memory: ${r.maps} block maps dropped; tree ${r.unloaded ? 'unloaded' : 'kept'}`)
  } }, { log: process.env.SPACE_DEBUG_MEMORY === '1' ? log : undefined })
  trim.start()
  // The lookup path's code runs once before the first user's lookup does (fs/fuse/warm.ts); SPACE_WARM=0 leaves it cold.
  let warming: Promise<void> | null = null
  let stopped = false
  if (process.env.SPACE_WARM !== '0') {
    warming = new Promise(resolve => setImmediate(resolve)).then(async () => {
      const t0 = performance.now()
      const n = await warmLookups({
        // Through the kernel: its lookups, libfuse's path walk, the dispatch to JS and the reply run once too.
        getattr: (p, cb) => { if (stopped) cb(0); else fsp.lstat(join(mountpoint, p)).then(() => cb(0), () => cb(0)) },
        rootDirs: async max => await loadedNames(drive.tree, '/', max, true),
        loadedName: async p => (await loadedNames(drive.tree, p, 1))[0] ?? null,
        loadTop: async (p, min) => await drive.tree.loadTopShards(p, min)
      })
      log(`warm: ${n} lookups in ${(performance.now() - t0).toFixed(1)} ms`)
    })
  }
  // Announced once warm (5-30 ms on the 1M store) and once the sealing thread has started (40-60
  // ms of CPU from Drive.open on), not while a first stat would share the CPUs with them.
  let warmed = warming == null
  let started = false
  void warming?.then(() => { warmed = true })
  void drive.started.then(() => { started = true })
  if (!await untilWarm(Promise.all([warming, drive.started]))) log(`mount: announced after ${WARM_WAIT_MS} ms, the warm-up ${warmed ? 'done' : 'still running'}, the sealing thread ${started ? 'started' : 'still starting'}`)
  let stopping: Promise<void> | null = null
  return {
    drive,
    mountpoint,
    kernel,
    handles,
    quickCommits: on => policy.setQuick(on),
    stop: () => {
      stopping ??= (async () => {
        policy.stop()
        trim.stop()
        await fuse.unmount().catch(err => log(`unmount: ${(err as Error).message}`))
        stopped = true
        await warming // none of its lookups runs on a closed drive
        await drive.close()
      })()
      return stopping
    }
  }
}
