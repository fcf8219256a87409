// Reads many blocks' sealed bytes in runs: blocks that lie one after another in a pack (what an
// upload or a commit appended together) are read with one pread into one buffer, and handed out
// as views of it, NOT checked against their CIDs. For a sender whose receiver checks every block
// (the pusher to the hub, the hub to a device): one allocation and one system call per run,
// where a read per block cost a 128 KiB buffer, a pool round trip and a BLAKE3 pass each.
import { read as fsRead } from 'node:fs'
import type { CID } from './cid.js'
import type { FileRange } from '../crypto/open-file.js'
import { corrupt } from './errors.js'
import type { BufferPool } from './buffer-pool.js'

/** What the runs need of a store: where a block lies (buffered), and its bytes when it is not on disk yet. */
export interface RunSource {
  locate: (cid: CID, buffered?: boolean) => FileRange | null
  get: (cid: CID) => Promise<Uint8Array>
}

/** A block read; `release` (a view of a pooled run): call once its bytes are no longer read. */
export interface RunBlock { cid: CID, bytes: Uint8Array, release?: () => void }

/** A run's span at most (a run of one block may be larger). */
export const MAX_RUN_BYTES = 1024 * 1024
/** Bytes between two records (a record header) up to which they still count as one run. */
const MAX_GAP = 256

/** One read: `cids` lie in [position, position + length) of `fd`, the i-th at offsets[i]. */
interface Run { fd: number, position: number, length: number, cids: CID[], offsets: number[], lengths: number[] }
type Part = Run | { cid: CID }

/**
 * `cids` cut into runs (in order): consecutive blocks of one file whose records follow each other
 * with at most a record header between them, up to MAX_RUN_BYTES; a block not on disk is a part
 * of its own (read with get()).
 */
export function planRuns (src: Pick<RunSource, 'locate'>, cids: CID[], maxRun = MAX_RUN_BYTES): Part[] {
  const parts: Part[] = []
  let run: Run | null = null
  for (const cid of cids) {
    const at = src.locate(cid, true)
    if (at == null) { run = null; parts.push({ cid }); continue }
    const end = run == null ? 0 : run.position + run.length
    if (run != null && at.fd === run.fd && at.position >= end && at.position - end <= MAX_GAP && at.position + at.length - run.position <= maxRun) {
      run.offsets.push(at.position - run.position)
      run.lengths.push(at.length)
      run.cids.push(cid)
      run.length = at.position + at.length - run.position
      continue
    }
    run = { fd: at.fd, position: at.position, length: at.length, cids: [cid], offsets: [0], lengths: [at.length] }
    parts.push(run)
  }
  return parts
}

async function pread (fd: number, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const n = await new Promise<number>((resolve, reject) => fsRead(fd, buf, done, buf.length - done, position + done, (err, bytesRead) => err != null ? reject(err) : resolve(bytesRead)))
    if (n === 0) throw corrupt(`a run of blocks is cut short at ${position + done}`)
    done += n
  }
}

async function readPart (src: RunSource, p: Part, pool?: BufferPool): Promise<RunBlock[]> {
  if (!('fd' in p)) return [{ cid: p.cid, bytes: await src.get(p.cid) }]
  const lease = pool?.lease(p.length) ?? null
  const buf = lease?.buf ?? Buffer.allocUnsafe(p.length)
  try {
    await pread(p.fd, buf, p.position)
    return p.cids.map((cid, i) => ({ cid, bytes: buf.subarray(p.offsets[i], p.offsets[i] + p.lengths[i]), release: lease?.hold() }))
  } finally {
    lease?.done()
  }
}

/**
 * The blocks of `cids`, in order, unchecked (see above), up to `ahead` runs being read at once;
 * from `pool`, each block carries its release.
 * A block the store lacks throws the store's not-found.
 */
export async function * readRuns (src: RunSource, cids: CID[], pool?: BufferPool, ahead = 4): AsyncGenerator<RunBlock> {
  for await (const blocks of inOrder(planRuns(src, cids), ahead, async part => await readPart(src, part, pool))) yield * blocks
}

/**
 * `start(item)` for each item, up to `ahead` of them under way at once, the results yielded in
 * the items' order (the pusher's block reads and the runs above).
 */
export async function * inOrder<T, R> (items: T[], ahead: number, start: (item: T) => Promise<R>): AsyncGenerator<R> {
  const started: Array<Promise<R>> = []
  let next = 0
  const begin = (): void => {
    const p = start(items[next++])
    p.catch(() => {}) // awaited in order below; not unhandled if the consumer stops first
    started.push(p)
  }
  while (next < items.length && started.length < ahead) begin()
  while (started.length > 0) {
    const r = await started.shift()!
    if (next < items.length) begin()
    yield r
  }
}
