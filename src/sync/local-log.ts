// This device's own log: every local commit becomes a signed entry at once (so the DAG of states
// is whole even while offline), kept with its block list under <data dir>/sync/out/ until the
// pusher has put its blocks and then the entry on the hub. The files are the persistent queue:
// a restart, hours offline or a kill -9 at any point resumes from what is on disk.
//
//   sync/out/state.json        { v, seq, cid, watermark, localSeq, pushed } (written durably)
//   sync/out/NNNNNNNNNN.entry  the entry's bytes        sync/out/NNNNNNNNNN.list  its block list blocks
//
// Order: the entry and list files are durable before state.json names them, and state.json
// names an entry before the pusher may send it; an entry file past state.json's seq is a torn
// write and is overwritten. Nothing here is plaintext: the root is sealed under the sync key.
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as cbor from '@ipld/dag-cbor'
import { encodeBlockList, type SignedEntry, type EncodedBlock, type EntryHead } from './entry.js'
import type { RootPayload } from './entry-keys.js'
import { nextEntry } from './log-writer.js'
import { writeDurably } from './log-state.js'
import type { DeviceRecord } from '../keys/identity.js'
import { SyncError } from './errors.js'
import { blocksBetween, type AppendedBlocks } from './new-blocks.js'
import { trace } from './trace.js'
import type { Watermark } from '../store/types.js'

const STATE_VERSION = 1

export interface OutState {
  /** This log's newest entry (0 / null before the first). */
  seq: number
  cid: CID | null
  /** The store watermark of the local commit that entry published. */
  watermark: Watermark | null
  /** The local journal's seq of that commit. */
  localSeq: number
  /** Entries 1..pushed are on the hub. */
  pushed: number
}

export interface LocalCommit { localSeq: number, time: number, payload: RootPayload, watermark: Watermark }

export interface LocalLogDeps {
  dir: string
  packsDir: string
  drive: Buffer
  syncKey: Buffer
  device: { privateKey: Buffer, record: DeviceRecord }
  /** The store's appends as this process saw them: a commit's blocks without reading the packs. */
  recent?: AppendedBlocks
}

const pad = (n: number): string => String(n).padStart(10, '0')

export class LocalLog {
  private saving: Promise<void> = Promise.resolve()
  private constructor (private readonly deps: LocalLogDeps, private st: OutState) {}

  static async open (deps: LocalLogDeps): Promise<LocalLog> {
    await fsp.mkdir(deps.dir, { recursive: true, mode: 0o700 })
    let st: OutState = { seq: 0, cid: null, watermark: null, localSeq: 0, pushed: 0 }
    try {
      const j = JSON.parse(await fsp.readFile(join(deps.dir, 'state.json'), 'utf8'))
      if (j.v !== STATE_VERSION) throw new Error(`version ${String(j.v)}`)
      st = { seq: j.seq, cid: j.cid == null ? null : CID.parse(j.cid), watermark: j.watermark, localSeq: j.localSeq, pushed: j.pushed }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new SyncError('ERR_SYNC_STATE_DAMAGED', `sync queue ${join(deps.dir, 'state.json')} is damaged (${(err as Error).message})`)
      }
    }
    return new LocalLog(deps, st)
  }

  get state (): Readonly<OutState> { return this.st }

  /**
   * Publishes one local commit as the next entry of this log: seals its root, lists the blocks
   * it added (the store's records since the last published watermark) and signs. `heads`: the
   * newest entries of the other logs this state has merged.
   */
  async publish (c: LocalCommit, heads: EntryHead[]): Promise<SignedEntry> {
    if (c.localSeq <= this.st.localSeq) throw new SyncError('ERR_SYNC_FORMAT', `local commit ${c.localSeq} is already published`)
    const { drive, syncKey, device, dir, packsDir } = this.deps
    const t0 = Date.now()
    const added = await blocksBetween(packsDir, this.st.watermark, c.watermark, this.deps.recent)
    const t1 = Date.now()
    const list = encodeBlockList(added.map(b => b.cid))
    // This log's head is ours to keep (the log state holds the other logs), and the heads are
    // what the tree has merged, not merely what was seen.
    const own = this.st.cid == null ? undefined : { seq: this.st.seq, cid: this.st.cid }
    const signed = nextEntry({ head: () => own, heads: () => heads }, device, { driveId: drive, syncKey }, { root: c.payload, blocks: list.head, time: c.time })
    const seq = signed.entry.seq
    // Both durable (in parallel: two fsyncs' wait, not their sum) before the state names them.
    await Promise.all([
      writeDurably(join(dir, `${pad(seq)}.list`), cbor.encode(list.blocks.map(b => [b.cid, b.bytes]))),
      writeDurably(join(dir, `${pad(seq)}.entry`), signed.bytes)
    ])
    const t2 = Date.now()
    await this.save(st => ({ ...st, seq, cid: signed.cid, watermark: c.watermark, localSeq: c.localSeq }))
    this.deps.recent?.forget(c.watermark)
    trace(() => `published entry ${seq} (local commit ${c.localSeq}): ${added.length} blocks, ${Date.now() - t0} ms (scan ${t1 - t0}, list and entry files ${t2 - t1}, state ${Date.now() - t2})`)
    return signed
  }

  /** Entries written but not yet on the hub, oldest first. */
  pending (): number[] {
    const out: number[] = []
    for (let s = this.st.pushed + 1; s <= this.st.seq; s++) out.push(s)
    return out
  }

  /**
   * Entry `seq` and, while it waits for the hub, its block list. Once pushed the list is gone
   * (pushed() removes it), so a pushed entry comes with an empty list: a restart reads the
   * newest entry's heads whether or not it is on the hub.
   */
  async entry (seq: number): Promise<{ bytes: Uint8Array, list: EncodedBlock[] }> {
    const bytes = await fsp.readFile(join(this.deps.dir, `${pad(seq)}.entry`))
    let listBytes: Buffer
    try {
      listBytes = await fsp.readFile(join(this.deps.dir, `${pad(seq)}.list`))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && seq <= this.st.pushed) return { bytes, list: [] }
      throw err
    }
    const pairs = cbor.decode(listBytes) as Array<[CID, Uint8Array]>
    return { bytes, list: pairs.map(([cid, b]) => ({ cid, bytes: b })) }
  }

  /** Entry `seq` is durable on the hub: the queue moves on. */
  async pushed (seq: number): Promise<void> { await this.pushedThrough(seq, seq) }

  /**
   * Entries `from`..`seq` (the next ones, in order) are durable on the hub: the queue moves past
   * all of them with one state write (the pusher's group: one fsync, not one per entry).
   */
  async pushedThrough (from: number, seq: number): Promise<void> {
    await this.save(st => {
      if (from !== st.pushed + 1 || seq < from) throw new SyncError('ERR_SYNC_FORMAT', `entries ${from}..${seq} pushed out of order (next is ${st.pushed + 1})`)
      return { ...st, pushed: seq }
    })
    // The entries stay (merges find common ancestors through them); their block lists have done their job.
    for (let s = from; s <= seq; s++) await fsp.rm(join(this.deps.dir, `${pad(s)}.list`), { force: true })
  }

  /**
   * Applies `change` to the state as it is when the previous save has landed, and writes it
   * durably. Serial: publish() and pushed() run concurrently (the pusher acknowledges entry n
   * while entry n+1 is being written), and each must build on the other's result, or one
   * undoes the other (a queue that forgets an entry was pushed, after its block list is gone).
   */
  private async save (change: (st: OutState) => OutState): Promise<void> {
    const run = this.saving.then(async () => { await this.write(change(this.st)) })
    this.saving = run.catch(() => {})
    await run
  }

  private async write (st: OutState): Promise<void> {
    const json = JSON.stringify({ v: STATE_VERSION, seq: st.seq, cid: st.cid?.toString() ?? null, watermark: st.watermark, localSeq: st.localSeq, pushed: st.pushed })
    await writeDurably(join(this.deps.dir, 'state.json'), json)
    this.st = st
  }
}
