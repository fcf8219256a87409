// `space fsck`: an offline check of a store under its lock. The journal's framing and every
// record's authentication, every pack's header and record framing, and for the head commit
// every reachable node and block (CID against bytes, seal). Reports what is damaged; repair.ts
// acts on the same findings.
import { promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { Journal } from '../store/journal.js'
import { CommitLog } from '../fs/tree/commit-log.js'
import type { CommitRecord } from '../fs/tree/format.js'
import { loadMeta } from './store-meta.js'
import { packsHoldRecords } from './quarantine.js'
import { headBytesHold } from './recover.js'
import { scanPacks, checkIndexes, type PackScan } from './pack-scan.js'
import { TreeChecker, type TreeProblem, type TreeCounts } from './tree-check.js'

/** A journal frame that authenticates: its commit and where the frame lies. */
export interface FoundCommit { seq: number, record: CommitRecord, sealed: Buffer, offset: number }

export interface FsckReport {
  dataDir: string
  clean: boolean
  /** Damage, one line each. */
  problems: string[]
  /** Not damage: what the next open recovers by itself (a torn journal tail). */
  notes: string[]
  journal: { bytes: number, frames: number, commits: number, missing: boolean }
  packs: { count: number, bytes: number, records: number }
  /** The newest commit that authenticates, and what its tree holds. */
  head: { seq: number, counts: TreeCounts, damage: TreeProblem[] } | null
}

/** Everything fsck learned, for repair to act on. */
export interface FsckState {
  /** report.problems with tree damage described without paths (for files on disk). */
  problemsWithoutPaths: string[]
  report: FsckReport
  storeId: Buffer
  commits: FoundCommit[]
  journalData: Buffer | null
  packs: PackScan
  checker: TreeChecker
}

/** Record `seq` opened by `log`, or null when it is not that record (or not sealed by its key). */
function openRecord (log: CommitLog, sealed: Buffer, seq: number): CommitRecord | null {
  try { return log.open(sealed, seq) } catch { return null }
}

/** How many sequence numbers past the expected one a frame after damage may carry. */
const SEQ_SEARCH = 256

/** Checks the store; the caller holds its lock. */
export async function inspect (dataDir: string, masterKey: Buffer): Promise<FsckState> {
  dataDir = resolve(dataDir)
  const meta = await loadMeta(dataDir, masterKey, false)
  const storeId = Buffer.from(meta.id, 'hex')
  const log = new CommitLog(masterKey, storeId, { append: async () => {} })
  const packsDir = join(dataDir, 'packs')
  const report: FsckReport = {
    dataDir, clean: true, problems: [], notes: [],
    journal: { bytes: 0, frames: 0, commits: 0, missing: false },
    packs: { count: 0, bytes: 0, records: 0 },
    head: null
  }

  let data: Buffer | null = null
  try {
    data = await fsp.readFile(join(dataDir, 'journal'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      report.journal.missing = true
      if (await packsHoldRecords(packsDir)) report.problems.push('journal: missing, but the packs hold blocks')
    } else report.problems.push(`journal: cannot be read (${(err as Error).message})`)
  }

  const commits: FoundCommit[] = []
  if (data != null) {
    report.journal.bytes = data.length
    const scan = Journal.scan(data)
    const frames: Array<{ offset: number, payload: Buffer }> = []
    let off = 0
    for (const r of scan.records) { frames.push({ offset: off, payload: r }); off += 8 + r.length }
    frames.push(...scan.after)
    report.journal.frames = frames.length
    if (scan.bad != null) {
      const where = `frame ${scan.records.length + 1} at byte ${scan.bad.offset} (${scan.bad.reason})`
      if (scan.after.length === 0) report.notes.push(`journal: torn tail: ${where}, ${data.length - scan.end} bytes; the next open cuts it and keeps it in the quarantine`)
      else report.problems.push(`journal: ${where}, with ${scan.after.length} valid frame(s) after it`)
    }
    let expected = 1
    for (const [i, f] of frames.entries()) {
      const afterDamage = i >= scan.records.length
      let rec: CommitRecord | null = null
      for (let seq = expected; rec == null && seq < expected + (afterDamage ? SEQ_SEARCH : 1); seq++) rec = openRecord(log, f.payload, seq)
      if (rec == null) {
        report.problems.push(`journal: the record at byte ${f.offset}${afterDamage ? '' : ` (commit ${expected})`} fails authentication`)
        expected++
        continue
      }
      commits.push({ seq: rec.seq, record: rec, sealed: f.payload, offset: f.offset })
      expected = rec.seq + 1
    }
    report.journal.commits = commits.length
    if (commits.length === 0 && await packsHoldRecords(packsDir)) report.problems.push('journal: holds no commit, but the packs hold blocks')
  }

  // The open's rule (recover.ts): a head whose checked pack bytes are not all there was never acknowledged.
  const last = commits.at(-1)
  if (last != null && !await headBytesHold(dataDir, last.record)) {
    commits.pop()
    report.notes.push(`journal: commit ${last.seq}, the last, was never acknowledged (its pack bytes are not all on disk); the next open sets it aside in the quarantine`)
  }
  const packs = await scanPacks(packsDir)
  report.packs = { count: packs.packs.size, bytes: packs.bytes, records: packs.records }
  const head = commits.at(-1)
  // Past the head's watermark lie only writes no commit names (a crash's): the next open drops them.
  const [wmPack, wmOffset] = head?.record.pack ?? [0, 0]
  for (const p of packs.packs.values()) {
    for (const x of p.problems) {
      if (report.journal.missing || p.id < wmPack || (p.id === wmPack && x.offset < wmOffset)) report.problems.push(x.text)
      else report.notes.push(`${x.text} (past the head's watermark: uncommitted, dropped on the next open)`)
    }
  }

  // Not damage: an index that does not check is rebuilt from its pack, never trusted.
  report.notes.push(...await checkIndexes(packsDir, packs))

  const checker = new TreeChecker(packsDir, packs.index)
  if (head != null) {
    const w = watermarkProblem(packs, head.record)
    if (w != null) report.problems.push(`commit ${head.seq}: ${w}`)
    const counts: TreeCounts = { dirs: 0, files: 0, blocks: 0 }
    const damage = await checker.check(head.record.root, counts, head.record.links)
    report.head = { seq: head.seq, counts, damage }
    for (const d of damage) report.problems.push(`commit ${head.seq}: ${describe(d)}`)
  }
  report.clean = report.problems.length === 0
  // What repair writes to disk (quarantine/TIME/fsck.json) names no path: paths are the user's data.
  const withoutPaths = report.problems.slice(0, report.problems.length - (report.head?.damage.length ?? 0))
    .concat((report.head?.damage ?? []).map(d => `commit ${head!.seq}: ${describe(d, false)}`))
  return { report, storeId, commits, journalData: data, packs, checker, problemsWithoutPaths: withoutPaths }
}

/** One damaged object as a line; `paths` false leaves the path out (for what goes to disk). */
export function describe (d: TreeProblem, paths = true): string {
  return `${paths ? d.path : 'an object'}${d.block != null ? ` block ${d.block}` : ''}${d.cid !== '' ? ` (${d.cid})` : ''}: ${d.what}`
}

/** Why the store could not open at this commit's watermark, or null. */
export function watermarkProblem (packs: PackScan, rec: CommitRecord): string | null {
  const [id, offset] = rec.pack
  const last = packs.packs.get(id)
  if (last == null) return `pack ${id} it names is missing`
  if (last.size < offset) return `pack ${id} is shorter (${last.size} bytes) than the ${offset} it recorded`
  // Bad framing before the watermark does not disqualify a commit: the store skips it on open
  // (its blocks read as missing), and the commit's tree is checked object by object. Without
  // damage before it, the watermark must end a record.
  if ((last.firstBad == null || last.firstBad >= offset) && !last.boundaries.has(offset)) return `its watermark ${offset} in pack ${id} is not at a record's end`
  return null
}
