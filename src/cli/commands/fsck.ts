// space fsck: checks a store offline (the drive must not be mounted; fsck takes the store lock)
// and with --repair brings it back to the newest intact commit, keeping what it drops in
// <data>/quarantine/. Exit 0 when clean (or repaired), 19 when damage was found and left.
import { ExitCode as EXIT } from '../exit-codes.js'
import { exitCodeOf } from '../errors.js'
import { defineCommand, out, err } from './keys-common.js'
import { loadDriveKey, RETIRED_KEY_FILE } from '../../keys/drive-key.js'
import { resolveConfigDir, resolveDataDir } from '../../keys/paths.js'
import { readMeta, keyOpens } from '../../drive/store-meta.js'
import { findRetiredKey } from '../../drive/rekey.js'
import { fsckStore, type FsckResult } from '../../drive/repair.js'
import { DriveError } from '../../drive/errors.js'

/** The key that opens the store: the config dir's, else a retired temporary key not yet migrated. */
async function storeKey (configDir: string, dataDir: string): Promise<Buffer> {
  const { key } = await loadDriveKey(configDir)
  if (keyOpens(key, await readMeta(dataDir))) return key
  return (await findRetiredKey(configDir, dataDir, RETIRED_KEY_FILE))?.key ?? key
}

function print (write: (line: string) => void, r: FsckResult): void {
  const { report } = r
  write(`store    ${report.dataDir}`)
  write(`journal  ${report.journal.missing ? 'MISSING' : `${report.journal.bytes} bytes, ${report.journal.frames} valid frames, ${report.journal.commits} commits authenticate`}`)
  write(`packs    ${report.packs.count} packs, ${report.packs.bytes} bytes, ${report.packs.records} records`)
  if (report.head != null) {
    const c = report.head.counts
    write(`head     commit ${report.head.seq}: ${c.dirs} directories, ${c.files} files, ${c.blocks} blocks checked`)
  }
  for (const n of report.notes) write(`note     ${n}`)
  for (const p of report.problems) write(`DAMAGED  ${p}`)
  write(report.clean ? 'clean' : `${report.problems.length} problem(s)`)
  if (r.repair != null) {
    const x = r.repair
    for (const s of x.skipped) write(`skipped  commit ${s.seq}: ${s.reason}`)
    write(x.head == null
      ? 'repaired: no commit is intact; the drive is empty now'
      : `repaired: the head is commit ${x.head.was}${x.head.seq !== x.head.was ? ` (now numbered ${x.head.seq})` : ''}; the newest commit found was ${x.previousHead ?? 'none'}`)
    write(`kept     ${x.keptBytes} bytes in ${x.quarantine}`)
  }
}

export const command = defineCommand({
  name: 'fsck',
  summary: 'check the store offline (journal, packs, every block of the head); --repair recovers',
  usage: `usage: space fsck [--repair] [--json] [--data-dir DIR] [--config-dir DIR]

Checks the store while the drive is not mounted (takes the store lock): the journal's framing
and every commit record's authentication, every pack's header and record framing, and for the
head commit every reachable directory, block map and content block (its CID against its bytes,
and its seal). Prints what is damaged: which commit, which path and block.
  --repair           go back to the newest commit whose whole tree is intact: the journal is
                     rewritten to end there; the old journal and every pack byte past that
                     commit are kept in DATA/quarantine/TIME/, never deleted
  --json             the report (and repair) as one JSON object
  --data-dir DIR     the block store (default $XDG_DATA_HOME/space)
  --config-dir DIR   keys (default $XDG_CONFIG_HOME/space)
Exit 0: clean, or repaired. 19: damaged (without --repair). 12: the drive is mounted.`,
  options: { repair: { type: 'boolean' }, json: { type: 'boolean' }, 'data-dir': { type: 'string' } }
}, async (ctx, values) => {
  const configDir = resolveConfigDir(values['config-dir'] as string | undefined)
  const dataDir = resolveDataDir(values['data-dir'] as string | undefined)
  let r: FsckResult
  try {
    r = await fsckStore(dataDir, await storeKey(configDir, dataDir), { repair: values.repair === true })
  } catch (e) {
    if (!(e instanceof DriveError)) throw e
    err(ctx, `space fsck: ${e.message}`)
    return exitCodeOf(e)
  }
  if (values.json === true) out(ctx, JSON.stringify(r))
  else print(line => out(ctx, line), r)
  return r.report.clean || r.repair != null ? EXIT.OK : EXIT.STORE_DAMAGED
})
