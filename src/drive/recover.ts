// The recovery rules of an open: what may be cut silently (a torn journal tail, and the blocks
// only it referenced, kept in the quarantine) and what refuses to open (ERR_STORE_DAMAGED):
// a bad journal frame with valid frames after it, a missing or unreadable journal in a store
// whose packs hold blocks, a record that fails authentication, a watermark past a pack's end.
// A head record that checks the pack bytes it names (`pc`) and finds them not all on disk (the
// pack short, or a page of them zeros where the CRC differs) is a commit that was never acknowledged (its record and its pack bytes were made durable side by
// side): it is set aside like a torn tail.
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { FRAME } from '../store/journal.js'
import { Journal, type JournalScan } from '../store/journal.js'
import type { CommitRecord } from '../fs/tree/format.js'
import { damaged } from './errors.js'
import { keepPackTail, newQuarantine, packName, packsHoldRecords } from './quarantine.js'

export interface JournalBytes { data: Buffer, scan: JournalScan }

/** The journal's bytes and frames; refuses (deleting nothing) unless only a tail is torn. */
export async function readJournal (dataDir: string): Promise<JournalBytes> {
  const path = join(dataDir, 'journal')
  let data: Buffer
  try {
    data = await fsp.readFile(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') throw damaged(dataDir, `the commit journal cannot be read (${(err as Error).message})`, err)
    if (await packsHoldRecords(join(dataDir, 'packs'))) throw damaged(dataDir, 'the commit journal is missing but the packs hold blocks')
    data = Buffer.alloc(0)
  }
  const scan = Journal.scan(data)
  if (scan.after.length > 0) {
    throw damaged(dataDir, `commit journal frame ${scan.records.length + 1} (byte ${scan.bad!.offset}) is bad (${scan.bad!.reason}) and ${scan.after.length} valid frame(s) follow it`)
  }
  return { data, scan }
}

/** Decodes records or refuses: a valid CRC that fails authentication is damage or tampering. */
export function decodeOrRefuse (dataDir: string, decode: (records: Buffer[]) => CommitRecord[], records: Buffer[]): CommitRecord[] {
  try {
    return decode(records)
  } catch (err) {
    throw damaged(dataDir, (err as Error).message, err)
  }
}

/**
 * Before a torn tail is cut: its bytes, and the pack bytes past the last complete record's
 * watermark (blocks only the torn commit referenced), go to the quarantine. Returns its path.
 */
export async function keepTornTail (dataDir: string, jb: JournalBytes, head: CommitRecord | null): Promise<string | null> {
  const packs = join(dataDir, 'packs')
  if (jb.scan.end < jb.data.length) {
    const q = await newQuarantine(dataDir)
    await fsp.writeFile(join(q, `journal.from-${jb.scan.end}`), jb.data.subarray(jb.scan.end), { mode: 0o600, flush: true })
    await keepPackTail(packs, head == null ? null : { pack: head.pack[0], offset: head.pack[1] }, q)
    return q
  }
  // No commit at all but blocks in the packs: a journal emptied by damage, or a crash before the
  // very first commit. The two look alike, and the first would lose every commit: refuse, as for
  // a missing journal; `space fsck --repair` keeps the blocks in the quarantine and starts empty.
  if (head == null && await packsHoldRecords(packs)) {
    throw damaged(dataDir, 'the commit journal holds no commit but the packs hold blocks (a damaged journal, or a crash before the first commit)')
  }
  return null
}

/** The pack the head commit names must exist and reach its watermark. */
export async function checkWatermark (dataDir: string, head: CommitRecord | null): Promise<void> {
  if (head == null) return
  const [pack, offset] = head.pack
  const st = await fsp.stat(join(dataDir, 'packs', packName(pack))).catch(() => null)
  if (st == null) throw damaged(dataDir, `pack ${pack}, named by commit ${head.seq}, is missing`)
  if (st.size < offset) throw damaged(dataDir, `pack ${pack} is shorter (${st.size} bytes) than commit ${head.seq} recorded (${offset})`)
}

/**
 * Whether the pack bytes the head record checks (`pc`: from where in its watermark pack, and
 * their CRC-32) are all on disk; true for a record without a check.
 */
export async function headBytesHold (dataDir: string, head: CommitRecord): Promise<boolean> {
  if (head.pc == null) return true
  const [pack, end] = head.pack
  const [from, crc] = head.pc
  if (!Number.isInteger(from) || from < 0 || from >= end) return false
  let fh
  try { fh = await fsp.open(join(dataDir, 'packs', packName(pack)), 'r') } catch { return false }
  try {
    const buf = Buffer.alloc(end - from)
    const { bytesRead } = await fh.read(buf, 0, buf.length, from)
    if (bytesRead < buf.length) return false
    if (crc32(buf) === crc) return true
    // A crash loses whole pages: a mismatch counts as bytes that never reached the disk only
    // where a 4 KiB page of the file (its part in the range) reads as zeros. Other differences
    // are damage or substitution: the commit stays, and its blocks read as EIO (CID checks).
    for (let p = from - (from % PAGE); p < end; p += PAGE) {
      const a = Math.max(p, from) - from
      const b = Math.min(p + PAGE, end) - from
      if (buf.subarray(a, b).every(x => x === 0)) return false
    }
    return true
  } finally { await fh.close() }
}

const PAGE = 4096

/** The journal as if its last record were a torn tail: it is cut (and kept) like one. */
export function withoutLast (jb: JournalBytes): JournalBytes {
  const records = jb.scan.records.slice(0, -1)
  const last = jb.scan.records.at(-1)!
  return { data: jb.data, scan: { ...jb.scan, records, end: jb.scan.end - FRAME - last.length } }
}
