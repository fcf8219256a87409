// Reads a run of sealed objects lying back to back in a file and opens each into caller memory,
// in one job on the libuv pool (native/src/space_block.c, on Node's own OpenSSL). This is the
// streaming read path: one pool job per FUSE read request and no copy besides the disk's (the
// seal worker it replaced took, per block, a pool hop for the read, a hop to the worker and
// back, an allocation and two copies). The caller owns the fd; the only I/O in the crypto layer
// is this pread. Null where the addon is not built.
import { getSystemErrorName } from 'node:util'
import { associatedData, type SealPosition } from './aead.js'
import { AuthError, CryptoError, FormatError } from './errors.js'
import { loadAddon } from './addon.js'

type Native = (fd: number, position: number, length: number, direct: boolean, key: Uint8Array, type: number, ads: Uint8Array, blocks: Float64Array, dst: Uint8Array) => Promise<number[]>

const native = loadAddon<Native>('space_block', 'openRun')

/**
 * Where sealed bytes lie: `length` bytes at `position` of the open file `fd`; `direct`: fd was
 * opened with O_DIRECT (the read then covers whole pages, into page-aligned memory).
 */
export interface FileRange { fd: number, position: number, length: number, direct?: boolean }

/** One object of a run: at `offset` into the run, opened into dst[at, at + room). */
export interface RunBlock { offset: number, length: number, pos: SealPosition, at: number, room: number }

const BLOCK_ERRORS: Record<number, () => Error> = {
  [-3]: () => new AuthError(),
  [-4]: () => new FormatError('unknown seal version'),
  [-5]: () => new CryptoError('ERR_RANGE', 'plaintext larger than its destination'),
  [-6]: () => new CryptoError('ERR_NO_MEMORY', 'out of memory')
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
 * plaintext length, or the error that block failed with (AuthError unless key, position and every
 * byte match; its room in `dst` is then zeroed). A failed read rejects. `dst` must not be used by
 * anyone else until this settles.
 */
export const openRun: ((at: FileRange, key: Uint8Array, blocks: RunBlock[], dst: Uint8Array) => Promise<Array<number | Error>>) | null =
  native == null
    ? null
    : async (at, key, blocks, dst) => {
      const ads = Buffer.concat(blocks.map(b => associatedData(b.pos.type, b.pos.objectId, b.pos.index)))
      const table = new Float64Array(blocks.length * 4)
      blocks.forEach((b, i) => table.set([b.offset, b.length, b.at, b.room], i * 4))
      let results: number[]
      try {
        results = await native(at.fd, at.position, at.length, at.direct === true, key, blocks[0].pos.type, ads, table, dst)
      } catch (err) {
        throw readError(err)
      }
      return results.map(r => r >= 0 ? r : (BLOCK_ERRORS[r] ?? (() => new CryptoError('ERR_UNKNOWN', `block failed (${r})`)))())
    }
