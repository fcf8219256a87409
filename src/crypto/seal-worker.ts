// Worker thread of SealPool: seals one block in place in a shared slot (v2: 32 segments, in
// native code where the addon is built) and hashes the result
// (BLAKE3, the CID's hash). (Reads open blocks in native code: open-file.ts.) Its allocations live in this isolate, so the
// main thread's GC never sees them.
import { parentPort, workerData } from 'node:worker_threads'
import { sealInto } from './aead.js'
import { blake3 } from './blake3.js'

export interface SealJob {
  id: number
  offset: number
  length: number
  key: Uint8Array
  type: number
  objectId: Uint8Array
  index: number
}

/** Given once, at start: the pool's slots. */
export interface SealWorkerData { sab: SharedArrayBuffer, slotSize: number }

export interface SealResult { id: number, length: number, digest: Uint8Array, error?: string }

const port = parentPort!
const { sab, slotSize } = workerData as SealWorkerData
const slots = Buffer.from(sab)
port.on('message', (job: SealJob) => {
  try {
    // One allocation per block (the cipher's output): this isolate's GC stays cheap too.
    const slot = slots.subarray(job.offset, job.offset + slotSize)
    const length = sealInto(job.key, { type: job.type, objectId: job.objectId, index: job.index }, slot.subarray(0, job.length), slot)
    const digest = blake3(slot.subarray(0, length))
    port.postMessage({ id: job.id, length, digest } satisfies SealResult)
  } catch (err) {
    port.postMessage({ id: job.id, length: 0, digest: new Uint8Array(0), error: (err as Error).message } satisfies SealResult)
  }
})
// Loaded: the pool's `ready` (a mount is announced once its worker no longer competes for a CPU).
port.postMessage({ id: 0, length: 0, digest: new Uint8Array(0) } satisfies SealResult)
