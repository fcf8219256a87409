// Early upload: the blocks this device's store appends go to the hub as they are appended, before
// the commit that will name them is published, so the push of an entry finds them there and
// sends only what is left. The hub stores them (content-addressed, checked against their CIDs)
// and makes them durable with the first entry that lists them (`durable: 'with-entry'`): the rule
// "an entry reaches the hub only after every block it lists is durable there" is the hub's, and
// holds whatever was sent early. Nothing here is needed for correctness: a failed or lost early
// upload (hub away, hub restarted before its group commit) is found by the pusher's missing-list
// or by the hub's refusal of the entry, and the pusher sends those blocks itself.
import type { CID } from 'multiformats/cid'
import type { BlockTransport, Block } from './transport.js'
import { inOrder } from '../store/block-runs.js'
import { trace } from './trace.js'
import { readPooled, type LocalBlocks } from './pusher.js'

/** What the uplink needs of the local store: the pusher's (blocks read into its pooled buffers). */
export type UplinkBlocks = LocalBlocks

/** An appended block: its CID and stored length. */
export interface Appended { cid: CID, length: number }

export interface UplinkOptions {
  /** Bytes per upload request (~the transport's batch). */
  batchBytes?: number
  /** Upload requests of the uplink in flight at once. */
  inFlight?: number
  /** How long a part-filled batch waits for more blocks before it goes anyway. */
  lingerMs?: number
}

export class Uplink {
  /** Appended, not yet taken into a batch, in append order. */
  private queue: Appended[] = []
  private queuedBytes = 0
  /** Acknowledged stored by the hub, not yet listed by an appended entry. */
  private readonly sent = new Set<string>()
  /** CID -> the batch carrying it (true once the hub acknowledged it). */
  private readonly flying = new Map<string, Promise<boolean>>()
  private batches = 0
  private timer: NodeJS.Timeout | null = null
  /** After a failed batch: no early uploads until a push round succeeds (resume()). */
  private off = false
  private stopped = false
  private readonly batchBytes: number
  private readonly inFlight: number
  private readonly lingerMs: number
  /** Blocks and bytes acknowledged so far (trace, tests). */
  readonly totals = { blocks: 0, bytes: 0, batches: 0 }

  constructor (private readonly transport: BlockTransport, private readonly store: UplinkBlocks, opts: UplinkOptions = {}) {
    this.batchBytes = opts.batchBytes ?? 8 * 1024 * 1024
    this.inFlight = opts.inFlight ?? 3
    this.lingerMs = opts.lingerMs ?? 50
  }

  /** A block the store appended (not one fetched from the hub): goes up soon. */
  add (b: Appended): void {
    if (this.off || this.stopped) return
    this.queue.push(b)
    this.queuedBytes += b.length
    this.pump(false)
  }

  /**
   * For the pusher, before it asks the hub what a group lacks: the blocks of `cids` still queued
   * here are left to it (taken out of the queue), those in flight are waited for; resolves to
   * the CIDs not acknowledged here, which the pusher must look up and send.
   */
  async settle (cids: CID[]): Promise<CID[]> {
    const want = new Set(cids.map(c => c.toString()))
    if (this.queue.some(b => want.has(b.cid.toString()))) {
      this.queue = this.queue.filter(b => !want.has(b.cid.toString()))
      this.queuedBytes = this.queue.reduce((n, b) => n + b.length, 0)
    }
    const waits: Array<Promise<boolean>> = []
    for (const k of want) { const p = this.flying.get(k); if (p != null) waits.push(p) }
    await Promise.all(waits)
    return cids.filter(c => !this.sent.has(c.toString()))
  }

  /** The entries listing `cids` are on the hub: nothing to remember of them. */
  forget (cids: CID[]): void { for (const c of cids) this.sent.delete(c.toString()) }

  /**
   * A push round failed: what was acknowledged may be gone (a hub restarted before its group
   * commit), so the next round looks everything up again; and early uploads wait for a round
   * that succeeds.
   */
  reset (): void { this.sent.clear() }

  /** A push round succeeded: the hub answers again; early uploads resume with the next append. */
  resume (): void { this.off = false }

  stop (): void {
    this.stopped = true
    if (this.timer != null) { clearTimeout(this.timer); this.timer = null }
    this.queue = []
    this.queuedBytes = 0
  }

  /** Starts batches while there is room: full ones at once, a part-filled one after lingerMs. */
  private pump (linger: boolean): void {
    while (this.batches < this.inFlight && this.queue.length > 0 && (linger || this.queuedBytes >= this.batchBytes)) {
      this.send()
      linger = false
    }
    if (this.queue.length > 0 && this.timer == null && this.batches < this.inFlight) {
      this.timer = setTimeout(() => { this.timer = null; this.pump(true) }, this.lingerMs)
      this.timer.unref()
    }
  }

  private send (): void {
    const batch: Appended[] = []
    let bytes = 0
    while (this.queue.length > 0 && (batch.length === 0 || bytes + this.queue[0].length <= this.batchBytes)) {
      const b = this.queue.shift()!
      batch.push(b)
      bytes += b.length
    }
    this.queuedBytes -= bytes
    this.batches++
    const blocks = inOrder(batch.map(b => b.cid), 4, async (cid): Promise<Block> => await readPooled(this.store, cid))
    const p = this.transport.put(blocks, { durable: 'with-entry' }).then(sent => {
      for (const b of batch) this.sent.add(b.cid.toString())
      this.totals.blocks += sent.blocks
      this.totals.bytes += sent.bytes
      this.totals.batches++
      return true
    }, err => {
      // Not acknowledged: the pusher sends them. Early uploads stop until a push round succeeds
      // (a hub away would otherwise be asked once per batch while offline).
      if (!this.off) trace(() => `uplink: ${(err as Error).message}; early uploads wait for the next push`)
      this.off = true
      this.queue = []
      this.queuedBytes = 0
      return false
    }).finally(() => {
      this.batches--
      for (const b of batch) if (this.flying.get(b.cid.toString()) === p) this.flying.delete(b.cid.toString())
      if (!this.stopped) this.pump(false)
    })
    for (const b of batch) this.flying.set(b.cid.toString(), p)
  }
}
