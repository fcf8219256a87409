// The user's identity: everything derives from the 32 bytes of BIP39 entropy (the 24 words).
//   seed      = BIP39 seed (PBKDF2-HMAC-SHA512, 2048 rounds, passphrase "")
//   identity  = Ed25519, SLIP-10 path m/44'/7370'/0'/0'          (signs, is the account)
//   share key = X25519, HKDF-SHA256(seed, "space/v1/x25519-share")  (receives shares)
//   drive key = HKDF-SHA256(seed, "space/v1/drive-master")           (opens the drive)
// A device key is random per device and certified by the identity (docs/keys.md).
import { createHash, randomBytes } from 'node:crypto'
import { hkdf } from '../crypto/index.js'
import { ed25519FromSeed, ed25519Sign, ed25519Verify, slip10Ed25519, x25519FromSeed, type RawKeyPair } from './ed25519.js'
import { entropyToSeed } from './mnemonic.js'

export const IDENTITY_PATH = [44, 7370, 0, 0] as const
export const LABEL_SHARE_KEY = 'space/v1/x25519-share'
export const LABEL_DRIVE_MASTER = 'space/v1/drive-master'
const DEVICE_CERT_CONTEXT = Buffer.from('space/v1/device-cert\0', 'utf8')
const DEVICE_CERT_VERSION = 1

export interface Identity {
  /** The 24 words' entropy: the one secret every other key comes from. */
  entropy: Buffer
  signing: RawKeyPair
  share: RawKeyPair
  driveMaster: Buffer
}

export function deriveIdentity (entropy: Uint8Array): Identity {
  const seed = entropyToSeed(entropy)
  try {
    return {
      entropy: Buffer.from(entropy),
      signing: ed25519FromSeed(slip10Ed25519(seed, [...IDENTITY_PATH]).key),
      share: x25519FromSeed(hkdf(seed, LABEL_SHARE_KEY)),
      driveMaster: hkdf(seed, LABEL_DRIVE_MASTER)
    }
  } finally {
    seed.fill(0)
  }
}

/** Short, human-comparable fingerprint: first 10 bytes of SHA-256(public key), hex in groups of 4. */
export function fingerprint (publicKey: Uint8Array): string {
  const hex = createHash('sha256').update(publicKey).digest('hex').slice(0, 20)
  return hex.match(/.{4}/g)!.join('-')
}

export interface DeviceCertificate {
  version: number
  identityPublicKey: Buffer
  devicePublicKey: Buffer
  issuedAt: number // ms since epoch
  signature: Buffer
}

function deviceCertMessage (identityPublicKey: Uint8Array, devicePublicKey: Uint8Array, issuedAt: number): Buffer {
  const m = Buffer.alloc(DEVICE_CERT_CONTEXT.length + 1 + 32 + 32 + 8)
  let o = DEVICE_CERT_CONTEXT.copy(m, 0)
  m[o++] = DEVICE_CERT_VERSION
  m.set(identityPublicKey, o); o += 32
  m.set(devicePublicKey, o); o += 32
  m.writeBigUInt64BE(BigInt(issuedAt), o)
  return m
}

export function newDeviceKey (): RawKeyPair { return ed25519FromSeed(randomBytes(32)) }

export function certifyDevice (identity: RawKeyPair, device: Uint8Array, issuedAt = Date.now()): DeviceCertificate {
  const signature = ed25519Sign(identity.privateKey, deviceCertMessage(identity.publicKey, device, issuedAt))
  return { version: DEVICE_CERT_VERSION, identityPublicKey: identity.publicKey, devicePublicKey: Buffer.from(device), issuedAt, signature }
}

export function verifyDeviceCertificate (cert: DeviceCertificate): boolean {
  return cert.version === DEVICE_CERT_VERSION &&
    ed25519Verify(cert.identityPublicKey, deviceCertMessage(cert.identityPublicKey, cert.devicePublicKey, cert.issuedAt), cert.signature)
}

// A device record: the device key and its name, certified together by the identity, so a device
// can be listed and revoked by name while only the identity can name one (docs/format.md,
// "Sync: device logs"). Version 2 carries the name sealed (src/sync/devices.ts seals and opens
// it under a key only the identity's devices derive), so a hub that stores and checks records
// never learns it; version 1 (name in the clear) still verifies.
const DEVICE_RECORD_CONTEXT = Buffer.from('space/v1/device-record\0', 'utf8')
export const DEVICE_RECORD_VERSION = 2
export const DEVICE_RECORD_V1 = 1
export const DEVICE_NAME_MAX = 64

export interface DeviceRecord {
  version: number
  identityPublicKey: Buffer
  devicePublicKey: Buffer
  issuedAt: number // ms since epoch
  /** v1: the name as certified. v2: the name once one of the identity's devices opened it, else ''. */
  name: string
  /** v2: the name sealed (what the signature covers); null in v1. */
  sealedName: Buffer | null
  signature: Buffer
}

/** Why `name` cannot name a device, or null: 1..64 UTF-8 bytes, no control characters. */
export function deviceNameProblem (name: string): string | null {
  const n = Buffer.byteLength(name, 'utf8')
  if (n < 1 || n > DEVICE_NAME_MAX) return `a device name takes 1 to ${DEVICE_NAME_MAX} UTF-8 bytes, not ${n}`
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'a device name has no control characters'
  return null
}

/** What the identity signs: v1 over the name's UTF-8 bytes, v2 over the sealed name. */
export function deviceRecordMessage (version: number, identityPublicKey: Uint8Array, devicePublicKey: Uint8Array, issuedAt: number, nameField: Uint8Array): Buffer {
  if (nameField.length > 255) throw new RangeError('a device record\'s name field takes at most 255 bytes')
  const m = Buffer.alloc(DEVICE_RECORD_CONTEXT.length + 1 + 32 + 32 + 8 + 1 + nameField.length)
  let o = DEVICE_RECORD_CONTEXT.copy(m, 0)
  m[o++] = version
  m.set(identityPublicKey, o); o += 32
  m.set(devicePublicKey, o); o += 32
  m.writeBigUInt64BE(BigInt(issuedAt), o); o += 8
  m[o++] = nameField.length
  m.set(nameField, o)
  return m
}

const nameField = (r: Pick<DeviceRecord, 'version' | 'name' | 'sealedName'>): Buffer =>
  r.version === DEVICE_RECORD_V1 ? Buffer.from(r.name, 'utf8') : r.sealedName ?? Buffer.alloc(0)

/**
 * Certifies `device` under `name`: version 2 when `sealedName` (the name sealed by
 * src/sync/devices.ts sealDeviceName) is given, else version 1 with the name in the clear.
 */
export function certifyDeviceRecord (identity: RawKeyPair, device: Uint8Array, name: string, issuedAt = Date.now(), sealedName?: Uint8Array): DeviceRecord {
  const problem = deviceNameProblem(name)
  if (problem !== null) throw new RangeError(problem)
  const version = sealedName === undefined ? DEVICE_RECORD_V1 : DEVICE_RECORD_VERSION
  const sealed = sealedName === undefined ? null : Buffer.from(sealedName)
  const signature = ed25519Sign(identity.privateKey, deviceRecordMessage(version, identity.publicKey, device, issuedAt, nameField({ version, name, sealedName: sealed })))
  return { version, identityPublicKey: Buffer.from(identity.publicKey), devicePublicKey: Buffer.from(device), issuedAt, name, sealedName: sealed, signature }
}

/** True when the identity named in the record signed it; the caller checks that it is the right identity. */
export function verifyDeviceRecord (rec: DeviceRecord): boolean {
  const shape = rec.version === DEVICE_RECORD_V1
    ? deviceNameProblem(rec.name) === null
    : rec.version === DEVICE_RECORD_VERSION && rec.sealedName != null && rec.sealedName.length > 0 && rec.sealedName.length <= 255
  return shape && rec.identityPublicKey.length === 32 && rec.devicePublicKey.length === 32 &&
    Number.isSafeInteger(rec.issuedAt) && rec.issuedAt >= 0 &&
    ed25519Verify(rec.identityPublicKey, deviceRecordMessage(rec.version, rec.identityPublicKey, rec.devicePublicKey, rec.issuedAt, nameField(rec)), rec.signature)
}
