// The messages between SealPool and its worker (seal-pool.ts, seal-worker.ts): a batch of seal
// jobs packed into one ArrayBuffer, and their results into one Float64Array. A message of job
// objects (each with its key and object id as typed arrays of their own) cost both threads
// ~57 us per batch of 8 to clone, packed ~6-9 us (node 22, this machine kind).
export interface SealJob {
  id: number
  /** Where the block's plaintext lies in the shared slots (and its sealed bytes will). */
  offset: number
  length: number
  key: Uint8Array
  type: number
  objectId: Uint8Array
  index: number
}

/** A job's sealed length (0 with an error); its digest is in its slot (SealWorkerData.digestAt). */
export interface SealResult { id: number, length: number, error?: string }

const KEY = 32
const OBJECT_ID = 16
const NUMS = 5 // id, offset, length, type, index
const JOB = 96 // NUMS f64, then key and object id, padded to 8

/** Jobs as one buffer. */
export function packJobs (jobs: SealJob[]): ArrayBuffer {
  const buf = new ArrayBuffer(jobs.length * JOB)
  const f = new Float64Array(buf)
  const u = new Uint8Array(buf)
  jobs.forEach((j, i) => {
    if (j.key.length !== KEY || j.objectId.length !== OBJECT_ID) throw new RangeError('seal job: a 32-byte key and a 16-byte object id')
    f.set([j.id, j.offset, j.length, j.type, j.index], i * (JOB / 8))
    u.set(j.key, i * JOB + NUMS * 8)
    u.set(j.objectId, i * JOB + NUMS * 8 + KEY)
  })
  return buf
}

/** The jobs of a packed buffer (key and object id: views into it). */
export function unpackJobs (buf: ArrayBuffer): SealJob[] {
  const f = new Float64Array(buf)
  const u = new Uint8Array(buf)
  const out: SealJob[] = []
  for (let i = 0; i < buf.byteLength / JOB; i++) {
    const n = i * (JOB / 8)
    const b = i * JOB + NUMS * 8
    out.push({ id: f[n], offset: f[n + 1], length: f[n + 2], type: f[n + 3], index: f[n + 4], key: u.subarray(b, b + KEY), objectId: u.subarray(b + KEY, b + KEY + OBJECT_ID) })
  }
  return out
}

/** Results as one message: [id, length] per job, and the error messages of failed ones by id. */
export interface PackedResults { r: Float64Array, errors: Record<number, string> | null }

export function packResults (results: SealResult[]): PackedResults {
  const r = new Float64Array(results.length * 2)
  let errors: Record<number, string> | null = null
  results.forEach((x, i) => {
    r[i * 2] = x.id
    r[i * 2 + 1] = x.length
    if (x.error != null) (errors ??= {})[x.id] = x.error
  })
  return { r, errors }
}

export function unpackResults (m: PackedResults): SealResult[] {
  const out: SealResult[] = []
  for (let i = 0; i < m.r.length; i += 2) {
    const id = m.r[i]
    const error = m.errors?.[id]
    out.push(error != null ? { id, length: m.r[i + 1], error } : { id, length: m.r[i + 1] })
  }
  return out
}
