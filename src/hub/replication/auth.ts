// Device authentication for the replication API, the vault's pattern: a device asks for a
// challenge (user id + device key), answers with a device-key signature and its certificate; the
// hub checks the certificate chains to the identity key registered for that user and that the
// device is not revoked, and hands out a short-lived bearer token scoped to (user, device).
// A revoked device (an identity-signed revocation record, sync/devices.ts, kept by the entry
// store) gets no token, and the tokens it holds end: whatever seq the record keeps valid, the
// device writes nothing more.
import { createHash, randomBytes } from 'node:crypto'
import { ed25519Verify } from '../../keys/ed25519.js'
import { verifyDeviceCertificate } from '../../keys/identity.js'
import { b64u, CHALLENGE_ID_LEN, CHALLENGE_LEN, fromB64u, USER_ID_LEN } from '../../keys/vault-protocol.js'
import { certificateFromJson, deviceAuthMessage } from '../../sync/transport-protocol.js'
import { decodeRevocation, type Revocation } from '../../sync/devices.js'
import { SyncError } from '../../sync/errors.js'
import type { UserRow } from '../db.js'
import { badRequest, HubError } from '../errors.js'

const CHALLENGE_TTL_MS = 60_000
export const DEVICE_TOKEN_TTL_MS = 10 * 60_000
const MAX_PENDING = 10_000
const MAX_TOKENS = 100_000

/** Who a bearer token speaks for. */
export interface DeviceSession { userId: Buffer, devicePublicKey: Buffer }

/** What the auth needs of the user table. */
export type UserLookup = { userById: (id: Uint8Array) => UserRow | undefined, userByKey: (publicKey: Uint8Array) => UserRow | undefined }

/** Where revocations are kept (the entry store): the consumer's slice. */
export interface RevocationStore {
  revoke: (owner: { user: Uint8Array, identity: Uint8Array }, record: Uint8Array) => Revocation
  allRevoked: () => Array<{ user: Buffer, dev: Buffer }>
  revocationRecords: (user: Uint8Array) => Buffer[]
}

/** A request, as far as authentication reads it. */
export interface AuthRequest { headers: { authorization?: string } }

const revokedKey = (userId: Uint8Array, dev: Uint8Array): string => Buffer.from(userId).toString('hex') + Buffer.from(dev).toString('hex')
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

export const unauthorized = (message = 'a valid device token from /sync/v1/auth/token is required'): HubError =>
  new HubError(401, 'unauthorized', message, { 'WWW-Authenticate': 'Bearer realm="space-sync"' })

export class DeviceAuth {
  private readonly challenges = new Map<string, { userId: Buffer, devicePublicKey: Buffer, challenge: Buffer, expires: number }>()
  private readonly tokens = new Map<string, DeviceSession & { expires: number }>()
  /** Every revoked (user, device), hex: asked on every request, changed only by revoke(). */
  private readonly revoked = new Set<string>()

  constructor (private readonly users: UserLookup, private readonly store: RevocationStore, private readonly now: () => number = Date.now) {
    for (const r of store.allRevoked()) this.revoked.add(revokedKey(r.user, r.dev))
  }

  challenge (body: Record<string, unknown>): { challengeId: string, challenge: string, expiresIn: number } {
    const userId = fromB64u(body.userId, USER_ID_LEN)
    const devicePublicKey = fromB64u(body.devicePublicKey, 32)
    if (userId === undefined || devicePublicKey === undefined) throw badRequest('userId and devicePublicKey are required')
    if (this.users.userById(userId) === undefined) throw new HubError(404, 'not_found', 'no such user')
    this.sweep()
    if (this.challenges.size >= MAX_PENDING) throw new HubError(503, 'busy', 'too many pending challenges', { 'Retry-After': '5' })
    const id = randomBytes(CHALLENGE_ID_LEN)
    const challenge = randomBytes(CHALLENGE_LEN)
    this.challenges.set(id.toString('hex'), { userId, devicePublicKey, challenge, expires: this.now() + CHALLENGE_TTL_MS })
    return { challengeId: b64u(id), challenge: b64u(challenge), expiresIn: CHALLENGE_TTL_MS / 1000 }
  }

  /** A challenge is spent by its first answer, right or wrong: replays and retries both fail. */
  token (body: Record<string, unknown>): { token: string, expiresIn: number } {
    const id = fromB64u(body.challengeId, CHALLENGE_ID_LEN)
    const signature = fromB64u(body.signature, 64)
    const cert = certificateFromJson(body.certificate)
    if (id === undefined || signature === undefined || cert === undefined) throw badRequest('challengeId, signature and certificate are required')
    const pending = this.challenges.get(id.toString('hex'))
    this.challenges.delete(id.toString('hex'))
    if (pending === undefined || pending.expires < this.now()) throw new HubError(401, 'bad_challenge', 'unknown, used or expired challenge')
    const user = this.users.userById(pending.userId)
    if (user === undefined) throw new HubError(401, 'bad_challenge', 'the challenge\'s user is gone')
    if (!cert.devicePublicKey.equals(pending.devicePublicKey)) throw new HubError(401, 'bad_certificate', 'the certificate is for another device key than the challenge')
    if (!cert.identityPublicKey.equals(user.publicKey) || !verifyDeviceCertificate(cert)) {
      throw new HubError(401, 'bad_certificate', 'the device certificate is not signed by this user\'s identity')
    }
    if (!ed25519Verify(pending.devicePublicKey, deviceAuthMessage(id, pending.userId, pending.devicePublicKey, pending.challenge), signature)) {
      throw new HubError(401, 'bad_signature', 'challenge signature does not verify with the device key')
    }
    if (this.isRevoked(pending.userId, pending.devicePublicKey)) throw revokedError(pending.devicePublicKey)
    if (this.tokens.size >= MAX_TOKENS) this.sweep()
    if (this.tokens.size >= MAX_TOKENS) throw new HubError(503, 'busy', 'too many sessions', { 'Retry-After': '5' })
    const token = randomBytes(32)
    this.tokens.set(sha256(token), { userId: pending.userId, devicePublicKey: pending.devicePublicKey, expires: this.now() + DEVICE_TOKEN_TTL_MS })
    return { token: b64u(token), expiresIn: DEVICE_TOKEN_TTL_MS / 1000 }
  }

  /** The session a request's bearer token names, or undefined (no token, unknown, expired, revoked). */
  sessionOf (req: AuthRequest): DeviceSession | undefined {
    const m = /^Bearer ([A-Za-z0-9_-]{43})$/.exec(req.headers.authorization ?? '')
    const token = m === null ? undefined : fromB64u(m[1], 32)
    if (token === undefined) return undefined
    const key = sha256(token)
    const s = this.tokens.get(key)
    if (s === undefined) return undefined
    if (s.expires < this.now() || this.isRevoked(s.userId, s.devicePublicKey)) { this.tokens.delete(key); return undefined }
    return { userId: s.userId, devicePublicKey: s.devicePublicKey }
  }

  /** The (user, device) a request speaks for; a HubError 401 `unauthorized` otherwise. */
  authenticate (req: AuthRequest): DeviceSession {
    const s = this.sessionOf(req)
    if (s === undefined) throw unauthorized()
    return s
  }

  isRevoked (userId: Uint8Array, devicePublicKey: Uint8Array): boolean {
    return this.revoked.has(revokedKey(userId, devicePublicKey))
  }

  /**
   * Stores an identity-signed revocation. It needs no token: the identity's signature is the
   * authority, and a device that lost its key must still be revocable from another one.
   */
  revoke (body: Record<string, unknown>): { userId: string, devicePublicKey: string, after: number, at: number } {
    const bytes = fromB64u(body.record)
    if (bytes === undefined || bytes.length > 1024) throw new HubError(400, 'bad_revocation', 'record must be a revocation record (base64url)')
    let r: Revocation
    try {
      r = decodeRevocation(bytes)
    } catch (err) {
      throw new HubError(400, 'bad_revocation', (err as Error).message)
    }
    const user = this.users.userByKey(r.identityPublicKey)
    if (user === undefined) throw new HubError(404, 'not_found', 'no user has this identity key')
    try {
      // Checks the identity's signature; of two revocations of a device the smaller `after` stands.
      r = this.store.revoke({ user: user.id, identity: user.publicKey }, bytes)
    } catch (err) {
      if (err instanceof SyncError) throw new HubError(400, 'bad_revocation', err.message)
      throw err
    }
    this.revoked.add(revokedKey(user.id, r.devicePublicKey))
    for (const [k, s] of this.tokens) if (s.userId.equals(user.id) && s.devicePublicKey.equals(r.devicePublicKey)) this.tokens.delete(k)
    return { userId: b64u(user.id), devicePublicKey: b64u(r.devicePublicKey), after: r.after, at: r.at }
  }

  /** The user's revocation records (base64url), for devices to check entries against. */
  revocations (userId: Uint8Array): string[] {
    return this.store.revocationRecords(userId).map(b => b64u(b))
  }

  private sweep (): void {
    const t = this.now()
    for (const [k, v] of this.challenges) if (v.expires < t) this.challenges.delete(k)
    for (const [k, v] of this.tokens) if (v.expires < t) this.tokens.delete(k)
  }
}

export const revokedError = (devicePublicKey: Uint8Array): HubError =>
  new HubError(403, 'device_revoked', `device ${Buffer.from(devicePublicKey).toString('hex').slice(0, 16)}… is revoked by its identity`)
