// Early upload: the blocks this device's store appends go to the hub as they are appended, before
// the commit that will name them is published, so the push of an entry finds them there and
// sends only what is left. The hub stores them (content-addressed, checked against their CIDs)
// and makes them durable with the first entry that lists them (`durable: 'with-entry'`): the rule
// "an entry reaches the hub only after every block it lists is durable there" is the hub's, and
// holds whatever was sent early. Nothing here is needed for correctness: a failed or lost early
// upload (hub away, hub restarted before its group commit) is found by the pusher's missing-list
// or by the hub's refusal of the entry, and the pusher sends those blocks itself.
//
// The sealed bytes come with the append (the pack writer's view of them, with the CID the writer
// computed): each is copied at once into a CAR batch being framed in pooled memory, so nothing is
// read back from the pack or hashed again on this side, and a batch goes up as one buffer. When
// every batch buffer is taken (the hub slower than the writes), a block is only remembered and
// read back from the pack (checked against its CID) into a batch once a buffer is free.
import type { CID } from 'multiformats/cid'
import type { TransferOptions } from './transport.js'
import { varint } from 'multiformats'
import { carHeader, sectionSize } from './transport-car.js'
import { BufferPool, type Lease } from '../store/buffer-pool.js'
import { copyBytes } from '../crypto/copy.js'
import { trace } from './trace.js'
import type { LocalBlocks } from './pusher.js'

/** What the uplink needs of the local store: a block's bytes, checked, read into `scratch` (the pusher's). */
export type UplinkBlocks = LocalBlocks

/** What the uplink needs of the transport: one CAR, framed here, sent as it is. */
export interface UplinkTransport {
  /** Stores the blocks of `car` (a CAR v1: header, then sections); resolves once every one is acknowledged. */
  putCar: (car: Buffer, opts?: Pick<TransferOptions, 'durable' | 'signal'>) => Promise<void>
}

/** An appended block: its CID and stored length. */
export interface Appended { cid: CID, length: number }

export interface UplinkOptions {
  /** Bytes per upload request (~the transport's batch), and the size of each batch buffer. */
  batchBytes?: number
  /** Upload requests of the uplink in flight at once. */
  inFlight?: number
  /** Batch buffers filled and waiting for a request, beyond those in flight and the one filling. */
  ready?: number
  /** How long a part-filled batch waits for more blocks before it goes anyway. */
  lingerMs?: number
}

/** A CAR batch in one buffer: the header, then each block's section as it is added. */
interface Batch {
  lease: Lease
  used: number
  blocks: Appended[]
  /** Resolves true once the hub has acknowledged the batch, false when it failed or was dropped. */
  done: Promise<boolean>
  settle: (ok: boolean) => void
}

const EMPTY_HEADER = carHeader([])

/** Writes a block's section prefix (varint(len(CID) + length) | CID) at buf[at]; returns where its bytes go. */
function prefixInto (buf: Buffer, at: number, b: Appended): number {
  const c = b.cid.bytes
  varint.encodeTo(c.length + b.length, buf, at)
  at += varint.encodingLength(c.length + b.length)
  buf.set(c, at)
  return at + c.length
}

export class Uplink {
  /** The batch blocks are copied into as they are appended. */
  private filling: Batch | null = null
  /** Full batches waiting for a request slot, oldest first. */
  private ready: Batch[] = []
  /** Appended while every buffer was taken: read back from the pack once one is free. */
  private later: Appended[] = []
  /** Batch buffers leased (filling, ready, being read into or in flight). */
  private buffers = 0
  /** Requests in flight (with batches being read back for one). */
  private requests = 0
  /** Acknowledged stored by the hub, not yet listed by an appended entry. */
  private readonly sent = new Set<string>()
  /** CID -> the batch carrying it (copied, waiting or in flight). */
  private readonly carried = new Map<string, Promise<boolean>>()
  private timer: NodeJS.Timeout | null = null
  /** Waiting for a batch to end (settle()): told when one is answered or dropped. */
  private wake: Array<() => void> = []
  /** After a failed batch: no early uploads until a push round succeeds (resume()). */
  private off = false
  private stopped = false
  private readonly batchBytes: number
  private readonly inFlight: number
  private readonly maxBuffers: number
  private readonly lingerMs: number
  private readonly pool: BufferPool
  /** Blocks and bytes acknowledged so far; blocks that went up from memory and read back (trace, tests). */
  readonly totals = { blocks: 0, bytes: 0, batches: 0, copied: 0, readBack: 0 }

  constructor (private readonly transport: UplinkTransport, private readonly store: UplinkBlocks, opts: UplinkOptions = {}) {
    this.batchBytes = opts.batchBytes ?? 8 * 1024 * 1024
    this.inFlight = opts.inFlight ?? 3
    this.maxBuffers = this.inFlight + 1 + (opts.ready ?? 1)
    this.lingerMs = opts.lingerMs ?? 50
    // Given back when the daemon goes idle (dropPooledBuffers, src/memory.ts).
    this.pool = new BufferPool(this.batchBytes, this.maxBuffers)
  }

  /**
   * A block the store appended (not one fetched from the hub), with its sealed bytes (valid only
   * during this call: copied here): goes up soon.
   */
  add (b: Appended, bytes?: Uint8Array): void {
    if (this.off || this.stopped) return
    const batch = bytes == null || bytes.length !== b.length ? null : this.room(sectionSize(b.cid, b.length))
    if (batch == null) {
      this.later.push(b)
    } else {
      batch.used = prefixInto(batch.lease.buf, batch.used, b)
      batch.used += copyBytes(batch.lease.buf, batch.used, bytes!) // the bytes may be a sealing slot's shared memory
      batch.blocks.push(b)
      this.carried.set(b.cid.toString(), batch.done)
      this.totals.copied++
    }
    this.pump(false)
  }

  /** The filling batch if `size` more bytes fit in it, else a new one (the full one waits to go); null when no buffer is free. */
  private room (size: number): Batch | null {
    const f = this.filling
    if (f != null && f.used + size <= f.lease.buf.length) return f
    if (f != null) { this.ready.push(f); this.filling = null }
    if (this.buffers >= this.maxBuffers) return null
    this.filling = this.newBatch(EMPTY_HEADER.length + size)
    return this.filling
  }

  /** A batch in a pooled buffer (one of its own when a single block is larger), its header written. */
  private newBatch (least: number): Batch {
    const lease = this.pool.lease(Math.max(least, this.batchBytes))
    this.buffers++
    let settle!: (ok: boolean) => void
    const done = new Promise<boolean>(resolve => { settle = resolve })
    return { lease, used: EMPTY_HEADER.copy(lease.buf, 0), blocks: [], done, settle }
  }

  /**
   * For the pusher, before it asks the hub what a group lacks: the blocks of `cids` this uplink
   * was told of go up now (those waiting to be read back are read into its batches first, so the
   * push needs no memory of its own for them) and are waited for, as are those in flight;
   * resolves to the CIDs not acknowledged here, which the pusher must look up and send.
   */
  async settle (cids: CID[]): Promise<CID[]> {
    const want = new Set(cids.map(c => c.toString()))
    while (!this.off && !this.stopped && this.later.some(b => want.has(b.cid.toString()))) {
      const changed = new Promise<void>(resolve => this.wake.push(resolve))
      this.pump(true)
      await changed
    }
    const waits: Array<Promise<boolean>> = []
    for (const k of want) { const p = this.carried.get(k); if (p != null) waits.push(p) }
    if (waits.length > 0) this.pump(true)
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

  /** Memory held for batches not yet sent (tests, status): buffers leased, bytes framed. */
  get held (): { buffers: number, bytes: number } {
    return { buffers: this.buffers, bytes: (this.filling?.used ?? 0) + this.ready.reduce((n, b) => n + b.used, 0) }
  }

  stop (): void {
    this.stopped = true
    const t = this.totals
    trace(() => `uplink: ${t.blocks} blocks (${t.bytes} B) in ${t.batches} batches; ${t.copied} copied as appended, ${t.readBack} read back`)
    this.drop()
  }

  /** Lets go of every batch not yet sent (their blocks are the pusher's) and of the read-back list. */
  private drop (): void {
    if (this.timer != null) { clearTimeout(this.timer); this.timer = null }
    for (const b of [...this.ready, ...(this.filling != null ? [this.filling] : [])]) this.release(b, false)
    this.ready = []
    this.filling = null
    this.later = []
    this.tell()
  }

  private tell (): void {
    const w = this.wake
    this.wake = []
    for (const f of w) f()
  }

  private release (b: Batch, ok: boolean): void {
    for (const x of b.blocks) if (this.carried.get(x.cid.toString()) === b.done) this.carried.delete(x.cid.toString())
    b.lease.done()
    this.buffers--
    b.settle(ok)
    this.tell()
  }

  /** Starts requests while there is room: full batches at once, a part-filled one (or read-back) after lingerMs. */
  private pump (linger: boolean): void {
    if (this.stopped || this.off) return
    while (this.requests < this.inFlight) {
      if (this.ready.length > 0) {
        this.send(this.ready.shift()!)
      } else if (linger && this.filling != null && this.filling.blocks.length > 0) {
        const f = this.filling
        this.filling = null
        this.send(f)
      } else if (this.later.length > 0 && this.buffers < this.maxBuffers && (linger || this.laterBytes() >= this.batchBytes)) {
        this.readBack()
      } else {
        break
      }
      linger = false
    }
    const waiting = (this.filling?.blocks.length ?? 0) > 0 || this.later.length > 0
    if (waiting && this.timer == null && this.requests < this.inFlight) {
      this.timer = setTimeout(() => { this.timer = null; this.pump(true) }, this.lingerMs)
      this.timer.unref()
    }
  }

  private laterBytes (): number {
    let n = 0
    for (const b of this.later) { n += b.length; if (n >= this.batchBytes) break }
    return n
  }

  /** A batch of blocks from the read-back list, read from the store into their sections, then sent. */
  private readBack (): void {
    const first = this.later[0]
    const batch = this.newBatch(EMPTY_HEADER.length + sectionSize(first.cid, first.length))
    const at: number[] = []
    while (this.later.length > 0) {
      const b = this.later[0]
      const size = sectionSize(b.cid, b.length)
      if (batch.blocks.length > 0 && batch.used + size > batch.lease.buf.length) break
      this.later.shift()
      batch.used = prefixInto(batch.lease.buf, batch.used, b)
      at.push(batch.used)
      batch.used += b.length
      batch.blocks.push(b)
      this.carried.set(b.cid.toString(), batch.done)
    }
    this.requests++
    const buf = batch.lease.buf
    void (async () => {
      // Four reads at a time, each straight into its section (checked against its CID there).
      for (let i = 0; i < batch.blocks.length; i += 4) {
        await Promise.all(batch.blocks.slice(i, i + 4).map(async (b, j) => {
          const place = buf.subarray(at[i + j], at[i + j] + b.length)
          const got = await this.store.get(b.cid, place)
          if (got.buffer !== place.buffer || got.byteOffset !== place.byteOffset) {
            if (got.length !== b.length) throw new Error(`block ${b.cid.toString()} is ${got.length} bytes, not ${b.length}`)
            copyBytes(buf, at[i + j], got)
          }
        }))
      }
      this.totals.readBack += batch.blocks.length
    })().then(() => { this.requests--; this.send(batch) }, err => { this.requests--; this.failed(err as Error); this.release(batch, false); this.pump(false) })
  }

  private send (batch: Batch): void {
    this.requests++
    const car = batch.lease.buf.subarray(0, batch.used)
    void this.transport.putCar(car, { durable: 'with-entry' }).then(() => {
      for (const b of batch.blocks) this.sent.add(b.cid.toString())
      this.totals.blocks += batch.blocks.length
      this.totals.bytes += batch.blocks.reduce((n, b) => n + b.length, 0)
      this.totals.batches++
      return true
    }, err => {
      this.failed(err as Error)
      return false
    }).then(ok => {
      this.requests--
      this.release(batch, ok)
      this.pump(false)
    })
  }

  /**
   * Not acknowledged: the pusher sends them. Early uploads stop until a push round succeeds (a
   * hub away would otherwise be asked once per batch while offline).
   */
  private failed (err: Error): void {
    if (!this.off) trace(() => `uplink: ${err.message}; early uploads wait for the next push`)
    this.off = true
    this.drop()
  }
}
