// Reads a run of sealed objects lying back to back in a file, checks each against the multihash
// it is fetched by and opens it into caller memory, in one job on the libuv pool
// (native/src/space_block.c: Node's own OpenSSL, and BLAKE3's C implementation). This is the
// streaming read path: one pool job per FUSE read request and no copy besides the disk's (the
// seal worker it replaced took, per block, a pool hop for the read, a hop to the worker and
// back, an allocation and two copies). The caller owns the fd; the only I/O in the crypto layer
// is this pread. Null where the addon is not built.
import { getSystemErrorName } from 'node:util'
import { positionData, type SealPosition } from './aead.js'
import { AuthError, CryptoError, FormatError } from './errors.js'
import { loadAddon } from './addon.js'

type Native = (fd: number, position: number, length: number, direct: boolean, key: Uint8Array, type: number, ads: Uint8Array, blocks: Float64Array, hashes: Uint8Array, dst: Uint8Array, nonces?: Uint8Array) => Promise<number[]>
type NativePart = (fd: number, position: number, length: number, direct: boolean, key: Uint8Array, type: number, ad: Uint8Array, hash: Uint8Array, nonce: Uint8Array | null, first: number, from: number, to: number, dst: Uint8Array) => Promise<{ n: number, nonce: Buffer }>

const native = loadAddon<Native>('space_block', 'openRun')
const nativePart = loadAddon<NativePart>('space_block', 'readPart')

/** Multihash codes the reader checks: BLAKE3-256 and (stores before 0.2) sha2-256. */
const BLAKE3 = 0x1e
const SHA2_256 = 0x12
const DIGEST_LEN = 32

/**
 * Where sealed bytes lie: `length` bytes at `position` of the open file `fd`; `direct`: fd was
 * opened with O_DIRECT (the read then covers whole pages, into page-aligned memory).
 */
export interface FileRange { fd: number, position: number, length: number, direct?: boolean }

/** A multihash (a CID's `multihash`): the hash function's code and the digest the bytes must have. */
export interface Multihash { code: number, digest: Uint8Array }

/**
 * One object of a run: at `offset` into the run, opened into dst[at, at + room) once its sealed
 * bytes hash to `hash` (the CID it is fetched by: authentication alone would take an older
 * version of the same block).
 */
export interface RunBlock { offset: number, length: number, pos: SealPosition, at: number, room: number, hash: Multihash }

/** A block whose sealed bytes do not hash to the CID it was fetched by. */
export class MismatchError extends CryptoError {
  constructor () { super('ERR_CID_MISMATCH', 'does not match its CID') }
}

const BLOCK_ERRORS: Record<number, () => Error> = {
  [-3]: () => new AuthError(),
  [-4]: () => new FormatError('unknown seal version'),
  [-5]: () => new CryptoError('ERR_RANGE', 'plaintext larger than its destination'),
  [-6]: () => new CryptoError('ERR_NO_MEMORY', 'out of memory'),
  [-7]: () => new MismatchError(),
  [-8]: () => new CryptoError('ERR_CID_UNSUPPORTED', 'names a hash function other than BLAKE3 and sha2-256')
}

/** A failed read, as node's fs throws it. */
function readError (err: unknown): Error {
  const e = err as Error & { code?: string, errno?: number }
  if (e.code === 'ERR_ERRNO' && e.errno != null && e.errno > 0) {
    const code = getSystemErrorName(-e.errno)
    return Object.assign(new Error(`${code}: ${e.message}, pread`), { code, errno: -e.errno, syscall: 'pread' })
  }
  return e
}

/**
 * Opens every block of the run `at` (all under `key`, of one type) into `dst`. Per block: its
 * plaintext length, or the error that block failed with (MismatchError unless its bytes hash to
 * its `hash`, AuthError unless key, position and every byte match; its room in `dst` is then
 * zeroed). A failed read rejects. `dst` must not be used by anyone else until this settles.
 */
export const openRun: ((at: FileRange, key: Uint8Array, blocks: RunBlock[], dst: Uint8Array, nonces?: Uint8Array) => Promise<Array<number | Error>>) | null =
  native == null
    ? null
    : async (at, key, blocks, dst, nonces) => {
      const ads = Buffer.concat(blocks.map(b => positionData(b.pos)))
      const table = new Float64Array(blocks.length * 4)
      blocks.forEach((b, i) => table.set([b.offset, b.length, b.at, b.room], i * 4))
      // Per block: the multihash code (0, refused there, for anything but the two known ones
      // with 32-byte digests) and the digest.
      const hashes = new Uint8Array(blocks.length * HASH_ENTRY)
      blocks.forEach((b, i) => hashEntry(b.hash, hashes, i * HASH_ENTRY))
      let results: number[]
      try {
        results = await native(at.fd, at.position, at.length, at.direct === true, key, blocks[0].pos.type, ads, table, hashes, dst, nonces)
      } catch (err) {
        throw readError(err)
      }
      return results.map(blockResult)
    }

const HASH_ENTRY = 1 + DIGEST_LEN

/** A multihash as the addon takes it: its code (0, refused there, for anything but the two known ones with 32-byte digests) and digest. */
function hashEntry (hash: Multihash, into: Uint8Array, at: number): void {
  const known = (hash.code === BLAKE3 || hash.code === SHA2_256) && hash.digest.length === DIGEST_LEN
  into[at] = known ? hash.code : 0
  if (known) into.set(hash.digest, at + 1)
}

const blockResult = (r: number): number | Error => r >= 0 ? r : (BLOCK_ERRORS[r] ?? (() => new CryptoError('ERR_UNKNOWN', `block failed (${r})`)))()

/**
 * Part of one sealed object: bytes [from, to) of its block (an object whose segments start at
 * `first`: a patch; 0 for a whole block), `at` being the whole record.
 */
export interface PartRead { pos: SealPosition, hash: Multihash, first: number, from: number, to: number }

/**
 * Reads bytes [from, to) of one block's object into dst[0, to - from). Without `nonce` (the
 * first read of this object in the process) the whole record is read and checked against its
 * CID, only the segments asked for are opened, and the object's nonce comes back (null for a v1
 * object): the caller remembers it by CID. With the remembered nonce only those segments are
 * read (4112 bytes each) and opened under it. Returns the bytes placed (the object may end
 * before `to`) or the block's error (dst zeroed); a failed read rejects.
 */
export const readPart: ((at: FileRange, key: Uint8Array, part: PartRead, nonce: Uint8Array | null, dst: Uint8Array) => Promise<{ n: number | Error, nonce: Buffer | null }>) | null =
  nativePart == null
    ? null
    : async (at, key, part, nonce, dst) => {
      const hash = new Uint8Array(HASH_ENTRY)
      hashEntry(part.hash, hash, 0)
      let r: { n: number, nonce: Buffer }
      try {
        r = await nativePart(at.fd, at.position, at.length, at.direct === true, key, part.pos.type, positionData(part.pos), hash, nonce, part.first, part.from, part.to, dst)
      } catch (err) {
        throw readError(err)
      }
      const v2 = r.nonce.some(b => b !== 0)
      return { n: blockResult(r.n), nonce: r.n >= 0 && v2 ? r.nonce : null }
    }

/** The addon's digest (the one openRun checks with), for tests and measurements; null where not built. */
export const nativeDigest = loadAddon<(code: number, bytes: Uint8Array) => Uint8Array>('space_block', 'digest')
