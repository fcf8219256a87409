// AES-256-GCM sealing of blocks and nodes with position-binding associated data: the layouts of
// a sealed object (docs/format.md, "Sealed object"), v2 for everything sealed now, v1 still
// opened.
//   v2: 0x02 | nonce[12] | per 4 KiB segment s: ciphertext | tag[16]
//       segment s: nonce XOR u32be(s) in its last 4 bytes, AD = "SPC2" | type u8 | objectId[16] |
//       index u64 BE | s u32 BE | last u8 (1 on the object's final segment)
//   v1: 0x01 | type u8 | nonce[12] | ciphertext | tag[16], AD = "SPC1" | 1 | type | objectId | index
// Segments let a reader open (and a writer seal) 4 KiB of a 128 KiB block; the type is no longer
// in the clear, only in the associated data. A *patch* is a v2 object whose segments start at
// `first` instead of 0 (their numbers are their places in the block).
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto'
import { AuthError, FormatError } from './errors.js'
import { copyBytes } from './copy.js'
import { loadAddon } from './addon.js'

export const SEAL_V1 = 1
export const SEAL_V2 = 2
/** The version everything is sealed with now. */
export const SEAL_VERSION = SEAL_V2
export const NONCE_LEN = 12
export const TAG_LEN = 16
export const KEY_LEN = 32
export const ID_LEN = 16
/** Plaintext bytes per segment of a v2 object (the last one may be shorter). */
export const SEGMENT = 4096
/** A full segment as stored: ciphertext and tag. */
export const SEGMENT_SEALED = SEGMENT + TAG_LEN
/** v2: version byte and nonce, before the first segment. */
export const V2_HEADER = 1 + NONCE_LEN
/** v1: version, type, nonce. */
export const V1_HEADER = 2 + NONCE_LEN
/** Overhead of a v1 object (and of a v2 object of one segment, within a byte). */
export const SEAL_OVERHEAD = V1_HEADER + TAG_LEN

/** What a sealed object is; part of the associated data so one kind can never pass for another. */
export const enum SealType {
  Block = 1,
  Dir = 2,
  BlockMap = 3,
  Root = 4,
  KeyFile = 5,
  SyncRoot = 6, // a device log entry's root (src/sync/entry-keys.ts)
}

export interface SealPosition {
  type: SealType
  objectId: Uint8Array
  index: number
}

/** Segments of a v2 object of `plainLen` bytes (an empty object has one empty segment). */
export const segmentsOf = (plainLen: number): number => Math.max(1, Math.ceil(plainLen / SEGMENT))

/** Sealed length of a v2 object (or patch) of `plainLen` plaintext bytes. */
export const sealedLength = (plainLen: number): number => V2_HEADER + plainLen + TAG_LEN * segmentsOf(plainLen)

/** Where segment `k` of a v2 object (k counted from the object's first segment) starts. */
export const segmentOffset = (k: number): number => V2_HEADER + k * SEGMENT_SEALED

/** Plaintext length of a sealed object of `sealedLen` bytes and version `version`; -1 when impossible. */
export function plainLength (version: number, sealedLen: number): number {
  if (version === SEAL_V1) return sealedLen >= SEAL_OVERHEAD ? sealedLen - SEAL_OVERHEAD : -1
  if (version !== SEAL_V2) return -1
  const body = sealedLen - V2_HEADER
  if (body < TAG_LEN) return -1
  const full = Math.floor(body / SEGMENT_SEALED)
  const rest = body - full * SEGMENT_SEALED
  if (rest === 0) return full * SEGMENT
  if (rest < TAG_LEN || (rest === TAG_LEN && full > 0)) return -1 // a torn segment, or an empty one after full ones
  return full * SEGMENT + rest - TAG_LEN
}

const AD_V1 = Buffer.from('SPC1')
const AD_V2 = Buffer.from('SPC2')
/** Length of v2's associated data: the position prefix, then segment u32 and last u8. */
export const AD_V2_PREFIX = 4 + 1 + ID_LEN + 8
const AD_V2_LEN = AD_V2_PREFIX + 5

function checkId (objectId: Uint8Array): void {
  if (objectId.length !== ID_LEN) throw new RangeError(`object id must be ${ID_LEN} bytes`)
}

/** Length of v1's associated data. */
const AD_V1_LEN = 4 + 2 + ID_LEN + 8

/** An index (below 2^53) as u64 big-endian at out[at]: no BigInt per seal or read. */
function writeIndex (out: Buffer, index: number, at: number): void {
  out.writeUInt32BE(Math.floor(index / 0x100000000), at)
  out.writeUInt32BE(index >>> 0, at + 4)
}

function writeV1 (out: Buffer, at: number, type: number, objectId: Uint8Array, index: number): void {
  AD_V1.copy(out, at)
  out[at + 4] = SEAL_V1
  out[at + 5] = type
  out.set(objectId, at + 6)
  writeIndex(out, index, at + 6 + ID_LEN)
}

function writeV2Prefix (out: Buffer, at: number, type: number, objectId: Uint8Array, index: number): void {
  AD_V2.copy(out, at)
  out[at + 4] = type
  out.set(objectId, at + 5)
  writeIndex(out, index, at + 5 + ID_LEN)
}

/** v1's associated data (what v1 objects were sealed with). */
export function associatedData (type: number, objectId: Uint8Array, index: number): Buffer {
  checkId(objectId)
  const ad = Buffer.allocUnsafe(AD_V1_LEN)
  writeV1(ad, 0, type, objectId, index)
  return ad
}

/** v2's associated data up to the segment number: "SPC2" | type | objectId | index. */
export function associatedDataV2 (type: number, objectId: Uint8Array, index: number): Buffer {
  checkId(objectId)
  const ad = Buffer.alloc(AD_V2_LEN)
  writeV2Prefix(ad, 0, type, objectId, index)
  return ad.subarray(0, AD_V2_PREFIX)
}

/**
 * The v2 prefix of one position in memory of this module, valid until the next call: for the
 * seals and opens here, which use it before they return (a fresh Buffer per seal and per read
 * was garbage the collector chased under random I/O).
 */
const prefixScratch = Buffer.alloc(AD_V2_PREFIX)
function scratchPrefix (type: number, objectId: Uint8Array, index: number): Buffer {
  checkId(objectId)
  writeV2Prefix(prefixScratch, 0, type, objectId, index)
  return prefixScratch
}

/** The associated data of both versions for one position, as the native reader takes it. */
export function positionData (pos: SealPosition): Buffer {
  checkId(pos.objectId)
  const ad = Buffer.allocUnsafe(AD_V1_LEN + AD_V2_PREFIX)
  writeV1(ad, 0, pos.type, pos.objectId, pos.index)
  writeV2Prefix(ad, AD_V1_LEN, pos.type, pos.objectId, pos.index)
  return ad
}

/** v2's associated data prefix of `pos` into out[at, at + AD_V2_PREFIX) (the native read table's). */
export function adPrefixInto (pos: SealPosition, out: Buffer, at = 0): void {
  checkId(pos.objectId)
  writeV2Prefix(out, at, pos.type, pos.objectId, pos.index)
}

/** Segment s's nonce: the object's nonce with u32be(s) XORed into its last 4 bytes. */
function segmentNonce (nonce: Uint8Array, s: number): Buffer {
  const n = Buffer.from(nonce)
  n.writeUInt32BE((n.readUInt32BE(8) ^ s) >>> 0, 8)
  return n
}

function segmentAd (prefix: Buffer, s: number, last: boolean): Buffer {
  const ad = Buffer.allocUnsafe(AD_V2_LEN)
  prefix.copy(ad, 0, 0, AD_V2_PREFIX)
  ad.writeUInt32BE(s, AD_V2_PREFIX)
  ad[AD_V2_PREFIX + 4] = last ? 1 : 0
  return ad
}

type NativeSeal = (key: Uint8Array, adPrefix: Uint8Array, nonce: Uint8Array, first: number, plain: Uint8Array, out: Uint8Array) => number
type NativeOpen = (key: Uint8Array, adPrefix: Uint8Array, nonce: Uint8Array, first: number, lastSegment: number, sealed: Uint8Array, out: Uint8Array) => number
const nativeSeal = loadAddon<NativeSeal>('space_block', 'sealSegments')
const nativeOpen = loadAddon<NativeOpen>('space_block', 'openSegments')

/**
 * Seals `plain` as v2 segments first, first + 1, ... into out[at...] under `nonce`; the last
 * segment written carries last = 1. Returns the bytes written. `out` may be the memory `plain`
 * lies in when it starts at or after it (segments are sealed from the last one back).
 */
function sealSegmentsInto (key: Uint8Array, prefix: Buffer, nonce: Uint8Array, first: number, plain: Uint8Array, out: Uint8Array, at: number): number {
  if (nativeSeal != null) return nativeSeal(key, prefix, nonce, first, plain, out.subarray(at))
  const n = segmentsOf(plain.length)
  for (let k = n - 1; k >= 0; k--) {
    const c = createCipheriv('aes-256-gcm', key, segmentNonce(nonce, first + k))
    c.setAAD(segmentAd(prefix, first + k, k === n - 1))
    const body = c.update(plain.subarray(k * SEGMENT, Math.min(plain.length, (k + 1) * SEGMENT)))
    c.final()
    copyBytes(out, at + k * SEGMENT_SEALED, body) // `out` may be shared memory (copy.ts)
    copyBytes(out, at + k * SEGMENT_SEALED + body.length, c.getAuthTag())
  }
  return sealedLength(plain.length) - V2_HEADER
}

/**
 * Random nonces are taken 12 bytes at a time from a pool refilled by one randomFillSync per 4 KiB:
 * a randomBytes call per seal cost ~4.5 us (4.6% of the JS thread in a 4 KiB random-write run).
 * Every byte is handed out once; the nonce is copied into the sealed object at once.
 */
const noncePool = Buffer.allocUnsafeSlow(NONCE_LEN * 341)
let nonceAt = noncePool.length

function freshNonce (): Buffer {
  if (nonceAt + NONCE_LEN > noncePool.length) { randomFillSync(noncePool); nonceAt = 0 }
  const n = noncePool.subarray(nonceAt, nonceAt + NONCE_LEN)
  nonceAt += NONCE_LEN
  return n
}

/** Seals `plain` under `key` (v2) with a fresh random nonce, bound to `pos`. */
export function seal (key: Uint8Array, pos: SealPosition, plain: Uint8Array): Buffer {
  return sealPatch(key, pos, 0, plain)
}

/**
 * Seals `plain` as segments `first`, first + 1, ... of block `pos` (a patch: its segment
 * numbers are their places in the block); `first` = 0 is a whole object.
 */
export function sealPatch (key: Uint8Array, pos: SealPosition, first: number, plain: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(sealedLength(plain.length))
  sealPatchInto(key, pos, first, plain, out)
  return out
}

/** sealPatch() into `out` (at least sealedLength(plain.length) bytes; not `plain`'s memory). Returns the length. */
export function sealPatchInto (key: Uint8Array, pos: SealPosition, first: number, plain: Uint8Array, out: Buffer): number {
  out[0] = SEAL_V2
  const nonce = freshNonce()
  nonce.copy(out, 1)
  return V2_HEADER + sealSegmentsInto(key, scratchPrefix(pos.type, pos.objectId, pos.index), nonce, first, plain, out, V2_HEADER)
}

/**
 * seal() into `out` (at least sealedLength(plain.length) bytes), which may be the very memory
 * `plain` lies in (same start). Returns the length.
 */
export function sealInto (key: Uint8Array, pos: SealPosition, plain: Uint8Array, out: Buffer): number {
  const nonce = freshNonce()
  const prefix = scratchPrefix(pos.type, pos.objectId, pos.index)
  // Ciphertext lands V2_HEADER bytes past its plaintext: sealed back to front, nothing unread is overwritten.
  const n = sealSegmentsInto(key, prefix, nonce, 0, plain, out, V2_HEADER)
  out[0] = SEAL_V2
  nonce.copy(out, 1)
  return V2_HEADER + n
}

/** v1's seal, for tests and fixtures that need objects as v1 wrote them. */
export function sealV1 (key: Uint8Array, pos: SealPosition, plain: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(SEAL_OVERHEAD + plain.length)
  out[0] = SEAL_V1
  out[1] = pos.type
  const nonce = randomBytes(NONCE_LEN)
  nonce.copy(out, 2)
  const c = createCipheriv('aes-256-gcm', key, nonce)
  c.setAAD(associatedData(pos.type, pos.objectId, pos.index))
  const n = c.update(plain).copy(out, V1_HEADER)
  c.final()
  c.getAuthTag().copy(out, V1_HEADER + n)
  return out
}

/** The nonce of a v2 object (what a reader remembers to open its segments later); null for v1. */
export function nonceOf (sealed: Uint8Array): Buffer | null {
  return sealed.length >= V2_HEADER && sealed[0] === SEAL_V2 ? Buffer.from(sealed.subarray(1, V2_HEADER)) : null
}

/** Opens a sealed object (v1 or v2); throws AuthError unless key, position and every byte match. */
export function open (key: Uint8Array, pos: SealPosition, sealed: Uint8Array): Buffer {
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length)
  if (buf.length < 1) throw new AuthError('sealed object too short')
  if (buf[0] === SEAL_V2) return openPatch(key, pos, 0, buf)
  if (buf[0] !== SEAL_V1) throw new FormatError(`unknown seal version ${buf[0]}`)
  if (buf.length < SEAL_OVERHEAD) throw new AuthError('sealed object too short')
  if (buf[1] !== pos.type) throw new AuthError(`sealed type ${buf[1]} where ${pos.type} expected`)
  const d = createDecipheriv('aes-256-gcm', key, buf.subarray(2, V1_HEADER))
  d.setAAD(associatedData(pos.type, pos.objectId, pos.index))
  d.setAuthTag(buf.subarray(buf.length - TAG_LEN))
  const body = d.update(buf.subarray(V1_HEADER, buf.length - TAG_LEN))
  try {
    d.final()
  } catch {
    throw new AuthError()
  }
  return body
}

/** Opens a whole v2 object whose segments start at `first` (a patch; 0: any other object). */
export function openPatch (key: Uint8Array, pos: SealPosition, first: number, sealed: Uint8Array): Buffer {
  if (sealed.length < 1 || sealed[0] !== SEAL_V2) throw new FormatError(`not a v2 object (version ${sealed[0]})`)
  const len = plainLength(SEAL_V2, sealed.length)
  if (len < 0) throw new AuthError('sealed object cut inside a segment')
  const count = segmentsOf(len)
  return openSegments(key, pos, sealed.subarray(1, V2_HEADER), first, first + count - 1, sealed.subarray(V2_HEADER), len)
}

/**
 * Opens consecutive sealed segments `first`, first + 1, ... (`segs`: their sealed bytes back to
 * back, as stored) of the v2 object with nonce `nonce`, whose final segment is `lastSegment`:
 * the remembered-nonce read of part of an object. `plainLen`: their plaintext length, if known.
 */
export function openSegments (key: Uint8Array, pos: SealPosition, nonce: Uint8Array, first: number, lastSegment: number, segs: Uint8Array, plainLen?: number): Buffer {
  const full = Math.floor(segs.length / SEGMENT_SEALED)
  const rest = segs.length - full * SEGMENT_SEALED
  if (rest !== 0 && rest < TAG_LEN) throw new AuthError('sealed segment cut short')
  const count = full + (rest !== 0 ? 1 : 0)
  const len = plainLen ?? segs.length - count * TAG_LEN
  if (count === 0 || len !== segs.length - count * TAG_LEN) throw new AuthError('sealed segments of a wrong length')
  const out = Buffer.allocUnsafe(len)
  const prefix = scratchPrefix(pos.type, pos.objectId, pos.index)
  if (nativeOpen != null) {
    if (nativeOpen(key, prefix, nonce, first, lastSegment, segs, out) !== len) throw new AuthError()
    return out
  }
  for (let k = 0; k < count; k++) {
    const s = first + k
    const from = k * SEGMENT_SEALED
    const to = Math.min(segs.length, from + SEGMENT_SEALED)
    const d = createDecipheriv('aes-256-gcm', key, segmentNonce(nonce, s))
    d.setAAD(segmentAd(prefix, s, s === lastSegment))
    d.setAuthTag(segs.subarray(to - TAG_LEN, to))
    d.update(segs.subarray(from, to - TAG_LEN)).copy(out, k * SEGMENT)
    try {
      d.final()
    } catch {
      out.fill(0)
      throw new AuthError()
    }
  }
  return out
}

export function randomKey (): Buffer { return randomBytes(KEY_LEN) }
export function randomId (): Buffer { return randomBytes(ID_LEN) }
