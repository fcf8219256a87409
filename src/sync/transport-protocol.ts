// The hub's replication wire protocol, shared by the device side (transport-http.ts) and the hub
// (hub/replication/): paths, limits, the device challenge-response message, the JSON form of a
// device certificate, and the identity-signed device revocation record. docs/hub.md describes it.
// Signed messages start with a context string, as keys/vault-protocol.ts's do.
import { ed25519Sign, ed25519Verify } from '../keys/ed25519.js'
import type { DeviceCertificate } from '../keys/identity.js'
import { b64u, fromB64u } from '../keys/vault-protocol.js'

export const SYNC_API = {
  challenge: '/sync/v1/auth/challenge', // POST {userId, devicePublicKey}
  token: '/sync/v1/auth/token', // POST {challengeId, signature, certificate}
  revoke: '/sync/v1/devices/revoke', // POST {record} (identity-signed; no token needed)
  revoked: '/sync/v1/devices/revoked', // GET (bearer): the user's revocation records
  blocks: '/sync/v1/blocks', // PUT a CAR v1 body (bearer)
  missing: '/sync/v1/blocks/missing', // POST {cids} -> {missing} (bearer)
  fetch: '/sync/v1/blocks/fetch', // POST {cids} -> one CAR stream (bearer)
  gateway: '/ipfs/' // GET /ipfs/{cid}?format=raw|car (bearer)
} as const

export const CAR_TYPE = 'application/vnd.ipld.car'
export const RAW_TYPE = 'application/vnd.ipld.raw'

/** A block's bytes, the most one CAR section may carry (IPFS tools keep blocks to 2 MiB too). */
export const MAX_BLOCK_BYTES = 2 * 1024 * 1024
/** One PUT's CAR body; devices send ~8 MiB batches. */
export const MAX_CAR_BYTES = 32 * 1024 * 1024
/** CIDs in one missing or fetch request. */
export const MAX_CIDS = 8192

const DEVICE_AUTH_CONTEXT = Buffer.from('space/v1/hub/device-auth\0', 'utf8')
const REVOCATION_CONTEXT = Buffer.from('space/v1/device-revocation\0', 'utf8')
export const REVOCATION_VERSION = 1

/**
 * What a device signs, with its device key, to answer a challenge:
 * context | challengeId[16] | userId[16] | devicePublicKey[32] | challenge[32].
 */
export function deviceAuthMessage (challengeId: Uint8Array, userId: Uint8Array, devicePublicKey: Uint8Array, challenge: Uint8Array): Buffer {
  return Buffer.concat([DEVICE_AUTH_CONTEXT, challengeId, userId, devicePublicKey, challenge])
}

export interface CertificateJson { version: number, identityPublicKey: string, devicePublicKey: string, issuedAt: number, signature: string }

export function certificateToJson (c: DeviceCertificate): CertificateJson {
  return { version: c.version, identityPublicKey: b64u(c.identityPublicKey), devicePublicKey: b64u(c.devicePublicKey), issuedAt: c.issuedAt, signature: b64u(c.signature) }
}

/** undefined unless every field is present and well formed (the signature is not checked here). */
export function certificateFromJson (v: unknown): DeviceCertificate | undefined {
  if (v === null || typeof v !== 'object') return undefined
  const o = v as Record<string, unknown>
  const identityPublicKey = fromB64u(o.identityPublicKey, 32)
  const devicePublicKey = fromB64u(o.devicePublicKey, 32)
  const signature = fromB64u(o.signature, 64)
  if (typeof o.version !== 'number' || typeof o.issuedAt !== 'number' || !Number.isSafeInteger(o.issuedAt) || o.issuedAt < 0) return undefined
  if (identityPublicKey === undefined || devicePublicKey === undefined || signature === undefined) return undefined
  return { version: o.version, identityPublicKey, devicePublicKey, issuedAt: o.issuedAt, signature }
}

/**
 * A device revocation: the identity says "device key D is revoked from time T on". 137 bytes:
 *   version u8 (1) | identityPublicKey[32] | devicePublicKey[32] | revokedAt u64 BE (ms) | signature[64]
 * signed (Ed25519, identity key) over context "space/v1/device-revocation\0" | the first 73 bytes.
 */
export interface Revocation { identityPublicKey: Buffer, devicePublicKey: Buffer, revokedAt: number, signature: Buffer }
export const REVOCATION_LENGTH = 1 + 32 + 32 + 8 + 64

function revocationBody (identityPublicKey: Uint8Array, devicePublicKey: Uint8Array, revokedAt: number): Buffer {
  const b = Buffer.alloc(1 + 32 + 32 + 8)
  b[0] = REVOCATION_VERSION
  b.set(identityPublicKey, 1)
  b.set(devicePublicKey, 33)
  b.writeBigUInt64BE(BigInt(revokedAt), 65)
  return b
}

/** Signs a revocation of `devicePublicKey` with the identity's key pair. */
export function signRevocation (identity: { publicKey: Uint8Array, privateKey: Uint8Array }, devicePublicKey: Uint8Array, revokedAt = Date.now()): Revocation {
  const body = revocationBody(identity.publicKey, devicePublicKey, revokedAt)
  const signature = ed25519Sign(identity.privateKey, Buffer.concat([REVOCATION_CONTEXT, body]))
  return { identityPublicKey: Buffer.from(identity.publicKey), devicePublicKey: Buffer.from(devicePublicKey), revokedAt, signature }
}

export function encodeRevocation (r: Revocation): Buffer {
  return Buffer.concat([revocationBody(r.identityPublicKey, r.devicePublicKey, r.revokedAt), r.signature])
}

/** The record in `bytes` if it is well formed and its signature verifies; undefined otherwise. */
export function decodeRevocation (bytes: Uint8Array): Revocation | undefined {
  if (bytes.length !== REVOCATION_LENGTH || bytes[0] !== REVOCATION_VERSION) return undefined
  const b = Buffer.from(bytes)
  const revokedAt = b.readBigUInt64BE(65)
  if (revokedAt > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
  const r: Revocation = { identityPublicKey: b.subarray(1, 33), devicePublicKey: b.subarray(33, 65), revokedAt: Number(revokedAt), signature: b.subarray(73) }
  return ed25519Verify(r.identityPublicKey, Buffer.concat([REVOCATION_CONTEXT, b.subarray(0, 73)]), r.signature) ? r : undefined
}

/** The JSON error body every hub error answers with. */
export interface SyncErrorBody { error: string, message: string }
