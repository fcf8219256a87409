// Entries <-> nodes, and the sealed objects of the tree: directory nodes, block maps and the link
// table (padded, framed dag-cbor, sealed under the owning node's key) and content blocks' seal positions. Pure:
// the one store it sees is the `put` a file's new block map goes to while its entry is made.
import type { CID } from 'multiformats/cid'
import { seal, SealType, padFrame, unpadFrame, type SealPosition } from '../../crypto/index.js'
import {
  type Attrs, type EntryRecord, type DirNodeRecord, type BlockMapRecord, type LinkNameRecord,
  type LinkedRecord, type LinkTableRecord, type BlockEntry, INLINE_BLOCKS, FORMAT_VERSION, Kind, encode, decode, msToNs, nsToMs
} from './format.js'
import { fail } from './errors.js'
import { type BlockRef, fromEntry, entryOf as blockEntry } from './block-ref.js'
import { type Node, type LinkTable, FileNode, DirNode, SymlinkNode, SpecialNode } from './nodes.js'
import { startEmpty } from './dir-entries.js'
import { sealMapTree } from './block-map.js'
import type { BlockStore } from './ports.js'

/** A node from its stored entry; a directory's entries and a file's block map load later. */
export function nodeFromEntry (e: EntryRecord): Node {
  const attrs: Attrs = { mode: e.m & 0o7777, uid: e.u, gid: e.g, atime: nsToMs(e.a), mtime: nsToMs(e.mt), ctime: nsToMs(e.c) }
  let node: Node
  switch (e.t) {
    case Kind.File: {
      const f = new FileNode(attrs, Buffer.from(e.i!), Buffer.from(e.k!))
      f.size = e.s ?? 0
      if (e.bm != null) { f.blocks = null; f.blockMap = e.bm } else f.blocks = new Map((e.b ?? []).map(fromEntry))
      node = f
      break
    }
    case Kind.Dir: {
      const d = new DirNode(attrs, Buffer.from(e.i!), Buffer.from(e.k!))
      d.cid = e.d ?? null
      if (d.cid == null) startEmpty(d)
      node = d
      break
    }
    case Kind.Symlink: node = new SymlinkNode(attrs, e.l ?? ''); break
    case Kind.Fifo: case Kind.Char: case Kind.Block: case Kind.Socket:
      node = new SpecialNode(attrs, e.t, e.r ?? 0); break
    default: return fail('ERR_FORMAT', `unknown entry type ${String(e.t)}`)
  }
  if (e.x != null) node.xattrs = new Map(Object.entries(e.x).map(([k, v]) => [k, Buffer.from(v)]))
  node.name = e.n
  return node
}

/**
 * The entry that stores `node`. A file whose block list outgrew INLINE_BLOCKS gets its block map
 * sealed and put first when it changed; a directory must be sealed already (its `cid`).
 */
export function entryOf (node: Node, store: Pick<BlockStore, 'put'>, name = node.name): EntryRecord | LinkNameRecord {
  if (node.link != null) return { n: name, t: node.kind, h: node.link.id }
  return recordOf(node, store, name)
}

/** A linked node's record in the link table. */
export function linkedRecordOf (node: Node, store: Pick<BlockStore, 'put'>): LinkedRecord {
  return { ...recordOf(node, store, ''), h: node.link!.id, nl: node.nlink }
}

/** A linked node from its link table record (`table`: where its later changes go). */
export function nodeFromLinked (e: LinkedRecord, table: LinkTable): Node {
  const node = nodeFromEntry(e)
  node.nlink = e.nl
  node.link = { table, id: Buffer.from(e.h) }
  return node
}

function recordOf (node: Node, store: Pick<BlockStore, 'put'>, name: string): EntryRecord {
  const a = node.attrs
  const e: EntryRecord = { n: name, t: node.kind, m: a.mode, u: a.uid, g: a.gid, a: msToNs(a.atime), mt: msToNs(a.mtime), c: msToNs(a.ctime) }
  if (node.xattrs != null && node.xattrs.size > 0) e.x = Object.fromEntries(node.xattrs)
  if (node instanceof FileNode) {
    e.i = node.id
    e.k = node.key
    e.s = node.size
    if (node.blocks == null) {
      e.bm = node.blockMap!
    } else if (node.blocks.size <= INLINE_BLOCKS) {
      e.b = sortedBlocks(node.blocks)
      node.clearChanged()
      // The tree no longer names this file's blocks: a file that grows past INLINE_BLOCKS again
      // gets a whole new one. (Kept, its leaves would be resealed only for the blocks changed
      // after this commit, and the others would keep the old tree's CIDs: a file rewritten in
      // place, shorter for one commit, read its old content back after a remount.)
      node.blockMap = null
      node.mapTree = null
      node.blockMapDirty = false
    } else {
      // Only the leaves whose blocks changed are sealed again (block-map.ts).
      if (node.blockMapDirty || node.changedBlocks.size > 0 || node.blockMap == null) {
        node.blockMap = sealMapTree(node, store)
        node.blockMapDirty = false
      }
      e.bm = node.blockMap
    }
  } else if (node instanceof DirNode) {
    e.i = node.id
    e.k = node.key
    e.d = node.cid!
  } else if (node instanceof SymlinkNode) {
    e.l = node.target
  } else if (node instanceof SpecialNode) {
    e.r = node.rdev
  }
  return e
}

const sortedBlocks = (blocks: Map<number, BlockRef>): BlockEntry[] => [...blocks.entries()].sort((x, y) => x[0] - y[0]).map(([i, r]) => blockEntry(i, r))

/** Where each sealed object of a node sits: binds the ciphertext to its node and position. */
export const dirPosition = (dir: DirNode): SealPosition => ({ type: SealType.Dir, objectId: dir.id, index: 0 })
export const blockMapPosition = (f: FileNode): SealPosition => ({ type: SealType.BlockMap, objectId: f.id, index: 0 })
export const blockPosition = (f: FileNode, idx: number): SealPosition => ({ type: SealType.Block, objectId: f.id, index: idx })

export function sealDirNode (dir: DirNode, entries: Array<EntryRecord | LinkNameRecord>): Uint8Array {
  const rec: DirNodeRecord = { v: FORMAT_VERSION, e: entries }
  return seal(dir.key, dirPosition(dir), padFrame(encode(rec)))
}

/** Where a directory's shard `index` is sealed (dir-shards.ts; the root, or a plain node, is 0). */
export const shardPosition = (dir: Pick<DirNode, 'id'>, index: number): SealPosition => ({ type: SealType.Dir, objectId: dir.id, index })

/** Seals a directory's node or shard body (already dag-cbor) at its position. */
export function sealDirShard (dir: Pick<DirNode, 'id' | 'key'>, index: number, body: Uint8Array): Uint8Array {
  return seal(dir.key, shardPosition(dir, index), padFrame(body))
}

/** Where the link table is sealed: a directory position under the table's own random id. */
export const linkTablePosition = (t: LinkTable): SealPosition => ({ type: SealType.Dir, objectId: t.id, index: 0 })

export function sealLinkTable (t: LinkTable, records: LinkedRecord[]): Uint8Array {
  const rec: LinkTableRecord = { v: FORMAT_VERSION, e: records }
  return seal(t.key, linkTablePosition(t), padFrame(encode(rec)))
}

export function decodeLinkTable (framed: Buffer): LinkedRecord[] {
  const body = unpadFrame(framed) ?? fail('ERR_INTEGRITY', 'link table: bad framing')
  return decode<LinkTableRecord>(body, 'link table').e
}

export function sealBlockMap (f: FileNode, blocks: Map<number, BlockRef>): Uint8Array {
  const rec: BlockMapRecord = { v: FORMAT_VERSION, b: sortedBlocks(blocks) }
  return seal(f.key, blockMapPosition(f), padFrame(encode(rec)))
}

/** The entries of an opened directory node (`framed`: its plaintext, still framed). */
export function decodeDirNode (dir: DirNode, framed: Buffer): Array<EntryRecord | LinkNameRecord> {
  const body = unpadFrame(framed) ?? fail('ERR_INTEGRITY', `directory ${dir.label()}: bad framing`)
  return decode<DirNodeRecord>(body, `directory ${dir.label()}`).e
}
