// CAR v1 (IPLD Content Addressable aRchive) as the block transport speaks it, both ways: a
// streaming reader that checks every block against its CID as it arrives, holding at most one
// block beyond what the caller keeps, and the writer's framing. The format:
//   varint(len) | dag-cbor {version: 1, roots: [CID...]}   then per block:
//   varint(len(cid) + len(bytes)) | CID bytes | block bytes
// Blocks are CIDv1 of the raw (0x55) or dag-cbor (0x71) codec, hashed with BLAKE3 or sha2-256.
import * as dagCbor from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import { BLAKE3, CID, checkCid, compactCid, SHA2_256 } from '../store/cid.js'
import { StoreError } from '../store/errors.js'
import type { BufferPool } from '../store/buffer-pool.js'
import { TransportError } from './transport-errors.js'
import { MAX_BLOCK_BYTES } from './transport-protocol.js'

export const RAW_CODEC = 0x55
export const DAG_CBOR_CODEC = 0x71
const MAX_HEADER = 64 * 1024
/** Longest CID we accept in a section: version, codec, hash code, length, 32-byte digest. */
const MAX_CID = 64

/**
 * A block; `release`, when set, is called once its bytes are no longer read (they are a view of
 * a pooled buffer: store/buffer-pool.ts). A consumer that never calls it only costs the reuse.
 */
export interface Block { cid: CID, bytes: Uint8Array, release?: () => void }

/** Why `cid` is not one we store (CIDv1, raw or dag-cbor, BLAKE3 or sha2-256 of 32 bytes), or null. */
export function unsupportedCid (cid: CID): string | null {
  if (cid.version !== 1 || (cid.code !== RAW_CODEC && cid.code !== DAG_CBOR_CODEC)) return `block ${cid.toString()}: only CIDv1 of the raw (0x55) and dag-cbor (0x71) codecs are stored`
  const { code, digest } = cid.multihash
  if ((code !== BLAKE3 && code !== SHA2_256) || digest.length !== 32) return `block ${cid.toString()}: only BLAKE3 and sha2-256 (32-byte) hashes are checked`
  return null
}

/**
 * Throws a TransportError unless `bytes` are the block `cid` names: a CIDv1 of a codec we store,
 * of a hash function we check, whose digest the bytes hash to.
 */
export function checkBlock (cid: CID, bytes: Uint8Array): void {
  const unsupported = unsupportedCid(cid)
  if (unsupported !== null) throw new TransportError('ERR_CID_UNSUPPORTED', unsupported)
  try {
    checkCid(cid, bytes)
  } catch (err) {
    if (err instanceof StoreError && err.code === 'ERR_CID_UNSUPPORTED') throw new TransportError('ERR_CID_UNSUPPORTED', err.message)
    if (err instanceof StoreError) throw new TransportError('ERR_BLOCK_MISMATCH', err.message)
    throw err
  }
}

/** Pulls exact byte counts off a stream of chunks; slices without copying when one chunk holds them. */
class ByteReader {
  private chunk: Buffer = Buffer.alloc(0)
  private pos = 0
  /** Bytes taken off the stream so far. */
  consumed = 0
  constructor (private readonly it: AsyncIterator<Uint8Array>, private readonly limit: number) {}

  private async fill (): Promise<boolean> {
    for (;;) {
      const r = await this.it.next()
      if (r.done === true) return false
      const v = r.value
      if (v.length === 0) continue
      this.chunk = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
      this.pos = 0
      return true
    }
  }

  async atEnd (): Promise<boolean> {
    return this.pos >= this.chunk.length && !(await this.fill())
  }

  private take (n: number): void {
    this.consumed += n
    if (this.consumed > this.limit) throw new TransportError('ERR_TOO_LARGE', `CAR stream is larger than ${this.limit} bytes`)
  }

  async byte (): Promise<number> {
    if (this.pos >= this.chunk.length && !(await this.fill())) throw new TransportError('ERR_CAR_FORMAT', 'CAR stream ends inside a section')
    this.take(1)
    return this.chunk[this.pos++]
  }

  /** An unsigned LEB128 varint of at most 7 bytes (below 2^49). */
  async varint (): Promise<number> {
    let value = 0
    for (let i = 0; i < 7; i++) {
      const b = await this.byte()
      value += (b & 0x7f) * 2 ** (7 * i)
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new TransportError('ERR_CAR_FORMAT', 'CAR varint is not minimally encoded')
        return value
      }
    }
    throw new TransportError('ERR_CAR_FORMAT', 'CAR varint is too long')
  }

  async exactly (n: number): Promise<Buffer> {
    this.take(n)
    if (this.chunk.length - this.pos >= n) {
      const out = this.chunk.subarray(this.pos, this.pos + n)
      this.pos += n
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let have = 0
    while (have < n) {
      if (this.pos >= this.chunk.length && !(await this.fill())) throw new TransportError('ERR_CAR_FORMAT', 'CAR stream ends inside a section')
      const k = Math.min(n - have, this.chunk.length - this.pos)
      this.chunk.copy(out, have, this.pos, this.pos + k)
      this.pos += k
      have += k
    }
    return out
  }
}

export interface CarReadOptions {
  /** The whole stream's size limit (ERR_TOO_LARGE past it). */
  maxBytes?: number
  /**
   * The stream's length when known (a content-length): it is then read into one buffer and the
   * blocks handed out as views of it, where blocks crossing the stream's chunks were each copied
   * into a buffer of their own. For a caller that keeps the whole batch anyway.
   */
  length?: number
  /** Where that one buffer comes from: the blocks then carry a release (Block). */
  pool?: BufferPool
  maxBlockBytes?: number
  /** Told the header's roots before the first block. */
  onRoots?: (roots: CID[]) => void
}

/**
 * The blocks of a CAR v1 stream, each checked against its CID before it is yielded (checkBlock);
 * the first bad block, or bad framing, throws and ends the iteration.
 */
export async function * readCar (source: AsyncIterable<Uint8Array>, opts: CarReadOptions = {}): AsyncGenerator<Block> {
  const maxBlock = opts.maxBlockBytes ?? MAX_BLOCK_BYTES
  const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER
  if (opts.length !== undefined) {
    if (opts.length > maxBytes) throw new TransportError('ERR_TOO_LARGE', `CAR stream of ${opts.length} bytes is larger than ${maxBytes} bytes`)
    const lease = opts.pool?.lease(opts.length) ?? null
    try {
      for await (const b of readIntoOne(source, opts.length, lease?.buf, maxBlock, opts.onRoots)) {
        if (lease != null) b.release = lease.hold()
        yield b
      }
    } finally {
      lease?.done()
    }
    return
  }
  const r = new ByteReader(source[Symbol.asyncIterator](), maxBytes)
  const headerLength = await r.varint()
  checkHeaderLength(headerLength)
  const roots = decodeHeader(await r.exactly(headerLength))
  opts.onRoots?.(roots)
  while (!(await r.atEnd())) {
    const length = await r.varint()
    checkSectionLength(length, maxBlock)
    yield sectionBlock(await r.exactly(length), maxBlock)
  }
}

function checkHeaderLength (n: number): void {
  if (n === 0 || n > MAX_HEADER) throw new TransportError('ERR_CAR_FORMAT', `CAR header length ${n} is out of range`)
}

function checkSectionLength (n: number, maxBlock: number): void {
  if (n > maxBlock + MAX_CID) throw new TransportError('ERR_TOO_LARGE', `CAR section of ${n} bytes is over the ${maxBlock}-byte block limit`)
}

/** The header's roots; throws unless it is a CAR v1 header. */
function decodeHeader (bytes: Uint8Array): CID[] {
  let header: unknown
  try {
    header = dagCbor.decode(bytes)
  } catch (err) {
    throw new TransportError('ERR_CAR_FORMAT', `CAR header is not dag-cbor: ${(err as Error).message}`)
  }
  const h = header as { version?: unknown, roots?: unknown }
  if (h === null || typeof h !== 'object' || h.version !== 1) throw new TransportError('ERR_CAR_FORMAT', 'CAR header is not version 1')
  if (!Array.isArray(h.roots) || !h.roots.every(c => CID.asCID(c) !== null)) throw new TransportError('ERR_CAR_FORMAT', 'CAR header roots are not a list of CIDs')
  return h.roots as CID[]
}

/** A section's block, checked against its CID (checkBlock). */
function sectionBlock (section: Uint8Array, maxBlock: number): Block {
  let cid: CID
  let bytes: Uint8Array
  try {
    [cid, bytes] = CID.decodeFirst(section)
  } catch (err) {
    throw new TransportError('ERR_CAR_FORMAT', `CAR section names no valid CID: ${(err as Error).message}`)
  }
  if (bytes.length > maxBlock) throw new TransportError('ERR_TOO_LARGE', `block ${cid.toString()} of ${bytes.length} bytes is over the ${maxBlock}-byte limit`)
  checkBlock(cid, bytes)
  // The CID on its own bytes: stores and indexes keep CIDs long after the block's buffer (a
  // whole fetched batch, or a socket chunk) would otherwise have been freed.
  return { cid: compactCid(cid), bytes }
}

/** The varint at buf[pos], within the first `end` bytes: [value, bytes it took], or null when it runs past them. */
function varintIn (buf: Buffer, pos: number, end: number): [number, number] | null {
  let value = 0
  for (let i = 0; i < 7; i++) {
    if (pos + i >= end) return null
    const b = buf[pos + i]
    value += (b & 0x7f) * 2 ** (7 * i)
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) throw new TransportError('ERR_CAR_FORMAT', 'CAR varint is not minimally encoded')
      return [value, i + 1]
    }
  }
  throw new TransportError('ERR_CAR_FORMAT', 'CAR varint is too long')
}

/**
 * A CAR v1 stream of exactly `length` bytes, read into `into` (or a buffer of its own) as it
 * arrives; each block, once its section is all there, checked and yielded as a view of it. So
 * the hashing overlaps the transfer, as with the chunked reader, without a copy per block.
 */
async function * readIntoOne (source: AsyncIterable<Uint8Array>, length: number, into: Buffer | undefined, maxBlock: number, onRoots?: (roots: CID[]) => void): AsyncGenerator<Block> {
  const out = into ?? Buffer.allocUnsafe(length)
  // Pulled by hand, as the chunked reader does: a for-await would end the source's iterator on
  // a refusal, and the hub reads the rest of a refused body through it before it answers.
  const it = source[Symbol.asyncIterator]()
  let have = 0
  const filled: AsyncIterator<number> = {
    next: async () => {
      const r = await it.next()
      if (r.done === true) return { done: true, value: undefined }
      const c = r.value
      if (have + c.length > length) throw new TransportError('ERR_CAR_FORMAT', `CAR stream is longer than the ${length} bytes it declared`)
      out.set(c, have)
      have += c.length
      return { done: false, value: have }
    }
  }
  yield * readCarIn(out, length, filled, { maxBlockBytes: maxBlock, onRoots })
}

/**
 * The blocks of a CAR v1 stream of exactly `length` bytes that its reader puts into `out` itself
 * (a socket read in place: transport-raw.ts): `filled` yields how many bytes are there after
 * each read. Each block is checked against its CID (checkBlock) once its section is all there
 * and yielded as a view of `out`.
 */
export async function * readCarIn (out: Buffer, length: number, filled: AsyncIterator<number>, opts: Pick<CarReadOptions, 'maxBlockBytes' | 'onRoots'> = {}): AsyncGenerator<Block> {
  const maxBlock = opts.maxBlockBytes ?? MAX_BLOCK_BYTES
  let have = 0
  let pos = 0
  let header = true
  for (let r = await filled.next(); r.done !== true; r = await filled.next()) {
    have = r.value
    for (;;) {
      const v = varintIn(out, pos, have)
      if (v === null) break
      const [n, k] = v
      if (header) checkHeaderLength(n)
      else checkSectionLength(n, maxBlock)
      if (pos + k + n > length) throw new TransportError('ERR_CAR_FORMAT', 'CAR stream ends inside a section')
      if (pos + k + n > have) break
      const body = out.subarray(pos + k, pos + k + n)
      pos += k + n
      if (header) {
        header = false
        const roots = decodeHeader(body)
        opts.onRoots?.(roots)
      } else {
        yield sectionBlock(body, maxBlock)
      }
    }
  }
  if (have !== length) throw new TransportError('ERR_CAR_FORMAT', `CAR stream ends after ${have} of the ${length} bytes it declared`)
  if (header || pos !== have) throw new TransportError('ERR_CAR_FORMAT', 'CAR stream ends inside a section')
}

/** The CAR v1 header naming `roots` (may be empty: a batch of blocks has no root). */
export function carHeader (roots: CID[] = []): Buffer {
  const body = dagCbor.encode({ version: 1, roots })
  const out = Buffer.allocUnsafe(varint.encodingLength(body.length) + body.length)
  varint.encodeTo(body.length, out, 0)
  out.set(body, out.length - body.length)
  return out
}

/** What goes before a block's bytes in its section: varint(length) | CID bytes. */
export function sectionPrefix (cid: CID, blockLength: number): Buffer {
  const c = cid.bytes
  const len = c.length + blockLength
  const out = Buffer.allocUnsafe(varint.encodingLength(len) + c.length)
  varint.encodeTo(len, out, 0)
  out.set(c, out.length - c.length)
  return out
}

/** The bytes a section of a block of `blockLength` bytes takes in a CAR. */
export const sectionSize = (cid: CID, blockLength: number): number => varint.encodingLength(cid.bytes.length + blockLength) + cid.bytes.length + blockLength

/** The bytes a section of `b` takes in a CAR. */
export const sectionLength = (b: Block): number => sectionSize(b.cid, b.bytes.length)
