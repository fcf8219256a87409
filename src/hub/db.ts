// The hub's embedded on-disk database (node:sqlite, WAL): users, vaults, rate-limit buckets.
// It holds public keys, sealed vault boxes and slow hashes of vsk: nothing that opens a vault.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'

export const DB_FILE = 'hub.sqlite'
const SCHEMA_VERSION = 1

export interface UserRow { id: Buffer, username: string, publicKey: Buffer, createdAt: number }
export interface VaultRow { userId: Buffer, box: Buffer, vskSalt: Buffer, vskHash: Buffer, hashParams: string, updatedAt: number }
export interface BucketRow { tokens: number, updatedAt: number }

const buf = (v: unknown): Buffer => Buffer.from(v as Uint8Array)

export class HubDb {
  private readonly db: DatabaseSync

  constructor (dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    this.db = new DatabaseSync(join(dataDir, DB_FILE))
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;')
    const version = (this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version
    if (version > SCHEMA_VERSION) throw new Error(`hub database schema ${version} is newer than this build (${SCHEMA_VERSION})`)
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS users (
        id BLOB PRIMARY KEY, username TEXT NOT NULL UNIQUE, public_key BLOB NOT NULL UNIQUE, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS vaults (
        user_id BLOB PRIMARY KEY REFERENCES users(id), box BLOB NOT NULL, vsk_salt BLOB NOT NULL,
        vsk_hash BLOB NOT NULL, hash_params TEXT NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS buckets (
        key TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_at INTEGER NOT NULL);
      PRAGMA user_version = ${SCHEMA_VERSION};`)
  }

  close (): void { this.db.close() }

  userByName (username: string): UserRow | undefined {
    return this.toUser(this.db.prepare('SELECT * FROM users WHERE username = ?').get(username))
  }

  userById (id: Uint8Array): UserRow | undefined {
    return this.toUser(this.db.prepare('SELECT * FROM users WHERE id = ?').get(id))
  }

  userByKey (publicKey: Uint8Array): UserRow | undefined {
    return this.toUser(this.db.prepare('SELECT * FROM users WHERE public_key = ?').get(publicKey))
  }

  insertUser (u: UserRow): void {
    this.db.prepare('INSERT INTO users (id, username, public_key, created_at) VALUES (?, ?, ?, ?)').run(u.id, u.username, u.publicKey, u.createdAt)
  }

  vault (userId: Uint8Array): VaultRow | undefined {
    const r = this.db.prepare('SELECT * FROM vaults WHERE user_id = ?').get(userId) as Record<string, unknown> | undefined
    if (r === undefined) return undefined
    return { userId: buf(r.user_id), box: buf(r.box), vskSalt: buf(r.vsk_salt), vskHash: buf(r.vsk_hash), hashParams: String(r.hash_params), updatedAt: Number(r.updated_at) }
  }

  putVault (v: VaultRow): void {
    this.db.prepare(`INSERT INTO vaults (user_id, box, vsk_salt, vsk_hash, hash_params, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(user_id) DO UPDATE SET box = excluded.box, vsk_salt = excluded.vsk_salt, vsk_hash = excluded.vsk_hash,
      hash_params = excluded.hash_params, updated_at = excluded.updated_at`).run(v.userId, v.box, v.vskSalt, v.vskHash, v.hashParams, v.updatedAt)
  }

  bucket (key: string): BucketRow | undefined {
    const r = this.db.prepare('SELECT tokens, updated_at FROM buckets WHERE key = ?').get(key) as Record<string, unknown> | undefined
    return r === undefined ? undefined : { tokens: Number(r.tokens), updatedAt: Number(r.updated_at) }
  }

  setBucket (key: string, b: BucketRow): void {
    this.db.prepare(`INSERT INTO buckets (key, tokens, updated_at) VALUES (?, ?, ?)
      ON CONFLICT(key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`).run(key, b.tokens, b.updatedAt)
  }

  private toUser (r: unknown): UserRow | undefined {
    if (r === undefined) return undefined
    const o = r as Record<string, unknown>
    return { id: buf(o.id), username: String(o.username), publicKey: buf(o.public_key), createdAt: Number(o.created_at) }
  }
}
