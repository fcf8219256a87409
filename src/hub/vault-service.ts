// The vault API's logic, apart from HTTP: registration, challenge-response, vault write and
// guarded fetch. It stores only a slow hash of vsk and compares in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { scrypt, type ScryptParams } from '../crypto/index.js'
import { ed25519Verify } from '../keys/ed25519.js'
import { BoxPurpose, decodeBoxHeader, BOX_HEADER_LEN } from '../keys/passbox.js'
import {
  authMessage, b64u, CHALLENGE_ID_LEN, CHALLENGE_LEN, fromB64u, registerMessage, REGISTER_SKEW_MS,
  USER_ID_LEN, USERNAME_RE, type UserInfo
} from '../keys/vault-protocol.js'
import type { HubDb } from './db.js'
import { badRequest, HubError } from './errors.js'
import { RateLimiter, type BucketPolicy } from './rate-limit.js'

/** Slow hash of vsk (v1). vsk is already 256 random-looking bits; the cost guards a leaked DB. */
const VSK_HASH_V1: ScryptParams = { N: 2 ** 15, r: 8, p: 1 }
const VSK_HASH_TEST: ScryptParams = { N: 2 ** 10, r: 8, p: 1 }
const CHALLENGE_TTL_MS = 60_000
const TOKEN_TTL_MS = 120_000
const MAX_PENDING = 10_000
const MAX_BOX = 4096

export interface GuessLimits { perUser: BucketPolicy, perClient: BucketPolicy }

/** 10 guesses at once, then one a minute per user; 20 at once, then one per 30 s per client. */
export const DEFAULT_GUESS_LIMITS: GuessLimits = {
  perUser: { capacity: 10, refillPerSec: 1 / 60 },
  perClient: { capacity: 20, refillPerSec: 1 / 30 }
}

function hashParams (): ScryptParams { return process.env.SPACE_TEST_CHEAP_KDF === '1' ? VSK_HASH_TEST : VSK_HASH_V1 }
const encodeParams = (p: ScryptParams): string => `scrypt:${Math.log2(p.N)}:${p.r}:${p.p}`
function decodeParams (s: string): ScryptParams {
  const m = /^scrypt:(\d+):(\d+):(\d+)$/.exec(s)
  if (m === null) throw new Error(`unknown vsk hash parameters ${s}`)
  return { N: 2 ** Number(m[1]), r: Number(m[2]), p: Number(m[3]) }
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

export class VaultService {
  private readonly challenges = new Map<string, { userId: Buffer, challenge: Buffer, expires: number }>()
  private readonly tokens = new Map<string, { userId: Buffer, expires: number }>()
  private readonly limiter: RateLimiter

  constructor (private readonly db: HubDb, private readonly limits: GuessLimits = DEFAULT_GUESS_LIMITS, private readonly now: () => number = Date.now) {
    this.limiter = new RateLimiter(db, now)
  }

  register (body: Record<string, unknown>): { status: number, userId: string } {
    const { username, timestamp } = body
    const publicKey = fromB64u(body.publicKey, 32)
    const signature = fromB64u(body.signature, 64)
    if (typeof username !== 'string' || !USERNAME_RE.test(username)) throw badRequest('username must be 3-32 of a-z 0-9 . _ - and start with a letter or digit')
    if (publicKey === undefined || signature === undefined || typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp)) throw badRequest('publicKey, timestamp and signature are required')
    if (Math.abs(this.now() - timestamp) > REGISTER_SKEW_MS) throw new HubError(401, 'stale_signature', 'registration timestamp is too far from the hub clock')
    if (!ed25519Verify(publicKey, registerMessage(username, publicKey, timestamp), signature)) throw new HubError(401, 'bad_signature', 'registration signature does not verify')
    const existing = this.db.userByName(username)
    if (existing !== undefined) {
      if (existing.publicKey.equals(publicKey)) return { status: 200, userId: b64u(existing.id) }
      throw new HubError(409, 'username_taken', `username "${username}" belongs to another key`)
    }
    if (this.db.userByKey(publicKey) !== undefined) throw new HubError(409, 'key_registered', 'this public key already has another username')
    const id = randomBytes(USER_ID_LEN)
    this.db.insertUser({ id, username, publicKey, createdAt: this.now() })
    return { status: 201, userId: b64u(id) }
  }

  lookup (username: string): UserInfo {
    const user = this.db.userByName(username)
    if (user === undefined) throw new HubError(404, 'not_found', `no user "${username}"`)
    const vault = this.db.vault(user.id)
    return { userId: b64u(user.id), publicKey: b64u(user.publicKey), vaultHeader: vault === undefined ? null : b64u(vault.box.subarray(0, BOX_HEADER_LEN)) }
  }

  challenge (body: Record<string, unknown>): { challengeId: string, challenge: string, expiresIn: number } {
    const userId = fromB64u(body.userId, USER_ID_LEN)
    if (userId === undefined) throw badRequest('userId is required')
    if (this.db.userById(userId) === undefined) throw new HubError(404, 'not_found', 'no such user')
    this.sweep()
    if (this.challenges.size >= MAX_PENDING) throw new HubError(503, 'busy', 'too many pending challenges', { 'Retry-After': '5' })
    const id = randomBytes(CHALLENGE_ID_LEN)
    const challenge = randomBytes(CHALLENGE_LEN)
    this.challenges.set(id.toString('hex'), { userId, challenge, expires: this.now() + CHALLENGE_TTL_MS })
    return { challengeId: b64u(id), challenge: b64u(challenge), expiresIn: CHALLENGE_TTL_MS / 1000 }
  }

  /** A challenge is spent by its first answer, right or wrong: replays and retries both fail. */
  token (body: Record<string, unknown>): { token: string, expiresIn: number } {
    const id = fromB64u(body.challengeId, CHALLENGE_ID_LEN)
    const signature = fromB64u(body.signature, 64)
    if (id === undefined || signature === undefined) throw badRequest('challengeId and signature are required')
    const pending = this.challenges.get(id.toString('hex'))
    this.challenges.delete(id.toString('hex'))
    if (pending === undefined || pending.expires < this.now()) throw new HubError(401, 'bad_challenge', 'unknown, used or expired challenge')
    const user = this.db.userById(pending.userId)
    if (user === undefined || !ed25519Verify(user.publicKey, authMessage(id, pending.userId, pending.challenge), signature)) {
      throw new HubError(401, 'bad_signature', 'challenge signature does not verify')
    }
    const token = randomBytes(32)
    this.tokens.set(sha256(token), { userId: pending.userId, expires: this.now() + TOKEN_TTL_MS })
    return { token: b64u(token), expiresIn: TOKEN_TTL_MS / 1000 }
  }

  async putVault (authorization: string | undefined, body: Record<string, unknown>): Promise<void> {
    const m = /^Bearer ([A-Za-z0-9_-]+)$/.exec(authorization ?? '')
    const token = m === null ? undefined : fromB64u(m[1], 32)
    const session = token === undefined ? undefined : this.tokens.get(sha256(token))
    if (session === undefined || session.expires < this.now()) throw new HubError(401, 'unauthorized', 'a valid token from the challenge-response is required')
    const box = fromB64u(body.box)
    const vsk = fromB64u(body.vsk, 32)
    if (box === undefined || vsk === undefined || box.length > MAX_BOX) throw badRequest('box and vsk are required')
    try {
      if (decodeBoxHeader(box).purpose !== BoxPurpose.Vault) throw new Error()
    } catch {
      throw badRequest('box is not a vault box')
    }
    const params = hashParams()
    const vskSalt = randomBytes(16)
    const vskHash = await scrypt(vsk, vskSalt, params)
    this.db.putVault({ userId: session.userId, box, vskSalt, vskHash, hashParams: encodeParams(params), updatedAt: this.now() })
  }

  async fetchVault (client: string, body: Record<string, unknown>): Promise<{ box: string }> {
    const userId = fromB64u(body.userId, USER_ID_LEN)
    const vsk = fromB64u(body.vsk, 32)
    if (userId === undefined || vsk === undefined) throw badRequest('userId and vsk are required')
    const vault = this.db.vault(userId)
    if (vault === undefined) throw new HubError(404, 'not_found', 'no vault for this user')
    const buckets: Array<[string, BucketPolicy]> = [
      [`guess:user:${userId.toString('hex')}`, this.limits.perUser],
      [`guess:client:${client}`, this.limits.perClient]
    ]
    const taken = this.limiter.take(buckets)
    if (!taken.ok) {
      throw new HubError(429, 'rate_limited', `too many passphrase attempts; retry in ${taken.retryAfter} s`, { 'Retry-After': String(taken.retryAfter) })
    }
    const hash = await scrypt(vsk, vault.vskSalt, decodeParams(vault.hashParams))
    if (!timingSafeEqual(hash, vault.vskHash)) throw new HubError(403, 'wrong_passphrase', 'wrong passphrase')
    this.limiter.give(buckets)
    return { box: b64u(vault.box) }
  }

  private sweep (): void {
    const t = this.now()
    for (const [k, v] of this.challenges) if (v.expires < t) this.challenges.delete(k)
    for (const [k, v] of this.tokens) if (v.expires < t) this.tokens.delete(k)
  }
}
