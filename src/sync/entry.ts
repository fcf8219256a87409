// Device log entries: encode, sign, decode (strictly), verify; and the block list that tells the
// hub which blocks an entry needs. Public keys only: the sealed root is opaque bytes here
// (entry-keys.ts seals and opens it), so the hub can import this module [I14].
// Format: docs/format.md, "Sync: device logs".
import type { CID } from 'multiformats/cid'
import { ed25519Sign, ed25519Verify } from '../keys/ed25519.js'
import { SyncError } from './errors.js'
import { checkDeviceRecord, deviceLabel, deviceRecordFromCbor, deviceRecordToCbor, type DeviceRecord } from './devices.js'
import {
  asDagCid, asRawCid, asUint, bytesField, checkDagCid, dagCid, decodeStrict, encodeCanonical, hex, uintField, type Fields
} from './entry-codec.js'

export const ENTRY_VERSION = 1
export const BLOCK_LIST_VERSION = 1
/** CIDs per block list block: 4096 raw CIDs are ~160 KiB, well under any IPFS block limit. */
export const BLOCK_LIST_MAX = 4096
/** An entry is a root, a certificate and one head per device: 1 MiB is far above any real one. */
export const ENTRY_MAX_BYTES = 1024 * 1024
const ENTRY_KEYS = ['v', 'drive', 'dev', 'cert', 'seq', 'prev', 'heads', 'root', 'blocks', 'time', 'sig'] as const
const BLOCK_LIST_KEYS = ['v', 'b', 'next'] as const
const SIG_CONTEXT = Buffer.from('space/v1/sync-entry\0', 'utf8')

/** The newest entry of another log that this state merged. */
export interface EntryHead { dev: Buffer, seq: number, cid: CID }

export interface Entry {
  v: number
  drive: Buffer
  dev: Buffer
  cert: DeviceRecord
  seq: number
  prev: CID | null
  heads: EntryHead[]
  root: Buffer
  blocks: CID | null
  time: number
  sig: Buffer
}

/** What a writer supplies; `v`, `dev` (from the record) and `sig` are filled in by signEntry. */
export type EntryFields = Omit<Entry, 'v' | 'dev' | 'sig'>

/** An entry with the exact bytes it was decoded from and their CID. */
export interface SignedEntry { entry: Entry, bytes: Uint8Array, cid: CID }

function unsignedCbor (e: Omit<Entry, 'sig'>): Fields {
  return {
    v: e.v,
    drive: e.drive,
    dev: e.dev,
    cert: deviceRecordToCbor(e.cert),
    seq: e.seq,
    prev: e.prev,
    heads: e.heads.map(h => [h.dev, h.seq, h.cid]),
    root: e.root,
    blocks: e.blocks,
    time: e.time
  }
}

function signedMessage (e: Omit<Entry, 'sig'>): Buffer {
  return Buffer.concat([SIG_CONTEXT, encodeCanonical(unsignedCbor(e))])
}

const cmp = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b)

/** Builds and signs an entry with the device's private key (32-byte seed). */
export function signEntry (devicePrivateKey: Uint8Array, fields: EntryFields): SignedEntry {
  const heads = [...fields.heads].sort((a, b) => cmp(a.dev, b.dev))
  const unsigned: Omit<Entry, 'sig'> = { ...fields, v: ENTRY_VERSION, dev: fields.cert.devicePublicKey, heads }
  const sig = ed25519Sign(devicePrivateKey, signedMessage(unsigned))
  const bytes = encodeCanonical({ ...unsignedCbor(unsigned), sig })
  // Decoding what we wrote refuses a malformed entry here, at its writer, not at every reader.
  const signed = decodeEntry(bytes)
  if (!verifyEntrySignature(signed.entry)) throw new SyncError('ERR_SYNC_SIGNATURE', `${deviceLabel(unsigned.dev, fields.cert.name)}, entry ${fields.seq}: the private key does not match the device record`)
  return signed
}

/**
 * Decodes an entry, refusing any other shape or encoding (ERR_SYNC_FORMAT / ERR_SYNC_VERSION).
 * With `expected`, the bytes must be what that CID names (ERR_SYNC_CID_MISMATCH). Checks no
 * signature: see verifyEntry.
 */
export function decodeEntry (bytes: Uint8Array, expected?: CID): SignedEntry {
  if (bytes.length > ENTRY_MAX_BYTES) throw new SyncError('ERR_SYNC_FORMAT', `entry of ${bytes.length} bytes: at most ${ENTRY_MAX_BYTES}`)
  const cid = expected === undefined ? dagCid(bytes) : checkDagCid(expected, bytes, 'entry')
  const m = decodeStrict(bytes, 'entry', ENTRY_VERSION, ENTRY_KEYS)
  const seq = uintField(m, 'seq', 'entry')
  const dev = bytesField(m, 'dev', 'entry', 32)
  const what = `entry ${seq} of ${deviceLabel(dev)}`
  if (seq < 1) throw new SyncError('ERR_SYNC_FORMAT', `${what}: sequence numbers start at 1`, { device: hex(dev), seq })
  const prev = m.prev === null ? null : asDagCid(m.prev, `${what}: "prev"`)
  if ((prev === null) !== (seq === 1)) throw new SyncError('ERR_SYNC_FORMAT', `${what}: "prev" must be null exactly at sequence 1`, { device: hex(dev), seq })
  if (!Array.isArray(m.heads)) throw new SyncError('ERR_SYNC_FORMAT', `${what}: "heads" must be a list`)
  const heads: EntryHead[] = m.heads.map((h: unknown, i: number): EntryHead => {
    if (!Array.isArray(h) || h.length !== 3 || !(h[0] instanceof Uint8Array) || h[0].length !== 32) {
      throw new SyncError('ERR_SYNC_FORMAT', `${what}: head ${i} must be [device key (32 bytes), seq, CID]`)
    }
    return { dev: Buffer.from(h[0]), seq: asUint(h[1], `${what}: head ${i} seq`), cid: asDagCid(h[2], `${what}: head ${i} CID`) }
  })
  for (let i = 0; i < heads.length; i++) {
    if (heads[i].seq < 1) throw new SyncError('ERR_SYNC_FORMAT', `${what}: head ${i} has sequence 0`)
    if (heads[i].dev.equals(dev)) throw new SyncError('ERR_SYNC_FORMAT', `${what}: "heads" names the writer's own log`)
    if (i > 0 && cmp(heads[i - 1].dev, heads[i].dev) >= 0) throw new SyncError('ERR_SYNC_FORMAT', `${what}: "heads" must be sorted by device key, one per device`)
  }
  const entry: Entry = {
    v: ENTRY_VERSION,
    drive: bytesField(m, 'drive', what, 16),
    dev,
    cert: deviceRecordFromCbor(m.cert, `${what}: "cert"`),
    seq,
    prev,
    heads,
    root: bytesField(m, 'root', what),
    blocks: m.blocks === null ? null : asDagCid(m.blocks, `${what}: "blocks"`),
    time: uintField(m, 'time', what),
    sig: bytesField(m, 'sig', what, 64)
  }
  return { entry, bytes, cid }
}

export function verifyEntrySignature (e: Entry): boolean {
  return ed25519Verify(e.dev, signedMessage(e), e.sig)
}

/** What a receiver knows without any log state: the drive and the identity that owns it. */
export interface EntryContext { drive: Uint8Array, identity: Uint8Array }

/** The checks that need no history: drive, certificate, signature (in the documented order). */
export function verifyEntry (s: SignedEntry, ctx: EntryContext): void {
  const e = s.entry
  const details = { device: hex(e.dev), seq: e.seq }
  const what = `entry ${e.seq} of ${deviceLabel(e.dev, e.cert.name)}`
  if (!e.drive.equals(ctx.drive)) {
    throw new SyncError('ERR_SYNC_DRIVE', `${what} belongs to drive ${hex(e.drive)}, not ${hex(ctx.drive)}`, details)
  }
  checkDeviceRecord(e.cert, ctx.identity, e.dev, e.seq)
  if (!verifyEntrySignature(e)) throw new SyncError('ERR_SYNC_SIGNATURE', `${what}: the device's signature does not verify`, details)
}

// ---- block lists

export interface EncodedBlock { cid: CID, bytes: Uint8Array }

/**
 * Encodes the CIDs an entry adds as a chain of block list blocks (sorted, duplicates dropped).
 * Returns the head (null for no CIDs) and every list block, to be stored before the entry.
 */
export function encodeBlockList (cids: Iterable<CID>): { head: CID | null, blocks: EncodedBlock[] } {
  const byKey = new Map<string, CID>()
  for (const c of cids) byKey.set(hex(asRawCid(c, 'block list CID').bytes), c)
  const sorted = [...byKey.values()].sort((a, b) => cmp(a.bytes, b.bytes))
  const blocks: EncodedBlock[] = []
  let next: CID | null = null
  for (let end = sorted.length; end > 0; end -= BLOCK_LIST_MAX) {
    const start = Math.max(0, end - BLOCK_LIST_MAX)
    const bytes = encodeCanonical({ v: BLOCK_LIST_VERSION, b: sorted.slice(start, end), next })
    next = dagCid(bytes)
    blocks.push({ cid: next, bytes })
  }
  return { head: next, blocks: blocks.reverse() }
}

/** One block list block, checked against the CID it was fetched by. */
export function decodeBlockListBlock (cid: CID, bytes: Uint8Array): { cids: CID[], next: CID | null } {
  checkDagCid(cid, bytes, 'block list block')
  const what = `block list block ${cid.toString()}`
  const m = decodeStrict(bytes, what, BLOCK_LIST_VERSION, BLOCK_LIST_KEYS)
  if (!Array.isArray(m.b) || m.b.length < 1 || m.b.length > BLOCK_LIST_MAX) {
    throw new SyncError('ERR_SYNC_FORMAT', `${what}: "b" must list 1 to ${BLOCK_LIST_MAX} CIDs`)
  }
  return { cids: m.b.map((c: unknown, i: number) => asRawCid(c, `${what}: CID ${i}`)), next: m.next === null ? null : asDagCid(m.next, `${what}: "next"`) }
}

export type GetBlock = (cid: CID) => Promise<Uint8Array | undefined> | Uint8Array | undefined

/**
 * Reads a whole chain: the CIDs it lists (sorted and unique across the chain, which also rules
 * out a loop) and the CIDs of the list blocks themselves. `missing` holds a list block `get`
 * does not have; reading stops there.
 */
export async function readBlockList (head: CID, get: GetBlock): Promise<{ cids: CID[], listBlocks: CID[], missing: CID | null }> {
  const cids: CID[] = []
  const listBlocks: CID[] = []
  let at: CID | null = head
  while (at !== null) {
    const bytes = await get(at)
    if (bytes === undefined) return { cids, listBlocks, missing: at }
    const block = decodeBlockListBlock(at, bytes)
    for (const c of block.cids) {
      if (cids.length > 0 && cmp(cids[cids.length - 1].bytes, c.bytes) >= 0) {
        throw new SyncError('ERR_SYNC_FORMAT', `block list ${head.toString()}: CIDs must be sorted and appear once across the chain`)
      }
      cids.push(c)
    }
    listBlocks.push(at)
    at = block.next
  }
  return { cids, listBlocks, missing: null }
}
