// CIDv1 (raw codec) of sealed bytes: the address every block and node is stored under, and the
// check of bytes against the address they were fetched by.
// Objects are hashed with BLAKE3 (multihash 0x1e, 32 bytes): 14 us per 128 KiB block here against
// 65 us for SHA-256, which made hashing two thirds of the cost of sealing. Stores written by
// v0.1 hold sha2-256 CIDs; those stay valid addresses, since a CID names its own hash function.
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { Digest } from 'multiformats/hashes/digest'
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

const B32 = Buffer.from('abcdefghijklmnopqrstuvwxyz234567', 'latin1')
let b32out = Buffer.allocUnsafe(128)

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
  encoder.encode = base32Multibase
  encoder.flatCids = true
}

/**
 * The multibase base32 form of `bytes` ("b", then RFC 4648 lower case, unpadded), the bytes
 * multiformats' encoder gives (test/store/cid.test.ts), written as ASCII into one buffer and read
 * as one flat string: built a character at a time, each CID string (every sealed object gets one)
 * left ~1.2 KB of garbage, 13-15% of all allocation under random writes.
 */
function base32Multibase (bytes: Uint8Array): string {
  const n = 1 + Math.ceil(bytes.length * 8 / 5)
  if (b32out.length < n) b32out = Buffer.allocUnsafe(n)
  b32out[0] = 0x62 // 'b'
  let o = 1
  let bits = 0
  let acc = 0
  for (let i = 0; i < bytes.length; i++) {
    acc = ((acc & 0xff) << 8) | bytes[i]
    bits += 8
    while (bits >= 5) { bits -= 5; b32out[o++] = B32[(acc >>> bits) & 31] }
  }
  if (bits > 0) b32out[o++] = B32[(acc << (5 - bits)) & 31]
  return b32out.toString('latin1', 0, o)
}

/**
 * CIDs kept for long (a file's block references) are compact: their bytes, multihash and digest
 * are views of one 36-byte slice of a shared slab, where multiformats gives each CID two or three
 * ArrayBuffers of its own (~200 B each with their backing stores) and the decoder's views keep
 * the whole decoded block map alive. Measured, 100k CIDs: 1,134 -> 378 B of RSS each.
 */
const SLAB_BYTES = 64 * 1024
let slab = new ArrayBuffer(SLAB_BYTES)
let slabAt = 0

function slabBytes (n: number): Uint8Array {
  if (slabAt + n > SLAB_BYTES) { slab = new ArrayBuffer(SLAB_BYTES); slabAt = 0 }
  const b = new Uint8Array(slab, slabAt, n)
  slabAt += (n + 3) & ~3
  return b
}

const BLAKE3_RAW_PREFIX = Uint8Array.of(1, RAW_CODEC, BLAKE3, 32)

/** The CID of bytes whose BLAKE3 digest is already known (compact). */
export function cidFromBlake3 (digest: Uint8Array): CID {
  if (digest.length !== 32) throw new StoreError('ERR_CID_UNSUPPORTED', `a BLAKE3 digest of ${digest.length} bytes`)
  const b = slabBytes(36)
  b.set(BLAKE3_RAW_PREFIX)
  b.set(digest, 4)
  return new CID(1, RAW_CODEC, new Digest(BLAKE3, 32, b.subarray(4), b.subarray(2)), b)
}

/** The same CID, compact (a CID decoded from a record, kept in a block map). */
export function compactCid (cid: CID): CID {
  const { bytes, multihash: mh } = cid
  if (bytes.length > 64) return cid
  const b = slabBytes(bytes.length)
  b.set(bytes)
  return new CID(cid.version, cid.code, new Digest(mh.code, mh.size, b.subarray(bytes.length - mh.digest.length), b.subarray(bytes.length - mh.bytes.length)), b)
}

/**
 * The CID whose binary form is `bytes` (what dag-cbor's tag 42 holds after its 0x00), compact.
 * A CIDv1 with one-byte codec and hash codes and a 32-byte digest (every CID this project
 * writes) is built from the bytes directly: multiformats' CID.decode makes a CID, a Digest and
 * views of the record's buffer first (a 16-child inner shard: 37 us to decode, 10 without those
 * CIDs). Anything else goes through CID.decode, which checks and refuses as it always did.
 */
export function cidFromBytes (bytes: Uint8Array): CID {
  if (bytes.length === 36 && bytes[0] === 1 && bytes[1] < 0x80 && bytes[2] < 0x80 && bytes[3] === 32) {
    const b = slabBytes(36)
    b.set(bytes)
    return new CID(1, b[1], new Digest(b[2], 32, b.subarray(4), b.subarray(2)), b)
  }
  return compactCid(CID.decode(bytes))
}

/**
 * CID strings (what stores and caches key blocks by) are remembered in a table the daemon drops
 * when it goes quiet (forgetCidStrings, src/memory.ts), not for each CID's lifetime as
 * multiformats does (a WeakMap and a Map per CID: 100k compact CIDs took 2,186 B of RSS each
 * with their strings, 378 without). Computing one takes ~2 us against ~0.13 us for a lookup, so
 * they are remembered while working.
 */
let strings = new WeakMap<CID, string>()
const multiformatsToString = CID.prototype.toString
CID.prototype.toString = function (this: CID, base?: Parameters<CID['toString']>[0]): string {
  if (base != null || this.version !== 1) return multiformatsToString.call(this, base)
  let s = strings.get(this)
  if (s == null) { s = encoder.encode(this.bytes); strings.set(this, s) }
  return s
}

/** Drops the remembered CID strings (they are made again on the next use). */
export function forgetCidStrings (): void { strings = new WeakMap() }

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
