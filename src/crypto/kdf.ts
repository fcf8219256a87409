// Key derivation: HKDF-SHA256 for subkeys, scrypt (memory-hard) for passphrases.
import { hkdfSync, scrypt as scryptCb } from 'node:crypto'

/** HKDF-SHA256 with a fixed, documented label; `salt` defaults to empty. */
export function hkdf (ikm: Uint8Array, label: string, length = 32, salt: Uint8Array = new Uint8Array(0)): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(label, 'utf8'), length))
}

export interface ScryptParams { N: number, r: number, p: number }

/** Production scrypt parameters (version 1): 2^17 x 8 x 1 = 128 MiB, ~0.3 s here. */
export const SCRYPT_V1: ScryptParams = { N: 2 ** 17, r: 8, p: 1 }

/** Cheap parameters for tests only; selected by SPACE_TEST_CHEAP_KDF=1 (never in production). */
export const SCRYPT_TEST: ScryptParams = { N: 2 ** 10, r: 8, p: 1 }

export function defaultScryptParams (): ScryptParams {
  return process.env.SPACE_TEST_CHEAP_KDF === '1' ? SCRYPT_TEST : SCRYPT_V1
}

/** scrypt off the event loop (libuv threadpool). */
export function scrypt (password: Uint8Array | string, salt: Uint8Array, params: ScryptParams, length = 32): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, length, { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 }, (err, key) => {
      if (err != null) reject(err)
      else resolve(key)
    })
  })
}
