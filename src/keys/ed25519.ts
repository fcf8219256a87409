// Raw 32-byte Ed25519 / X25519 keys on top of node:crypto, plus SLIP-10 derivation for Ed25519.
// node:crypto speaks KeyObjects; the raw forms are what we store, sign with and put on the wire.
import { createHmac, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'

// DER prefixes of PKCS#8 (private) and SPKI (public) for Ed25519 (1.3.101.112) and X25519 (1.3.101.110).
const ED_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex')
const ED_SPKI = Buffer.from('302a300506032b6570032100', 'hex')
const X_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')

function rawPublic (key: KeyObject): Buffer {
  return Buffer.from(createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32))
}

export interface RawKeyPair { privateKey: Buffer /* 32-byte seed */, publicKey: Buffer /* 32 bytes */ }

export function ed25519FromSeed (seed: Uint8Array): RawKeyPair {
  if (seed.length !== 32) throw new RangeError('ed25519 seed must be 32 bytes')
  const key = createPrivateKey({ key: Buffer.concat([ED_PKCS8, seed]), format: 'der', type: 'pkcs8' })
  return { privateKey: Buffer.from(seed), publicKey: rawPublic(key) }
}

export function x25519FromSeed (seed: Uint8Array): RawKeyPair {
  if (seed.length !== 32) throw new RangeError('x25519 key must be 32 bytes')
  const key = createPrivateKey({ key: Buffer.concat([X_PKCS8, seed]), format: 'der', type: 'pkcs8' })
  return { privateKey: Buffer.from(seed), publicKey: rawPublic(key) }
}

export function ed25519Sign (privateKey: Uint8Array, message: Uint8Array): Buffer {
  const key = createPrivateKey({ key: Buffer.concat([ED_PKCS8, privateKey]), format: 'der', type: 'pkcs8' })
  return sign(null, message, key)
}

/** False for any malformed key or signature, never a throw: callers treat both as "refused". */
export function ed25519Verify (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false
  try {
    const key = createPublicKey({ key: Buffer.concat([ED_SPKI, publicKey]), format: 'der', type: 'spki' })
    return verify(null, message, key, signature)
  } catch {
    return false
  }
}

const HARDENED = 0x80000000

/**
 * SLIP-10 (satoshilabs/slips slip-0010) private derivation for ed25519; only hardened indices
 * exist on this curve. `path` lists indices without the hardened bit, e.g. [44, 7370, 0].
 */
export function slip10Ed25519 (seed: Uint8Array, path: number[]): { key: Buffer, chainCode: Buffer } {
  let I = createHmac('sha512', 'ed25519 seed').update(seed).digest()
  let key = I.subarray(0, 32)
  let chainCode = I.subarray(32)
  for (const index of path) {
    if (!Number.isInteger(index) || index < 0 || index >= HARDENED) throw new RangeError(`bad SLIP-10 index ${index}`)
    const data = Buffer.alloc(37)
    key.copy(data, 1)
    data.writeUInt32BE(index + HARDENED, 33)
    I = createHmac('sha512', chainCode).update(data).digest()
    key = I.subarray(0, 32)
    chainCode = I.subarray(32)
  }
  return { key: Buffer.from(key), chainCode: Buffer.from(chainCode) }
}
