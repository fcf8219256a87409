// The drive's block store with the hub behind it: a block the local store lacks is fetched from
// the hub (checked against its CID by the transport), kept locally, then served. So a new device
// mounts at once and reads what it touches (a large file streams before it has fully arrived),
// and a merge reads the other device's directory nodes as if they were local. Concurrent reads of
// one missing block share one fetch. Everything else is the local store's.
// Also the background download (Downloader): after a merge, every file block of the tree that is
// not here yet is listed (pending down, in files and bytes) and, unless the device keeps files
// on demand, fetched in batches with progress.
import { CID } from 'multiformats/cid'
import type { BlockStore } from '../store/types.js'
import type { BlockTransport } from './transport.js'
import { Loader } from '../fs/tree/load.js'
import { FileNode, LinkTable } from '../fs/tree/nodes.js'
import { BLOCK_SIZE, Kind, type BlockEntry } from '../fs/tree/format.js'
import { baseOf, patchesOf, fromEntry, type BlockRef } from '../fs/tree/block-ref.js'
import { SEGMENT } from '../crypto/index.js'
import { readSnapshot, type Content, type TreeRef } from './snapshot.js'
import { trace } from './trace.js'

export interface FetchStats { blocks: number, bytes: number }

export class FetchingStore {
  private readonly inflight = new Map<string, Promise<Uint8Array>>()
  readonly fetched: FetchStats = { blocks: 0, bytes: 0 }
  /** Told of every block that arrived, on demand or in the background. */
  onFetched: ((cid: CID) => void) | null = null

  constructor (private readonly local: BlockStore, private readonly transport: () => BlockTransport | null) {}

  /** The tree's view: the local store's methods, with get() falling back to the hub. */
  get store (): BlockStore {
    const local = this.local
    return new Proxy(local, {
      get: (target, prop, receiver) => {
        if (prop === 'get') return async (cid: CID, scratch?: Buffer) => await this.get(cid, scratch)
        // A part of a block not here yet (a read by recorded nonce): the whole block is fetched
        // and checked against its CID, kept, and the part served from it.
        if (prop === 'getRange') return async (cid: CID, offset: number, length: number) => await this.getRange(cid, offset, length)
        const v = Reflect.get(target, prop, receiver)
        return typeof v === 'function' ? v.bind(target) : v
      }
    })
  }

  has (cid: CID): boolean { return this.local.has(cid) }

  private async getRange (cid: CID, offset: number, length: number): Promise<Uint8Array> {
    if (this.local.has(cid)) return await this.local.getRange(cid, offset, length)
    const whole = await this.get(cid)
    if (offset < 0 || length < 0 || offset + length > whole.length) throw new RangeError(`bytes ${offset} + ${length} of a ${whole.length}-byte block`)
    return whole.subarray(offset, offset + length)
  }

  async get (cid: CID, scratch?: Buffer): Promise<Uint8Array> {
    if (this.local.has(cid)) return await this.local.get(cid, scratch)
    const t = this.transport()
    if (t == null) return await this.local.get(cid, scratch) // the local store's "not found"
    const key = cid.toString()
    let p = this.inflight.get(key)
    if (p == null) {
      trace(() => `on-demand fetch ${key.slice(-12)}`)
      p = new Promise<Uint8Array>((resolve, reject) => {
        this.queued.push({ cid, resolve, reject })
        if (!this.flushing) { this.flushing = true; setImmediate(() => { void this.fetchQueued(t) }) }
      }).finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return await p
  }

  /** On-demand misses waiting for the next request (those asked for in one turn share it). */
  private queued: Waiter[] = []
  private flushing = false

  /**
   * Fetches the misses queued so far as one batch: a block map's level or a directory's children
   * are asked for together (one by one they were hundreds of requests per big file). When the
   * batch fails (a CID the hub lacks, a wrong block), each is fetched on its own, so only the
   * block at fault fails.
   */
  private async fetchQueued (t: BlockTransport): Promise<void> {
    const batch = this.queued.splice(0, MAX_ON_DEMAND)
    if (this.queued.length > 0) setImmediate(() => { void this.fetchQueued(t) })
    else this.flushing = false
    const waiting = new Map(batch.map(w => [w.cid.toString(), w]))
    try {
      for await (const b of t.get(batch.map(w => w.cid))) {
        const w = waiting.get(b.cid.toString())
        if (w === undefined) continue
        waiting.delete(b.cid.toString())
        const mine = own(b.bytes) // before keep(): its release lets the batch's buffer be reused
        this.keep(b.cid, b.bytes, b.release)
        w.resolve(mine)
      }
    } catch (err) {
      if (batch.length === 1) { for (const w of waiting.values()) w.reject(err); return }
      await Promise.all([...waiting.values()].map(async w => await this.fetchOne(t, w)))
      return
    }
    for (const w of waiting.values()) await this.fetchOne(t, w) // not in the answer: as on its own
  }

  private async fetchOne (t: BlockTransport, w: Waiter): Promise<void> {
    try {
      for await (const b of t.get([w.cid])) {
        const mine = own(b.bytes)
        this.keep(w.cid, b.bytes, b.release)
        w.resolve(mine)
        return
      }
      w.resolve(await this.local.get(w.cid))
    } catch (err) {
      w.reject(err)
    }
  }

  /**
   * Whether `cid` is a block this store is writing because it came from the hub (asked by the
   * store's append hook, synchronously inside keep()'s put or at the append that follows it).
   */
  fromHub (cid: CID): boolean { return this.arriving.delete(cid.toString()) }

  private readonly arriving = new Set<string>()

  /**
   * Stores a fetched block; `release` (a pooled batch's) once the store has written it. `absent`:
   * the caller found it missing just before asking the hub (the store's put still skips a block
   * already in its current pack or not yet written): a second look costs a probe of every pack's
   * index for a block that is in none (B: ~0.2 s of its main thread per GiB downloaded).
   */
  private keep (cid: CID, bytes: Uint8Array, release?: () => void, absent = false): void {
    if (!absent && this.local.has(cid)) { release?.(); return }
    this.arriving.add(cid.toString())
    this.local.putWithCid(cid, bytes, release)
    this.fetched.blocks++
    this.fetched.bytes += bytes.length
    this.onFetched?.(cid)
  }

  /** Fetches every block of `cids` the local store lacks, in batches (background download). */
  async prefetch (cids: CID[], onProgress?: (s: FetchStats) => void, signal?: AbortSignal, sizeOf?: (cid: CID) => number | undefined): Promise<void> {
    const t = this.transport()
    if (t == null) throw new Error('no hub connection yet')
    const want = cids.filter(c => !this.local.has(c) && !this.inflight.has(c.toString()))
    if (want.length === 0) return
    for await (const b of t.get(want, { signal, sizeOf })) {
      this.keep(b.cid, b.bytes, b.release, true)
      onProgress?.(this.fetched)
      // The store writes behind: the fetched batches (held until written) are bounded by it.
      if (this.local.backlog > MAX_BACKLOG) await this.local.flush()
    }
  }
}

interface Waiter { cid: CID, resolve: (bytes: Uint8Array) => void, reject: (err: unknown) => void }

/**
 * A block for a reader that may keep it (a tree node, a block map): a copy when it is a view of
 * a much larger buffer (a fetched batch), which it would otherwise keep alive whole.
 */
function own (bytes: Uint8Array): Uint8Array {
  return bytes.buffer.byteLength > 2 * bytes.length ? Buffer.from(bytes) : bytes
}
/**
 * Bytes the local store may have yet to write before the download waits for it: each fetched
 * batch (9 MiB) stays in memory until its blocks are written, and with reads in place the
 * network outran the disk (B held 27 batches, peak RSS 392 MiB, in one run).
 */
const MAX_BACKLOG = 64 * 1024 * 1024
/** On-demand misses fetched in one batch at most. */
const MAX_ON_DEMAND = 512

/** What sync status shows of the download. */
export interface DownloadStatus {
  /** off: files stay on the hub until read (on demand). */
  mode: 'all' | 'on-demand'
  state: 'idle' | 'scanning' | 'downloading' | 'waiting'
  /** File blocks of the tree not here yet: in files, and plaintext bytes. */
  pending: { files: number, bytes: number }
  /** This round of the background download: bytes fetched of bytes listed. */
  progress: { done: number, total: number }
  lastError: string | null
}

// Per prefetch call at most (a stop or a newer tree is noticed between calls): CIDs, and bytes.
const BATCH = 8192
const BATCH_BYTES = 128 * 1024 * 1024
/** Complete block maps remembered at most (forgotten all at once past it: they are scanned again). */
const MAX_COMPLETE_MAPS = 100_000

/**
 * The background download: scan(ref) lists the tree's file blocks that are not here; in mode
 * 'all' they are fetched. A scan asked for while one runs runs after it, on the newest tree.
 */
export class Downloader {
  /** Missing block -> (file id, plaintext bytes it holds). */
  private missing = new Map<string, { file: string, bytes: number }>()
  private files = new Map<string, number>() // file id -> missing blocks
  private bytes = 0
  private st: DownloadStatus['state'] = 'idle'
  private progress = { done: 0, total: 0 }
  private lastError: string | null = null
  private next: TreeRef | null = null
  private running: Promise<void> | null = null
  private stopped = false
  private readonly abort = new AbortController()
  private lastReport = 0
  /**
   * Block maps (their root CIDs) whose every block was here at a scan: a scan after each merge
   * skips them, where it read and decoded every big file's map again (a growing file's map
   * changes CID; the others stay put).
   */
  private readonly complete = new Set<string>()
  private readonly scanStore = { get: async (cid: CID, scratch?: Buffer) => await this.fetching.get(cid, scratch) }
  /** One loader for every scan (its read buffers reused; the maps it loads are forgotten after each scan). */
  private readonly loader: Loader

  constructor (private readonly fetching: FetchingStore, private readonly opts: {
    mode: 'all' | 'on-demand'
    onProgress?: (s: DownloadStatus) => void
    log?: (line: string) => void
  }) {
    fetching.onFetched = cid => this.arrived(cid)
    this.loader = new Loader(this.scanStore, opts.log ?? (() => {}), new LinkTable(Buffer.alloc(16), Buffer.alloc(32), null))
  }

  status (): DownloadStatus {
    return { mode: this.opts.mode, state: this.st, pending: { files: this.files.size, bytes: this.bytes }, progress: { ...this.progress }, lastError: this.lastError }
  }

  /** The tree is now `ref`: list (and fetch) what of it is not here. */
  schedule (ref: TreeRef): void {
    if (this.stopped) return
    this.next = ref
    this.running ??= this.loop().finally(() => { this.running = null })
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.abort.abort()
    await this.running?.catch(() => {})
  }

  private arrived (cid: CID): void {
    const m = this.missing.get(cid.toString())
    if (m == null) return
    this.missing.delete(cid.toString())
    this.bytes -= m.bytes
    this.progress.done += m.bytes
    const left = (this.files.get(m.file) ?? 1) - 1
    if (left <= 0) this.files.delete(m.file)
    else this.files.set(m.file, left)
    this.report(false)
  }

  private report (final: boolean): void {
    const now = Date.now()
    if (!final && now - this.lastReport < 1000) return
    this.lastReport = now
    this.opts.onProgress?.(this.status())
  }

  private async loop (): Promise<void> {
    let backoff = 1000
    while (this.next != null && !this.stopped) {
      const ref = this.next
      this.next = null
      try {
        this.st = 'scanning'
        const t0 = Date.now()
        await this.scan(ref)
        trace(() => `download: scan ${Date.now() - t0} ms, ${this.missing.size} blocks missing (${this.bytes} B)`)
        if (this.opts.mode === 'all' && this.missing.size > 0) {
          this.st = 'downloading'
          this.progress = { done: 0, total: this.bytes }
          this.report(true)
          const all = [...this.missing.keys()].map(s => CID.parse(s))
          // Sealed sizes are a little over the plaintext's: close enough to cut batches by.
          const sizeOf = (cid: CID): number | undefined => { const m = this.missing.get(cid.toString()); return m == null ? undefined : m.bytes + 64 }
          for (let i = 0; i < all.length && !this.stopped && this.next == null;) {
            let end = i
            for (let bytes = 0; end < all.length && end - i < BATCH && bytes < BATCH_BYTES; end++) bytes += sizeOf(all[end]) ?? 128 * 1024
            await this.fetching.prefetch(all.slice(i, end), undefined, this.abort.signal, sizeOf)
            i = end
          }
          trace(() => `download: ${all.length} blocks fetched or superseded`)
        }
        this.lastError = null
        backoff = 1000
        this.st = 'idle'
        this.report(true)
      } catch (err) {
        if (this.stopped) return
        this.lastError = (err as Error).message
        this.opts.log?.(`sync: background download: ${this.lastError}`)
        this.st = 'waiting'
        this.next ??= ref
        await new Promise(resolve => setTimeout(resolve, backoff).unref())
        backoff = Math.min(backoff * 2, 30_000)
      }
    }
  }

  /** Lists the file blocks of `ref` the local store lacks (directory nodes and block maps are fetched on the way). */
  private async scan (ref: TreeRef): Promise<void> {
    const store = this.scanStore
    const snap = await readSnapshot(ref, store, this.opts.log)
    const loader = this.loader
    const missing = new Map<string, { file: string, bytes: number }>()
    const files = new Map<string, number>()
    let bytes = 0
    const visit = async (c: Content): Promise<void> => {
      const i = c.i as Uint8Array | undefined
      const k = c.k as Uint8Array | undefined
      const size = typeof c.s === 'number' ? c.s : 0
      if (i == null || k == null || size === 0) return
      let pairs: Array<[number, BlockRef]>
      const mapKey = c.bm != null ? String(c.bm) : null
      // A block map a scan found complete names the same blocks forever (a CID): not read again.
      if (mapKey != null && this.complete.has(mapKey)) return
      if (c.bm != null) {
        const f = new FileNode({ mode: 0o644, uid: 0, gid: 0, atime: 0, mtime: 0, ctime: 0 }, Buffer.from(i), Buffer.from(k))
        f.blocks = null
        f.blockMap = c.bm as CID
        pairs = [...(await loader.blocks(f)).entries()]
      } else {
        pairs = ((c.b as BlockEntry[] | undefined) ?? []).map(fromEntry)
      }
      const file = Buffer.from(i).toString('hex')
      let whole = true
      for (const [idx, ref] of pairs) {
        // A block is its base and its patches (format 2), each a block of its own.
        const base = baseOf(ref)
        const parts = [...(base != null ? [{ cid: base, bytes: Math.max(0, Math.min(BLOCK_SIZE, size - idx * BLOCK_SIZE)) }] : []),
          ...patchesOf(ref).map(p => ({ cid: p.cid, bytes: p.count * SEGMENT }))]
        for (const { cid, bytes: b } of parts) {
          const key = cid.toString()
          if (this.fetching.has(cid)) continue
          whole = false
          if (missing.has(key)) continue
          missing.set(key, { file, bytes: b })
          files.set(file, (files.get(file) ?? 0) + 1)
          bytes += b
        }
      }
      if (whole && mapKey != null) {
        if (this.complete.size >= MAX_COMPLETE_MAPS) this.complete.clear()
        this.complete.add(mapKey)
      }
    }
    try {
      for (const n of snap.nodes.values()) if (n.t === Kind.File && !n.linkName) await visit(n.content)
      for (const l of snap.links.values()) if (l.t === Kind.File) await visit(l.content)
    } finally {
      loader.forgetAll() // the scan's block maps are not kept; the loader's read buffers are
    }
    this.missing = missing
    this.files = files
    this.bytes = bytes
  }
}
