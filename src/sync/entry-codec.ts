// Strict dag-cbor for the sync structures (entries, block lists, device and revocation records):
// decoding that refuses anything but the one canonical encoding of a known shape, and the
// CIDv1 dag-cbor BLAKE3 addresses they live under (docs/format.md, "Sync: device logs").
import * as cbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { blake3 } from '../crypto/blake3.js'
import { SyncError } from './errors.js'

export const DAG_CBOR = 0x71
export const RAW = 0x55
export const BLAKE3 = 0x1e
export const SHA2_256 = 0x12

export type Fields = Record<string, unknown>

/** The address of a dag-cbor sync block: CIDv1 dag-cbor, BLAKE3-256 of its bytes. */
export function dagCid (bytes: Uint8Array): CID {
  return CID.createV1(DAG_CBOR, createDigest(BLAKE3, blake3(bytes)))
}

export function encodeCanonical (value: unknown): Uint8Array { return cbor.encode(value) }

/**
 * Decodes `bytes` as a map with exactly the keys `keys` and version `version`; refuses any other
 * encoding of the same value (re-encoding must give the same bytes), so one value has one CID.
 */
export function decodeStrict (bytes: Uint8Array, what: string, version: number, keys: readonly string[]): Fields {
  let value: unknown
  try {
    value = cbor.decode(bytes)
  } catch (err) {
    throw new SyncError('ERR_SYNC_FORMAT', `${what} is not dag-cbor: ${(err as Error).message}`)
  }
  const map = checkShape(value, what, version, keys)
  if (!Buffer.from(cbor.encode(map)).equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) {
    throw new SyncError('ERR_SYNC_FORMAT', `${what} is not canonical dag-cbor`)
  }
  return map
}

/** A decoded value (e.g. a map nested in a checked block) with exactly `keys` and version `version`. */
export function checkShape (value: unknown, what: string, version: number, keys: readonly string[]): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array || CID.asCID(value) !== null) {
    throw new SyncError('ERR_SYNC_FORMAT', `${what} is not a map`)
  }
  const map = value as Fields
  if (!('v' in map)) throw new SyncError('ERR_SYNC_FORMAT', `${what} has no version`)
  if (map.v !== version) throw new SyncError('ERR_SYNC_VERSION', `${what} has version ${String(map.v)}; this build reads version ${version}`)
  for (const k of keys) if (!(k in map)) throw new SyncError('ERR_SYNC_FORMAT', `${what} has no field "${k}"`)
  for (const k of Object.keys(map)) if (!keys.includes(k)) throw new SyncError('ERR_SYNC_FORMAT', `${what} has an unknown field "${k}"`)
  return map
}

export function bytesField (m: Fields, key: string, what: string, len?: number): Buffer {
  const v = m[key]
  if (!(v instanceof Uint8Array) || (len !== undefined && v.length !== len)) {
    throw new SyncError('ERR_SYNC_FORMAT', `${what}: "${key}" must be ${len === undefined ? 'bytes' : `${len} bytes`}`)
  }
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}

export function uintField (m: Fields, key: string, what: string): number {
  return asUint(m[key], `${what}: "${key}"`)
}

export function asUint (v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new SyncError('ERR_SYNC_FORMAT', `${what} must be an unsigned integer below 2^53`)
  return v
}

export function stringField (m: Fields, key: string, what: string): string {
  const v = m[key]
  if (typeof v !== 'string') throw new SyncError('ERR_SYNC_FORMAT', `${what}: "${key}" must be a string`)
  return v
}

/** A CID of a sync block (dag-cbor, BLAKE3-256). */
export function asDagCid (v: unknown, what: string): CID {
  const cid = CID.asCID(v)
  if (cid === null || cid.version !== 1 || cid.code !== DAG_CBOR || cid.multihash.code !== BLAKE3 || cid.multihash.digest.length !== 32) {
    throw new SyncError('ERR_SYNC_FORMAT', `${what} must be a CIDv1 dag-cbor BLAKE3-256`)
  }
  return cid
}

/** A CID of a sealed store block (raw, BLAKE3-256 or sha2-256): what block lists name. */
export function asRawCid (v: unknown, what: string): CID {
  const cid = CID.asCID(v)
  if (cid === null || cid.version !== 1 || cid.code !== RAW ||
      (cid.multihash.code !== BLAKE3 && cid.multihash.code !== SHA2_256) || cid.multihash.digest.length !== 32) {
    throw new SyncError('ERR_SYNC_FORMAT', `${what} must be a CIDv1 raw BLAKE3-256 or sha2-256`)
  }
  return cid
}

/** Throws unless `bytes` are what `expected` names (a fetched block is checked before it is read). */
export function checkDagCid (expected: CID, bytes: Uint8Array, what: string): CID {
  const actual = dagCid(bytes)
  if (!actual.equals(expected)) throw new SyncError('ERR_SYNC_CID_MISMATCH', `${what}: bytes fetched as ${String(expected)} hash to ${String(actual)}`)
  return actual
}

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
