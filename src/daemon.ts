// Composition root: opens a drive (store + journal + tree) in a data directory and mounts it.
// The only module that names concrete classes; everything below gets narrow interfaces.
import { promises as fsp, constants as FS, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { PackStore } from './store/pack-store.js'
import { Journal } from './store/journal.js'
import { BlockCache } from './store/block-cache.js'
import { Tree, type CommitInfo } from './fs/tree/tree.js'
import { CommitLog } from './fs/tree/commit-log.js'
import { type CommitRecord, BLOCK_SIZE } from './fs/tree/format.js'
import { SealPool } from './crypto/index.js'
import { defaultBinding } from './fs/fuse/select.js'
import type { FuseBinding, FuseMount, StatfsLike } from './fs/fuse/binding.js'
import { buildOps } from './fs/fuse/frontend.js'
import { Handles, type ChangeKind } from './fs/fuse/context.js'
import { loadDriveKey, RETIRED_KEY_FILE } from './keys/drive-key.js'

export const STORE_FORMAT = 1

/** Errors the user sees when a drive cannot be opened or mounted; `code` maps to an exit code. */
export class DriveError extends Error {
  constructor (readonly code: DriveErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DriveError'
  }
}

export type DriveErrorCode =
  | 'ERR_MOUNTPOINT_MISSING' | 'ERR_MOUNTPOINT_NOT_EMPTY' | 'ERR_MOUNTPOINT_NOT_DIR'
  | 'ERR_STORE_IN_USE' | 'ERR_STORE_CORRUPT' | 'ERR_STORE_MISSING' | 'ERR_WRONG_KEY'
  | 'ERR_NO_SPACE' | 'ERR_FUSE' | 'ERR_NOT_MOUNTED'

interface StoreMeta { format: number, id: string, check: string }

export interface LockInfo { pid: number, mountpoint: string | null, started: string }

export interface DriveOptions {
  cacheBytes?: number
  log?: (line: string) => void
  /** Create an empty store when the directory has none (false: a missing store is an error). */
  create?: boolean
}

export interface CommitEntry { seq: number, time: number, root: string }

/** An open drive: one store, its commit journal and the tree on top. Holds the store's lock. */
export class Drive {
  private constructor (
    readonly dataDir: string,
    readonly tree: Tree,
    readonly store: PackStore,
    private readonly journal: Journal,
    private readonly lockPath: string,
    private readonly history: CommitEntry[],
    private readonly sealer: SealPool
  ) {}

  static async open (dataDir: string, masterKey: Buffer, opts: DriveOptions = {}): Promise<Drive> {
    dataDir = resolve(dataDir)
    const log = opts.log ?? (() => {})
    await fsp.mkdir(dataDir, { recursive: true, mode: 0o700 })
    const lockPath = join(dataDir, 'lock')
    await takeLock(lockPath)
    try {
      const meta = await loadMeta(dataDir, masterKey, opts.create ?? true)
      const storeId = Buffer.from(meta.id, 'hex')
      const { journal, records, cutBytes } = await Journal.open(join(dataDir, 'journal'))
      if (cutBytes > 0) log(`recovery: cut ${cutBytes} bytes of an unfinished commit from the journal`)
      const commits = new CommitLog(masterKey, storeId, journal)
      let decoded: CommitRecord[]
      try {
        decoded = commits.decodeAll(records)
      } catch (err) {
        await journal.close()
        throw new DriveError('ERR_STORE_CORRUPT', `store ${dataDir} is corrupt: ${(err as Error).message}`, { cause: err })
      }
      const head = decoded.at(-1) ?? null
      let store: PackStore
      try {
        store = await PackStore.open(join(dataDir, 'packs'), head == null ? null : { pack: head.pack[0], offset: head.pack[1] })
      } catch (err) {
        await journal.close()
        throw new DriveError('ERR_STORE_CORRUPT', `store ${dataDir} is corrupt: ${(err as Error).message}`, { cause: err })
      }
      const cache = new BlockCache(opts.cacheBytes ?? 32 * 1024 * 1024)
      const history = decoded.map(r => ({ seq: r.seq, time: r.time, root: r.root.d?.toString() ?? '' }))
      const sealer = new SealPool(BLOCK_SIZE)
      const tree = new Tree({
        store, cache, sink: commits, head, log, sealer,
        onCommit: info => history.push({ seq: info.seq, time: info.time, root: info.root?.toString() ?? '' })
      })
      const drive = new Drive(dataDir, tree, store, journal, lockPath, history, sealer)
      return drive
    } catch (err) {
      await fsp.rm(lockPath, { force: true })
      throw err
    }
  }

  async commit (): Promise<CommitInfo> { return await this.tree.commit() }

  /** Every commit of this store, oldest first; each names the root directory's CID. */
  log (): CommitEntry[] { return [...this.history] }

  /**
   * Moves a store to a new master key. The master key seals only the commit records and the key
   * check (every node has its own random key), so this rewrites the journal and store.json.
   */
  static async rekey (dataDir: string, oldKey: Buffer, newKey: Buffer): Promise<void> {
    dataDir = resolve(dataDir)
    const lockPath = join(dataDir, 'lock')
    await takeLock(lockPath)
    try {
      const meta = await loadMeta(dataDir, oldKey, false)
      const id = Buffer.from(meta.id, 'hex')
      const journalPath = join(dataDir, 'journal')
      const raw = await Journal.read(journalPath)
      const noSink = { append: async () => {} }
      let records
      try {
        records = new CommitLog(oldKey, id, noSink).decodeAll(raw)
      } catch (err) {
        // An earlier rekey got as far as the journal: only store.json is left to do.
        new CommitLog(newKey, id, noSink).decodeAll(raw)
        await writeMeta(dataDir, { ...meta, check: CommitLog.keyCheck(newKey, id).toString('base64') })
        return
      }
      const tmp = journalPath + '.rekey'
      await fsp.rm(tmp, { force: true })
      const { journal } = await Journal.open(tmp)
      const sealer = new CommitLog(newKey, id, journal)
      for (const r of records) await sealer.append(r)
      await journal.close()
      // Journal first: a crash between the two renames leaves a journal that the new key opens
      // and a key check that only the old key opens; running the rekey again finishes it.
      await fsp.rename(tmp, journalPath)
      await writeMeta(dataDir, { ...meta, check: CommitLog.keyCheck(newKey, id).toString('base64') })
    } finally {
      await fsp.rm(lockPath, { force: true })
    }
  }

  /** Reads the commit history without taking the lock (the drive may be mounted elsewhere). */
  static async readLog (dataDir: string, masterKey: Buffer): Promise<CommitEntry[]> {
    const meta = await loadMeta(resolve(dataDir), masterKey, false)
    const records = await Journal.read(join(dataDir, 'journal'))
    const decoded = new CommitLog(masterKey, Buffer.from(meta.id, 'hex'), { append: async () => {} }).decodeAll(records)
    return decoded.map(r => ({ seq: r.seq, time: r.time, root: r.root.d?.toString() ?? '' }))
  }

  async setMountpoint (mountpoint: string | null): Promise<void> {
    const info: LockInfo = { pid: process.pid, mountpoint, started: new Date().toISOString() }
    await fsp.writeFile(this.lockPath, JSON.stringify(info) + '\n', { mode: 0o600 })
  }

  /** Commits and releases everything; when the commit fails, still releases, then throws. */
  async close (): Promise<void> {
    try {
      await this.commit()
    } finally {
      await this.store.close()
      await this.sealer.close()
      await this.journal.close()
      await fsp.rm(this.lockPath, { force: true })
    }
  }
}

async function takeLock (lockPath: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fsp.open(lockPath, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o600)
      const info: LockInfo = { pid: process.pid, mountpoint: null, started: new Date().toISOString() }
      await fh.writeFile(JSON.stringify(info) + '\n')
      await fh.close()
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = readLock(lockPath)
      if (holder != null && holder.pid !== process.pid && pidAlive(holder.pid)) {
        throw new DriveError('ERR_STORE_IN_USE', `the store is in use by process ${holder.pid}${holder.mountpoint != null ? ` (mounted at ${holder.mountpoint})` : ''}`)
      }
      await fsp.rm(lockPath, { force: true }) // left by a process that died
    }
  }
  throw new DriveError('ERR_STORE_IN_USE', `cannot take the store lock ${lockPath}`)
}

export function readLock (lockPath: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(lockPath, 'utf8')) as LockInfo
  } catch {
    return null
  }
}

export function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Replaces store.json atomically and durably. */
async function writeMeta (dataDir: string, meta: StoreMeta): Promise<void> {
  const path = join(dataDir, 'store.json')
  const tmp = path + '.tmp'
  await fsp.writeFile(tmp, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600, flush: true })
  await fsp.rename(tmp, path)
  const dir = await fsp.open(dataDir, 'r')
  await dir.sync()
  await dir.close()
}

async function loadMeta (dataDir: string, masterKey: Buffer, create: boolean): Promise<StoreMeta> {
  const path = join(dataDir, 'store.json')
  let meta: StoreMeta
  try {
    meta = JSON.parse(await fsp.readFile(path, 'utf8')) as StoreMeta
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      const entries = (await fsp.readdir(dataDir).catch(() => [] as string[])).filter(n => n !== 'lock')
      if (!create || entries.length > 0) {
        throw new DriveError(entries.length > 0 ? 'ERR_STORE_CORRUPT' : 'ERR_STORE_MISSING', `no store.json in ${dataDir}${entries.length > 0 ? ' (the directory holds other files: not a Space store, or a damaged one)' : ''}`)
      }
      const id = randomBytes(16)
      meta = { format: STORE_FORMAT, id: id.toString('hex'), check: CommitLog.keyCheck(masterKey, id).toString('base64') }
      await writeMeta(dataDir, meta)
      return meta
    }
    throw new DriveError('ERR_STORE_CORRUPT', `${path} is unreadable: ${(err as Error).message}`, { cause: err })
  }
  if (meta.format !== STORE_FORMAT) throw new DriveError('ERR_STORE_CORRUPT', `${path}: unknown store format ${String(meta.format)}`)
  if (typeof meta.id !== 'string' || !/^[0-9a-f]{32}$/.test(meta.id) || typeof meta.check !== 'string') {
    throw new DriveError('ERR_STORE_CORRUPT', `${path} is malformed`)
  }
  if (!CommitLog.verifyKey(masterKey, Buffer.from(meta.id, 'hex'), Buffer.from(meta.check, 'base64'))) {
    throw new DriveError('ERR_WRONG_KEY', `the key does not open the store in ${dataDir}`)
  }
  return meta
}

/**
 * Opens the drive of a config dir. A store made under the temporary key file opens with the
 * identity key after `space init` retired that file: it is moved to the identity key first.
 */
export async function openDriveFromConfig (configDir: string, dataDir: string, opts: DriveOptions = {}): Promise<Drive> {
  const { key, source } = await loadDriveKey(configDir, { create: opts.create ?? true })
  try {
    return await Drive.open(dataDir, key, opts)
  } catch (err) {
    if ((err as DriveError).code !== 'ERR_WRONG_KEY' || source !== 'identity') throw err
    const retired = (await fsp.readdir(configDir)).filter(n => n.startsWith(RETIRED_KEY_FILE)).sort().reverse()
    const meta = JSON.parse(await fsp.readFile(join(dataDir, 'store.json'), 'utf8')) as StoreMeta
    for (const name of retired) {
      const old = await fsp.readFile(join(configDir, name))
      if (!CommitLog.verifyKey(old, Buffer.from(meta.id, 'hex'), Buffer.from(meta.check, 'base64'))) continue
      await Drive.rekey(dataDir, old, key)
      opts.log?.(`migrated the store in ${dataDir} from the temporary key file ${name} to the identity's key`)
      return await Drive.open(dataDir, key, opts)
    }
    throw err
  }
}

// ---- mounting --------------------------------------------------------------------------------

export interface MountedDrive {
  readonly drive: Drive
  readonly mountpoint: string
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
}

/** Checks the mountpoint, clearing a stale mount left by a killed process. */
export async function checkMountpoint (mountpoint: string, binding: FuseBinding): Promise<void> {
  if (await isStale(mountpoint)) await binding.clearStale(mountpoint)
  let st
  try {
    st = await fsp.stat(mountpoint)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DriveError('ERR_MOUNTPOINT_MISSING', `mountpoint ${mountpoint} does not exist`)
    throw new DriveError('ERR_FUSE', `cannot use mountpoint ${mountpoint}: ${(err as Error).message}`)
  }
  if (!st.isDirectory()) throw new DriveError('ERR_MOUNTPOINT_NOT_DIR', `mountpoint ${mountpoint} is not a directory`)
  if (isMounted(mountpoint)) throw new DriveError('ERR_MOUNTPOINT_NOT_EMPTY', `something is already mounted at ${mountpoint}`)
  if ((await fsp.readdir(mountpoint)).length > 0) throw new DriveError('ERR_MOUNTPOINT_NOT_EMPTY', `mountpoint ${mountpoint} is not empty`)
}

/**
 * A FUSE mount whose server died answers ENOTCONN (or ECONNABORTED). stat alone can miss it: for
 * a moment after the server died the kernel may still answer it from its attribute cache, while
 * a listing always goes to the server.
 */
async function isStale (mountpoint: string): Promise<boolean> {
  try {
    await fsp.stat(mountpoint)
    if (isMounted(mountpoint)) await fsp.readdir(mountpoint)
    return false
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOTCONN' || code === 'ECONNABORTED'
  }
}

/**
 * The kernel gives a FUSE mount 128 KiB of readahead and the FUSE handshake can only lower it.
 * 4 MiB keeps about four 1 MiB read requests in flight, each one O_DIRECT pack read on the pool
 * (cold 1 GiB read here: 1 MiB 0.92-1.06 s, 2 MiB 0.67-0.72, 4 MiB 0.59-0.61, 8 MiB 0.74-0.77).
 * Only root may write the knob; anyone else keeps the default.
 */
async function raiseReadahead (mountpoint: string, log: (line: string) => void): Promise<void> {
  try {
    const dev = (await fsp.stat(mountpoint)).dev
    const major = (dev >> 8) & 0xfff
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00)
    await fsp.writeFile(`/sys/class/bdi/${major}:${minor}/read_ahead_kb`, '4096')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') log(`readahead stays at the default: ${(err as Error).message}`)
  }
}

/** Whether /proc/mounts lists a mount at exactly this path. */
export function isMounted (mountpoint: string): boolean {
  try {
    const target = resolve(mountpoint)
    return readFileSync('/proc/mounts', 'utf8').split('\n').some(l => l.split(' ')[1]?.replace(/\\040/g, ' ') === target)
  } catch {
    return false
  }
}

export async function mountDrive (drive: Drive, cfg: MountConfig): Promise<MountedDrive> {
  const mountpoint = resolve(cfg.mountpoint)
  const binding = cfg.binding ?? defaultBinding()
  const log = cfg.log ?? (() => {})
  await checkMountpoint(mountpoint, binding)
  const statfs = async (): Promise<StatfsLike> => {
    const s = await fsp.statfs(drive.dataDir)
    return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 }
  }
  let noSpaceLogged = false
  const ops = buildOps(
    { tree: drive.tree, handles: new Handles(), statfs, changed: cfg.onChange ?? (() => {}) },
    {
      onError: (op, path, err) => log(`error: ${op} ${path}: ${(err as Error)?.stack ?? String(err)}`),
      onNoSpace: (op, path, err) => { if (!noSpaceLogged) log(`${op} ${path}: ${(err as Error).message}`); noSpaceLogged = true }
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
      // 0: libfuse's path API gives each hard-linked name its own kernel inode, so a cached
      // attribute of one name would outlive a change through another (link count, size, ctime).
      attrTimeout: 0,
      entryTimeout: 1
    })
  } catch (err) {
    throw new DriveError('ERR_FUSE', `cannot mount ${mountpoint}: ${(err as Error).message}`, { cause: err })
  }
  await drive.setMountpoint(mountpoint)
  await raiseReadahead(mountpoint, log)
  // Writes without fsync become durable within about a second, like a journaling file system.
  let lastFailure = ''
  const memTimer = process.env.SPACE_DEBUG_MEMORY === '1'
    ? setInterval(() => {
      const m = process.memoryUsage()
      log(`memory: rss ${m.rss >> 20} heap ${m.heapUsed >> 20} external ${m.external >> 20} arrayBuffers ${m.arrayBuffers >> 20} MiB`)
    }, 2000)
    : null
  const timer = setInterval(() => {
    if (!drive.tree.dirty) return
    drive.commit().then(() => {
      noSpaceLogged = false
      if (lastFailure !== '') log('commits succeed again')
      lastFailure = ''
    }, err => {
      // One line per kind of failure, not one per second.
      const msg = (err as Error).message
      if (msg !== lastFailure) log(`commit failed: ${msg}`)
      lastFailure = msg
    })
  }, cfg.commitIntervalMs ?? 1000)
  let stopping: Promise<void> | null = null
  return {
    drive,
    mountpoint,
    stop: () => {
      stopping ??= (async () => {
        clearInterval(timer)
        if (memTimer != null) clearInterval(memTimer)
        await fuse.unmount().catch(err => log(`unmount: ${(err as Error).message}`))
        await drive.close()
      })()
      return stopping
    }
  }
}
