// Sends this device's queued entries to the hub, oldest first: for each, the blocks the hub lacks
// (the entry's block list says which it added; the hub answers which it is missing), then the
// entry itself, which the hub accepts only once every listed block is durable there. A failure
// stops the round and is retried with backoff; what was acknowledged is never sent again.
import type { CID } from 'multiformats/cid'
import { decodeBlockListBlock } from './entry.js'
import type { BlockTransport, Block } from './transport.js'
import type { LocalLog } from './local-log.js'

/** What the pusher needs of the hub's entry API. */
export interface EntrySink { append: (entry: Uint8Array) => Promise<void> }
/** What the pusher needs of the local store. */
export interface LocalBlocks { get: (cid: CID) => Promise<Uint8Array> }

export interface PushProgress { entries: number, blocks: number, bytes: number, pendingEntries: number }

export interface PusherDeps {
  log: LocalLog
  transport: BlockTransport
  entries: EntrySink
  store: LocalBlocks
  onProgress?: (p: PushProgress) => void
  /** After each acknowledged batch of an entry's blocks. */
  onUpload?: (u: NonNullable<Pusher['current']>) => void
  logLine?: (line: string) => void
}

export class Pusher {
  private running: Promise<void> | null = null
  private again = false
  lastError: Error | null = null
  lastSuccess = 0
  totals = { entries: 0, blocks: 0, bytes: 0 }
  /** The upload of the entry being pushed: blocks and bytes acknowledged of the blocks it sends. */
  current: { seq: number, blocks: number, bytes: number, totalBlocks: number } | null = null

  constructor (private readonly deps: PusherDeps) {}

  /** Starts a round (or asks the running one to go on): returns when the queue is empty or a round failed. */
  async kick (): Promise<void> {
    if (this.running != null) { this.again = true; return await this.running }
    this.running = (async () => {
      try {
        do { this.again = false; await this.round() } while (this.again)
        this.lastError = null
      } catch (err) {
        // Said once per cause, not once per retry: offline hours must not fill the log.
        if (this.lastError?.message !== (err as Error).message) this.deps.logLine?.(`sync: push failed: ${(err as Error).message}`)
        this.lastError = err as Error
        throw err
      } finally {
        this.running = null
      }
    })()
    return await this.running
  }

  private async round (): Promise<void> {
    const { log, transport, entries, store } = this.deps
    for (const seq of log.pending()) {
      const { bytes, list } = await log.entry(seq)
      const listed = new Map<string, Block>(list.map(b => [b.cid.toString(), b]))
      const cids: CID[] = []
      for (const b of list) cids.push(b.cid, ...decodeBlockListBlock(b.cid, b.bytes).cids)
      const missing = cids.length === 0 ? [] : await transport.missing(cids)
      async function * blocks (): AsyncGenerator<Block> {
        for (const cid of missing) yield listed.get(cid.toString()) ?? { cid, bytes: await store.get(cid) }
      }
      this.current = { seq, blocks: 0, bytes: 0, totalBlocks: missing.length }
      const sent = missing.length === 0 ? { blocks: 0, bytes: 0 } : await transport.put(blocks(), { onProgress: p => { this.current = { seq, ...p, totalBlocks: missing.length }; this.deps.onUpload?.(this.current) } }).finally(() => { this.current = null })
      await entries.append(bytes)
      await log.pushed(seq)
      this.totals.entries++
      this.totals.blocks += sent.blocks
      this.totals.bytes += sent.bytes
      this.lastSuccess = Date.now()
      this.deps.onProgress?.({ ...this.totals, pendingEntries: log.pending().length })
    }
  }
}
