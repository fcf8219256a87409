// Moving a store to a new master key, and the migration from the temporary key file to the
// identity's key after `space init`. The master key seals only the commit records and the key
// check (every node has its own random key), so a rekey rewrites the journal and store.json.
import { promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { Journal } from '../store/journal.js'
import { CommitLog } from '../fs/tree/commit-log.js'
import { takeLock, releaseLock } from './lock.js'
import { keyOpens, loadMeta, readMeta, writeMeta } from './store-meta.js'
import { checkWatermark, decodeOrRefuse, keepTornTail, readJournal } from './recover.js'

const noSink = { append: async () => {} }

export async function rekey (dataDir: string, oldKey: Buffer, newKey: Buffer): Promise<void> {
  dataDir = resolve(dataDir)
  const lockPath = join(dataDir, 'lock')
  await takeLock(lockPath)
  try {
    const meta = await loadMeta(dataDir, oldKey, false)
    const id = Buffer.from(meta.id, 'hex')
    const journalPath = join(dataDir, 'journal')
    // A damaged journal refuses here as on open: a rewrite would drop what follows the damage.
    const jb = await readJournal(dataDir)
    const raw = jb.scan.records
    let records
    try {
      records = new CommitLog(oldKey, id, noSink).decodeAll(raw)
    } catch (err) {
      // An earlier rekey got as far as the journal: only store.json is left to do.
      decodeOrRefuse(dataDir, r => new CommitLog(newKey, id, noSink).decodeAll(r), raw)
      await writeMeta(dataDir, { ...meta, check: CommitLog.keyCheck(newKey, id).toString('base64') })
      return
    }
    // The rewritten journal ends at the last complete record: a torn tail is kept aside first.
    await checkWatermark(dataDir, records.at(-1) ?? null)
    await keepTornTail(dataDir, jb, records.at(-1) ?? null)
    const tmp = journalPath + '.rekey'
    await fsp.rm(tmp, { force: true })
    const { journal } = await Journal.open(tmp)
    const sealer = new CommitLog(newKey, id, journal)
    for (const r of records) await sealer.append(r)
    await journal.close()
    // Journal first: a crash between the two renames leaves a journal that the new key opens
    // and a key check that only the old key opens; running the rekey again finishes it.
    await fsp.rename(tmp, journalPath)
    await writeMeta(dataDir, { ...meta, check: CommitLog.keyCheck(newKey, id).toString('base64') })
  } finally {
    await releaseLock(lockPath)
  }
}

/**
 * The retired temporary key file (newest first) that opens the store in `dataDir`, or null.
 * `prefix` is the file name retired keys start with (keys/drive-key.ts).
 */
export async function findRetiredKey (configDir: string, dataDir: string, prefix: string): Promise<{ name: string, key: Buffer } | null> {
  const retired = (await fsp.readdir(configDir)).filter(n => n.startsWith(prefix)).sort().reverse()
  const meta = await readMeta(dataDir)
  for (const name of retired) {
    const key = await fsp.readFile(join(configDir, name))
    if (keyOpens(key, meta)) return { name, key }
  }
  return null
}
