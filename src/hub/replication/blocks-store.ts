// The hub's blocks: one pack store (store/pack-store.ts, its public BlockStore API only) for
// every user's blocks, so content addressing dedups across users, plus the table of which user
// references which block: a user reads only blocks they uploaded themselves, so knowing a CID
// is never enough to read it (or to learn that someone else has it).
import { join } from 'node:path'
import type { DatabaseSync } from 'node:sqlite'
import { PackStore } from '../../store/pack-store.js'
import type { BlockStore, Watermark } from '../../store/types.js'
import type { CID } from '../../store/cid.js'
import { BlockRefs } from './blocks-db.js'

export const BLOCKS_DIR = 'blocks'

export interface StoredBatch { blocks: number, bytes: number, added: number }

export class HubBlocks {
  private syncing: Promise<Watermark> | null = null
  private nextSync: Promise<Watermark> | null = null

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
    const w = await this.durable()
    this.refs.commit(userId, blocks.map(b => ({ cid: b.cid.bytes, size: b.bytes.length })), w)
    return { blocks: blocks.length, bytes, added }
  }

  /**
   * Group commit: batches arriving while a sync runs share the one after it (that sync may have
   * started before their puts), so four PUTs in flight cost about two fdatasyncs, not four.
   */
  private async durable (): Promise<Watermark> {
    if (this.syncing === null) {
      this.syncing = this.store.sync().finally(() => { this.syncing = null })
      return await this.syncing
    }
    this.nextSync ??= this.syncing.catch(() => {}).then(async () => { this.nextSync = null; return await this.durable() })
    return await this.nextSync
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
