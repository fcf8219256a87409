// AES-256-GCM sealing of blocks and nodes with position-binding associated data.
// Layout of a sealed object (docs/format.md, "Sealed object"):
//   version u8 | type u8 | nonce[12] | ciphertext | tag[16]
// Associated data binds the object to where it belongs:
//   "SPC1" | version u8 | type u8 | objectId[16] | index u64 BE
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { AuthError, FormatError } from './errors.js'
import { copyBytes } from './copy.js'

export const SEAL_VERSION = 1
export const NONCE_LEN = 12
export const TAG_LEN = 16
export const HEADER_LEN = 2 + NONCE_LEN
export const SEAL_OVERHEAD = HEADER_LEN + TAG_LEN
export const KEY_LEN = 32
export const ID_LEN = 16

/** What a sealed object is; part of the associated data so one kind can never pass for another. */
export const enum SealType {
  Block = 1,
  Dir = 2,
  BlockMap = 3,
  Root = 4,
  KeyFile = 5,
  SyncRoot = 6, // a device log entry's root (src/sync/entry-keys.ts)
}

const AD_MAGIC = Buffer.from('SPC1')

/** The associated data binding a sealed object to its position (also handed to open-file.ts). */
export function associatedData (type: number, objectId: Uint8Array, index: number): Buffer {
  if (objectId.length !== ID_LEN) throw new RangeError(`object id must be ${ID_LEN} bytes`)
  const ad = Buffer.allocUnsafe(4 + 2 + ID_LEN + 8)
  AD_MAGIC.copy(ad, 0)
  ad[4] = SEAL_VERSION
  ad[5] = type
  ad.set(objectId, 6)
  ad.writeBigUInt64BE(BigInt(index), 6 + ID_LEN)
  return ad
}

export interface SealPosition {
  type: SealType
  objectId: Uint8Array
  index: number
}

/** Seals `plain` under `key` with a fresh random nonce, bound to `pos`. */
export function seal (key: Uint8Array, pos: SealPosition, plain: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(SEAL_OVERHEAD + plain.length)
  out[0] = SEAL_VERSION
  out[1] = pos.type
  const nonce = randomBytes(NONCE_LEN)
  nonce.copy(out, 2)
  const c = createCipheriv('aes-256-gcm', key, nonce)
  c.setAAD(associatedData(pos.type, pos.objectId, pos.index))
  const n = c.update(plain).copy(out, HEADER_LEN)
  c.final()
  c.getAuthTag().copy(out, HEADER_LEN + n)
  return out
}

/**
 * seal() into `out` (at least plain.length + SEAL_OVERHEAD bytes), which may be the very memory
 * `plain` lies in: the ciphertext is computed before anything is written. Returns the length.
 */
export function sealInto (key: Uint8Array, pos: SealPosition, plain: Uint8Array, out: Buffer): number {
  const nonce = randomBytes(NONCE_LEN)
  const c = createCipheriv('aes-256-gcm', key, nonce)
  c.setAAD(associatedData(pos.type, pos.objectId, pos.index))
  const body = c.update(plain)
  c.final()
  out[0] = SEAL_VERSION
  out[1] = pos.type
  nonce.copy(out, 2)
  copyBytes(out, HEADER_LEN, body) // `out` may be shared memory (copy.ts)
  c.getAuthTag().copy(out, HEADER_LEN + body.length)
  return HEADER_LEN + body.length + TAG_LEN
}

/** Opens a sealed object; throws AuthError unless key, position and every byte match. */
export function open (key: Uint8Array, pos: SealPosition, sealed: Uint8Array): Buffer {
  if (sealed.length < SEAL_OVERHEAD) throw new AuthError('sealed object too short')
  if (sealed[0] !== SEAL_VERSION) throw new FormatError(`unknown seal version ${sealed[0]}`)
  if (sealed[1] !== pos.type) throw new AuthError(`sealed type ${sealed[1]} where ${pos.type} expected`)
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length)
  const d = createDecipheriv('aes-256-gcm', key, buf.subarray(2, HEADER_LEN))
  d.setAAD(associatedData(pos.type, pos.objectId, pos.index))
  d.setAuthTag(buf.subarray(buf.length - TAG_LEN))
  const body = d.update(buf.subarray(HEADER_LEN, buf.length - TAG_LEN))
  try {
    d.final()
  } catch {
    throw new AuthError()
  }
  return body
}

export function randomKey (): Buffer { return randomBytes(KEY_LEN) }
export function randomId (): Buffer { return randomBytes(ID_LEN) }
