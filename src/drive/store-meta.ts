// store.json: the store's format version, random id and key check. Created with a new store;
// checked first on every open, so a wrong key is told apart from a damaged store.
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { CommitLog } from '../fs/tree/commit-log.js'
import { DriveError } from './errors.js'

/**
 * 2: sealed objects v2 (4 KiB segments) and patched blocks in block maps (docs/format.md). A
 * format 1 store opens and reads as it is; it becomes 2 when a drive opens it (what it seals
 * from then on is v2, beside the old v1 objects). A reader older than 2 refuses a format 2
 * store: "unknown store format 2" (ERR_STORE_CORRUPT).
 */
export const STORE_FORMAT = 2
/** Formats this build opens. */
const READABLE = [1, 2]

export interface StoreMeta { format: number, id: string, check: string }

/** Replaces store.json atomically and durably. */
export async function writeMeta (dataDir: string, meta: StoreMeta): Promise<void> {
  const path = join(dataDir, 'store.json')
  const tmp = path + '.tmp'
  await fsp.writeFile(tmp, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600, flush: true })
  await fsp.rename(tmp, path)
  await syncDir(dataDir)
}

export async function syncDir (dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

/** store.json parsed and checked for shape, without a key. */
export async function readMeta (dataDir: string, create = false, masterKey?: Buffer): Promise<StoreMeta> {
  const path = join(dataDir, 'store.json')
  let meta: StoreMeta
  try {
    meta = JSON.parse(await fsp.readFile(path, 'utf8')) as StoreMeta
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      const entries = (await fsp.readdir(dataDir).catch(() => [] as string[])).filter(n => n !== 'lock')
      if (!create || masterKey == null || entries.length > 0) {
        throw new DriveError(entries.length > 0 ? 'ERR_STORE_CORRUPT' : 'ERR_STORE_MISSING', `no store.json in ${dataDir}${entries.length > 0 ? ' (the directory holds other files: not a Space store, or a damaged one)' : ''}`)
      }
      const id = randomBytes(16)
      meta = { format: STORE_FORMAT, id: id.toString('hex'), check: CommitLog.keyCheck(masterKey, id).toString('base64') }
      await writeMeta(dataDir, meta)
      return meta
    }
    throw new DriveError('ERR_STORE_CORRUPT', `${path} is unreadable: ${(err as Error).message}`, { cause: err })
  }
  if (!READABLE.includes(meta.format)) throw new DriveError('ERR_STORE_CORRUPT', `${path}: unknown store format ${String(meta.format)}`)
  if (typeof meta.id !== 'string' || !/^[0-9a-f]{32}$/.test(meta.id) || typeof meta.check !== 'string') {
    throw new DriveError('ERR_STORE_CORRUPT', `${path} is malformed`)
  }
  return meta
}

/** Marks a store of an older format as STORE_FORMAT before anything of the new format is written to it. */
export async function upgradeMeta (dataDir: string, meta: StoreMeta): Promise<StoreMeta> {
  if (meta.format >= STORE_FORMAT) return meta
  const up = { ...meta, format: STORE_FORMAT }
  await writeMeta(dataDir, up)
  return up
}

/** store.json, checked against the key (ERR_WRONG_KEY); a new one when `create` and none exists. */
export async function loadMeta (dataDir: string, masterKey: Buffer, create: boolean): Promise<StoreMeta> {
  const meta = await readMeta(dataDir, create, masterKey)
  if (!keyOpens(masterKey, meta)) throw new DriveError('ERR_WRONG_KEY', `the key does not open the store in ${dataDir}`)
  return meta
}

export function keyOpens (key: Buffer, meta: StoreMeta): boolean {
  return CommitLog.verifyKey(key, Buffer.from(meta.id, 'hex'), Buffer.from(meta.check, 'base64'))
}
