// Devices of an identity: the device record (device key + name, certified by the identity) that
// every entry carries as `cert`, and the identity-signed revocation record. Both are dag-cbor
// maps (docs/format.md, "Sync: device logs"); the checks here need public keys only.
import { hostname } from 'node:os'
import * as cbor from '@ipld/dag-cbor'
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto'
import { certifyDeviceRecord, verifyDeviceRecord, deviceNameProblem, DEVICE_NAME_MAX, DEVICE_RECORD_VERSION, DEVICE_RECORD_V1, type DeviceRecord } from '../keys/identity.js'
import { hkdf } from '../crypto/kdf.js'
import { ed25519Sign, ed25519Verify, type RawKeyPair } from '../keys/ed25519.js'
import { SyncError } from './errors.js'
import { bytesField, checkShape, decodeStrict, encodeCanonical, hex, stringField, uintField, type Fields } from './entry-codec.js'

export type { DeviceRecord }
export { certifyDeviceRecord }

const RECORD_KEYS = ['v', 'id', 'dev', 'at', 'name', 'sig'] as const
const REVOCATION_KEYS = ['v', 'id', 'dev', 'after', 'at', 'sig'] as const
const REVOKE_CONTEXT = Buffer.from('space/v1/device-revoke\0', 'utf8')
export const REVOCATION_VERSION = 1

/** How messages name a device: its name where known, and the first 8 hex digits of its key. */
export function deviceLabel (dev: Uint8Array, name?: string): string {
  const short = hex(dev).slice(0, 8)
  return name === undefined || name === '' ? `device ${short}` : `device "${name}" (${short})`
}

/** A device's default name: the hostname, without control characters, cut to 64 UTF-8 bytes. */
export function defaultDeviceName (host = hostname()): string {
  let name = host.replace(/[\u0000-\u001f\u007f]/g, '').trim()
  while (Buffer.byteLength(name, 'utf8') > DEVICE_NAME_MAX) name = [...name].slice(0, -1).join('')
  return name === '' ? 'device' : name
}

export function deviceRecordToCbor (r: DeviceRecord): Fields {
  const name = r.version === DEVICE_RECORD_V1 ? r.name : r.sealedName!
  return { v: r.version, id: r.identityPublicKey, dev: r.devicePublicKey, at: r.issuedAt, name, sig: r.signature }
}

/** The fields of a decoded `cert` map (version 1 or 2); shape only (verify with checkDeviceRecord). */
export function deviceRecordFromCbor (value: unknown, what: string): DeviceRecord {
  const v1 = typeof value === 'object' && value !== null && (value as Fields).v === DEVICE_RECORD_V1
  const m = checkShape(value, what, v1 ? DEVICE_RECORD_V1 : DEVICE_RECORD_VERSION, RECORD_KEYS)
  return {
    version: v1 ? DEVICE_RECORD_V1 : DEVICE_RECORD_VERSION,
    identityPublicKey: bytesField(m, 'id', what, 32),
    devicePublicKey: bytesField(m, 'dev', what, 32),
    issuedAt: uintField(m, 'at', what),
    name: v1 ? stringField(m, 'name', what) : '',
    sealedName: v1 ? null : bytesField(m, 'name', what, SEALED_NAME_LEN),
    signature: bytesField(m, 'sig', what, 64)
  }
}

export const encodeDeviceRecord = (r: DeviceRecord): Uint8Array => encodeCanonical(deviceRecordToCbor(r))

export function decodeDeviceRecord (bytes: Uint8Array): DeviceRecord {
  let v: unknown
  try { v = (cbor.decode(bytes) as Fields | null)?.v } catch {} // decodeStrict says what is wrong
  const version = v === DEVICE_RECORD_V1 ? DEVICE_RECORD_V1 : DEVICE_RECORD_VERSION
  return deviceRecordFromCbor(decodeStrict(bytes, 'device record', version, RECORD_KEYS), 'device record')
}

// A device's name, sealed (device record v2, docs/format.md "Device record"): AES-256-GCM under
// a key derived from the sync key, so only the identity's devices open it and the hub that keeps
// and checks the records sees 93 bytes of the same length for every name. Plaintext: the name's
// length in one byte, its UTF-8 bytes, zeros to 65 bytes. The nonce is an HMAC of the device,
// time and plaintext: the same name certified again seals to the same bytes (the record of a
// device stays one record), and a different one never reuses a nonce with other plaintext.
const LABEL_DEVICE_NAME = 'space/v1/device-name'
const NAME_PLAIN_LEN = 1 + DEVICE_NAME_MAX
export const SEALED_NAME_LEN = 12 + NAME_PLAIN_LEN + 16

const nameAd = (dev: Uint8Array, issuedAt: number): Buffer => {
  const ad = Buffer.alloc(LABEL_DEVICE_NAME.length + 32 + 8)
  ad.write(LABEL_DEVICE_NAME, 0, 'utf8')
  ad.set(dev, LABEL_DEVICE_NAME.length)
  ad.writeBigUInt64BE(BigInt(issuedAt), LABEL_DEVICE_NAME.length + 32)
  return ad
}

export function sealDeviceName (syncKey: Uint8Array, dev: Uint8Array, issuedAt: number, name: string): Buffer {
  const problem = deviceNameProblem(name)
  if (problem !== null) throw new RangeError(problem)
  const key = hkdf(syncKey, LABEL_DEVICE_NAME, 32)
  const plain = Buffer.alloc(NAME_PLAIN_LEN)
  plain[0] = plain.write(name, 1, 'utf8')
  const ad = nameAd(dev, issuedAt)
  const nonce = createHmac('sha256', key).update(ad).update(plain).digest().subarray(0, 12)
  const c = createCipheriv('aes-256-gcm', key, nonce).setAAD(ad)
  const out = Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()])
  key.fill(0)
  return out
}

/** The name a v2 record seals (a v1 record's as it is); null when it does not open under this sync key. */
export function openDeviceName (syncKey: Uint8Array, r: Pick<DeviceRecord, 'version' | 'devicePublicKey' | 'issuedAt' | 'name' | 'sealedName'>): string | null {
  if (r.version === DEVICE_RECORD_V1) return r.name
  const sealed = r.sealedName
  if (sealed == null || sealed.length !== SEALED_NAME_LEN) return null
  const key = hkdf(syncKey, LABEL_DEVICE_NAME, 32)
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12)).setAAD(nameAd(r.devicePublicKey, r.issuedAt))
    d.setAuthTag(sealed.subarray(12 + NAME_PLAIN_LEN))
    const plain = Buffer.concat([d.update(sealed.subarray(12, 12 + NAME_PLAIN_LEN)), d.final()])
    const n = plain[0]
    const name = n >= 1 && n <= DEVICE_NAME_MAX ? plain.toString('utf8', 1, 1 + n) : ''
    return deviceNameProblem(name) === null && plain.subarray(1 + n).every(b => b === 0) ? name : null
  } catch {
    return null
  } finally {
    key.fill(0)
  }
}

/**
 * Fills in `r.name` from its sealed name (once per record: the result is kept by the sealed
 * bytes) and returns it; a name that does not open stays '' (messages then name the device by
 * its key). For the identity's devices, which hold the sync key.
 */
export class DeviceNames {
  private readonly known = new Map<string, string>()
  constructor (private readonly syncKey: Uint8Array) {}

  of (r: DeviceRecord): string {
    if (r.name !== '' || r.sealedName == null) return r.name
    // Keyed by what the seal is bound to as well: a forged record that copies another device's
    // sealed name must not borrow its name from here (opening it would fail).
    const k = `${hex(r.devicePublicKey)}/${r.issuedAt}/${r.sealedName.toString('hex')}`
    let name = this.known.get(k)
    if (name === undefined) {
      name = openDeviceName(this.syncKey, r) ?? ''
      if (this.known.size >= 1024) this.known.clear()
      this.known.set(k, name)
    }
    r.name = name
    return name
  }
}

/** Throws ERR_SYNC_CERT unless `identity` issued the record (and, given `dev`, for that device). */
export function checkDeviceRecord (r: DeviceRecord, identity: Uint8Array, dev?: Uint8Array, seq?: number): void {
  const who = deviceLabel(r.devicePublicKey, r.name)
  const at = seq === undefined ? '' : `, entry ${seq}`
  if (!Buffer.from(identity).equals(r.identityPublicKey)) {
    throw new SyncError('ERR_SYNC_CERT', `${who}${at}: certified by another identity (${hex(r.identityPublicKey).slice(0, 8)}, not ${hex(identity).slice(0, 8)})`, { device: hex(r.devicePublicKey), seq })
  }
  if (dev !== undefined && !Buffer.from(dev).equals(r.devicePublicKey)) {
    throw new SyncError('ERR_SYNC_CERT', `${deviceLabel(dev)}${at}: carries the certificate of ${who}`, { device: hex(dev), seq })
  }
  if (!verifiedRecord(r)) {
    throw new SyncError('ERR_SYNC_CERT', `${who}${at}: the identity's signature on its certificate does not verify`, { device: hex(r.devicePublicKey), seq })
  }
}

// Every entry of a device carries the same record: remember the last ones verified, so a log
// costs one identity-signature check per device, not one per entry.
const verified = new Set<string>()
function verifiedRecord (r: DeviceRecord): boolean {
  const key = `${r.version}/${hex(r.identityPublicKey)}/${hex(r.devicePublicKey)}/${r.issuedAt}/${hex(r.signature)}/${r.version === 1 ? r.name : hex(r.sealedName ?? new Uint8Array())}`
  if (verified.has(key)) return true
  if (!verifyDeviceRecord(r)) return false
  if (verified.size >= 1024) verified.clear()
  verified.add(key)
  return true
}

export interface Revocation {
  version: number
  identityPublicKey: Buffer
  devicePublicKey: Buffer
  /** Last sequence number of the device's log that stays valid (0: none). */
  after: number
  /** ms since epoch; for people, never for ordering. */
  at: number
  signature: Buffer
}

function revocationMessage (identity: Uint8Array, dev: Uint8Array, after: number, at: number): Buffer {
  const m = Buffer.alloc(REVOKE_CONTEXT.length + 1 + 32 + 32 + 8 + 8)
  let o = REVOKE_CONTEXT.copy(m, 0)
  m[o++] = REVOCATION_VERSION
  m.set(identity, o); o += 32
  m.set(dev, o); o += 32
  m.writeBigUInt64BE(BigInt(after), o); o += 8
  m.writeBigUInt64BE(BigInt(at), o)
  return m
}

export function revokeDevice (identity: RawKeyPair, dev: Uint8Array, after: number, at = Date.now()): Revocation {
  if (dev.length !== 32) throw new RangeError('device key must be 32 bytes')
  if (!Number.isSafeInteger(after) || after < 0) throw new RangeError('after must be an unsigned integer')
  const signature = ed25519Sign(identity.privateKey, revocationMessage(identity.publicKey, dev, after, at))
  return { version: REVOCATION_VERSION, identityPublicKey: Buffer.from(identity.publicKey), devicePublicKey: Buffer.from(dev), after, at, signature }
}

export function encodeRevocation (r: Revocation): Uint8Array {
  return encodeCanonical({ v: r.version, id: r.identityPublicKey, dev: r.devicePublicKey, after: r.after, at: r.at, sig: r.signature })
}

export function decodeRevocation (bytes: Uint8Array): Revocation {
  const what = 'revocation record'
  const m = decodeStrict(bytes, what, REVOCATION_VERSION, REVOCATION_KEYS)
  return {
    version: REVOCATION_VERSION,
    identityPublicKey: bytesField(m, 'id', what, 32),
    devicePublicKey: bytesField(m, 'dev', what, 32),
    after: uintField(m, 'after', what),
    at: uintField(m, 'at', what),
    signature: bytesField(m, 'sig', what, 64)
  }
}

/** Throws ERR_SYNC_CERT unless `identity` signed the revocation. */
export function checkRevocation (r: Revocation, identity: Uint8Array): void {
  const who = deviceLabel(r.devicePublicKey)
  if (!Buffer.from(identity).equals(r.identityPublicKey)) {
    throw new SyncError('ERR_SYNC_CERT', `revocation of ${who}: signed by another identity`, { device: hex(r.devicePublicKey) })
  }
  if (!ed25519Verify(r.identityPublicKey, revocationMessage(r.identityPublicKey, r.devicePublicKey, r.after, r.at), r.signature)) {
    throw new SyncError('ERR_SYNC_CERT', `revocation of ${who}: the identity's signature does not verify`, { device: hex(r.devicePublicKey) })
  }
}
