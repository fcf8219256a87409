// `space devices` and `space devices revoke NAME` (ctl methods devices, devices.revoke): this
// identity's devices as the hub lists them, and the identity-signed revocation of one of them,
// posted to the hub and recorded in this device's log state so its later entries are refused
// here too. Opens its own hub session from sync.json and the keystore; the caller says how the
// log state is reached (the running engine's, or the state file when no daemon runs).
import { openAccount, KEYSTORE_PASSPHRASE_ENV, type Account } from '../keys/account.js'
import { hubTransport, readSyncConfig, type SyncConfig } from './device.js'
import { HttpBlockTransport, postRevocation } from './transport-http.js'
import { HttpEntryHub } from './entries-http.js'
import { deriveDriveId, deriveSyncKey } from './entry-keys.js'
import { decodeRevocation, encodeRevocation, revokeDevice, openDeviceName } from './devices.js'
import { DEVICE_RECORD_VERSION } from '../keys/identity.js'
import { LogState, statePath } from './log-state.js'

export interface DeviceListing {
  device: string // hex key
  name: string
  /** The first 8 hex digits of the key: how messages name it. */
  key: string
  issuedAt: number
  revoked: { after: number, at: number } | null
  /** The highest entry of its log on the hub (0: none). */
  seq: number
  thisDevice: boolean
}

/** How to reach this device's log state: the running engine's, or none (the state file is used). */
export interface LocalLogAccess {
  revoke: (record: Uint8Array) => Promise<void>
  seen: (dev: string) => number
  /** The `after` of a revocation of the device this device already holds, or null. */
  revokedAfter: (dev: string) => number | null
}

export class DeviceAdminError extends Error {
  constructor (readonly code: 'ERR_SYNC_NOT_CONFIGURED' | 'ERR_SYNC_NO_DEVICE' | 'ERR_SYNC_AMBIGUOUS' | 'ERR_SYNC_SELF', message: string) {
    super(message)
    this.name = 'DeviceAdminError'
  }
}

interface Session { config: SyncConfig, account: Account, transport: HttpBlockTransport, hub: HttpEntryHub, driveId: Buffer }

async function withHub<T> (configDir: string, fn: (s: Session) => Promise<T>): Promise<T> {
  const config = await readSyncConfig(configDir)
  if (config == null) throw new DeviceAdminError('ERR_SYNC_NOT_CONFIGURED', 'no hub configured: space sync hub URL')
  const account = await openAccount(configDir, { passphrase: process.env[KEYSTORE_PASSPHRASE_ENV] })
  const transport = hubTransport(config, account, { timeoutMs: 30_000 })
  const driveId = deriveDriveId(account.identity.driveMaster)
  try {
    return await fn({ config, account, transport, hub: new HttpEntryHub(transport, driveId), driveId })
  } finally {
    await transport.close()
  }
}

async function listWith (s: Session): Promise<DeviceListing[]> {
  const r = await s.hub.devices() as { devices: Array<{ device: string, name: string, sealedName?: string | null, issuedAt: number, revoked: { after: number, at: number } | null }> }
  const heads = await s.hub.heads(r.devices.map(d => d.device))
  const own = s.account.device.publicKey.toString('hex')
  const syncKey = deriveSyncKey(s.account.identity.driveMaster)
  // A v2 record's name is sealed; one that does not open (not this identity's key) is listed by its key.
  const nameOf = (d: typeof r.devices[number]): string => d.sealedName == null
    ? d.name
    : openDeviceName(syncKey, { version: DEVICE_RECORD_VERSION, devicePublicKey: Buffer.from(d.device, 'hex'), issuedAt: d.issuedAt, name: '', sealedName: Buffer.from(d.sealedName, 'base64') }) ?? `(${d.device.slice(0, 8)})`
  return r.devices.map(d => ({ device: d.device, name: nameOf(d), key: d.device.slice(0, 8), issuedAt: d.issuedAt, revoked: d.revoked, seq: heads.get(d.device) ?? 0, thisDevice: d.device === own }))
}

export async function listDevices (configDir: string): Promise<DeviceListing[]> {
  return await withHub(configDir, listWith)
}

/**
 * Revokes the device named `name` (its name, or a prefix of its key of 8 or more hex digits):
 * every entry of its log up to the highest the hub or this device has seen stays valid, none
 * after (or, if this device revoked it before, what that revocation kept). Refuses this device
 * itself (revoke it from another one).
 */
export async function revokeByName (configDir: string, dataDir: string, name: string, local: LocalLogAccess | null): Promise<DeviceListing & { after: number }> {
  return await withHub(configDir, async s => {
    const all = await listWith(s)
    const byKey = /^[0-9a-f]{8,64}$/.test(name) ? all.filter(d => d.device.startsWith(name)) : []
    const found = byKey.length > 0 ? byKey : all.filter(d => d.name === name)
    if (found.length === 0) throw new DeviceAdminError('ERR_SYNC_NO_DEVICE', `no device "${name}" on ${s.config.hub}; space devices lists them`)
    if (found.length > 1) throw new DeviceAdminError('ERR_SYNC_AMBIGUOUS', `${found.length} devices are named "${name}" (${found.map(d => d.key).join(', ')}): name one by its key`)
    const d = found[0]
    if (d.thisDevice) throw new DeviceAdminError('ERR_SYNC_SELF', `"${d.name}" (${d.key}) is this device: revoke it from another of your devices`)
    const state = local == null ? await LogState.open(statePath(dataDir, s.driveId), s.driveId, s.account.identity.signing.publicKey) : null
    const seenHere = local?.seen(d.device) ?? state?.head(d.device)?.seq ?? 0
    // Revoked here before: that stricter revocation is sent again (a hub that lost it may have
    // taken later entries since, which must not become valid).
    const known = local != null ? local.revokedAfter(d.device) : state?.revocation(d.device)?.after ?? null
    const after = known ?? Math.max(d.seq, seenHere)
    const record = encodeRevocation(revokeDevice(s.account.identity.signing, Buffer.from(d.device, 'hex'), after))
    await postRevocation(s.config.hub, record)
    if (local != null) await local.revoke(record)
    else await state!.revoke(decodeRevocation(record))
    return { ...d, revoked: { after, at: Date.now() }, after }
  })
}
