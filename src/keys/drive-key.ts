// The drive's master key. With an identity it is HKDF(seed, "space/v1/drive-master"), so the
// same 24 words open the same drive on any machine. Without one, a random key in
// <configDir>/master.key stands in: TEMPORARY, unrecoverable if lost, retired by `space init`.
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KEYSTORE_PASSPHRASE_ENV, openAccount, readIdentityConfig } from './account.js'
import { KeysError } from './errors.js'

export const TEMPORARY_KEY_FILE = 'master.key'
export const RETIRED_KEY_FILE = 'master.key.retired'

export interface DriveKey { key: Buffer, source: 'identity' | 'temporary-keyfile' }

export async function loadDriveKey (configDir: string, opts: { create?: boolean, passphrase?: string } = {}): Promise<DriveKey> {
  if (await readIdentityConfig(configDir) !== null) {
    const account = await openAccount(configDir, { passphrase: opts.passphrase ?? process.env[KEYSTORE_PASSPHRASE_ENV] })
    return { key: account.identity.driveMaster, source: 'identity' }
  }
  const path = join(configDir, TEMPORARY_KEY_FILE)
  try {
    const key = await readFile(path)
    if (key.length !== 32) throw new KeysError('ERR_BAD_FORMAT', `${path} must hold exactly 32 bytes`)
    return { key, source: 'temporary-keyfile' }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (opts.create !== true) throw new KeysError('ERR_NO_IDENTITY', `no identity in ${configDir} (run "space init")`)
  await mkdir(configDir, { recursive: true, mode: 0o700 })
  await chmod(configDir, 0o700)
  const key = randomBytes(32)
  // 'wx': two daemons racing to create must not each write their own key.
  try {
    await writeFile(path, key, { mode: 0o600, flag: 'wx', flush: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return await loadDriveKey(configDir, opts)
    throw err
  }
  return { key, source: 'temporary-keyfile' }
}

/**
 * Called when an identity takes over: the temporary key is kept (renamed, still 0600) because
 * data written under it needs it to be read or migrated. Returns the new path, or null.
 */
export async function retireTemporaryKey (configDir: string): Promise<string | null> {
  const from = join(configDir, TEMPORARY_KEY_FILE)
  const to = join(configDir, `${RETIRED_KEY_FILE}-${Date.now()}`)
  try {
    await rename(from, to)
    return to
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}
