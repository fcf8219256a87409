// Where this device's secret record lives: the OS keychain (Secret Service on Linux, Keychain on
// macOS, Credential Manager on Windows) through @napi-rs/keyring, or, where no keychain answers,
// an encrypted file keystore (a passphrase box, 0600). Both hold the same opaque bytes.
import { AsyncEntry } from '@napi-rs/keyring'
import { randomBytes } from 'node:crypto'
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KeysError } from './errors.js'
import { BoxPurpose, openWithPassphrase, sealWithPassphrase } from './passbox.js'

export const KEYCHAIN_SERVICE = 'space'
export const KEYSTORE_FILE = 'keystore.bin'

export type KeystoreBackend = 'keychain' | 'file'

export interface SecretStore {
  readonly backend: KeystoreBackend
  /** One line for `space doctor`. */
  describe (): string
  get (): Promise<Buffer | null>
  set (secret: Uint8Array): Promise<void>
  delete (): Promise<void>
}

function keychainError (err: unknown): KeysError {
  const why = (err instanceof Error ? err.message : String(err)).split('\n')[0]
  return new KeysError('ERR_KEYCHAIN_UNAVAILABLE', `OS keychain unavailable: ${why}`, { cause: err })
}

/** Pinned to the Secret Service on Linux: the kernel keyring fallback forgets secrets on reboot. */
function entry (account: string): AsyncEntry {
  try {
    return new AsyncEntry(KEYCHAIN_SERVICE, account, { linux: { store: 'secret-service' } })
  } catch (err) {
    throw keychainError(err)
  }
}

export class KeychainStore implements SecretStore {
  readonly backend = 'keychain'
  constructor (readonly account: string) {}
  describe (): string { return `OS keychain (${process.platform === 'linux' ? 'Secret Service' : process.platform}), service "${KEYCHAIN_SERVICE}", account "${this.account}"` }

  async get (): Promise<Buffer | null> {
    try {
      const v = await entry(this.account).getSecret()
      return v === null ? null : Buffer.from(v)
    } catch (err) { throw err instanceof KeysError ? err : keychainError(err) }
  }

  async set (secret: Uint8Array): Promise<void> {
    try {
      await entry(this.account).setSecret(secret)
    } catch (err) { throw err instanceof KeysError ? err : keychainError(err) }
  }

  async delete (): Promise<void> {
    try {
      await entry(this.account).deleteCredential()
    } catch (err) { throw err instanceof KeysError ? err : keychainError(err) }
  }
}

/** Round-trips a throwaway secret; a keychain that is present but locked or broken fails here. */
export async function probeKeychain (): Promise<{ ok: true } | { ok: false, reason: string }> {
  const probe = new KeychainStore(`probe-${randomBytes(8).toString('hex')}`)
  const value = randomBytes(16)
  try {
    await probe.set(value)
    const back = await probe.get()
    await probe.delete()
    if (back === null || !back.equals(value)) return { ok: false, reason: 'OS keychain unavailable: a stored secret did not read back' }
    return { ok: true }
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) }
  }
}

export class FileKeystore implements SecretStore {
  readonly backend = 'file'
  readonly path: string
  /**
   * `passphrase` null means the file was (or will be) written with --insecure-no-passphrase:
   * still sealed, but anyone who can read the file can open it.
   */
  constructor (configDir: string, private readonly passphrase: string | null) {
    this.path = join(configDir, KEYSTORE_FILE)
  }

  describe (): string {
    return `encrypted file keystore ${this.path} (${this.passphrase === null ? 'NO PASSPHRASE: readable by anyone who can read this file' : 'passphrase, scrypt'})`
  }

  async get (): Promise<Buffer | null> {
    let box: Buffer
    try {
      box = await readFile(this.path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    return await openWithPassphrase(BoxPurpose.Keystore, this.passphrase ?? '', box)
  }

  async set (secret: Uint8Array): Promise<void> {
    const { box } = await sealWithPassphrase(BoxPurpose.Keystore, this.passphrase ?? '', secret, { noPassphrase: this.passphrase === null })
    await writePrivateFile(this.path, box)
  }

  async delete (): Promise<void> { await rm(this.path, { force: true }) }
}

/** Write-then-rename with 0600 so a crash never leaves a half-written or world-readable file. */
export async function writePrivateFile (path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, data, { mode: 0o600, flush: true })
  await chmod(tmp, 0o600)
  await rename(tmp, path)
}
