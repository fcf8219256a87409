// Reading sealed objects back: fetches a block or node from the store and opens it under its
// node's key, turning a failed read or a failed authentication into ERR_INTEGRITY with a log
// line; loads a directory's entries and a file's separate block map once, on first use.
import type { CID } from 'multiformats/cid'
import { open, AuthError, type SealPosition } from '../../crypto/index.js'
import { BLOCK_SIZE } from './format.js'
import { TreeError } from './errors.js'
import type { DirNode, FileNode } from './nodes.js'
import { loadEntries } from './dir-entries.js'
import { nodeFromEntry, decodeDirNode, decodeBlockMap, dirPosition, blockMapPosition } from './codec.js'
import type { BlockStore } from './ports.js'

export class Loader {
  /** Scratch buffers the sealed bytes land in; only the plaintext (what the cache keeps) is new. */
  private readonly readBuffers: Buffer[] = []

  constructor (private readonly store: Pick<BlockStore, 'get'>, private readonly log: (line: string) => void) {}

  /** The error (and log line) for a block that cannot be read or fails authentication. */
  integrityError (what: string, cid: CID, err: unknown, stage: 'read' | 'open'): TreeError {
    const mismatch = (err as { code?: string })?.code === 'ERR_CID_MISMATCH' // older or other sealed bytes
    const reason = mismatch
      ? 'does not match its CID'
      : stage === 'read'
        ? `cannot be read: ${(err as Error).message}`
        : err instanceof AuthError ? 'authentication failed' : (err as Error).message
    this.log(`integrity: ${what}: block ${cid.toString()}${stage === 'read' || mismatch ? ' ' : ': '}${reason}`)
    return new TreeError('ERR_INTEGRITY', `${what}: ${reason}`, { cause: err })
  }

  /** The plaintext of the sealed object `cid`, opened under `key` at `pos`. */
  async openSealed (key: Buffer, pos: SealPosition, cid: CID, what: string): Promise<Buffer> {
    const scratch = this.readBuffers.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE + 64)
    try {
      let sealed: Uint8Array
      try {
        sealed = await this.store.get(cid, scratch)
      } catch (err) {
        throw this.integrityError(what, cid, err, 'read')
      }
      try {
        return open(key, pos, sealed)
      } catch (err) {
        throw this.integrityError(what, cid, err, 'open')
      }
    } finally {
      if (this.readBuffers.length < 16) this.readBuffers.push(scratch)
    }
  }

  /** Loads a directory's entries from its node (once; concurrent callers share the load). */
  async loadDir (dir: DirNode): Promise<void> {
    await loadEntries(dir, async d => {
      const framed = await this.openSealed(d.key, dirPosition(d), d.cid!, `directory ${d.label()}`)
      return decodeDirNode(d, framed).map(nodeFromEntry)
    })
  }

  /** A file's blocks by index, loading its separate block map on first use. */
  async blocks (f: FileNode): Promise<Map<number, CID>> {
    if (f.blocks != null) return f.blocks
    f.loading ??= (async () => {
      const framed = await this.openSealed(f.key, blockMapPosition(f), f.blockMap!, `file ${f.label()} block map`)
      const pairs = decodeBlockMap(f, framed)
      if (f.blocks == null) f.blocks = new Map(pairs)
    })().finally(() => { f.loading = null })
    await f.loading
    return f.blocks!
  }
}
