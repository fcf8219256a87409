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

/** O_DIRECT's unit: a direct run is read from and to page boundaries. */
const PAGE = 4096
/** What a pool's buffers must hold for direct runs: a run and the pages it starts and ends in. */
export const DIRECT_RUN_BYTES = MAX_RUN_BYTES + 2 * PAGE

/**
 * One read: `cids` lie in [position, position + length) of `fd`, the i-th at offsets[i];
 * `direct`: fd is an O_DIRECT descriptor (read by whole pages into a page-aligned buffer).
 */
interface Run { fd: number, position: number, length: number, cids: CID[], offsets: number[], lengths: number[], direct: boolean }
type Part = Run | { cid: CID }

/**
 * `cids` cut into runs (in order): consecutive blocks of one file whose records follow each other
 * with at most a record header between them, up to MAX_RUN_BYTES; a block not on disk is a part
 * of its own (read with get()). `direct`: runs of large records are planned on the store's
 * O_DIRECT descriptors (PackStore.locate), where the disk writes into the reader's buffer: a
 * buffered read of blocks the store appended with O_DIRECT (so not cached) cost the kernel a
 * page-cache fill and a copy, 0.9 s of CPU per GiB here against 0.15 s direct.
 */
export function planRuns (src: Pick<RunSource, 'locate'>, cids: CID[], maxRun = MAX_RUN_BYTES, direct = false): Part[] {
  const parts: Part[] = []
  let run: Run | null = null
  for (const cid of cids) {
    let at = src.locate(cid, !direct)
    if (at?.direct === true && at.length > maxRun) at = src.locate(cid, true) // a block bigger than a run: buffered, on its own
    if (at == null) { run = null; parts.push({ cid }); continue }
    const isDirect = at.direct === true
    const end = run == null ? 0 : run.position + run.length
    if (run != null && at.fd === run.fd && run.direct === isDirect && at.position >= end && at.position - end <= MAX_GAP && at.position + at.length - run.position <= maxRun) {
      run.offsets.push(at.position - run.position)
      run.lengths.push(at.length)
      run.cids.push(cid)
      run.length = at.position + at.length - run.position
      continue
    }
    run = { fd: at.fd, position: at.position, length: at.length, cids: [cid], offsets: [0], lengths: [at.length], direct: isDirect }
    parts.push(run)
  }
  return parts
}

/** Reads buf's bytes at `position` of `fd` until at least `need` are in (the file may end after them: a direct read asks for whole pages). */
async function pread (fd: number, buf: Buffer, position: number, need = buf.length): Promise<void> {
  for (let done = 0; done < need;) {
    const n = await new Promise<number>((resolve, reject) => fsRead(fd, buf, done, buf.length - done, position + done, (err, bytesRead) => err != null ? reject(err) : resolve(bytesRead)))
    if (n === 0) throw corrupt(`a run of blocks is cut short at ${position + done}`)
    done += n
  }
}

async function readPart (src: RunSource, p: Part, pool?: BufferPool): Promise<RunBlock[]> {
  if (!('fd' in p)) return [{ cid: p.cid, bytes: await src.get(p.cid) }]
  // A direct run is read from the page holding its start to the page boundary after its end.
  const lead = p.direct ? p.position % PAGE : 0
  const span = p.direct ? Math.ceil((lead + p.length) / PAGE) * PAGE : p.length
  const lease = pool?.lease(span) ?? null
  const buf = lease?.buf ?? Buffer.allocUnsafe(span)
  try {
    try {
      await pread(p.fd, buf, p.position - lead, lead + p.length)
    } catch (err) {
      if (!p.direct) throw err
      // The kernel refused the direct read after all (a file system without O_DIRECT for this
      // file): each block through the store's checked get().
      return await Promise.all(p.cids.map(async cid => ({ cid, bytes: await src.get(cid) })))
    }
    return p.cids.map((cid, i) => ({ cid, bytes: buf.subarray(lead + p.offsets[i], lead + p.offsets[i] + p.lengths[i]), release: lease?.hold() }))
  } finally {
    lease?.done()
  }
}

/**
 * The blocks of `cids`, in order, unchecked (see above), up to `ahead` runs being read at once;
 * from `pool`, each block carries its release. With a pool of page-aligned buffers of at least
 * DIRECT_RUN_BYTES, runs of large records are read with O_DIRECT (planRuns).
 * A block the store lacks throws the store's not-found.
 */
export async function * readRuns (src: RunSource, cids: CID[], pool?: BufferPool, ahead = 4): AsyncGenerator<RunBlock> {
  const direct = pool != null && pool.aligned && pool.size >= DIRECT_RUN_BYTES
  for await (const blocks of inOrder(planRuns(src, cids, MAX_RUN_BYTES, direct), ahead, async part => await readPart(src, part, pool))) yield * blocks
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
