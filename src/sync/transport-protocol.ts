// The hub's replication wire protocol, shared by the device side (transport-http.ts) and the hub
// (hub/replication/): paths, limits, the device challenge-response message, the JSON form of a
// device certificate (revocation records are src/sync/devices.ts's). docs/hub.md describes it.
// Signed messages start with a context string, as keys/vault-protocol.ts's do.
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

/**
 * What a device on plain http sends as `Upgrade` (with `Connection: Upgrade`) on a block PUT: the
 * hub then reads the body from the socket into its batch buffer itself (hub/replication/
 * socket-body.ts), answers as for any PUT and closes the connection. The protocol is never
 * switched: a hub or a proxy that ignores the header serves it as a plain PUT.
 */
export const UPLOAD_UPGRADE = 'space-car-body'

export const CAR_TYPE = 'application/vnd.ipld.car'
export const RAW_TYPE = 'application/vnd.ipld.raw'

/** A block's bytes, the most one CAR section may carry (IPFS tools keep blocks to 2 MiB too). */
export const MAX_BLOCK_BYTES = 2 * 1024 * 1024
/** One PUT's CAR body; devices send ~8 MiB batches. */
export const MAX_CAR_BYTES = 32 * 1024 * 1024
/** CIDs in one missing or fetch request. */
export const MAX_CIDS = 8192

const DEVICE_AUTH_CONTEXT = Buffer.from('space/v1/hub/device-auth\0', 'utf8')

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

/** The JSON error body every hub error answers with. */
export interface SyncErrorBody { error: string, message: string }
