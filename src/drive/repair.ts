// `space fsck --repair`: back to the newest commit whose whole tree is intact. Commits are tried
// newest first (a commit is skipped when a reachable object is damaged or the packs do not hold
// up to its watermark); the journal is rewritten to end there (records re-sealed where their
// sequence number changes), and everything dropped (the old journal, pack bytes past the new
// watermark) is kept in the quarantine first. `fsckStore` runs check and repair under the lock.
import { promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { frame } from '../store/journal.js'
import { CommitLog } from '../fs/tree/commit-log.js'
import { DriveError } from './errors.js'
import { takeLock, releaseLock } from './lock.js'
import { syncDir } from './store-meta.js'
import { keepPackTail, newQuarantine, packIds, packName } from './quarantine.js'
import { inspect, describe, watermarkProblem, type FsckReport, type FsckState } from './fsck.js'

export interface RepairResult {
  /** The commit that is now the head (its new sequence number), or null: an empty tree. */
  head: { seq: number, was: number } | null
  previousHead: number | null
  skipped: Array<{ seq: number, reason: string }>
  quarantine: string
  keptBytes: number
}

export interface FsckResult { report: FsckReport, repair: RepairResult | null }

/** Checks (and with `repair`, repairs) the store in `dataDir`; the drive must not be mounted. */
export async function fsckStore (dataDir: string, masterKey: Buffer, opts: { repair?: boolean } = {}): Promise<FsckResult> {
  dataDir = resolve(dataDir)
  const lockPath = join(dataDir, 'lock')
  if (await fsp.stat(dataDir).catch(() => null) == null) throw new DriveError('ERR_STORE_MISSING', `no store in ${dataDir}`)
  await takeLock(lockPath)
  let state: FsckState | null = null
  try {
    state = await inspect(dataDir, masterKey)
    const fixed = opts.repair === true && !state.report.clean ? await repair(dataDir, masterKey, state) : null
    return { report: state.report, repair: fixed }
  } finally {
    await state?.checker.close()
    await releaseLock(lockPath)
  }
}

async function repair (dataDir: string, masterKey: Buffer, state: FsckState): Promise<RepairResult> {
  const packsDir = join(dataDir, 'packs')
  const newestFirst = [...state.commits].sort((a, b) => b.seq - a.seq)
  const skipped: RepairResult['skipped'] = []
  const skippedWithoutPaths: RepairResult['skipped'] = []
  let chosen = null
  for (const c of newestFirst) {
    const w = watermarkProblem(state.packs, c.record)
    if (w != null) { skipped.push({ seq: c.seq, reason: w }); skippedWithoutPaths.push({ seq: c.seq, reason: w }); continue }
    const damage = await state.checker.check(c.record.root, undefined, c.record.links)
    if (damage.length > 0) {
      const more = damage.length > 1 ? ` (and ${damage.length - 1} more)` : ''
      skipped.push({ seq: c.seq, reason: describe(damage[0]) + more })
      skippedWithoutPaths.push({ seq: c.seq, reason: describe(damage[0], false) + more })
      continue
    }
    chosen = c
    break
  }

  // The new journal: the commits up to the chosen one, numbered 1, 2, 3, ... again.
  const kept = chosen == null ? [] : state.commits.filter(c => c.seq <= chosen.seq).sort((a, b) => a.seq - b.seq)
  const resealed: Buffer[] = []
  const sealer = new CommitLog(masterKey, state.storeId, { append: async b => { resealed.push(Buffer.from(b)) } })
  const frames: Buffer[] = []
  for (const [i, c] of kept.entries()) {
    if (c.seq === i + 1) { frames.push(frame(c.sealed)); continue }
    await sealer.append({ ...c.record, seq: i + 1 })
    frames.push(frame(resealed.pop()!))
  }
  const wm = chosen == null ? null : { pack: chosen.record.pack[0], offset: chosen.record.pack[1] }

  // Keep first, then switch the journal, then cut: a crash anywhere leaves every byte somewhere.
  const q = await newQuarantine(dataDir)
  if (state.journalData != null) await fsp.writeFile(join(q, 'journal'), state.journalData, { mode: 0o600, flush: true })
  const keptBytes = await keepPackTail(packsDir, wm, q) + (state.journalData?.length ?? 0)
  const result: RepairResult = {
    head: chosen == null ? null : { seq: kept.length, was: chosen.seq },
    previousHead: state.commits.at(-1)?.seq ?? null,
    skipped,
    quarantine: q,
    keptBytes
  }
  // No path reaches the disk: the report as written names damaged objects by CID only.
  const report = {
    ...state.report,
    problems: state.problemsWithoutPaths,
    head: state.report.head == null ? null : { ...state.report.head, damage: state.report.head.damage.map(({ path: _, ...d }) => d) }
  }
  await fsp.writeFile(join(q, 'fsck.json'), JSON.stringify({ report, repair: { ...result, skipped: skippedWithoutPaths } }, null, 2) + '\n', { mode: 0o600, flush: true })
  await syncDir(q)
  const journal = join(dataDir, 'journal')
  await fsp.writeFile(journal + '.repair', Buffer.concat(frames), { mode: 0o600, flush: true })
  await fsp.rename(journal + '.repair', journal)
  await syncDir(dataDir)
  for (const id of await packIds(packsDir)) {
    const path = join(packsDir, packName(id))
    if (wm == null || id > wm.pack) await fsp.rm(path)
    else if (id === wm.pack && (await fsp.stat(path)).size > wm.offset) await fsp.truncate(path, wm.offset)
  }
  return result
}
