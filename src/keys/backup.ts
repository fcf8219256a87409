// Key backup and recovery by passphrase: to the hub's vault (the server gets the sealed box and
// vsk, never vk) and to a local file. Both carry the same "vault file": the identity's entropy.
import { link, lstat, readFile, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { AuthError } from '../crypto/index.js'
import type { Account, VaultConfig } from './account.js'
import { KeysError } from './errors.js'
import { deriveIdentity } from './identity.js'
import { ENTROPY_LEN } from './mnemonic.js'
import { BOX_HEADER_LEN, BoxPurpose, checkKdfFloor, decodeBoxHeader, deriveBoxKeys, describeKdf, openBox, openWithPassphrase, sameKdf, sealWithPassphrase } from './passbox.js'
import { VaultClient, type VaultClientOptions } from './vault-client.js'
import type { ScryptParams } from '../crypto/index.js'
import { fromB64u } from './vault-protocol.js'

const VAULT_FILE_VERSION = 1

/** version u8 | entropy[32] | identity public key[32] (a check, so a wrong box is caught). */
function encodeVaultFile (account: Account): Buffer {
  return Buffer.concat([Buffer.from([VAULT_FILE_VERSION]), account.identity.entropy, account.identity.signing.publicKey])
}

function decodeVaultFile (plain: Buffer): Buffer {
  if (plain.length !== 1 + ENTROPY_LEN + 32 || plain[0] !== VAULT_FILE_VERSION) throw new KeysError('ERR_BAD_FORMAT', 'unknown vault file format')
  const entropy = plain.subarray(1, 1 + ENTROPY_LEN)
  if (!deriveIdentity(entropy).signing.publicKey.equals(plain.subarray(1 + ENTROPY_LEN))) {
    throw new KeysError('ERR_BAD_FORMAT', 'vault file is inconsistent: its entropy does not derive its public key')
  }
  return Buffer.from(entropy)
}

export async function backupToHub (account: Account, hub: string, username: string, passphrase: string, opts: VaultClientOptions = {}): Promise<VaultConfig> {
  const client = new VaultClient(hub, opts)
  const userId = await client.register(username, account.identity.signing)
  const token = await client.authenticate(userId, account.identity.signing)
  const { box, keys, header } = await sealWithPassphrase(BoxPurpose.Vault, passphrase, encodeVaultFile(account))
  await client.putVault(token, box, keys.vsk)
  const { N, r, p } = header.params
  return { hub: client.hub, username, userId, kdf: { N, r, p } }
}

export interface FetchOptions extends VaultClientOptions {
  /** The parameters remembered from this machine's last backup: any others are refused. */
  expectKdf?: ScryptParams
}

/** Fetches and opens the vault; changes nothing locally. Returns the identity's entropy. */
export async function fetchFromHub (hub: string, username: string, passphrase: string, opts: FetchOptions = {}): Promise<{ entropy: Buffer, vault: VaultConfig }> {
  const client = new VaultClient(hub, opts)
  const info = await client.lookup(username)
  const headerBytes = info.vaultHeader === null ? undefined : fromB64u(info.vaultHeader, BOX_HEADER_LEN)
  if (headerBytes === undefined) throw new KeysError('ERR_NOT_FOUND', `hub ${client.hub} has no key backup for "${username}"`)
  const header = decodeBoxHeader(headerBytes)
  if (header.purpose !== BoxPurpose.Vault) throw new KeysError('ERR_VAULT_TAMPERED', 'the hub sent a header that is not a vault header; refused')
  // Both checks come before scrypt runs: deriving is what a weak header is there to cheapen.
  checkKdfFloor(header.params)
  if (opts.expectKdf !== undefined && !sameKdf(header.params, opts.expectKdf)) {
    throw new KeysError('ERR_KDF_CHANGED', `the hub's vault header has other key derivation parameters (${describeKdf(header.params)}) than the backup made from this machine (${describeKdf(opts.expectKdf)}); refused`)
  }
  const keys = await deriveBoxKeys(passphrase, header)
  const box = await client.fetchVault(info.userId, keys.vsk)
  const tampered = new KeysError('ERR_VAULT_TAMPERED', 'the vault box from the hub failed authentication (tampered or corrupt); refused')
  if (!box.subarray(0, BOX_HEADER_LEN).equals(headerBytes)) throw tampered
  let plain: Buffer
  try {
    plain = openBox(box, keys.vk, BoxPurpose.Vault)
  } catch (err) {
    if (err instanceof AuthError) throw tampered
    throw err
  }
  const entropy = decodeVaultFile(plain)
  if (deriveIdentity(entropy).signing.publicKey.toString('base64url') !== info.publicKey) {
    throw new KeysError('ERR_VAULT_TAMPERED', `the vault holds another identity than the one registered as "${username}"; refused`)
  }
  const { N, r, p } = header.params
  return { entropy, vault: { hub: client.hub, username, userId: info.userId, kdf: { N, r, p } } }
}

/**
 * Writes the backup to `file`, which must not exist: link() of a finished 0600 temp file either
 * creates the name or fails, so nothing already there (a file, a link to one) is overwritten.
 * Where the file system has no hard links, an exclusive create does the same.
 */
export async function backupToFile (account: Account, file: string, passphrase: string, fsOps: { link: typeof link } = { link }): Promise<void> {
  const exists = (): KeysError => new KeysError('ERR_FILE_EXISTS', `${file} exists; not overwriting it (choose a new file name)`)
  // Early, so no scrypt is spent on a name that cannot be used; link() below is what guarantees it.
  if (await lstat(file).then(() => true, (e: NodeJS.ErrnoException) => e.code !== 'ENOENT')) throw exists()
  const { box } = await sealWithPassphrase(BoxPurpose.BackupFile, passphrase, encodeVaultFile(account))
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, box, { mode: 0o600, flag: 'wx', flush: true })
  try {
    await fsOps.link(tmp, file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw exists()
    // A file system without hard links (vfat, exFAT, some FUSE mounts): O_CREAT|O_EXCL still
    // refuses any existing name, a symlink included; only a crash mid-write can leave a part.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err
    try {
      await writeFile(file, box, { mode: 0o600, flag: 'wx', flush: true })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw exists()
      await rm(file, { force: true }).catch(() => {})
      throw e
    }
  } finally {
    await rm(tmp, { force: true })
  }
}

export async function readBackupFile (file: string, passphrase: string): Promise<Buffer> {
  let box: Buffer
  try {
    box = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new KeysError('ERR_NOT_FOUND', `no backup file ${file}`)
    throw err
  }
  return decodeVaultFile(await openWithPassphrase(BoxPurpose.BackupFile, passphrase, box))
}
