// Reads a run of sealed objects lying back to back in a file, checks each against the multihash
// it is fetched by and opens it into caller memory, in one job on the libuv pool
// (native/src/space_block.c: Node's own OpenSSL, and BLAKE3's C implementation). This is the
// streaming read path: one pool job per FUSE read request and no copy besides the disk's (the
// seal worker it replaced took, per block, a pool hop for the read, a hop to the worker and
// back, an allocation and two copies). The caller owns the fd; the only I/O in the crypto layer
// is this pread. Null where the addon is not built.
import { getSystemErrorName } from 'node:util'
import { associatedData, type SealPosition } from './aead.js'
import { AuthError, CryptoError, FormatError } from './errors.js'
import { loadAddon } from './addon.js'

type Native = (fd: number, position: number, length: number, direct: boolean, key: Uint8Array, type: number, ads: Uint8Array, blocks: Float64Array, hashes: Uint8Array, dst: Uint8Array) => Promise<number[]>

const native = loadAddon<Native>('space_block', 'openRun')

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
export const openRun: ((at: FileRange, key: Uint8Array, blocks: RunBlock[], dst: Uint8Array) => Promise<Array<number | Error>>) | null =
  native == null
    ? null
    : async (at, key, blocks, dst) => {
      const ads = Buffer.concat(blocks.map(b => associatedData(b.pos.type, b.pos.objectId, b.pos.index)))
      const table = new Float64Array(blocks.length * 4)
      blocks.forEach((b, i) => table.set([b.offset, b.length, b.at, b.room], i * 4))
      // Per block: the multihash code (0, refused there, for anything but the two known ones
      // with 32-byte digests) and the digest.
      const hashes = new Uint8Array(blocks.length * (1 + DIGEST_LEN))
      blocks.forEach((b, i) => {
        const known = (b.hash.code === BLAKE3 || b.hash.code === SHA2_256) && b.hash.digest.length === DIGEST_LEN
        hashes[i * (1 + DIGEST_LEN)] = known ? b.hash.code : 0
        if (known) hashes.set(b.hash.digest, i * (1 + DIGEST_LEN) + 1)
      })
      let results: number[]
      try {
        results = await native(at.fd, at.position, at.length, at.direct === true, key, blocks[0].pos.type, ads, table, hashes, dst)
      } catch (err) {
        throw readError(err)
      }
      return results.map(r => r >= 0 ? r : (BLOCK_ERRORS[r] ?? (() => new CryptoError('ERR_UNKNOWN', `block failed (${r})`)))())
    }

/** The addon's digest (the one openRun checks with), for tests and measurements; null where not built. */
export const nativeDigest = loadAddon<(code: number, bytes: Uint8Array) => Uint8Array>('space_block', 'digest')
