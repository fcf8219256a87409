// The hub's blocks: one pack store (store/pack-store.ts, its public BlockStore API only) for
// every user's blocks, so content addressing dedups across users, plus the table of which user
// references which block: a user reads only blocks they uploaded themselves, so knowing a CID
// is never enough to read it (or to learn that someone else has it). Owns the durability
// point: blocks stored but not yet synced are held as pending references until a group commit
// (one store sync and one reference transaction for everything stored so far) makes them durable.
import { join } from 'node:path'
import type { DatabaseSync } from 'node:sqlite'
import { PackStore } from '../../store/pack-store.js'
import type { BlockStore } from '../../store/types.js'
import type { CID } from '../../store/cid.js'
import { DIRECT_RUN_BYTES, readRuns, type RunBlock } from '../../store/block-runs.js'
import { BufferPool } from '../../store/buffer-pool.js'
import { BlockRefs, type BlockRef } from './blocks-db.js'
import { trace } from '../../sync/trace.js'

export const BLOCKS_DIR = 'blocks'
/**
 * Pending references are made durable at the latest this long after they were stored, when no
 * entry asked for them first (an upload whose entry never came): bounds what they hold in memory.
 */
const PENDING_MAX_MS = 2000

/**
 * Runs read for fetch answers (4 ahead per answer), reused once the socket took them; page-aligned,
 * so runs of blocks the store appended with O_DIRECT are read that way too (no page-cache fill).
 */
const runPool = new BufferPool(DIRECT_RUN_BYTES, 32, true)

export interface StoredBatch { blocks: number, bytes: number, added: number }

const userKey = (userId: Uint8Array): string => Buffer.from(userId).toString('hex')
const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

export class HubBlocks {
  /** Stored, not yet durable: user -> CID -> reference. A group commit moves them to the table. */
  private pending = new Map<string, Map<string, { userId: Uint8Array, ref: BlockRef }>>()
  private waiters: Array<{ resolve: () => void, reject: (err: unknown) => void }> = []
  private committing = false
  private timer: NodeJS.Timeout | null = null
  /** The group commit under way: what it took, and when it is done. */
  private round: { taken: Map<string, Map<string, { userId: Uint8Array, ref: BlockRef }>>, done: Promise<void> } | null = null

  private constructor (private readonly store: BlockStore, private readonly refs: BlockRefs) {}

  /** Opens the store in `<dataDir>/blocks`, cut back to the watermark the database recorded. */
  static async open (dataDir: string, db: DatabaseSync, onDamage?: (line: string) => void): Promise<HubBlocks> {
    const refs = new BlockRefs(db)
    const store = await PackStore.open(join(dataDir, BLOCKS_DIR), refs.watermark(), {
      onDamage: d => onDamage?.(`hub: pack ${d.pack} damaged at ${d.offset} (${d.skipped} bytes skipped: ${d.reason})`)
    })
    return new HubBlocks(store, refs)
  }

  /** Whether `userId` holds block `cid` (stored: durable, or pending until the next group commit). */
  has (userId: Uint8Array, cid: CID): boolean {
    const key = userKey(userId)
    const c = cid.toString()
    // Pending, or taken by the commit under way (no longer pending, not yet in the table).
    return this.pending.get(key)?.has(c) === true || this.round?.taken.get(key)?.has(c) === true || this.refs.has(userId, cid.bytes)
  }

  /** The CIDs of `cids` that `userId` does not hold (a device uploads only those). */
  missing (userId: Uint8Array, cids: CID[]): CID[] {
    const key = userKey(userId)
    const pending = this.pending.get(key)
    const taken = this.round?.taken.get(key)
    const inMemory = (c: CID): boolean => pending?.has(c.toString()) === true || taken?.has(c.toString()) === true
    const rest = cids.filter(c => !inMemory(c))
    const held = this.refs.held(userId, rest.map(c => c.bytes))
    return rest.filter(c => !held.has(hexOf(c.bytes)))
  }

  /**
   * Whether every one of `cids` is durable here as `userId`'s: a group commit first when any of
   * them is only pending (what an entry's acceptance waits for).
   */
  async durable (userId: Uint8Array, cids: CID[]): Promise<boolean> {
    const isDurable = (): boolean => { const held = this.refs.held(userId, cids.map(c => c.bytes)); return cids.every(c => held.has(hexOf(c.bytes))) }
    if (isDurable()) return true
    const key = userKey(userId)
    const pending = this.pending.get(key)
    const taken = this.round?.taken.get(key)
    if (pending !== undefined && cids.some(c => pending.has(c.toString()))) await this.sync() // the next round covers them
    else if (taken !== undefined && cids.some(c => taken.has(c.toString()))) await this.round!.done.catch(() => {}) // the one under way does
    else return false // neither pending nor being committed: not here
    return isDurable()
  }

  /**
   * Stores blocks already checked against their CIDs as `userId`'s. `durable`: resolves once
   * they are durable and their references committed; otherwise once they are written to the
   * store (readable, counted as held), durable with the next group commit: the one an entry that
   * lists them runs, or one PENDING_MAX_MS later.
   */
  async commit (userId: Uint8Array, blocks: Array<{ cid: CID, bytes: Uint8Array, release?: () => void }>, durable = true): Promise<StoredBatch> {
    let bytes = 0
    let added = 0
    const key = userKey(userId)
    let mine = this.pending.get(key)
    if (mine === undefined) { mine = new Map(); this.pending.set(key, mine) }
    const taken: string[] = [] // pending references this call added (another batch may hold the rest)
    for (const b of blocks) {
      bytes += b.bytes.length
      if (!this.store.has(b.cid)) added++
      this.store.putWithCid(b.cid, b.bytes, b.release) // released once written (a pooled upload body)
      // Taken at the put: a group commit whose sync starts after this covers it.
      const k = b.cid.toString()
      if (!mine.has(k)) taken.push(k)
      mine.set(k, { userId, ref: { cid: b.cid.bytes, size: b.bytes.length } })
    }
    if (durable) await this.sync()
    else {
      try {
        await this.store.flush()
      } catch (err) {
        // Not written (a full disk): not held either, so the device's retry uploads it again.
        for (const k of taken) this.pending.get(key)?.delete(k)
        throw err
      }
      this.armTimer()
    }
    return { blocks: blocks.length, bytes, added }
  }

  /** A group commit PENDING_MAX_MS from now for references still pending (again if one fails). */
  private armTimer (): void {
    this.timer ??= setTimeout(() => {
      this.timer = null
      this.sync().catch(() => { if ([...this.pending.values()].some(m => m.size > 0)) this.armTimer() })
    }, PENDING_MAX_MS).unref()
  }

  /** Makes every block stored so far durable, with its references (a group commit). */
  private async sync (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject })
      if (!this.committing) void this.commitQueued()
    })
  }

  /**
   * Group commit: everyone waiting while a round runs joins the next one, which makes every
   * block stored before its start durable with one store sync and records their references in
   * one database transaction (one fsync of its own, which node:sqlite runs on the event loop:
   * per batch, it held up every other request).
   */
  private async commitQueued (): Promise<void> {
    this.committing = true
    try {
      while (this.waiters.length > 0) {
        // Taken before the sync starts: their puts all came before it, so it covers them.
        const round = this.waiters.splice(0)
        const taken = this.pending
        this.pending = new Map()
        if (this.timer != null) { clearTimeout(this.timer); this.timer = null }
        let finished!: () => void
        this.round = { taken, done: new Promise<void>(resolve => { finished = resolve }) }
        try {
          const t0 = Date.now()
          const w = await this.store.sync()
          const t1 = Date.now()
          const batches = [...taken.values()].map(m => {
            const refs = [...m.values()]
            return { userId: refs[0]?.userId ?? new Uint8Array(), refs: refs.map(r => r.ref) }
          }).filter(b => b.refs.length > 0)
          this.refs.commit(batches, w)
          trace(() => `hub commit: ${round.length} batches, ${batches.reduce((n, r) => n + r.refs.length, 0)} blocks, store sync ${t1 - t0} ms, refs ${Date.now() - t1} ms`)
          for (const r of round) r.resolve()
        } catch (err) {
          // Still not durable: pending again, for the next round to retry.
          for (const [k, m] of taken) {
            const now = this.pending.get(k)
            if (now === undefined) this.pending.set(k, m)
            else for (const [c, r] of m) if (!now.has(c)) now.set(c, r)
          }
          for (const r of round) r.reject(err)
        } finally {
          finished()
          this.round = null
        }
      }
    } finally {
      this.committing = false
    }
  }

  /** A block's bytes, checked against its CID by the store; undefined unless `userId` holds it. */
  async get (userId: Uint8Array, cid: CID): Promise<Uint8Array | undefined> {
    if (!this.has(userId, cid)) return undefined
    return await this.store.get(cid)
  }

  /**
   * For a batch whose every CID missing() said the user holds, for a device that checks each
   * block against its CID as it arrives (the fetch route's CAR; not hashed again here: the hub
   * checked them on the way in): each block's size (for the answer's length) and the blocks in
   * order, read in runs of neighbours (store/block-runs.ts: one read per run, views of it).
   */
  async heldRuns (cids: CID[]): Promise<{ sizes: number[], blocks: AsyncGenerator<RunBlock> }> {
    const sizes: number[] = []
    for (const c of cids) sizes.push(this.store.locate(c, true)?.length ?? (await this.store.get(c)).length)
    return { sizes, blocks: readRuns(this.store, cids, runPool) }
  }

  usage (userId: Uint8Array): { blocks: number, bytes: number } { return this.refs.usage(userId) }

  async close (): Promise<void> {
    if (this.timer != null) { clearTimeout(this.timer); this.timer = null }
    // What was stored is made durable before the store closes (a clean stop loses no upload).
    if (this.pending.size > 0) await this.sync().catch(() => {})
    await this.store.close()
  }
}
