// This device's account: public facts in <configDir>/identity.json, the secret record in the
// keystore it names. The secret record (docs/keys.md) is the mnemonic's entropy plus this
// device's private key; everything else is derived again on every load.
import { randomBytes } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KeysError } from './errors.js'
import { ed25519FromSeed, type RawKeyPair } from './ed25519.js'
import { certifyDevice, deriveIdentity, fingerprint, newDeviceKey, verifyDeviceCertificate, type Identity } from './identity.js'
import { FileKeystore, KeychainStore, writePrivateFile, type SecretStore } from './keystore.js'
import { ENTROPY_LEN } from './mnemonic.js'

export const IDENTITY_FILE = 'identity.json'
const CONFIG_VERSION = 1
const RECORD_VERSION = 1
const RECORD_LEN = 1 + ENTROPY_LEN + 32
/** Env var a headless daemon can use to unlock a passphrase-protected file keystore. */
export const KEYSTORE_PASSPHRASE_ENV = 'SPACE_KEYSTORE_PASSPHRASE'

export type KeystoreConfig =
  | { backend: 'keychain', account: string }
  | { backend: 'file', protection: 'passphrase' | 'none' }

/**
 * `kdf`: the passphrase KDF parameters of the last backup made from here; test-passphrase on
 * this machine refuses a vault header from the hub with any others. (Recovery runs where no
 * config exists yet, so it has only the floor of kdf.ts to hold the hub to.)
 */
export interface VaultConfig { hub: string, username: string, userId: string, kdf?: { N: number, r: number, p: number } }

export interface IdentityConfig {
  version: number
  identity: { publicKey: string, sharePublicKey: string, fingerprint: string }
  device: { publicKey: string, issuedAt: number, signature: string }
  keystore: KeystoreConfig
  vault?: VaultConfig
  createdAt: string
}

export interface Account {
  config: IdentityConfig
  identity: Identity
  device: RawKeyPair
}

/** `passphrase: null` is --insecure-no-passphrase. */
export type KeystoreChoice = { backend: 'keychain' } | { backend: 'file', passphrase: string | null }

const identityPath = (configDir: string): string => join(configDir, IDENTITY_FILE)

export async function readIdentityConfig (configDir: string): Promise<IdentityConfig | null> {
  let text: string
  try {
    text = await readFile(identityPath(configDir), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  let config: IdentityConfig
  try {
    config = JSON.parse(text)
  } catch {
    throw new KeysError('ERR_BAD_FORMAT', `${identityPath(configDir)} is not valid JSON`)
  }
  if (config.version !== CONFIG_VERSION) throw new KeysError('ERR_BAD_FORMAT', `${identityPath(configDir)} has unknown version ${config.version}`)
  return config
}

export async function writeIdentityConfig (configDir: string, config: IdentityConfig): Promise<void> {
  await mkdir(configDir, { recursive: true, mode: 0o700 })
  await writePrivateFile(identityPath(configDir), JSON.stringify(config, null, 2) + '\n')
}

export function storeFor (configDir: string, keystore: KeystoreConfig, passphrase?: string): SecretStore {
  if (keystore.backend === 'keychain') return new KeychainStore(keystore.account)
  if (keystore.protection === 'none') return new FileKeystore(configDir, null)
  if (passphrase === undefined) {
    throw new KeysError('ERR_KEYSTORE_LOCKED', `the file keystore is locked: enter its passphrase in a terminal or set ${KEYSTORE_PASSPHRASE_ENV}`)
  }
  return new FileKeystore(configDir, passphrase)
}

/** One line naming where this account's secret lives, for people. */
export function describeKeystore (configDir: string, keystore: KeystoreConfig): string {
  if (keystore.backend === 'keychain') return new KeychainStore(keystore.account).describe()
  return new FileKeystore(configDir, keystore.protection === 'none' ? null : '').describe()
}

function encodeRecord (entropy: Uint8Array, device: RawKeyPair): Buffer {
  return Buffer.concat([Buffer.from([RECORD_VERSION]), entropy, device.privateKey])
}

function decodeRecord (rec: Buffer): { entropy: Buffer, device: RawKeyPair } {
  if (rec.length !== RECORD_LEN || rec[0] !== RECORD_VERSION) throw new KeysError('ERR_KEYSTORE_CORRUPT', 'the stored secret record is malformed')
  return { entropy: Buffer.from(rec.subarray(1, 1 + ENTROPY_LEN)), device: ed25519FromSeed(rec.subarray(1 + ENTROPY_LEN)) }
}

/**
 * Creates the account for `entropy` (new or restored) with a fresh device key. Refuses to
 * overwrite an existing identity: losing one silently would lose the drive.
 */
export async function createAccount (configDir: string, entropy: Uint8Array, choice: KeystoreChoice): Promise<Account> {
  if (await readIdentityConfig(configDir) !== null) {
    throw new KeysError('ERR_IDENTITY_EXISTS', `an identity already exists in ${configDir}`)
  }
  await mkdir(configDir, { recursive: true, mode: 0o700 })
  const identity = deriveIdentity(entropy)
  const device = newDeviceKey()
  const cert = certifyDevice(identity.signing, device.publicKey)
  const keystore: KeystoreConfig = choice.backend === 'keychain'
    ? { backend: 'keychain', account: `identity-${randomBytes(8).toString('hex')}` }
    : { backend: 'file', protection: choice.passphrase === null ? 'none' : 'passphrase' }
  const store = storeFor(configDir, keystore, choice.backend === 'file' ? choice.passphrase ?? undefined : undefined)
  await store.set(encodeRecord(entropy, device))
  const config: IdentityConfig = {
    version: CONFIG_VERSION,
    identity: {
      publicKey: identity.signing.publicKey.toString('hex'),
      sharePublicKey: identity.share.publicKey.toString('hex'),
      fingerprint: fingerprint(identity.signing.publicKey)
    },
    device: { publicKey: device.publicKey.toString('hex'), issuedAt: cert.issuedAt, signature: cert.signature.toString('hex') },
    keystore,
    createdAt: new Date().toISOString()
  }
  await writeIdentityConfig(configDir, config)
  return { config, identity, device }
}

export async function requireIdentityConfig (configDir: string): Promise<IdentityConfig> {
  const config = await readIdentityConfig(configDir)
  if (config === null) throw new KeysError('ERR_NO_IDENTITY', `no identity in ${configDir} (run "space init" or "space recover-keys")`)
  return config
}

/** Loads and checks the account: the secret must derive exactly the public keys on record. */
export async function openAccount (configDir: string, opts: { passphrase?: string } = {}): Promise<Account> {
  const config = await requireIdentityConfig(configDir)
  const store = storeFor(configDir, config.keystore, opts.passphrase)
  const rec = await store.get()
  if (rec === null) throw new KeysError('ERR_KEYSTORE_CORRUPT', `the identity's secret is missing from the ${store.describe()}`)
  const { entropy, device } = decodeRecord(rec)
  const identity = deriveIdentity(entropy)
  const cert = {
    version: 1,
    identityPublicKey: identity.signing.publicKey,
    devicePublicKey: device.publicKey,
    issuedAt: config.device.issuedAt,
    signature: Buffer.from(config.device.signature, 'hex')
  }
  if (identity.signing.publicKey.toString('hex') !== config.identity.publicKey || !verifyDeviceCertificate(cert)) {
    throw new KeysError('ERR_KEYSTORE_CORRUPT', `the stored secret does not match ${identityPath(configDir)}`)
  }
  return { config, identity, device }
}
