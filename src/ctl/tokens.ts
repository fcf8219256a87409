// App tokens: who may call which control methods. The table (<configDir>/tokens.json, 0600) holds
// only SHA-256 hashes of the secrets; the master token's secret itself sits in the OS keychain, or
// where none answers, in <configDir>/master.token (0600) for the CLI to read.
//
// A token is "spc1_<id>_<secret>": 8 random id bytes (hex) to find the record, 32 random secret
// bytes (base64url). A 256-bit random secret cannot be guessed, so a fast hash is enough (a slow
// KDF protects low-entropy passwords, not this) and keeps per-request checks cheap; comparison
// is constant-time so response timing says nothing about how much of a guess matched.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { KeychainStore, writePrivateFile } from '../keys/keystore.js'
import { readIdentityConfig } from '../keys/account.js'
import { CtlError } from './errors.js'
import { allows, isAllowEntry, METHODS, type MethodName, type TokenInfo } from './protocol.js'

export const TOKENS_FILE = 'tokens.json'
export const MASTER_TOKEN_FILE = 'master.token'
const TABLE_VERSION = 1
const TOKEN_RE = /^spc1_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const MAX_TOKENS = 1000

/** `parent`: the token that minted this one (null: the master token, or made by the CLI's master). */
interface TokenRecord extends TokenInfo { hash: string, parent?: string | null }
type MasterStore = { store: 'keychain', account: string } | { store: 'file' }
interface TokenTable { version: number, master: { id: string } & MasterStore, tokens: TokenRecord[] }

/** What a verified token grants; re-checked on every request (it may be revoked meanwhile). */
export interface Grant { id: string, name: string, allow: string[], master: boolean }

const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex')

function newToken (): { id: string, secret: string, token: string } {
  const id = randomBytes(8).toString('hex')
  const secret = randomBytes(32).toString('base64url')
  return { id, secret, token: `spc1_${id}_${secret}` }
}

const info = (r: TokenRecord): TokenInfo => ({ id: r.id, name: r.name, allow: [...r.allow], createdAt: r.createdAt, expiresAt: r.expiresAt, revokedAt: r.revokedAt, master: r.master })

function parseTable (text: string, path: string): TokenTable {
  const t = JSON.parse(text) as TokenTable
  if (t?.version !== TABLE_VERSION || !Array.isArray(t.tokens) || typeof t.master?.id !== 'string') throw new Error(`${path} is not a version ${TABLE_VERSION} token table`)
  return t
}

/** The token table of one config dir, as the daemon sees it. Reloads when the file changes. */
export class TokenStore {
  readonly path: string
  private table: TokenTable | null = null
  private stamp = ''

  constructor (readonly configDir: string, private readonly now: () => number = Date.now) {
    this.path = join(configDir, TOKENS_FILE)
  }

  private load (): TokenTable {
    let st
    try {
      st = statSync(this.path)
    } catch {
      throw new CtlError('ERR_TOKEN_INVALID', `no token table in ${this.configDir}; the daemon cannot check tokens`)
    }
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`
    if (this.table === null || stamp !== this.stamp) {
      this.table = parseTable(readFileSync(this.path, 'utf8'), this.path)
      this.stamp = stamp
    }
    return this.table
  }

  private async save (t: TokenTable): Promise<void> {
    await writePrivateFile(this.path, JSON.stringify(t, null, 2) + '\n')
    this.table = null // re-stat on next use
  }

  /** Checks a presented token; throws a CtlError naming what is wrong with it. */
  verify (token: unknown): Grant {
    if (token === undefined || token === null || token === '') throw new CtlError('ERR_TOKEN_MISSING', 'no app token: pass "token" in hello')
    const m = typeof token === 'string' ? TOKEN_RE.exec(token) : null
    if (m === null) throw new CtlError('ERR_TOKEN_INVALID', 'the app token is malformed')
    const rec = this.load().tokens.find(r => r.id === m[1])
    // Same work whether or not the id exists: hash and compare against something of equal length.
    const want = Buffer.from(rec?.hash ?? 'x'.repeat(64), 'hex')
    const got = Buffer.from(hashSecret(m[2]), 'hex')
    if (rec === undefined || want.length !== got.length || !timingSafeEqual(want, got)) throw new CtlError('ERR_TOKEN_INVALID', 'the app token is not valid here (wrong or unknown)')
    return this.check(rec)
  }

  /** Re-validates a grant from an earlier hello against the current table. */
  recheck (g: Grant): Grant {
    const rec = this.load().tokens.find(r => r.id === g.id)
    if (rec === undefined) throw new CtlError('ERR_TOKEN_REVOKED', `app token "${g.name}" was revoked`)
    return this.check(rec)
  }

  /**
   * A token lives only as long as every token above it: a revoked, expired or missing ancestor
   * ends it too (revoke also marks the descendants, but expiry needs this walk).
   */
  private check (rec: TokenRecord): Grant {
    const table = this.load()
    const seen = new Set<string>([rec.id])
    for (let up = rec.parent ?? null; up !== null;) {
      const p = table.tokens.find(r => r.id === up)
      if (p === undefined || seen.has(p.id)) throw new CtlError('ERR_TOKEN_REVOKED', `app token "${rec.name}" was minted by a token that no longer exists`, { token: rec.id })
      seen.add(p.id)
      if (p.revokedAt !== null) throw new CtlError('ERR_TOKEN_REVOKED', `app token "${rec.name}" ended with the token that minted it ("${p.name}", revoked at ${p.revokedAt})`, { token: rec.id })
      if (p.expiresAt !== null && Date.parse(p.expiresAt) <= this.now()) throw new CtlError('ERR_TOKEN_EXPIRED', `app token "${rec.name}" ended with the token that minted it ("${p.name}", expired at ${p.expiresAt})`, { token: rec.id })
      up = p.parent ?? null
    }
    if (rec.revokedAt !== null) throw new CtlError('ERR_TOKEN_REVOKED', `app token "${rec.name}" was revoked at ${rec.revokedAt}`, { token: rec.id })
    if (rec.expiresAt !== null && Date.parse(rec.expiresAt) <= this.now()) throw new CtlError('ERR_TOKEN_EXPIRED', `app token "${rec.name}" expired at ${rec.expiresAt}`, { token: rec.id })
    return { id: rec.id, name: rec.name, allow: [...rec.allow], master: rec.master }
  }

  list (): TokenInfo[] { return this.load().tokens.map(info) }

  /**
   * Issues a token. A token may hand out only what it holds itself (no escalation through
   * tokens:admin). Returns the secret once; only its hash is kept.
   */
  async create (by: Grant, req: { name: string, allow: string[], expiresInSec?: number }): Promise<{ token: string, info: TokenInfo }> {
    if (!NAME_RE.test(req.name)) throw new CtlError('ERR_INVALID_PARAMS', 'a token name is 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit', { param: 'name' })
    if (req.allow.length === 0) throw new CtlError('ERR_INVALID_PARAMS', 'a token needs at least one scope or method in "allow"', { param: 'allow' })
    const unknown = req.allow.find(a => !isAllowEntry(a))
    if (unknown !== undefined) throw new CtlError('ERR_INVALID_PARAMS', `"${unknown}" is neither a scope nor a method`, { param: 'allow' })
    if (req.allow.includes('*')) throw new CtlError('ERR_INVALID_PARAMS', 'only the master token has "*"', { param: 'allow' })
    // Within the parent's scopes: every method an entry grants must be one the parent may call.
    const beyond = req.allow.find(a => !by.allow.includes('*') && !METHODS.filter(m => m !== 'hello' && allows([a], m)).every(m => allows(by.allow, m)))
    if (beyond !== undefined) throw new CtlError('ERR_FORBIDDEN', `token "${by.name}" cannot grant "${beyond}", which it does not hold`)
    const t = this.load()
    const parent = by.master ? null : t.tokens.find(r => r.id === by.id)
    if (parent === undefined) throw new CtlError('ERR_TOKEN_REVOKED', `app token "${by.name}" was revoked`)
    // Within the parent's lifetime: no later expiry than its own.
    const parentEnd = parent?.expiresAt == null ? null : Date.parse(parent.expiresAt)
    const askedEnd = req.expiresInSec === undefined ? null : this.now() + req.expiresInSec * 1000
    if (parentEnd !== null && askedEnd !== null && askedEnd > parentEnd) throw new CtlError('ERR_FORBIDDEN', `token "${by.name}" expires at ${parent!.expiresAt}; it cannot issue a token that outlives it`)
    const end = askedEnd ?? parentEnd
    if (t.tokens.some(r => r.name === req.name && r.revokedAt === null)) throw new CtlError('ERR_TOKEN_NAME_TAKEN', `a token named "${req.name}" exists; revoke it first`)
    if (t.tokens.length >= MAX_TOKENS) throw new CtlError('ERR_BUSY', `at most ${MAX_TOKENS} tokens (revoked ones included)`)
    const { id, secret, token } = newToken()
    const rec: TokenRecord = {
      id, name: req.name, allow: [...new Set(req.allow)], hash: hashSecret(secret),
      createdAt: new Date(this.now()).toISOString(),
      expiresAt: end === null ? null : new Date(end).toISOString(),
      revokedAt: null, master: false, parent: parent?.id ?? null
    }
    await this.save({ ...t, tokens: [...t.tokens, rec] })
    return { token, info: info(rec) }
  }

  /** Revokes by id or by the name of a live token. The record stays, so "revoked" can be named. */
  async revoke (idOrName: string): Promise<TokenInfo> {
    const t = this.load()
    const rec = t.tokens.find(r => r.id === idOrName) ?? t.tokens.find(r => r.name === idOrName && r.revokedAt === null)
    if (rec === undefined) throw new CtlError('ERR_TOKEN_NOT_FOUND', `no token "${idOrName}"`)
    if (rec.master) throw new CtlError('ERR_FORBIDDEN', 'the master token cannot be revoked (it is how the CLI reaches the daemon)')
    if (rec.revokedAt !== null) return info(rec)
    // The token and everything minted below it, so the list says what check() enforces.
    const doomed = new Set([rec.id])
    for (let grew = true; grew;) {
      grew = false
      for (const r of t.tokens) if (r.parent != null && doomed.has(r.parent) && !doomed.has(r.id)) { doomed.add(r.id); grew = true }
    }
    const at = new Date(this.now()).toISOString()
    const tokens = t.tokens.map(r => doomed.has(r.id) && r.revokedAt === null ? { ...r, revokedAt: at } : r)
    await this.save({ ...t, tokens })
    return info(tokens.find(r => r.id === rec.id)!)
  }
}

export const grantAllows = (g: Grant, method: MethodName): boolean => allows(g.allow, method)

// ---- the master token --------------------------------------------------------------------------

function keychainAccount (id: string): string { return `ctl-master-${id}` }

async function readTable (configDir: string): Promise<TokenTable | null> {
  const path = join(configDir, TOKENS_FILE)
  try {
    return parseTable(await readFile(path, 'utf8'), path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/** The master token's secret, as the CLI reads it. Null when there is none. */
export async function readMasterToken (configDir: string): Promise<string | null> {
  const t = await readTable(configDir)
  if (t === null) return null
  let secret: Buffer | null
  if (t.master.store === 'keychain') {
    secret = await new KeychainStore(t.master.account).get()
  } else {
    secret = await readFile(join(configDir, MASTER_TOKEN_FILE)).catch(() => null)
  }
  const token = secret?.toString('utf8').trim() ?? null
  if (token === null) return null
  const m = TOKEN_RE.exec(token)
  const rec = t.tokens.find(r => r.id === t.master.id)
  if (m === null || rec === undefined || m[1] !== rec.id || hashSecret(m[2]) !== rec.hash) return null
  return token
}

/** The OS keychain if it answers (and the user did not pick the file keystore); null: use the file. */
async function keychainFor (configDir: string, id: string, token: string): Promise<MasterStore | null> {
  const identity = await readIdentityConfig(configDir).catch(() => null)
  if (identity?.keystore.backend === 'file') return null
  const kc = new KeychainStore(keychainAccount(id)) // account unique per token: no clobbering
  try {
    await kc.set(Buffer.from(token))
    if ((await kc.get())?.toString('utf8') === token) return { store: 'keychain', account: keychainAccount(id) }
  } catch { /* no keychain here */ }
  return null
}

/**
 * Creates the master token unless a readable one exists (`space init`, first daemon start).
 * Keeps every other token. Returns where the secret lives, and whether it was made now.
 */
export async function ensureMasterToken (configDir: string): Promise<{ created: boolean, store: 'keychain' | 'file' }> {
  await mkdir(configDir, { recursive: true, mode: 0o700 })
  const existing = await readTable(configDir)
  if (existing !== null && await readMasterToken(configDir).catch(() => null) !== null) return { created: false, store: existing.master.store }
  const { id, secret, token } = newToken()
  const rec: TokenRecord = { id, name: 'master', allow: ['*'], hash: hashSecret(secret), createdAt: new Date().toISOString(), expiresAt: null, revokedAt: null, master: true }
  const where: MasterStore = await keychainFor(configDir, id, token) ?? { store: 'file' }
  const others = (existing?.tokens ?? []).filter(r => !r.master)
  const table: TokenTable = { version: TABLE_VERSION, master: { id, ...where }, tokens: [rec, ...others] }
  const path = join(configDir, TOKENS_FILE)
  const text = JSON.stringify(table, null, 2) + '\n'
  if (existing === null) {
    // First creation: link() fails if another process (init racing a daemon) won; keep theirs.
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
    await writeFile(tmp, text, { mode: 0o600, flush: true })
    try {
      await link(tmp, path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      if (where.store === 'keychain') await new KeychainStore(where.account).delete().catch(() => {})
      return { created: false, store: (await readTable(configDir))!.master.store }
    } finally {
      await rm(tmp, { force: true })
    }
  } else {
    await writePrivateFile(path, text)
  }
  if (where.store === 'file') await writePrivateFile(join(configDir, MASTER_TOKEN_FILE), token + '\n')
  else await rm(join(configDir, MASTER_TOKEN_FILE), { force: true })
  return { created: true, store: where.store }
}
