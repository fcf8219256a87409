// The interfaces the tree needs from the rest of the drive (it declares them; the pack store, the
// decrypted-block cache, the seal pool and the commit journal implement them) and the shapes it
// hands back (Stat, CommitInfo). Nothing here has behaviour.
import type { CID } from 'multiformats/cid'
import type { FileRange, SealPosition, SealedSlot } from '../../crypto/index.js'
import type { CommitRecord } from './format.js'

/** What the tree needs of a block store. */
export interface BlockStore {
  put: (bytes: Uint8Array) => CID
  putWithCid: (cid: CID, bytes: Uint8Array, release?: () => void) => CID
  /** putWithCid() of bytes sealed just now under a fresh nonce: stored without a dedupe probe (optional). */
  putFresh?: (cid: CID, bytes: Uint8Array, release?: () => void) => CID
  get: (cid: CID, scratch?: Buffer) => Promise<Uint8Array>
  /**
   * Where a block's sealed bytes lie on disk (null: only in memory, or not a file store);
   * `buffered`: through the page cache (small reads of part of a record).
   */
  locate?: (cid: CID, buffered?: boolean) => FileRange | null
  /** Bytes [offset, offset + length) of a block's sealed bytes, unchecked (the caller opens them under a nonce it verified). */
  getRange?: (cid: CID, offset: number, length: number) => Promise<Uint8Array>
  /** From now on locate() names buffered descriptors only (O_DIRECT reads were refused). */
  refuseDirectReads?: () => void
  sync: () => Promise<{ pack: number, offset: number }>
  /**
   * sync() in two steps (src/store/types.ts SyncStart): the watermark and a check of the bytes
   * since the last sync once they are written, `durable` once they are on disk. Optional: a
   * store without it is synced with sync().
   */
  syncStart?: () => Promise<{ wm: { pack: number, offset: number }, check: { from: number, crc: number } | null, durable: Promise<void> }>
  flush: () => Promise<void>
  readonly backlog: number
  /** Set while appends fail (a full disk); writes are refused with it. */
  readonly writeError: Error | null
}

/** What the tree needs of the decrypted-block cache. */
export interface BlockCache {
  get: (key: string) => Buffer | undefined
  set: (key: string, value: Buffer) => void
}

/** Seals full blocks off the event loop (SealPool). */
export interface BlockSealer {
  seal: (key: Uint8Array, pos: SealPosition, plain: Uint8Array) => Promise<SealedSlot>
}

/** Where commits go: the journal's append, sealed by the caller's commit key. */
export interface CommitSink {
  append: (record: CommitRecord) => Promise<void>
}

export interface Stat {
  ino: number
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev: number
  size: number
  blocks: number
  blksize: number
  atime: number
  mtime: number
  ctime: number
}

/** A commit: its number, root CID and time; `record`, the record appended (absent for the head of a tree that committed nothing yet). */
export interface CommitInfo { seq: number, root: CID | null, time: number, record?: CommitRecord }

/** The clock and the default owner of new nodes, shared by the parts of the tree. */
export interface TreeClock { now: () => number }
export interface Owner { uid: number, gid: number }
