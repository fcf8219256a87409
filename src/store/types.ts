// The block store's interfaces: what PackStore implements. Consumers declare the slice they need
// (the tree's BlockStore in src/fs/tree); this is the whole of it, for the composition root and
// for another store (in memory, or behind a persistent index) to implement.
import type { CID } from './cid.js'
import type { FileRange } from '../crypto/open-file.js'

/** Where the committed data ends: every byte before it is durable. */
export interface Watermark { pack: number, offset: number }

/**
 * A sync whose fdatasync may still be running: `durable` resolves once every byte before `wm` is
 * on disk. `check` (when the bytes since the previous sync are few and in `wm`'s pack): where
 * they start and their CRC-32, for a commit record that goes to the journal while the pack's
 * fdatasync runs (docs/format.md, "Recovery rules": an open verifies them). Without it the
 * caller must wait for `durable` before it records `wm`.
 */
export interface SyncStart { wm: Watermark, check: { from: number, crc: number } | null, durable: Promise<void> }

export interface BlockStore {
  has: (cid: CID) => boolean
  /** Stores sealed bytes; returns their CID. Idempotent. */
  put: (bytes: Uint8Array) => CID
  /** put() for bytes whose CID the caller computed; with `release` the bytes are not copied. */
  putWithCid: (cid: CID, bytes: Uint8Array, release?: () => void) => CID
  /** The sealed bytes of a block, checked against `cid` (ERR_CID_MISMATCH otherwise). */
  get: (cid: CID, scratch?: Buffer) => Promise<Uint8Array>
  /** Where a block's sealed bytes lie on disk, for a reader that checks them itself; `buffered`: through the page cache. */
  locate: (cid: CID, buffered?: boolean) => FileRange | null
  /**
   * Bytes [offset, offset + length) of a block's sealed bytes, NOT checked against its CID: for
   * a reader that verified the whole block before and opens these under what it verified
   * (a v2 object's nonce).
   */
  getRange: (cid: CID, offset: number, length: number) => Promise<Uint8Array>
  refuseDirectReads: () => void
  flush: () => Promise<void>
  sync: () => Promise<Watermark>
  syncStart: () => Promise<SyncStart>
  readonly backlog: number
  readonly writeError: Error | null
  readonly size: number
  close: () => Promise<void>
}
