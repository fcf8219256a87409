// Sync in the serving process: before the drive opens, prepareSync() reads the config and gives
// the drive a store that fetches missing blocks from the hub; once it is mounted, attachSync()
// opens the identity, connects and starts the engine over the mounted drive: every commit is
// published and pushed, other devices' entries are merged in and the kernel is told what changed.
import type { CID } from 'multiformats/cid'
import type { Drive } from '../drive/drive.js'
import type { CommitRecord } from '../fs/tree/format.js'
import type { FileNode } from '../fs/tree/nodes.js'
import type { PackStore } from '../store/pack-store.js'
import type { BlockStore } from '../fs/tree/ports.js'
import { openAccount, KEYSTORE_PASSPHRASE_ENV } from '../keys/account.js'
import { FetchingStore } from './fetching-store.js'
import { HttpBlockTransport } from './transport-http.js'
import { readSyncConfig, startDeviceSync, type SyncConfig, type DeviceSync } from './device.js'
import type { LiveDrive, LocalHead, SyncEvent, SyncStatus } from './engine.js'
import type { PathChange } from './snapshot-write.js'

/** What sync needs of the mount (daemon.ts MountedDrive). */
export interface MountView {
  drive: Drive
  handles: { openFiles: () => FileNode[] }
  kernel: { invalidatePath: (path: string) => Promise<number>, invalidateEntry: (dir: string, name: string) => Promise<number> }
}

export interface PreparedSync {
  config: SyncConfig
  /** For Drive.open: the store the tree reads through. */
  wrapStore: (local: PackStore) => BlockStore
  fetching: () => FetchingStore | null
  setTransport: (t: HttpBlockTransport) => void
}

export interface SyncAttachment {
  status: () => SyncStatus & { hub: string, fetched: { blocks: number, bytes: number } }
  stop: () => Promise<void>
}

export async function prepareSync (configDir: string): Promise<PreparedSync | null> {
  const config = await readSyncConfig(configDir)
  if (config == null) return null
  let transport: HttpBlockTransport | null = null
  let fetching: FetchingStore | null = null
  return {
    config,
    wrapStore: local => { fetching = new FetchingStore(local, () => transport); return fetching.store },
    fetching: () => fetching,
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

export async function attachSync (prep: PreparedSync, m: MountView, opts: {
  configDir: string
  log?: (line: string) => void
  onEvent?: (e: SyncEvent) => void
}): Promise<SyncAttachment> {
  const account = await openAccount(opts.configDir, { passphrase: process.env[KEYSTORE_PASSPHRASE_ENV] })
  const { config } = prep
  const transport = new HttpBlockTransport(config.hub, {
    userId: Buffer.from(config.userId, 'base64url'),
    deviceKey: account.device,
    certificate: {
      version: 1,
      identityPublicKey: account.identity.signing.publicKey,
      devicePublicKey: account.device.publicKey,
      issuedAt: account.config.device.issuedAt,
      signature: Buffer.from(account.config.device.signature, 'hex')
    }
  }, { insecureHttp: config.insecureHttp })
  prep.setTransport(transport)
  const { drive } = m
  const tree = drive.tree
  const fetching = prep.fetching()
  const store = fetching ?? drive.store
  const live: LiveDrive = {
    commit: async () => {
      await drive.commit()
      if (drive.head == null) throw new Error('the drive has no commit yet')
      return headOf(drive.head)
    },
    adopt: async (ref, changes, expect) => {
      const info = await tree.adopt(ref, expect, m.handles.openFiles())
      if (info == null) return false
      await invalidate(m.kernel, changes)
      return true
    },
    keys: () => ({ root: { i: tree.root.id, k: tree.root.key }, links: { i: tree.links.id, k: tree.links.key } }),
    store: { get: async (cid: CID) => await store.get(cid), put: (bytes: Uint8Array) => drive.store.put(bytes) }
  }
  let sync: DeviceSync
  try {
    sync = await startDeviceSync({ config, account, dataDir: drive.dataDir, drive: live, transport, log: opts.log, onEvent: opts.onEvent })
  } catch (err) {
    await transport.close()
    throw err
  }
  const unsubscribe = drive.onCommitted(rec => sync.engine.committed(headOf(rec)))
  if (drive.head != null) sync.engine.committed(headOf(drive.head)) // a commit made while sync was not running
  return {
    status: () => ({ ...sync.engine.status(), hub: config.hub, fetched: { ...(fetching?.fetched ?? { blocks: 0, bytes: 0 }) } }),
    stop: async () => { unsubscribe(); await sync.stop() }
  }
}
