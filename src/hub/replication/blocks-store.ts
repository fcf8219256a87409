// The hub's blocks: one pack store (store/pack-store.ts, its public BlockStore API only) for
// every user's blocks, so content addressing dedups across users, plus the table of which user
// references which block: a user reads only blocks they uploaded themselves, so knowing a CID
// is never enough to read it (or to learn that someone else has it).
import { join } from 'node:path'
import type { DatabaseSync } from 'node:sqlite'
import { PackStore } from '../../store/pack-store.js'
import type { BlockStore } from '../../store/types.js'
import type { CID } from '../../store/cid.js'
import { BlockRefs, type BlockRef } from './blocks-db.js'
import { trace } from '../../sync/trace.js'

export const BLOCKS_DIR = 'blocks'

export interface StoredBatch { blocks: number, bytes: number, added: number }

export class HubBlocks {
  private readonly queue: Array<{ userId: Uint8Array, refs: BlockRef[], resolve: () => void, reject: (err: unknown) => void }> = []
  private committing = false

  private constructor (private readonly store: BlockStore, private readonly refs: BlockRefs) {}

  /** Opens the store in `<dataDir>/blocks`, cut back to the watermark the database recorded. */
  static async open (dataDir: string, db: DatabaseSync, onDamage?: (line: string) => void): Promise<HubBlocks> {
    const refs = new BlockRefs(db)
    const store = await PackStore.open(join(dataDir, BLOCKS_DIR), refs.watermark(), {
      onDamage: d => onDamage?.(`hub: pack ${d.pack} damaged at ${d.offset} (${d.skipped} bytes skipped: ${d.reason})`)
    })
    return new HubBlocks(store, refs)
  }

  /** Whether `userId` holds block `cid`. */
  has (userId: Uint8Array, cid: CID): boolean { return this.refs.has(userId, cid.bytes) }

  /** The CIDs of `cids` that `userId` does not hold (a device uploads only those). */
  missing (userId: Uint8Array, cids: CID[]): CID[] { return cids.filter(c => !this.refs.has(userId, c.bytes)) }

  /**
   * Stores blocks already checked against their CIDs and records them as `userId`'s; resolves
   * only once they are durable and the reference and watermark are committed.
   */
  async commit (userId: Uint8Array, blocks: Array<{ cid: CID, bytes: Uint8Array }>): Promise<StoredBatch> {
    let bytes = 0
    let added = 0
    for (const b of blocks) {
      bytes += b.bytes.length
      if (!this.store.has(b.cid)) added++
      this.store.putWithCid(b.cid, b.bytes)
    }
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ userId, refs: blocks.map(b => ({ cid: b.cid.bytes, size: b.bytes.length })), resolve, reject })
      if (!this.committing) void this.commitQueued()
    })
    return { blocks: blocks.length, bytes, added }
  }

  /**
   * Group commit: every batch queued while a round runs joins the next one, which makes all of
   * them durable with one store sync and records them in one database transaction (one fsync of
   * its own, which node:sqlite runs on the event loop: per batch, it held up every other request).
   */
  private async commitQueued (): Promise<void> {
    this.committing = true
    try {
      while (this.queue.length > 0) {
        // Taken before the sync starts: their puts all came before it, so it covers them.
        const round = this.queue.splice(0)
        try {
          const t0 = Date.now()
          const w = await this.store.sync()
          const t1 = Date.now()
          this.refs.commit(round, w)
          trace(() => `hub commit: ${round.length} batches, ${round.reduce((n, r) => n + r.refs.length, 0)} blocks, store sync ${t1 - t0} ms, refs ${Date.now() - t1} ms`)
          for (const r of round) r.resolve()
        } catch (err) {
          for (const r of round) r.reject(err)
        }
      }
    } finally {
      this.committing = false
    }
  }

  /** A block's bytes, checked against its CID by the store; undefined unless `userId` holds it. */
  async get (userId: Uint8Array, cid: CID): Promise<Uint8Array | undefined> {
    if (!this.refs.has(userId, cid.bytes)) return undefined
    return await this.store.get(cid)
  }

  /** get() for a batch whose every CID missing() already said `userId` holds. */
  async getHeld (cid: CID): Promise<Uint8Array> { return await this.store.get(cid) }

  usage (userId: Uint8Array): { blocks: number, bytes: number } { return this.refs.usage(userId) }

  async close (): Promise<void> { await this.store.close() }
}
