// Seals full blocks on worker threads. The plaintext is copied into a slot of one shared buffer,
// a worker seals it in place and hashes it, and the sealed bytes stay in the slot until the
// caller releases it (after they reached the disk). The main thread allocates nothing per block,
// which keeps V8's garbage collector out of the write path. Copies into and out of the slots go
// through copyBytes (copy.ts): V8's own copies of shared memory are slow. (Moving plain
// ArrayBuffers to the worker instead was tried, back when reads went through the worker too: the
// per-transfer external-memory accounting made them 30% slower.)
import { Worker } from 'node:worker_threads'
import { sealedLength, type SealPosition } from './aead.js'
import { copyBytes } from './copy.js'
import { loadAddon } from './addon.js'
import type { SealJob, SealResult, SealWorkerData } from './seal-worker.js'

export interface SealedSlot {
  /** The sealed bytes, a view into the shared slot: valid until release(). */
  sealed: Buffer
  /** BLAKE3 of the sealed bytes. */
  digest: Buffer
  release: () => void
}

/** madvise(MADV_DONTNEED) of a view's whole pages (native/src/space_sys.c); null where not built. */
const discard = loadAddon<(view: Uint8Array) => number>('space_sys', 'discard')

interface Pending { resolve: (r: SealResult) => void, reject: (e: Error) => void, slot: number }

export class SealPool {
  private readonly sab: SharedArrayBuffer
  private readonly slotSize: number
  private readonly free: number[] = []
  private readonly waiters: Array<(slot: number) => void> = []
  private readonly workers: Worker[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private turn = 0
  /**
   * Resolves once every worker has loaded its code (id 0; never rejects). A worker starting up
   * takes 40-60 ms of CPU: beside a stat right after the mount it took 4-20 ms of the CPUs from
   * it (the daemon waits for this before announcing the mount).
   */
  readonly ready: Promise<void>
  private starting = 0
  private started: () => void = () => {}

  // One thread seals ~2.5 GB/s here (AES-GCM + BLAKE3), more than the kernel sends.
  constructor (private readonly blockSize: number, slots = 256, threads = 1) {
    this.slotSize = Math.ceil(sealedLength(blockSize) / 64) * 64
    this.sab = new SharedArrayBuffer(this.slotSize * slots)
    for (let i = slots - 1; i >= 0; i--) this.free.push(i)
    this.starting = threads
    this.ready = threads > 0 ? new Promise(resolve => { this.started = resolve }) : Promise.resolve()
    for (let i = 0; i < threads; i++) {
      // The shared buffer goes over once: a SharedArrayBuffer in every job message made the worker
      // wrap and track it anew per block, and those wrappers drove V8 into major collections.
      const w = new Worker(new URL('./seal-worker.js', import.meta.url), { workerData: { sab: this.sab, slotSize: this.slotSize } satisfies SealWorkerData })
      w.on('message', (r: SealResult) => this.done(r))
      w.on('error', err => { this.done({ id: 0, length: 0, digest: new Uint8Array(0) }); for (const p of this.pending.values()) p.reject(err) })
      w.unref()
      this.workers.push(w)
    }
  }

  get maxPlain (): number { return this.blockSize }

  private async slot (): Promise<number> {
    const s = this.free.pop()
    if (s != null) return s
    return await new Promise(resolve => this.waiters.push(resolve))
  }

  private releaseSlot (slot: number): void {
    const w = this.waiters.shift()
    if (w != null) w(slot)
    else this.free.push(slot)
  }

  /** Seals a copy of `plain`, waiting for a free slot first if all are in use. */
  async seal (key: Uint8Array, pos: SealPosition, plain: Uint8Array): Promise<SealedSlot> {
    if (plain.length > this.maxPlain) throw new RangeError('block larger than a slot')
    const slot = await this.slot()
    const offset = slot * this.slotSize
    copyBytes(new Uint8Array(this.sab, offset, plain.length), 0, plain)
    const id = this.nextId++
    // Copies: a view into Node's 8 KiB buffer pool would clone the whole pool slab.
    const job: SealJob = { id, offset, length: plain.length, key: new Uint8Array(key), type: pos.type, objectId: new Uint8Array(pos.objectId), index: pos.index }
    const r = await this.run(job, slot)
    let released = false
    return {
      sealed: Buffer.from(this.sab, offset, r.length),
      digest: Buffer.from(r.digest),
      release: () => { if (!released) { released = true; this.releaseSlot(slot) } }
    }
  }

  private async run (job: SealJob, slot: number): Promise<SealResult> {
    return await new Promise<SealResult>((resolve, reject) => {
      // Workers keep the process alive only while they have work.
      if (this.pending.size === 0) for (const w of this.workers) w.ref()
      this.pending.set(job.id, { resolve, reject, slot })
      this.workers[this.turn++ % this.workers.length].postMessage(job)
    })
  }

  private done (r: SealResult): void {
    if (r.id === 0) { if (--this.starting === 0) this.started(); return }
    const p = this.pending.get(r.id)
    if (p == null) return
    this.pending.delete(r.id)
    if (this.pending.size === 0) for (const w of this.workers) w.unref()
    if (r.error != null) {
      this.releaseSlot(p.slot)
      p.reject(new Error(r.error))
      return
    }
    p.resolve(r)
  }

  /**
   * While no slot is in use, gives the slots' pages back to the kernel (the next burst faults
   * them in again, zeroed): a write burst leaves up to the whole buffer (32 MiB) resident.
   * Returns the bytes given back (0 while a slot is in use, or without the addon).
   */
  trim (): number {
    if (discard == null || this.pending.size > 0 || this.free.length !== this.sab.byteLength / this.slotSize) return 0
    return discard(new Uint8Array(this.sab))
  }

  async close (): Promise<void> {
    await Promise.all(this.workers.map(async w => await w.terminate()))
  }
}
