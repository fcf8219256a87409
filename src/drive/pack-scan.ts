// A read-only look at pack files for fsck: the header, every record's framing, and an index of
// where each CID's bytes lie. Unlike PackStore.open it never cuts or deletes; after a framing
// error it searches forward for the next plausible record, so one bad spot hides little.
// The record layout is the store's (src/store/record.ts, docs/format.md's "Pack files"). Also
// checks each pack's index file (src/store/pack-idx.ts) against what the scan found.
import { promises as fsp } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { checkPackHeader, PACK_HEADER_LENGTH, MAX_RECORD_HEADER } from '../store/record.js'
import { plausibleRecord as parseHeader, nextRecord as resync, allZero } from '../store/block-index.js'
import { packIds, packName } from './quarantine.js'
import { verifyIndexFile, entryAt, IndexDamaged } from '../store/pack-idx.js'
import { CID, RAW_CODEC } from '../store/cid.js'
import { create as createDigest } from 'multiformats/hashes/digest'

export const PACK_HEADER = PACK_HEADER_LENGTH

export interface BlockLoc { pack: number, offset: number, length: number }

export interface PackInfo {
  id: number
  size: number
  /** Offsets where a record ends (and the next may start): the valid watermarks. */
  boundaries: Set<number>
  /** The first byte whose framing is bad, or null. */
  firstBad: number | null
  problems: Array<{ offset: number, text: string }>
  records: number
}

export interface PackScan { packs: Map<number, PackInfo>, index: Map<string, BlockLoc>, bytes: number, records: number }

export async function scanPacks (packsDir: string): Promise<PackScan> {
  const out: PackScan = { packs: new Map(), index: new Map(), bytes: 0, records: 0 }
  for (const id of await packIds(packsDir)) {
    const fh = await fsp.open(join(packsDir, packName(id)), 'r')
    try {
      const info = await scanOne(fh, id, out.index)
      out.packs.set(id, info)
      out.bytes += info.size
      out.records += info.records
    } finally { await fh.close() }
  }
  return out
}

async function scanOne (fh: FileHandle, id: number, index: Map<string, BlockLoc>): Promise<PackInfo> {
  const size = (await fh.stat()).size
  const info: PackInfo = { id, size, boundaries: new Set(), firstBad: null, problems: [], records: 0 }
  const bad = (off: number, what: string): void => {
    info.firstBad ??= off
    info.problems.push({ offset: off, text: `pack ${id}: ${what} at byte ${off}` })
  }
  const head = Buffer.alloc(PACK_HEADER)
  await fh.read(head, 0, PACK_HEADER, 0)
  try {
    if (size < PACK_HEADER) throw new Error('too short')
    checkPackHeader(head, id)
  } catch {
    bad(0, 'no pack header (or an unknown version)')
  }
  info.boundaries.add(PACK_HEADER)
  const buf = Buffer.alloc(MAX_RECORD_HEADER)
  let off = PACK_HEADER
  while (off < size) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, off)
    const rec = parseHeader(buf.subarray(0, bytesRead), size - off)
    if (rec === null) {
      // Zeros past the last record are what an O_DIRECT append leaves until the pack is cut.
      if (await allZero(fh, off, size)) break
      bad(off, 'bad record header')
      const next = await resync(fh, off + 1, size)
      if (next === null) break
      info.problems.push({ offset: off, text: `pack ${id}: records resume at byte ${next} (${next - off} bytes skipped)` })
      off = next
      continue
    }
    const dataOff = off + rec.headerLength
    index.set(rec.cid.toString(), { pack: id, offset: dataOff, length: rec.length })
    info.records++
    off = dataOff + rec.length
    info.boundaries.add(off)
  }
  return info
}

/**
 * What is wrong with each pack's index file, one line each (not damage: the pack is the source
 * of truth and the store rebuilds an index that does not check). An index must check whole
 * (trailer and bucket checksums), and every entry must name a record the scan found where the
 * entry says; a full pack's index must list all of its records.
 */
const REBUILT = '; reads through it are still checked against their CIDs; removing the file makes the next open rebuild it from the pack'

export async function checkIndexes (packsDir: string, scan: PackScan): Promise<string[]> {
  const out: string[] = []
  for (const p of scan.packs.values()) {
    const path = join(packsDir, `${String(p.id).padStart(8, '0')}.idx`)
    let idx
    try {
      idx = await verifyIndexFile(path, p.id)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') { if (p.records > 0) out.push(`index: pack ${p.id} has no index file (the next open builds it)`); continue }
      out.push(`index: pack ${p.id}: ${err instanceof IndexDamaged ? err.reason : `unreadable (${(err as Error).message})`}${REBUILT}`)
      continue
    }
    const n = idx.entries.length / 48
    let wrong = 0
    let past = 0
    for (let i = 0; i < n; i++) {
      const e = entryAt(idx.entries, i)
      if (e.offset + e.length > p.size) { past++; continue }
      const loc = scan.index.get(CID.createV1(RAW_CODEC, createDigest(e.code, e.digest)).toString())
      if (loc == null || (loc.pack === p.id && (loc.offset !== e.offset || loc.length !== e.length))) wrong++
    }
    if (wrong > 0) out.push(`index: pack ${p.id}: ${wrong} of its ${n} entries name no record where they say${REBUILT}`)
    if (past > 0) out.push(`index: pack ${p.id}: ${past} entries lie past the pack's end (${p.size} bytes; cut on the next open)`)
    if (idx.meta.to === p.size && n < p.records && wrong === 0) out.push(`index: pack ${p.id}: lists ${n} of its ${p.records} records${REBUILT}`)
  }
  return out
}
