// Every entry this device has accepted or written, by CID, under <data dir>/sync/entries/: the
// DAG a merge searches for the common ancestor. Entries are public data (sealed roots, keys,
// CIDs), written durably before the state that names them.
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { decodeEntry, type SignedEntry } from './entry.js'
import { writeDurably } from './log-state.js'

export class EntryCache {
  private readonly mem = new Map<string, SignedEntry>()
  private constructor (private readonly dir: string) {}

  static async open (dir: string): Promise<EntryCache> {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
    return new EntryCache(dir)
  }

  async put (s: SignedEntry): Promise<void> {
    const key = s.cid.toString()
    if (this.mem.has(key)) return
    await writeDurably(join(this.dir, key), s.bytes)
    this.mem.set(key, s)
  }

  /** The entry `cid` names, checked against it; null if this device never had it. */
  async get (cid: CID): Promise<SignedEntry | null> {
    const key = cid.toString()
    const hit = this.mem.get(key)
    if (hit != null) return hit
    let bytes: Buffer
    try {
      bytes = await fsp.readFile(join(this.dir, key))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    const s = decodeEntry(bytes, cid)
    if (this.mem.size < 4096) this.mem.set(key, s)
    return s
  }
}
