// The replication database (node:sqlite, WAL, its own file beside hub.sqlite): which user
// references which block, and the block store's committed watermark. Both change in one
// transaction, so a block a user was told is stored is below the watermark the store reopens at.
// The device revocation table lives here too (auth.ts creates and owns it).
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { Watermark } from '../../store/types.js'

export const REPLICATION_DB_FILE = 'replication.sqlite'
const SCHEMA_VERSION = 1

export function openReplicationDb (dataDir: string): DatabaseSync {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const db = new DatabaseSync(join(dataDir, REPLICATION_DB_FILE))
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;')
  const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version
  if (version > SCHEMA_VERSION) throw new Error(`hub replication database schema ${version} is newer than this build (${SCHEMA_VERSION})`)
  db.exec(`
    CREATE TABLE IF NOT EXISTS block_refs (
      user_id BLOB NOT NULL, cid BLOB NOT NULL, size INTEGER NOT NULL, added_at INTEGER NOT NULL,
      PRIMARY KEY (user_id, cid)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS store_state (
      id INTEGER PRIMARY KEY CHECK (id = 1), pack INTEGER NOT NULL, offset INTEGER NOT NULL);
    PRAGMA user_version = ${SCHEMA_VERSION};`)
  return db
}

export interface BlockRef { cid: Uint8Array, size: number }
/** CIDs per lookup statement at most (SQLite allows 32,766 parameters). */
const HELD_CHUNK = 256

/** The block tables' statements. */
export class BlockRefs {
  private readonly hasStmt
  private readonly insertStmt
  private readonly usageStmt

  constructor (private readonly db: DatabaseSync, private readonly now: () => number = Date.now) {
    this.hasStmt = db.prepare('SELECT 1 FROM block_refs WHERE user_id = ? AND cid = ?')
    this.insertStmt = db.prepare('INSERT OR IGNORE INTO block_refs (user_id, cid, size, added_at) VALUES (?, ?, ?, ?)')
    this.usageStmt = db.prepare('SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM block_refs WHERE user_id = ?')
  }

  has (userId: Uint8Array, cid: Uint8Array): boolean { return this.hasStmt.get(userId, cid) !== undefined }

  /**
   * Which of `cids` `userId` references (their hex), in queries of up to HELD_CHUNK CIDs each:
   * a batch's 1,024 lookups were 1,024 statements on the event loop.
   */
  held (userId: Uint8Array, cids: Uint8Array[]): Set<string> {
    const out = new Set<string>()
    for (let i = 0; i < cids.length; i += HELD_CHUNK) {
      const part = cids.slice(i, i + HELD_CHUNK)
      let stmt = this.heldStmts.get(part.length)
      if (stmt === undefined) {
        stmt = this.db.prepare(`SELECT cid FROM block_refs WHERE user_id = ? AND cid IN (${part.map(() => '?').join(',')})`)
        this.heldStmts.set(part.length, stmt)
      }
      for (const r of stmt.all(userId, ...part) as Array<{ cid: Uint8Array }>) out.add(Buffer.from(r.cid).toString('hex'))
    }
    return out
  }

  private readonly heldStmts = new Map<number, StatementSync>()

  usage (userId: Uint8Array): { blocks: number, bytes: number } {
    const r = this.usageStmt.get(userId) as { n: number, bytes: number }
    return { blocks: Number(r.n), bytes: Number(r.bytes) }
  }

  watermark (): Watermark | null {
    const r = this.db.prepare('SELECT pack, offset FROM store_state WHERE id = 1').get() as { pack: number, offset: number } | undefined
    return r === undefined ? null : { pack: Number(r.pack), offset: Number(r.offset) }
  }

  /** Records each user's `refs` and moves the watermark forward to `w` (never back), atomically. */
  commit (batches: Array<{ userId: Uint8Array, refs: BlockRef[] }>, w: Watermark): void {
    const t = this.now()
    this.db.exec('BEGIN IMMEDIATE')
    try {
      for (const { userId, refs } of batches) for (const r of refs) this.insertStmt.run(userId, r.cid, r.size, t)
      const cur = this.watermark()
      if (cur === null || w.pack > cur.pack || (w.pack === cur.pack && w.offset > cur.offset)) {
        this.db.prepare('INSERT INTO store_state (id, pack, offset) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET pack = excluded.pack, offset = excluded.offset').run(w.pack, w.offset)
      }
      this.db.exec('COMMIT')
    } catch (err) {
      this.db.exec('ROLLBACK')
      throw err
    }
  }
}
