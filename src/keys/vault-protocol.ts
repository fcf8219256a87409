// The vault wire protocol shared by the client (keys/vault-client.ts) and the hub (hub/).
// JSON over HTTP; binary values are base64url without padding. Endpoints in docs/keys.md.
export const API = {
  users: '/v1/users', // POST register; GET /v1/users/<username> lookup
  challenge: '/v1/auth/challenge',
  token: '/v1/auth/token',
  vault: '/v1/vault', // PUT (bearer token)
  vaultFetch: '/v1/vault/fetch'
} as const

export const USERNAME_RE = /^[a-z0-9][a-z0-9._-]{2,31}$/
export const USER_ID_LEN = 16
export const CHALLENGE_LEN = 32
export const CHALLENGE_ID_LEN = 16
/** How far a registration's timestamp may be from the hub's clock. */
export const REGISTER_SKEW_MS = 5 * 60_000

const REGISTER_CONTEXT = Buffer.from('space/v1/hub/register\0', 'utf8')
const AUTH_CONTEXT = Buffer.from('space/v1/hub/auth\0', 'utf8')

export const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url')

/** Strict base64url decode: undefined unless `s` is canonical and (if given) `len` bytes long. */
export function fromB64u (s: unknown, len?: number): Buffer | undefined {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) return undefined
  const b = Buffer.from(s, 'base64url')
  if (b.toString('base64url') !== s) return undefined
  if (len !== undefined && b.length !== len) return undefined
  return b
}

/** What a user signs to claim a username: context | len u8 | username | publicKey[32] | time u64. */
export function registerMessage (username: string, publicKey: Uint8Array, timestamp: number): Buffer {
  const name = Buffer.from(username, 'utf8')
  const m = Buffer.alloc(REGISTER_CONTEXT.length + 1 + name.length + 32 + 8)
  let o = REGISTER_CONTEXT.copy(m, 0)
  m[o++] = name.length
  o += name.copy(m, o)
  m.set(publicKey, o); o += 32
  m.writeBigUInt64BE(BigInt(timestamp), o)
  return m
}

/** What a user signs to answer a challenge: context | challengeId[16] | userId[16] | challenge[32]. */
export function authMessage (challengeId: Uint8Array, userId: Uint8Array, challenge: Uint8Array): Buffer {
  return Buffer.concat([AUTH_CONTEXT, challengeId, userId, challenge])
}

export interface UserInfo { userId: string, publicKey: string, vaultHeader: string | null }
export interface ErrorBody { error: string, message: string }
