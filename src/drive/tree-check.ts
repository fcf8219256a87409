// fsck's walk of one commit's tree: every reachable directory node, block map and content block
// is read from the packs (pack-scan.ts's index), hashed against the CID it is reached by, and
// opened with its key and position. Results are kept per object, so walking many commits (as
// repair does, newest first) reads each object once.
import { promises as fsp } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import * as cbor from '@ipld/dag-cbor'
import { CID, checkCid } from '../store/cid.js'
import { open, openPatch, SealType, unpadFrame } from '../crypto/index.js'
import type { BlockEntry, CommitRecord, DirNodeRecord, EntryRecord, LinkNameRecord, LinkTableRecord } from '../fs/tree/format.js'
import { walkMapTree } from '../fs/tree/block-map.js'
import type { NoncedEntry } from '../fs/tree/block-ref.js'
import { readAllRecords } from '../fs/tree/dir-shards.js'
import type { BlockLoc } from './pack-scan.js'
import { packName } from './quarantine.js'

/** One damaged object: where in the tree it is reached (path, block index) and what is wrong. */
export interface TreeProblem { path: string, what: string, cid: string, block?: number }

export interface TreeCounts { dirs: number, files: number, blocks: number }

type DirEntry = EntryRecord & { d: CID, i: Uint8Array, k: Uint8Array }

const KIND_DIR = 2
const KIND_FILE = 1

export class TreeChecker {
  private readonly files = new Map<number, FileHandle>()
  /** Per object (CID and position): null when intact, else what is wrong with it. */
  private readonly seen = new Map<string, string | null>()
  /** Per directory node: its subtree's problems (paths below it) and counts. */
  private readonly subtrees = new Map<string, { problems: TreeProblem[], counts: TreeCounts }>()

  constructor (private readonly packsDir: string, private readonly index: Map<string, BlockLoc>) {}

  /**
   * Problems of the tree under a commit's root entry and of its link table (hard-linked nodes:
   * their names in directories carry no record) — empty: every reachable object intact.
   */
  async check (root: EntryRecord, counts: TreeCounts = { dirs: 0, files: 0, blocks: 0 }, links?: CommitRecord['links']): Promise<TreeProblem[]> {
    const problems: TreeProblem[] = []
    await this.dir(root, '/', problems, counts)
    if (links != null) await this.linkTable(links, problems, counts)
    return problems
  }

  private async linkTable (t: NonNullable<CommitRecord['links']>, problems: TreeProblem[], counts: TreeCounts): Promise<void> {
    const where = '(link table)'
    const plain = await this.object(t.d, Buffer.from(t.k), SealType.Dir, Buffer.from(t.i), 0, where, problems)
    if (plain == null) return
    const rec = this.body<LinkTableRecord>(plain, t.d, where, problems)
    if (rec == null) return
    for (const e of rec.e ?? []) {
      if (e.t === KIND_FILE) await this.file(e, `(hard-linked file ${Buffer.from(e.h).toString('hex').slice(0, 16)})`, problems, counts)
    }
  }

  /** A directory's subtree, walked once per node CID however many commits share it. */
  private async dir (e: EntryRecord, path: string, problems: TreeProblem[], counts: TreeCounts): Promise<void> {
    if (e.d == null || e.i == null || e.k == null) { counts.dirs++; problems.push({ path, what: 'directory entry without node, id or key', cid: '' }); return }
    const key = `${e.d.toString()}/${Buffer.from(e.i).toString('hex')}`
    let sub = this.subtrees.get(key)
    if (sub == null) {
      sub = { problems: [], counts: { dirs: 0, files: 0, blocks: 0 } }
      await this.walkDir(e as DirEntry, '', sub.problems, sub.counts)
      this.subtrees.set(key, sub)
    }
    const base = path === '/' ? '' : path
    for (const p of sub.problems) problems.push({ ...p, path: base + p.path === '' ? '/' : base + p.path })
    counts.dirs += sub.counts.dirs
    counts.files += sub.counts.files
    counts.blocks += sub.counts.blocks
  }

  private async walkDir (e: DirEntry, path: string, problems: TreeProblem[], counts: TreeCounts): Promise<void> {
    counts.dirs++
    const key = Buffer.from(e.k)
    const id = Buffer.from(e.i)
    const plain = await this.object(e.d, key, SealType.Dir, id, 0, path, problems)
    if (plain == null) return
    let records: DirNodeRecord['e']
    try { // a plain node, or a sharded directory whose every shard is checked (dir-shards.ts)
      records = await readAllRecords(key, plain, path, async (cid, index) => await this.object(cid, key, SealType.Dir, id, index, `${path} (shard)`, problems))
    } catch (err) {
      problems.push({ path, what: `does not decode: ${(err as Error).message}`, cid: e.d.toString() })
      return
    }
    for (const entry of records) {
      if ((entry as LinkNameRecord).h != null && (entry as EntryRecord).m == null) continue // checked in the link table
      const child = entry as EntryRecord
      const p = `${path}/${child.n}`
      if (child.t === KIND_DIR) await this.dir(child, p, problems, counts)
      else if (child.t === KIND_FILE) await this.file(child, p, problems, counts)
    }
  }

  private async file (e: EntryRecord, path: string, problems: TreeProblem[], counts: TreeCounts): Promise<void> {
    counts.files++
    if (e.i == null || e.k == null) { problems.push({ path, what: 'file entry without id or key', cid: '' }); return }
    const id = Buffer.from(e.i)
    const key = Buffer.from(e.k)
    const check = async (blocks: BlockEntry[], nonced?: NoncedEntry[]): Promise<void> => {
      for (const [k, [idx, cid, patches]] of blocks.entries()) {
        counts.blocks++
        // A leaf v4 records nonces: each must be its object's (block-map.ts; a wrong one reads as EIO).
        const n = nonced?.[k]
        const whole = n != null && n.length === 3 ? n[2] as Uint8Array | null : n?.[3] ?? null
        if (cid != null) await this.object(cid, key, SealType.Block, id, idx, path, problems, idx, 0, whole)
        for (const [j, [p, first]] of (patches ?? []).entries()) await this.object(p, key, SealType.Block, id, idx, path, problems, idx, first, n?.length === 4 ? n[2][j]?.[3] : null) // format 2: patches
      }
    }
    if (e.bm == null) { await check(e.b ?? []); return }
    const plain = await this.object(e.bm, key, SealType.BlockMap, id, 0, `${path} (block map)`, problems)
    if (plain == null) return
    try { // a flat map, or a tree whose every node is checked (block-map.ts)
      await walkMapTree(plain, `${path} (block map)`, async (cid, index) => await this.object(cid, key, SealType.BlockMap, id, index, `${path} (block map)`, problems), check)
    } catch (err) {
      problems.push({ path: `${path} (block map)`, what: `does not decode: ${(err as Error).message}`, cid: e.bm.toString() })
    }
  }

  /** Reads, hashes and opens one object; null (and a problem) when any step fails. */
  private async object (cid: CID, key: Buffer, type: SealType, id: Buffer, index: number, path: string, problems: TreeProblem[], block?: number, first = 0, nonce: Uint8Array | null = null): Promise<Buffer | null> {
    const k = `${cid.toString()}/${type}/${id.toString('hex')}/${index}`
    const known = this.seen.get(k)
    if (known !== undefined && (known !== null || type === SealType.Block)) {
      if (known !== null) problems.push({ path, what: known, cid: cid.toString(), block })
      return null
    }
    let what: string | null = null
    let plain: Buffer | null = null
    const loc = this.index.get(cid.toString())
    if (loc == null) what = 'missing from the packs'
    else {
      const sealed = await this.read(loc)
      if (sealed == null) what = `cut short in pack ${loc.pack}`
      else {
        try {
          checkCid(cid, sealed) // the store's own check, as every read makes it
          try { plain = first === 0 ? open(key, { type, objectId: id, index }, sealed) : openPatch(key, { type, objectId: id, index }, first, sealed) } catch { what = 'fails authentication' }
          if (what == null && nonce != null && !Buffer.from(nonce).equals(sealed.subarray(1, 13))) what = 'is named with another nonce than its own by its block map entry'
        } catch (err) {
          what = (err as { code?: string }).code === 'ERR_CID_MISMATCH'
            ? `bytes in pack ${loc.pack} at ${loc.offset} do not match the CID`
            : 'CID uses an unknown hash function'
        }
      }
    }
    this.seen.set(k, what)
    if (what !== null) problems.push({ path, what, cid: cid.toString(), block })
    return plain
  }

  private body<T extends { v: number }> (plain: Buffer, cid: CID, path: string, problems: TreeProblem[]): T | null {
    const framed = unpadFrame(plain)
    try {
      if (framed == null) throw new Error('bad framing')
      const rec = cbor.decode<T>(framed)
      if (rec?.v !== 1) throw new Error(`unknown version ${String(rec?.v)}`)
      return rec
    } catch (err) {
      problems.push({ path, what: `does not decode: ${(err as Error).message}`, cid: cid.toString() })
      return null
    }
  }

  private async read (loc: BlockLoc): Promise<Buffer | null> {
    let fh = this.files.get(loc.pack)
    if (fh == null) {
      fh = await fsp.open(join(this.packsDir, packName(loc.pack)), 'r')
      this.files.set(loc.pack, fh)
    }
    const buf = Buffer.alloc(loc.length)
    const { bytesRead } = await fh.read(buf, 0, loc.length, loc.offset)
    return bytesRead === loc.length ? buf : null
  }

  async close (): Promise<void> {
    for (const fh of this.files.values()) await fh.close().catch(() => {})
    this.files.clear()
  }
}
