// Worker thread of SealPool: seals one block in place in a shared slot and hashes the result.
// Its allocations live in this isolate, so the main thread's GC never sees them.
import { parentPort } from 'node:worker_threads'
import { createHash } from 'node:crypto'
import { seal } from './aead.js'

export interface SealJob {
  id: number
  sab: SharedArrayBuffer
  offset: number
  length: number
  key: Uint8Array
  type: number
  objectId: Uint8Array
  index: number
}

export interface SealResult { id: number, length: number, sha256: Uint8Array, error?: string }

const port = parentPort!
port.on('message', (job: SealJob) => {
  try {
    const slot = Buffer.from(job.sab, job.offset, job.length)
    const sealed = seal(job.key, { type: job.type, objectId: job.objectId, index: job.index }, slot)
    const out = Buffer.from(job.sab, job.offset, sealed.length)
    sealed.copy(out)
    const sha256 = createHash('sha256').update(sealed).digest()
    port.postMessage({ id: job.id, length: sealed.length, sha256 } satisfies SealResult)
  } catch (err) {
    port.postMessage({ id: job.id, length: 0, sha256: new Uint8Array(0), error: (err as Error).message } satisfies SealResult)
  }
})
