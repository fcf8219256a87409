// The drive's block store with the hub behind it: a block the local store lacks is fetched from
// the hub (checked against its CID by the transport), kept locally, then served. So a new device
// mounts at once and reads what it touches (a large file streams before it has fully arrived),
// and a merge reads the other device's directory nodes as if they were local. Concurrent reads of
// one missing block share one fetch. Everything else is the local store's.
import type { CID } from 'multiformats/cid'
import type { BlockStore } from '../store/types.js'
import type { BlockTransport } from './transport.js'

export interface FetchStats { blocks: number, bytes: number }

export class FetchingStore {
  private readonly inflight = new Map<string, Promise<Uint8Array>>()
  readonly fetched: FetchStats = { blocks: 0, bytes: 0 }

  constructor (private readonly local: BlockStore, private readonly transport: () => BlockTransport | null) {}

  /** The tree's view: the local store's methods, with get() falling back to the hub. */
  get store (): BlockStore {
    const local = this.local
    return new Proxy(local, {
      get: (target, prop, receiver) => {
        if (prop === 'get') return async (cid: CID, scratch?: Buffer) => await this.get(cid, scratch)
        const v = Reflect.get(target, prop, receiver)
        return typeof v === 'function' ? v.bind(target) : v
      }
    })
  }

  async get (cid: CID, scratch?: Buffer): Promise<Uint8Array> {
    if (this.local.has(cid)) return await this.local.get(cid, scratch)
    const t = this.transport()
    if (t == null) return await this.local.get(cid, scratch) // the local store's "not found"
    const key = cid.toString()
    let p = this.inflight.get(key)
    if (p == null) {
      p = (async () => {
        for await (const b of t.get([cid])) {
          this.local.putWithCid(cid, b.bytes)
          this.fetched.blocks++
          this.fetched.bytes += b.bytes.length
          return b.bytes
        }
        return await this.local.get(cid, scratch)
      })().finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return await p
  }

  /** Fetches every block of `cids` the local store lacks, in batches (background download). */
  async prefetch (cids: CID[], onProgress?: (s: FetchStats) => void): Promise<void> {
    const t = this.transport()
    if (t == null) return
    const want = cids.filter(c => !this.local.has(c))
    for await (const b of t.get(want)) {
      if (!this.local.has(b.cid)) this.local.putWithCid(b.cid, b.bytes)
      this.fetched.blocks++
      this.fetched.bytes += b.bytes.length
      onProgress?.(this.fetched)
    }
  }
}
