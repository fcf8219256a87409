// Sends this device's queued entries to the hub, oldest first, several at a time: the blocks the
// hub lacks (the entries' block lists say which they added; the hub answers which it is missing)
// as one upload, then the entries themselves, in order, which the hub accepts only once every
// listed block is durable there. A failure stops the round and is retried with backoff; what
// was acknowledged is never sent again.
import type { CID } from 'multiformats/cid'
import { decodeBlockListBlock } from './entry.js'
import type { BlockTransport, Block } from './transport.js'
import type { LocalLog } from './local-log.js'
import { trace } from './trace.js'
import { inOrder } from '../store/block-runs.js'
import { BufferPool, type Lease } from '../store/buffer-pool.js'
import { sealedLength } from '../crypto/aead.js'
import { BLOCK_SIZE } from '../fs/tree/format.js'
import type { Uplink } from './uplink.js'

/** What the pusher needs of the hub's entry API. */
export interface EntrySink {
  append: (entry: Uint8Array) => Promise<void>
  /** One log's next entries, accepted as a whole or refused as a whole (one request, one hub transaction). */
  appendGroup?: (entries: Uint8Array[]) => Promise<void>
}
/**
 * What the pusher needs of the local store: a block's bytes, checked against its CID, read into
 * `scratch` (a view of it returned) when it fits.
 */
export interface LocalBlocks { get: (cid: CID, scratch?: Buffer) => Promise<Uint8Array> }

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
  /** The early upload of appended blocks (uplink.ts): a group's blocks it sent are not looked up or sent again. */
  uplink?: Uplink
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
        this.deps.uplink?.resume()
      } catch (err) {
        // What the uplink had sent may be gone with a hub that restarted: looked up again next round.
        this.deps.uplink?.reset()
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

  /**
   * One round: the pending entries, oldest first, in groups of up to MAX_GROUP_CIDS listed
   * blocks. A group's missing blocks go up as one stream (the transport keeps its batches in
   * flight from the first entry's blocks to the last's, with no pause between entries); once
   * the hub has acknowledged all of them, the group's entries are appended in order, while the
   * next group's blocks go up (its entries wait for the previous group's). A failed upload
   * appends none of its entries; what was acknowledged is not sent again (missing() says so).
   */
  private async round (): Promise<void> {
    const { log } = this.deps
    let uploaded = 0 // the last entry whose group's blocks are all on the hub
    let appending: Promise<void> | null = null
    try {
      for (let pending = log.pending(); pending.length > 0; pending = log.pending().filter(s => s > uploaded)) {
        const group: Group = []
        let listed = 0
        for (const seq of pending) {
          const { bytes, list } = await log.entry(seq)
          const cids: CID[] = []
          for (const b of list) cids.push(b.cid, ...decodeBlockListBlock(b.cid, b.bytes).cids)
          if (group.length > 0 && listed + cids.length > MAX_GROUP_CIDS) break
          group.push({ seq, bytes, list, cids })
          listed += cids.length
        }
        const up = await this.upload(group)
        uploaded = group[group.length - 1].seq
        // In order: the previous group's entries are in before this group's go.
        if (appending != null) await appending
        appending = this.append(group, up)
        appending.catch(() => {}) // awaited before the next group's append or at the end
      }
    } finally {
      // An upload that failed still lets the entries before it in; the first failure is thrown.
      if (appending != null) await appending.catch(() => {})
    }
    if (appending != null) await appending
  }

  /** A group's blocks the hub lacks, uploaded (stored there; durable before its entries are accepted). */
  private async upload (group: Group): Promise<Uploaded> {
    const { transport, store } = this.deps
    const listed = new Map<string, Block>()
    const cids: CID[] = []
    for (const e of group) {
      for (const b of e.list) listed.set(b.cid.toString(), b)
      for (const c of e.cids) cids.push(c)
    }
    const t0 = Date.now()
    const all = uniq(cids)
    // Blocks the uplink has sent are stored on the hub (durable with these entries): not asked about.
    const ask = this.deps.uplink == null ? all : await this.deps.uplink.settle(all)
    const tEarly = Date.now()
    const missing = ask.length === 0 ? [] : await transport.missing(ask)
    const t1 = Date.now()
    const seq = group[group.length - 1].seq
    this.current = { seq, blocks: 0, bytes: 0, totalBlocks: missing.length }
    const sent = missing.length === 0
      ? { blocks: 0, bytes: 0 }
      : await transport.put(readAhead(missing, cid => listed.get(cid.toString()) ?? readPooled(store, cid)), {
        // Stored, not synced, per batch: the hub syncs them all at once before it accepts the
        // group's first entry, so the upload does not wait for a disk sync per batch.
        durable: 'with-entry',
        onProgress: p => { this.current = { seq, ...p, totalBlocks: missing.length }; this.deps.onUpload?.(this.current) }
      }).finally(() => { this.current = null })
    return { cids: cids.length, early: all.length - ask.length, earlyMs: tEarly - t0, missing: missing.length, missingMs: t1 - tEarly, sent, putMs: Date.now() - t1, all }
  }

  private async append (group: Group, up: Uploaded): Promise<void> {
    const { log, entries } = this.deps
    const t2 = Date.now()
    // Every block of the group is stored on the hub: its entries may follow, in order (the hub
    // accepts each only once every block it lists is durable there).
    // Recorded once for the group (one state write); what the hub accepted before a failure is
    // recorded too. A crash before the record re-appends them: the hub answers duplicates.
    let appended = 0
    try {
      if (entries.appendGroup != null && group.length > 1) {
        // The group at once; refused (one entry of it, or the hub away), one by one: the entries
        // before the one at fault still get in, and its refusal is the error.
        try {
          await entries.appendGroup(group.map(e => e.bytes))
          appended = group.length
          this.totals.entries += group.length
        } catch {}
      }
      for (const e of group.slice(appended)) {
        await entries.append(e.bytes)
        appended++
        this.totals.entries++
      }
    } finally {
      if (appended > 0) await log.pushedThrough(group[0].seq, group[appended - 1].seq)
    }
    this.totals.blocks += up.sent.blocks
    this.totals.bytes += up.sent.bytes
    this.lastSuccess = Date.now()
    this.deps.uplink?.forget(up.all)
    trace(() => `push entries ${group[0].seq}..${group[group.length - 1].seq}: ${up.cids} cids, ${up.early} sent early (settled in ${up.earlyMs} ms), ${up.missing} missing (${up.missingMs} ms), put ${up.sent.bytes} B (${up.putMs} ms), append+pushed ${Date.now() - t2} ms`)
    this.deps.onProgress?.({ ...this.totals, pendingEntries: log.pending().length })
  }
}

type Group = Array<{ seq: number, bytes: Uint8Array, list: Block[], cids: CID[] }>
interface Uploaded { cids: number, early: number, earlyMs: number, missing: number, missingMs: number, sent: { blocks: number, bytes: number }, putMs: number, all: CID[] }

/** Listed blocks per upload at most (~128 MiB of 128 KiB blocks): a backlog goes up in parts, each acknowledged, so the other devices can start fetching the first part while the next goes up. */
const MAX_GROUP_CIDS = 1024
/** Local block reads kept in flight ahead of the upload: the disk and the hash overlap the socket. */
const READ_AHEAD = 8

function uniq (cids: CID[]): CID[] {
  const seen = new Set<string>()
  return cids.filter(c => { const k = c.toString(); if (seen.has(k)) return false; seen.add(k); return true })
}

/** The blocks of `cids` in order, up to READ_AHEAD of them being read at once. */
function readAhead (cids: CID[], read: (cid: CID) => Block | Promise<Block>): AsyncGenerator<Block> {
  return inOrder(cids, READ_AHEAD, async cid => await read(cid))
}

/** A whole 128 KiB block as sealed. */
const FULL_BLOCK = sealedLength(BLOCK_SIZE)
/**
 * Buffers the blocks to upload are read into, given back once the hub has answered their batch
 * (Block.release, called by the transport): a fresh 128 KiB Buffer per block was 1 GiB of
 * short-lived external memory per GiB pushed, and V8 starts a full collection every ~24 MiB of
 * it (the daemon ran ~140 per GiB). Sized for what is in flight: 4 batches of 64 blocks
 * awaiting their answers, one filling, READ_AHEAD being read.
 */
const readPool = new BufferPool(FULL_BLOCK, 384)

/** A block read from the store (checked against its CID) into a pooled buffer. */
export async function readPooled (store: LocalBlocks, cid: CID): Promise<Block> {
  const lease: Lease = readPool.lease(FULL_BLOCK)
  try {
    const bytes = await store.get(cid, lease.buf)
    // Larger than a block, or not from a pack (bytes still being written): a buffer of its own.
    if (bytes.buffer !== lease.buf.buffer) return { cid, bytes }
    return { cid, bytes, release: lease.hold() }
  } finally {
    lease.done()
  }
}
