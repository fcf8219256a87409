// Sync for one device, put together: reads <config dir>/sync.json (the hub, and this identity's
// user id there), opens the queue, the log state and the entry cache under <data dir>/sync/, and
// starts the engine over the mounted drive. `space sync hub URL` writes sync.json (registering
// the identity on the hub first, as a key backup does).
import { promises as fsp } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Account } from '../keys/account.js'
import { writeDurably } from './log-state.js'
import { LogState } from './log-state.js'
import { LocalLog } from './local-log.js'
import type { AppendedBlocks } from './new-blocks.js'
import { EntryCache } from './entry-cache.js'
import { SyncEngine, type LiveDrive, type SyncEvent } from './engine.js'
import { deriveDriveId, deriveSyncKey } from './entry-keys.js'
import { certifyDeviceRecord, encodeDeviceRecord, sealDeviceName, DeviceNames, type DeviceRecord } from './devices.js'
import { HttpBlockTransport } from './transport-http.js'
import { HttpEntryHub } from './entries-http.js'
import { SyncError } from './errors.js'

export const SYNC_CONFIG = 'sync.json'
const CONFIG_VERSION = 1

/** download: 'all' (default) fetches the whole drive in the background; 'on-demand' only what is read. */
export interface SyncConfig { hub: string, userId: string, deviceName: string, insecureHttp?: boolean, download?: 'all' | 'on-demand' }

export async function readSyncConfig (configDir: string): Promise<SyncConfig | null> {
  let text: string
  try {
    text = await fsp.readFile(join(configDir, SYNC_CONFIG), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  let v: Record<string, unknown>
  try { v = JSON.parse(text) } catch { throw new SyncError('ERR_SYNC_FORMAT', `${join(configDir, SYNC_CONFIG)} is not JSON`) }
  if (v.v !== CONFIG_VERSION || typeof v.hub !== 'string' || typeof v.userId !== 'string' || typeof v.deviceName !== 'string') {
    throw new SyncError('ERR_SYNC_FORMAT', `${join(configDir, SYNC_CONFIG)} is not a sync config this version reads`)
  }
  return { hub: v.hub, userId: v.userId, deviceName: v.deviceName, insecureHttp: v.insecureHttp === true, download: v.download === 'on-demand' ? 'on-demand' : 'all' }
}

export async function writeSyncConfig (configDir: string, c: SyncConfig): Promise<void> {
  await writeDurably(join(configDir, SYNC_CONFIG), JSON.stringify({ v: CONFIG_VERSION, ...c }, null, 2) + '\n')
}

export function defaultDeviceName (): string {
  const h = hostname().slice(0, 64)
  return h === '' ? 'device' : h
}

export interface DeviceSync {
  engine: SyncEngine
  transport: HttpBlockTransport
  entries: HttpEntryHub
  record: DeviceRecord
  stop: () => Promise<void>
}

export async function startDeviceSync (opts: {
  config: SyncConfig
  account: Account
  dataDir: string
  drive: LiveDrive
  transport: HttpBlockTransport
  log?: (line: string) => void
  onEvent?: (e: SyncEvent) => void
  recent?: AppendedBlocks
}): Promise<DeviceSync> {
  const { config, account, dataDir } = opts
  const driveMaster = account.identity.driveMaster
  const driveId = deriveDriveId(driveMaster)
  const syncKey = deriveSyncKey(driveMaster)
  const dir = join(dataDir, 'sync')
  // The name sealed: the hub keeps and checks the record, never reads the name.
  const issuedAt = account.config.device.issuedAt
  const record = certifyDeviceRecord(account.identity.signing, account.device.publicKey, config.deviceName, issuedAt, sealDeviceName(syncKey, account.device.publicKey, issuedAt, config.deviceName))
  const log = await LocalLog.open({ dir: join(dir, 'out'), packsDir: join(dataDir, 'packs'), drive: driveId, syncKey, device: { privateKey: account.device.privateKey, record }, recent: opts.recent })
  const state = await LogState.open(join(dir, `${driveId.toString('hex')}.state`), driveId, account.identity.signing.publicKey)
  const entries = await EntryCache.open(join(dir, 'entries'))
  const hub = new HttpEntryHub(opts.transport, driveId)
  const engine = new SyncEngine({
    drive: opts.drive, log, state, entries, transport: opts.transport, hub, driveId,
    identity: account.identity.signing.publicKey, syncKey, names: new DeviceNames(syncKey),
    device: { publicKey: account.device.publicKey, name: config.deviceName },
    logLine: opts.log, onEvent: opts.onEvent, appended: opts.recent
  })
  // The hub lists this device under `space devices` from its record; entries carry it as well.
  hub.putDevice(encodeDeviceRecord(record)).catch(err => opts.log?.(`sync: recording this device on the hub: ${(err as Error).message}`))
  await engine.start()
  return { engine, transport: opts.transport, entries: hub, record, stop: async () => { await engine.stop(); await opts.transport.close() } }
}

/** This device's transport to the hub of `config`: the device key and its identity certificate. */
export function hubTransport (config: SyncConfig, account: Account, opts: { timeoutMs?: number } = {}): HttpBlockTransport {
  return new HttpBlockTransport(config.hub, {
    userId: Buffer.from(config.userId, 'base64url'),
    deviceKey: account.device,
    certificate: {
      version: 1,
      identityPublicKey: account.identity.signing.publicKey,
      devicePublicKey: account.device.publicKey,
      issuedAt: account.config.device.issuedAt,
      signature: Buffer.from(account.config.device.signature, 'hex')
    }
  }, { insecureHttp: config.insecureHttp, ...opts })
}
