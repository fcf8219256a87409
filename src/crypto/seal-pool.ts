// Seals full blocks on worker threads. The plaintext is copied into a slot of one shared buffer,
// a worker seals it in place and hashes it, and the sealed bytes stay in the slot until the
// caller releases it (after they reached the disk). The main thread allocates nothing per block,
// which keeps V8's garbage collector out of the write path. Copies into and out of the slots go
// through copyBytes (copy.ts): V8's own copies of shared memory are slow. Jobs started in one
// turn of the event loop go to the worker in one message, and their results come back in one,
// each digest in its slot's last 32 bytes: a message per 128 KiB block cost the JS thread ~38 us
// (0.31 s per GiB written) and the worker as much again. (Moving plain
// ArrayBuffers to the worker instead was tried, back when reads went through the worker too: the
// per-transfer external-memory accounting made them 30% slower.)
import { Worker } from 'node:worker_threads'
import { sealedLength, type SealPosition } from './aead.js'
import { copyBytes } from './copy.js'
import { loadAddon } from './addon.js'
import type { SealWorkerData } from './seal-worker.js'
import { packJobs, unpackResults, type PackedResults, type SealJob, type SealResult } from './seal-jobs.js'

export interface SealedSlot {
  /** The sealed bytes, a view into the shared slot: valid until release(). */
  sealed: Buffer
  /** BLAKE3 of the sealed bytes. */
  digest: Buffer
  release: () => void
}

/** madvise(MADV_DONTNEED) of a view's whole pages (native/src/space_sys.c); null where not built. */
const discard = loadAddon<(view: Uint8Array) => number>('space_sys', 'discard')

/** SPACE_SEAL_BATCH=0: a message per job (to measure against). */
const BATCH = process.env.SPACE_SEAL_BATCH !== '0'
/**
 * Jobs per message at most. Results come back a message at a time, so a long batch holds its
 * first slots until its last block is sealed: a whole turn's jobs (13 on average in a 1 GiB
 * write) in one message made the write slower (4.7-5.4 against 3.1-5.1 s, load ~8).
 */
const BATCH_JOBS = 4

/** Bytes at the end of each slot for the digest of what was sealed in it. */
const DIGEST_TAIL = 32

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
  /** Jobs of this turn of the event loop, posted BATCH_JOBS at a time, the rest once it ends (setImmediate). */
  private batch: SealJob[] = []
  /** Messages posted to the workers, and the jobs in them. */
  readonly counts = { messages: 0, jobs: 0 }

  // One thread seals ~2.5 GB/s here (AES-GCM + BLAKE3), more than the kernel sends.
  constructor (private readonly blockSize: number, slots = 256, threads = 1) {
    this.slotSize = Math.ceil((sealedLength(blockSize) + DIGEST_TAIL) / 64) * 64 // the digest at the end
    this.sab = new SharedArrayBuffer(this.slotSize * slots)
    for (let i = slots - 1; i >= 0; i--) this.free.push(i)
    this.starting = threads
    this.ready = threads > 0 ? new Promise(resolve => { this.started = resolve }) : Promise.resolve()
    for (let i = 0; i < threads; i++) {
      // The shared buffer goes over once: a SharedArrayBuffer in every job message made the worker
      // wrap and track it anew per block, and those wrappers drove V8 into major collections.
      const w = new Worker(new URL('./seal-worker.js', import.meta.url), { workerData: { sab: this.sab, slotSize: this.slotSize, digestAt: this.slotSize - DIGEST_TAIL } satisfies SealWorkerData })
      w.on('message', (m: PackedResults) => { for (const r of unpackResults(m)) this.done(r) })
      w.on('error', err => { this.done({ id: 0, length: 0 }); for (const p of this.pending.values()) p.reject(err) })
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
    if (key.length !== 32 || pos.objectId.length !== 16) throw new RangeError('a 32-byte key and a 16-byte object id') // else its whole batch would fail
    const slot = await this.slot()
    const offset = slot * this.slotSize
    copyBytes(new Uint8Array(this.sab, offset, plain.length), 0, plain)
    const id = this.nextId++
    // Key and object id are copied into the batch's buffer when it is posted (seal-jobs.ts).
    const job: SealJob = { id, offset, length: plain.length, key, type: pos.type, objectId: pos.objectId, index: pos.index }
    const r = await this.run(job, slot)
    let released = false
    return {
      sealed: Buffer.from(this.sab, offset, r.length),
      digest: Buffer.from(new Uint8Array(this.sab, offset + this.slotSize - DIGEST_TAIL, DIGEST_TAIL)), // a copy: the slot is reused
      release: () => { if (!released) { released = true; this.releaseSlot(slot) } }
    }
  }

  private async run (job: SealJob, slot: number): Promise<SealResult> {
    return await new Promise<SealResult>((resolve, reject) => {
      // Workers keep the process alive only while they have work.
      if (this.pending.size === 0) for (const w of this.workers) w.ref()
      this.pending.set(job.id, { resolve, reject, slot })
      this.batch.push(job)
      if (!BATCH || this.batch.length >= BATCH_JOBS) this.post()
      else if (this.batch.length === 1) setImmediate(() => this.post()) // the rest of this turn's (a write's blocks seal between its awaits)
    })
  }

  private post (): void {
    const jobs = this.batch
    this.batch = []
    if (jobs.length === 0) return
    let packed: ArrayBuffer
    try {
      packed = packJobs(jobs)
    } catch (err) {
      for (const j of jobs) this.done({ id: j.id, length: 0, error: (err as Error).message })
      return
    }
    this.workers[this.turn++ % this.workers.length].postMessage(packed) // cloned: a few hundred bytes
    this.counts.messages++
    this.counts.jobs += jobs.length
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
