// The store's CID index: one index file per pack (pack-idx.ts), opened at store open without
// reading the packs, plus the records of the current pack that no index file holds yet (in
// memory). Owns when index files are written (a pack is full, a commit's sync finds a long
// unindexed tail, the store closes) and their rebuild from the pack, the source of truth, when
// one is missing or does not check. docs/format.md "Pack index files".
import { promises as fsp } from 'node:fs'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CID, RAW_CODEC } from './cid.js'
import { PACK_HEADER_LENGTH } from './record.js'
import { scanRecords, type BlockIndex, type Location, type PackDamage } from './block-index.js'
import { BucketCache, EntryList, IdxFile, IndexDamaged, writeIndex, type IdxDamage } from './pack-idx.js'
import type { Pack } from './pack-files.js'

/** What the index set needs of the pack files. */
export interface IndexedPacks {
  idxPath: (id: number) => string
  readonly packs: Map<number, Pack>
}

/** What opening the store's indexes cost: the test of "mount reads no pack" reads these. */
export interface IndexStats {
  /** Packs opened. */
  packs: number
  /** Packs whose index file was used as it was. */
  fromIndex: number
  /** Index files (re)built from a whole pack. */
  rebuilt: number
  /** Records read from packs (a rebuild, or the current pack's unindexed tail). */
  scannedRecords: number
  scannedBytes: number
}

interface TailEntry extends Location { digest: Uint8Array, code: number }

/** A commit's sync writes the current pack's index when its unindexed tail is this long. */
const TAIL_BYTES = 32 * 1024 * 1024
const TAIL_RECORDS = 4096

export class PackIndexes implements BlockIndex {
  readonly stats: IndexStats = { packs: 0, fromIndex: 0, rebuilt: 0, scannedRecords: 0, scannedBytes: 0 }
  private readonly files = new Map<number, IdxFile>()
  /** Pack numbers with an index file, newest first: the search order after the hint. */
  private order: number[] = []
  private hint = -1
  /** Records of the current pack not in its index file. */
  private readonly tail = new Map<string, TailEntry>()
  private tailBytes = 0
  /** Bad framing known per pack (from its index file or a scan), kept in the next index written. */
  private readonly damage = new Map<number, IdxDamage | null>()
  private readonly cache = new BucketCache()
  /** A rebuild started by a lookup that found an index damaged. */
  rebuilding: Promise<void> = Promise.resolve()

  constructor (
    private readonly packs: IndexedPacks,
    private readonly log: (line: string) => void,
    private readonly onDamage: (d: PackDamage) => void
  ) {}

  /**
   * Makes pack `pack`'s records up to `end` findable: from its index file when it checks (the pack
   * is not read), else by a scan of the pack, written as its new index file. `current`: the pack
   * appends go to; its records past the index file stay in memory (written at a later sync).
   */
  async openPack (pack: Pack, end: number, current: boolean): Promise<void> {
    const id = pack.id
    const path = this.packs.idxPath(id)
    this.stats.packs++
    if (end <= PACK_HEADER_LENGTH) { await fsp.rm(path, { force: true }); return }
    let idx: IdxFile | null = null
    let reason = 'missing'
    try {
      idx = await IdxFile.open(path, id, this.cache)
      if (idx.meta.from !== PACK_HEADER_LENGTH) { reason = `covers from byte ${idx.meta.from}`; await idx.close(); idx = null }
    } catch (err) {
      if (err instanceof IndexDamaged) reason = err.reason
      else if ((err as NodeJS.ErrnoException).code !== 'ENOENT') reason = `unreadable: ${(err as Error).message}`
    }
    if (idx == null) {
      const scan = await this.indexFromPack(pack, end)
      this.stats.rebuilt++
      this.log(`index: pack ${id} rebuilt from its ${scan.records} records (${reason})`)
      return
    }
    const to = idx.meta.to
    if (to > end) {
      // Indexed past the last commit (a sync whose commit never landed, or a repair's cut): keep what it commits.
      const kept = (await idx.entries()).keepBefore(end)
      const d = idx.meta.damage != null && idx.meta.damage.offset < end ? idx.meta.damage : null
      await idx.close()
      await writeIndex(path, { pack: id, from: PACK_HEADER_LENGTH, to: end, damage: d }, kept)
      idx = await IdxFile.open(path, id, this.cache)
      this.log(`index: pack ${id} cut to byte ${end}, the last commit's end (it indexed ${to})`)
    }
    this.stats.fromIndex++
    if (idx.meta.damage != null) this.onDamage({ pack: id, ...idx.meta.damage, reason: 'bad record header (found when its index was built)' })
    this.install(idx)
    if (idx.meta.to >= end) return
    const scan = await this.scan(pack, idx.meta.to, end)
    this.noteDamage(id, scan.damage)
    if (current) {
      for (let i = 0; i < scan.entries.count; i++) this.addEntry(scan.entries, i, id)
      return
    }
    // A full pack whose last index was written while it was current: complete it now.
    await this.writePack(pack, end, scan.entries)
    this.log(`index: pack ${id} extended from byte ${to} to ${end} (${scan.records} records)`)
  }

  private async scan (pack: Pack, from: number, to: number): ReturnType<typeof scanRecords> {
    const scan = await scanRecords(pack.id, pack.fh, from, to, this.onDamage)
    this.stats.scannedRecords += scan.records
    this.stats.scannedBytes += to - from
    if (from <= PACK_HEADER_LENGTH) this.damage.set(pack.id, scan.damage)
    return scan
  }

  private noteDamage (id: number, d: IdxDamage | null): void {
    if (d == null) return
    const old = this.damage.get(id)
    this.damage.set(id, old == null ? d : { offset: Math.min(old.offset, d.offset), skipped: old.skipped + d.skipped })
  }

  private install (idx: IdxFile): void {
    const id = idx.meta.pack
    const old = this.files.get(id)
    if (old != null && old !== idx) void old.close()
    this.files.set(id, idx)
    if (!this.damage.has(id)) this.damage.set(id, idx.meta.damage)
    this.order = [...this.files.keys()].sort((a, b) => b - a)
  }

  private addEntry (list: EntryList, i: number, pack: number): void {
    const e = list.at(i)
    this.add(cidKey(e.digest, e.code), { pack, offset: e.offset, length: e.length }, e.digest, e.code)
  }

  /** A record the writer appended to the current pack. */
  add (key: string, at: Location, digest: Uint8Array, code: number): void {
    const old = this.tail.get(key)
    if (old != null) this.tailBytes -= old.length
    this.tail.set(key, { ...at, digest, code })
    this.tailBytes += at.length
  }

  get (cid: CID, key: string): Location | undefined {
    const t = this.tail.get(key)
    if (t !== undefined) return t
    const { digest, code } = cid.multihash
    if (this.hint >= 0) {
      const hit = this.lookupIn(this.hint, digest, code)
      if (hit !== undefined) return hit
    }
    for (const id of this.order) {
      if (id === this.hint) continue
      const hit = this.lookupIn(id, digest, code)
      if (hit !== undefined) { this.hint = id; return hit }
    }
    return undefined
  }

  has (cid: CID, key: string): boolean { return this.get(cid, key) !== undefined }

  /** Whether pack `id` holds the block (its tail, its index file): the dedup check of a put. */
  hasIn (id: number, cid: CID, key: string): boolean {
    const t = this.tail.get(key)
    if (t !== undefined) return t.pack === id
    return this.lookupIn(id, cid.multihash.digest, cid.multihash.code) !== undefined
  }

  private lookupIn (id: number, digest: Uint8Array, code: number): Location | undefined {
    const f = this.files.get(id)
    if (f === undefined) return undefined
    try {
      const hit = f.lookup(digest, code)
      return hit == null ? undefined : { pack: id, offset: hit.offset, length: hit.length }
    } catch (err) {
      if (!(err instanceof IndexDamaged)) throw err
      this.damaged(f, err.reason)
      return undefined
    }
  }

  /**
   * An index file failed a check during a lookup: it is dropped at once (its blocks read as
   * missing meanwhile, never from a wrong place) and rebuilt from its pack in the background.
   */
  private damaged (f: IdxFile, reason: string): void {
    const id = f.meta.pack
    const to = f.meta.to
    this.files.delete(id)
    this.order = this.order.filter(x => x !== id)
    void f.close()
    // In turn with checkpoints and seals: one of those meanwhile would find no file for the pack
    // and write one of its tail alone, which the rebuild would then replace.
    this.rebuildingPacks.add(id)
    this.rebuilding = this.inTurn(async () => {
      const pack = this.packs.packs.get(id)
      if (pack == null) return
      if ((this.files.get(id)?.meta.to ?? -1) >= to) return // a seal rebuilt it whole first
      const scan = await this.indexFromPack(pack, to)
      this.stats.rebuilt++
      this.log(`index: pack ${id} rebuilt from its ${scan.records} records (${reason})`)
    }).catch(err => { this.log(`index: pack ${id} could not be rebuilt: ${(err as Error).message}`) })
      .finally(() => { this.rebuildingPacks.delete(id) })
  }

  /** Writes and installs `pack`'s index file of every record before `to`, read from the pack. */
  private async indexFromPack (pack: Pack, to: number): ReturnType<PackIndexes['scan']> {
    const scan = await this.scan(pack, PACK_HEADER_LENGTH, to)
    await writeIndex(this.packs.idxPath(pack.id), { pack: pack.id, from: PACK_HEADER_LENGTH, to, damage: scan.damage }, scan.entries)
    this.install(await IdxFile.open(this.packs.idxPath(pack.id), pack.id, this.cache))
    return scan
  }

  /** Packs whose damaged index file waits for its rebuild (damaged()). */
  private readonly rebuildingPacks = new Set<number>()

  /** Index files being written by seal, checkpoint and rebuild: one at a time, in the order asked. */
  private writing: Promise<void> = Promise.resolve()

  /** Resolves once the index files asked for so far are written (or failed). */
  written (): Promise<void> { return this.writing }

  private inTurn (run: () => Promise<void>): Promise<void> {
    const r = this.writing.then(run)
    this.writing = r.catch(() => {})
    return r
  }

  /** The pack is full (or the store closes): every record of it goes into its index file. */
  async seal (pack: Pack): Promise<void> {
    await this.inTurn(async () => {
      if (pack.size <= PACK_HEADER_LENGTH) return
      if (this.rebuildingPacks.has(pack.id) && this.files.get(pack.id) == null) {
        // Its file was found damaged and its rebuild comes later: built whole from the pack now.
        await this.indexFromPack(pack, pack.size)
        for (const [k, t] of this.tail) if (t.pack === pack.id) { this.tailBytes -= t.length; this.tail.delete(k) }
        return
      }
      const f = this.files.get(pack.id)
      if (f != null && f.meta.to >= pack.size && ![...this.tail.values()].some(t => t.pack === pack.id)) return
      await this.writePack(pack, pack.size)
    })
  }

  /**
   * After a commit's sync: writes the current pack's index up to `end` when the unindexed tail
   * is long (TAIL_BYTES, or TAIL_RECORDS and an eighth of the pack's records), so that an open
   * scans at most that much and a pack of small records is not rewritten at every commit.
   */
  async checkpoint (pack: Pack, end: number): Promise<void> {
    await this.inTurn(async () => {
      if (this.rebuildingPacks.has(pack.id)) return // its rebuild writes it (and the next checkpoint the tail)
      const f = this.files.get(pack.id)
      if (f != null && f.meta.to >= end) return // sealed (or written this far) meanwhile
      if (this.tailBytes < TAIL_BYTES && this.tail.size < Math.max(TAIL_RECORDS, (f?.count ?? 0) / 8)) return
      await this.writePack(pack, end)
    })
  }

  /** Writes pack `pack`'s index up to `end`: its file's entries, `more`, and its tail before `end`. */
  private async writePack (pack: Pack, end: number, more?: EntryList): Promise<void> {
    const id = pack.id
    const old = this.files.get(id)
    const list = old != null ? await old.entries() : new EntryList()
    if (more != null) for (let i = 0; i < more.count; i++) { const e = more.at(i); list.push(e.digest, e.code, e.offset, e.length) }
    const moved: string[] = []
    for (const [k, t] of this.tail) {
      if (t.pack !== id || t.offset + t.length > end) continue
      list.push(t.digest, t.code, t.offset, t.length)
      moved.push(k)
    }
    const path = this.packs.idxPath(id)
    await writeIndex(path, { pack: id, from: PACK_HEADER_LENGTH, to: end, damage: this.damage.get(id) ?? null }, list)
    this.install(await IdxFile.open(path, id, this.cache))
    for (const k of moved) { this.tailBytes -= this.tail.get(k)!.length; this.tail.delete(k) }
  }

  async close (): Promise<void> {
    await this.rebuilding
    await this.writing
    for (const f of this.files.values()) await f.close()
    this.files.clear()
    this.order = []
  }
}

/** The key of an entry's block: the string form of its CID (raw codec, as every record names). */
const cidKey = (digest: Uint8Array, code: number): string => CID.createV1(RAW_CODEC, createDigest(code, digest)).toString()
