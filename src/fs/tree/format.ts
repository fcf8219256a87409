// Byte formats of the tree (docs/format.md): directory nodes, block maps, the link table and
// commit records, all dag-cbor inside sealed objects, each starting with a version field `v`.
import * as cbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { TreeError } from './errors.js'

export const FORMAT_VERSION = 1
/** Plaintext bytes per content block: what the kernel sends per FUSE write with big_writes. */
export const BLOCK_SIZE = 128 * 1024
/** A file's block list stays inside its directory entry up to this many blocks. */
export const INLINE_BLOCKS = 32

export const enum Kind { File = 1, Dir = 2, Symlink = 3, Fifo = 4, Char = 5, Block = 6, Socket = 7 }

export interface Attrs {
  mode: number // permission bits only (07777); the type is `kind`
  uid: number
  gid: number
  atime: number // milliseconds since the epoch
  mtime: number
  ctime: number
}

/** A directory entry as stored (short keys keep 10k-entry directories small). */
export interface EntryRecord {
  n: string // name
  t: Kind
  m: number
  u: number
  g: number
  a: bigint | number // nanoseconds since the epoch
  mt: bigint | number
  c: bigint | number
  x?: Record<string, Uint8Array> // user.* extended attributes
  // files
  i?: Uint8Array // file or directory id (16 bytes)
  k?: Uint8Array // file or directory key (32 bytes)
  s?: number // size in bytes
  b?: BlockEntry[] // per block, sorted, holes omitted: [index, CID], or [index, base CID | null, patches]
  bm?: CID // block map root (a tree of sealed nodes, or an older flat map) when the list outgrows INLINE_BLOCKS
  // directories
  d?: CID // directory node
  // symlinks
  l?: string
  // device nodes
  r?: number
}

/** A name of a linked node in a directory: the node's record is in the link table, under `h`. */
export interface LinkNameRecord {
  n: string
  t: Kind
  h: Uint8Array // link id (16 bytes)
}

/** A linked node's record in the link table: its entry (name ''), link id and link count. */
export interface LinkedRecord extends EntryRecord {
  h: Uint8Array
  nl: number
}

export interface DirNodeRecord { v: number, e: Array<EntryRecord | LinkNameRecord> }
export interface LinkTableRecord { v: number, e: LinkedRecord[] }

export const isLinkName = (e: EntryRecord | LinkNameRecord): e is LinkNameRecord => (e as LinkNameRecord).h != null && (e as EntryRecord).m == null
export interface BlockMapRecord { v: number, b: BlockEntry[] }

/** A patch in a block map entry: its CID and the segments it covers (first, count). */
export type PatchEntry = [CID, number, number]
/** One block of a file: [index, CID] whole, or [index, base CID | null (a hole), patches in write order]. */
export type BlockEntry = [number, CID] | [number, CID | null, PatchEntry[]]

/** What one commit records; sealed into the journal under the store's commit key. */
export interface CommitRecord {
  v: number
  seq: number
  time: number
  root: EntryRecord // the root directory's entry (name '')
  pack: [number, number] // durable store watermark (pack id, offset)
  pc?: [number, number] // the pack bytes this commit appended: [start offset in pack `pack[0]`, CRC-32 of [start, pack[1])]; checked at open
  links?: { i: Uint8Array, k: Uint8Array, d: CID } // the link table (id, key, node), once there is one
}

export const msToNs = (ms: number): bigint => BigInt(Math.round(ms * 1000)) * 1000n
export const nsToMs = (ns: bigint | number): number => typeof ns === 'bigint' ? Number(ns / 1000n) / 1000 : ns / 1e6

export function encode (value: unknown): Uint8Array { return cbor.encode(value) }

export function decode<T extends { v: number }> (bytes: Uint8Array, what: string): T {
  return decodeAny<T>(bytes, what, [FORMAT_VERSION])
}

/** Like decode, for a body that may have one of the versions `versions` (block map nodes: block-map.ts). */
export function decodeAny<T extends { v: number }> (bytes: Uint8Array, what: string, versions: readonly number[]): T {
  let value: T
  try {
    value = cbor.decode<T>(bytes)
  } catch (err) {
    throw new TreeError('ERR_INTEGRITY', `${what} does not decode: ${(err as Error).message}`)
  }
  if (typeof value !== 'object' || value == null || !versions.includes(value.v)) {
    throw new TreeError('ERR_FORMAT', `${what} has unknown format version ${String((value as { v?: unknown })?.v)}`)
  }
  return value
}
