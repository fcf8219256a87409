// Passphrase boxes: one sealed format for the file keystore, the vault blob and the local backup
// file. scrypt (memory-hard, parameters stored in the header) turns the passphrase and a random
// salt into a master M; HKDF splits M into the sealing key vk and the vault service key vsk, so
// a server holding vsk learns nothing about vk. Layout in docs/keys.md ("Passphrase box").
import { randomBytes } from 'node:crypto'
import { AuthError, defaultScryptParams, hkdf, open, scrypt, seal, SealType, SCRYPT_TEST, SCRYPT_V1, type ScryptParams } from '../crypto/index.js'
import { KeysError } from './errors.js'

export const BOX_VERSION = 1
export const enum BoxPurpose { Keystore = 1, Vault = 2, BackupFile = 3 }
const KDF_SCRYPT = 1
const FLAG_NO_PASSPHRASE = 1
export const SALT_LEN = 16
export const BOX_HEADER_LEN = 7 + SALT_LEN
export const LABEL_VK = 'space/v1/vault-key'
export const LABEL_VSK = 'space/v1/vault-service-key'
// Refuse parameters a hostile file or hub could use to make us allocate gigabytes.
const MAX_LOG2N = 22
const MAX_R = 32
const MAX_P = 16

/**
 * The least work per guess we derive with, per KDF version (docs/keys.md, "KDF floor"): a box
 * from a hostile hub or file with cheaper parameters would make the passphrase cheap to guess
 * by whoever holds the box. SPACE_TEST_CHEAP_KDF lowers it exactly as far as it lowers the
 * parameters boxes are sealed with.
 */
export function kdfFloor (): ScryptParams {
  return process.env.SPACE_TEST_CHEAP_KDF === '1' ? SCRYPT_TEST : SCRYPT_V1
}

export const describeKdf = (p: ScryptParams): string => `scrypt N=2^${Math.log2(p.N)} r=${p.r} p=${p.p}`

/** Throws ERR_WEAK_KDF, before any derivation, for parameters under the floor. */
export function checkKdfFloor (p: ScryptParams): void {
  const f = kdfFloor()
  if (p.N < f.N || p.r < f.r || p.p < f.p) {
    throw new KeysError('ERR_WEAK_KDF', `refusing key derivation parameters weaker than this version's floor (${describeKdf(p)} < ${describeKdf(f)}): whoever supplied them could guess the passphrase cheaply`)
  }
}

export const sameKdf = (a: ScryptParams, b: ScryptParams): boolean => a.N === b.N && a.r === b.r && a.p === b.p

export interface BoxHeader {
  purpose: BoxPurpose
  params: ScryptParams
  salt: Buffer
  noPassphrase: boolean
}

export interface BoxKeys { vk: Buffer, vsk: Buffer }

export function newBoxHeader (purpose: BoxPurpose, opts: { params?: ScryptParams, noPassphrase?: boolean } = {}): BoxHeader {
  return { purpose, params: opts.params ?? defaultScryptParams(), salt: randomBytes(SALT_LEN), noPassphrase: opts.noPassphrase === true }
}

export function encodeBoxHeader (h: BoxHeader): Buffer {
  const b = Buffer.alloc(BOX_HEADER_LEN)
  b[0] = BOX_VERSION
  b[1] = h.purpose
  b[2] = KDF_SCRYPT
  b[3] = Math.log2(h.params.N)
  b[4] = h.params.r
  b[5] = h.params.p
  b[6] = h.noPassphrase ? FLAG_NO_PASSPHRASE : 0
  h.salt.copy(b, 7)
  return b
}

export function decodeBoxHeader (buf: Uint8Array): BoxHeader {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length)
  if (b.length < BOX_HEADER_LEN) throw new KeysError('ERR_BAD_FORMAT', 'sealed key data is truncated')
  if (b[0] !== BOX_VERSION) throw new KeysError('ERR_BAD_FORMAT', `unknown sealed key data version ${b[0]}`)
  if (b[1] < 1 || b[1] > 3) throw new KeysError('ERR_BAD_FORMAT', `unknown sealed key data purpose ${b[1]}`)
  if (b[2] !== KDF_SCRYPT) throw new KeysError('ERR_BAD_FORMAT', `unknown key derivation function ${b[2]}`)
  if (b[3] < 1 || b[3] > MAX_LOG2N || b[4] < 1 || b[4] > MAX_R || b[5] < 1 || b[5] > MAX_P || (b[6] & ~FLAG_NO_PASSPHRASE) !== 0) {
    throw new KeysError('ERR_BAD_FORMAT', 'sealed key data has out-of-range parameters')
  }
  return {
    purpose: b[1] as BoxPurpose,
    params: { N: 2 ** b[3], r: b[4], p: b[5] },
    salt: Buffer.from(b.subarray(7, BOX_HEADER_LEN)),
    noPassphrase: b[6] === FLAG_NO_PASSPHRASE
  }
}

/** NFKC so the same passphrase typed on another keyboard or OS derives the same keys. */
export function normalizePassphrase (p: string): string { return p.normalize('NFKC') }

export async function deriveBoxKeys (passphrase: string, h: BoxHeader): Promise<BoxKeys> {
  checkKdfFloor(h.params)
  const m = await scrypt(h.noPassphrase ? '' : normalizePassphrase(passphrase), h.salt, h.params)
  try {
    return { vk: hkdf(m, LABEL_VK), vsk: hkdf(m, LABEL_VSK) }
  } finally {
    m.fill(0)
  }
}

function position (h: BoxHeader) { return { type: SealType.KeyFile, objectId: h.salt, index: h.purpose } }

export function sealBox (h: BoxHeader, vk: Uint8Array, plain: Uint8Array): Buffer {
  return Buffer.concat([encodeBoxHeader(h), seal(vk, position(h), plain)])
}

/** Opens with already-derived keys; AuthError on any mismatch (wrong key or altered bytes). */
export function openBox (box: Uint8Array, vk: Uint8Array, purpose: BoxPurpose): Buffer {
  const h = decodeBoxHeader(box)
  if (h.purpose !== purpose) throw new KeysError('ERR_BAD_FORMAT', 'sealed key data is of another kind')
  return open(vk, position(h), box.subarray(BOX_HEADER_LEN))
}

export async function sealWithPassphrase (purpose: BoxPurpose, passphrase: string, plain: Uint8Array, opts: { params?: ScryptParams, noPassphrase?: boolean } = {}): Promise<{ box: Buffer, header: BoxHeader, keys: BoxKeys }> {
  const header = newBoxHeader(purpose, opts)
  const keys = await deriveBoxKeys(passphrase, header)
  return { box: sealBox(header, keys.vk, plain), header, keys }
}

/** Where only the passphrase can be wrong (local files), authentication failure means exactly that. */
export async function openWithPassphrase (purpose: BoxPurpose, passphrase: string, box: Uint8Array): Promise<Buffer> {
  const keys = await deriveBoxKeys(passphrase, decodeBoxHeader(box))
  try {
    return openBox(box, keys.vk, purpose)
  } catch (err) {
    if (err instanceof AuthError) throw new KeysError('ERR_WRONG_PASSPHRASE', 'wrong passphrase')
    throw err
  }
}
