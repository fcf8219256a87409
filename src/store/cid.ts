// CIDv1 (raw codec) of sealed bytes: the address every block and node is stored under, and the
// check of bytes against the address they were fetched by.
// Objects are hashed with BLAKE3 (multihash 0x1e, 32 bytes): 14 us per 128 KiB block here against
// 65 us for SHA-256, which made hashing two thirds of the cost of sealing. Stores written by
// v0.1 hold sha2-256 CIDs; those stay valid addresses, since a CID names its own hash function.
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { base32 } from 'multiformats/bases/base32'
import { blake3 } from '../crypto/blake3.js'
import { StoreError } from './errors.js'

export const RAW_CODEC = 0x55
export const BLAKE3 = 0x1e
export const SHA2_256 = 0x12

export function cidOf (bytes: Uint8Array): CID {
  return cidFromBlake3(blake3(bytes))
}

export { CID }

/**
 * A CID's string form, flat. multiformats builds it one character at a time and caches it on
 * the CID for the CID's lifetime; V8 keeps such a string as a chain of ~47 cons-string cells, so
 * a CID once used as a map key held 2.4 KB of heap, 1.0 KB with the string flat (measured, 32k
 * CIDs): ~48 MiB more for the block map of a 4 GiB file. Installed once on the default (base32)
 * encoder, which every CID#toString() uses.
 */
export function flatString (s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1')
}
const encoder = base32.encoder as { encode: (bytes: Uint8Array) => string, flatCids?: true }
if (encoder.flatCids !== true) {
  const encode = encoder.encode.bind(encoder)
  encoder.encode = (bytes: Uint8Array): string => flatString(encode(bytes))
  encoder.flatCids = true
}

/** The CID of bytes whose BLAKE3 digest is already known. */
export function cidFromBlake3 (digest: Uint8Array): CID {
  return CID.createV1(RAW_CODEC, createDigest(BLAKE3, digest))
}

/**
 * Throws unless `bytes` hash to `cid`'s digest: what makes a commit's root CID pin every byte
 * of the tree below it, whatever the record that held the bytes claimed. BLAKE3 and sha2-256
 * (32-byte digests) only; a CID of any other hash function is refused, never trusted.
 */
export function checkCid (cid: CID, bytes: Uint8Array): void {
  const { code, digest } = cid.multihash
  if ((code !== BLAKE3 && code !== SHA2_256) || digest.length !== 32) {
    throw new StoreError('ERR_CID_UNSUPPORTED', `block ${cid.toString()} names hash function 0x${code.toString(16)} (${digest.length} bytes), which the store cannot check`)
  }
  const actual = code === BLAKE3 ? blake3(bytes) : createHash('sha256').update(bytes).digest()
  if (!Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(digest)) {
    throw new StoreError('ERR_CID_MISMATCH', `block ${cid.toString()} does not match its CID (its ${bytes.length} bytes hash otherwise)`)
  }
}
