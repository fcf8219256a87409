// Worker thread of SealPool: seals one block in place in a slot moved here and hashes the result
// (BLAKE3, the CID's hash), or opens one in place, then moves the slot back. Its allocations live
// in this isolate, so the main thread's GC never sees them.
import { parentPort } from 'node:worker_threads'
import { sealInto, open } from './aead.js'
import { blake3 } from './blake3.js'
import { AuthError } from './errors.js'

export interface SealJob {
  op: 'seal' | 'open'
  id: number
  /** The slot, transferred. */
  buf: ArrayBuffer
  length: number
  key: Uint8Array
  type: number
  objectId: Uint8Array
  index: number
}

export interface SealResult { id: number, buf: ArrayBuffer, length: number, digest: Uint8Array, error?: string, auth?: boolean }

const NO_DIGEST = new Uint8Array(0)
const port = parentPort!
port.on('message', (job: SealJob) => {
  const slot = Buffer.from(job.buf)
  const pos = { type: job.type, objectId: job.objectId, index: job.index }
  let r: SealResult
  try {
    if (job.op === 'open') {
      const plain = open(job.key, pos, slot.subarray(0, job.length))
      r = { id: job.id, buf: job.buf, length: plain.copy(slot), digest: NO_DIGEST }
    } else {
      const length = sealInto(job.key, pos, slot.subarray(0, job.length), slot)
      r = { id: job.id, buf: job.buf, length, digest: blake3(slot.subarray(0, length)) }
    }
  } catch (err) {
    r = { id: job.id, buf: job.buf, length: 0, digest: NO_DIGEST, error: (err as Error).message, auth: err instanceof AuthError }
  }
  port.postMessage(r, [job.buf])
})
