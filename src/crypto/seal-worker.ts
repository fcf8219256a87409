// Worker thread of SealPool: seals blocks in place in their shared slots (v2: 32 segments, in
// native code where the addon is built) and hashes each result (BLAKE3, the CID's hash, written
// to the slot's end, at digestAt); jobs come and results go a batch per message. (Reads open
// blocks in native code: open-file.ts.) Its allocations live in this isolate, so the main
// thread's GC never sees them.
import { parentPort, workerData } from 'node:worker_threads'
import { sealInto } from './aead.js'
import { blake3 } from './blake3.js'
import { packResults, unpackJobs, type SealResult } from './seal-jobs.js'

/** Given once, at start: the pool's slots, and where in each slot the digest goes. */
export interface SealWorkerData { sab: SharedArrayBuffer, slotSize: number, digestAt: number }

const port = parentPort!
const { sab, slotSize, digestAt } = workerData as SealWorkerData
const slots = Buffer.from(sab)
port.on('message', (packed: ArrayBuffer) => {
  const results: SealResult[] = []
  for (const job of unpackJobs(packed)) {
    try {
      // One allocation per block (the cipher's output): this isolate's GC stays cheap too.
      const slot = slots.subarray(job.offset, job.offset + slotSize)
      const length = sealInto(job.key, { type: job.type, objectId: job.objectId, index: job.index }, slot.subarray(0, job.length), slot)
      if (length > digestAt) throw new RangeError('sealed block larger than its slot')
      slot.set(blake3(slot.subarray(0, length)), digestAt)
      results.push({ id: job.id, length })
    } catch (err) {
      results.push({ id: job.id, length: 0, error: (err as Error).message })
    }
  }
  port.postMessage(packResults(results))
})
// Loaded: the pool's `ready` (a mount is announced once its worker no longer competes for a CPU).
port.postMessage(packResults([{ id: 0, length: 0 }]))
