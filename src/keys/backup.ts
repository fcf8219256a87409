// Key backup and recovery by passphrase: to the hub's vault (the server gets the sealed box and
// vsk, never vk) and to a local file. Both carry the same "vault file": the identity's entropy.
import { readFile } from 'node:fs/promises'
import { AuthError } from '../crypto/index.js'
import type { Account, VaultConfig } from './account.js'
import { KeysError } from './errors.js'
import { deriveIdentity } from './identity.js'
import { writePrivateFile } from './keystore.js'
import { ENTROPY_LEN } from './mnemonic.js'
import { BOX_HEADER_LEN, BoxPurpose, decodeBoxHeader, deriveBoxKeys, openBox, openWithPassphrase, sealWithPassphrase } from './passbox.js'
import { VaultClient } from './vault-client.js'
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

export async function backupToHub (account: Account, hub: string, username: string, passphrase: string): Promise<VaultConfig> {
  const client = new VaultClient(hub)
  const userId = await client.register(username, account.identity.signing)
  const token = await client.authenticate(userId, account.identity.signing)
  const { box, keys } = await sealWithPassphrase(BoxPurpose.Vault, passphrase, encodeVaultFile(account))
  await client.putVault(token, box, keys.vsk)
  return { hub: client.hub, username, userId }
}

/** Fetches and opens the vault; changes nothing locally. Returns the identity's entropy. */
export async function fetchFromHub (hub: string, username: string, passphrase: string): Promise<{ entropy: Buffer, vault: VaultConfig }> {
  const client = new VaultClient(hub)
  const info = await client.lookup(username)
  const headerBytes = info.vaultHeader === null ? undefined : fromB64u(info.vaultHeader, BOX_HEADER_LEN)
  if (headerBytes === undefined) throw new KeysError('ERR_NOT_FOUND', `hub ${client.hub} has no key backup for "${username}"`)
  const header = decodeBoxHeader(headerBytes)
  if (header.purpose !== BoxPurpose.Vault) throw new KeysError('ERR_VAULT_TAMPERED', 'the hub sent a header that is not a vault header; refused')
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
  return { entropy, vault: { hub: client.hub, username, userId: info.userId } }
}

export async function backupToFile (account: Account, file: string, passphrase: string): Promise<void> {
  const { box } = await sealWithPassphrase(BoxPurpose.BackupFile, passphrase, encodeVaultFile(account))
  await writePrivateFile(file, box)
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
