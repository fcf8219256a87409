// Trees from compact specs, and specs from trees, for table-driven tests (merge cases: base,
// ours, theirs -> expected). A spec maps paths to entries:
//   'a/b.txt': 'content'                      a file (mode 0644), parents made as needed
//   'run.sh': { content: '#!/bin/sh', mode: 0o755 }
//   'dir/': {}  or  'dir/': { mode: 0o700 }   a directory (mode 0755 unless given)
//   'ln': { symlink: 'a/b.txt' }              a symlink
// listTree() gives the canonical spec: default modes left out, and a directory listed only when
// nothing else implies it (empty, or of another mode), so a canonical spec round-trips exactly.
// Edits (applyEdits) are what a device does to its tree between syncs: the two sides of a merge
// case start from one committed base (one store, so they share its ids) and each applies its own.
import { FileNode, DirNode, SymlinkNode, Tree, type Node, type TreeOptions } from '../../src/fs/tree/tree.js'
import { BlockCache } from '../../src/store/block-cache.js'
import type { CommitRecord } from '../../src/fs/tree/format.js'
import { memoryTree, MemoryCommitSink, type MemoryBlockStore } from './memory-store.js'

export type FileSpec = string | Buffer | { content: string | Buffer, mode?: number }
export type DirSpec = { mode?: number }
export type LinkSpec = { symlink: string }
export type EntrySpec = FileSpec | DirSpec | LinkSpec
export type TreeSpec = Record<string, EntrySpec>

/** One change a device makes (paths from the root; parents of written files are made as needed). */
export type Edit =
  | ['write', string, string | Buffer] // create, or replace the whole content
  | ['append', string, string]
  | ['mkdir', string] | ['rmdir', string] | ['rm', string] | ['rm -r', string] | ['mv', string, string]
  | ['chmod', string, number] | ['touch', string, number] // touch: mtime in ms
  | ['symlink', string, string] // target, path
  | ['link', string, string] // existing, new name
  | ['setxattr', string, string, string] | ['removexattr', string, string]

/** One row of a merge table: the base, each side's edits, and what their merge must list. */
export interface MergeCase { name: string, base: TreeSpec, ours: Edit[], theirs: Edit[], expected: TreeSpec }

const FILE_MODE = 0o644
const DIR_MODE = 0o755

const isLink = (e: EntrySpec): e is LinkSpec => typeof e === 'object' && 'symlink' in e
const isDirKey = (path: string): boolean => path.endsWith('/')
const clean = (path: string): string => '/' + path.split('/').filter(p => p.length > 0).join('/')

function fileOf (e: FileSpec): { content: Buffer, mode: number } {
  if (typeof e === 'string') return { content: Buffer.from(e), mode: FILE_MODE }
  if (Buffer.isBuffer(e)) return { content: e, mode: FILE_MODE }
  return { content: Buffer.from(e.content), mode: e.mode ?? FILE_MODE }
}

async function exists (tree: Tree, path: string): Promise<Node | null> {
  try { return await tree.lookup(path) } catch (err) {
    if ((err as { code?: string }).code === 'ERR_NOT_FOUND') return null
    throw err
  }
}

async function ensureDir (tree: Tree, path: string, mode = DIR_MODE, explicit = false): Promise<void> {
  if (path === '/') return
  await ensureDir(tree, path.slice(0, path.lastIndexOf('/')) || '/')
  const node = await exists(tree, path)
  if (node == null) await tree.mkdir(path, mode)
  else if (!(node instanceof DirNode)) throw new Error(`spec: ${path} is both a directory and not one`)
  else if (explicit) await tree.chmod(node, mode)
}

/** Adds the spec's entries to `tree` (parents first, made as needed). */
export async function applySpec (tree: Tree, spec: TreeSpec): Promise<void> {
  for (const [key, e] of Object.entries(spec)) {
    const path = clean(key)
    const parent = path.slice(0, path.lastIndexOf('/')) || '/'
    if (isDirKey(key)) { await ensureDir(tree, path, (e as DirSpec).mode ?? DIR_MODE, true); continue }
    await ensureDir(tree, parent)
    if (isLink(e)) { await tree.symlink(e.symlink, path); continue }
    const { content, mode } = fileOf(e as FileSpec)
    const f = await tree.create(path, mode)
    if (content.length > 0) await tree.write(f, content, 0)
  }
}

/** Applies `edits` in order, as a program on a mount would (a missing parent of a write is made). */
export async function applyEdits (tree: Tree, edits: Edit[]): Promise<void> {
  for (const e of edits) {
    switch (e[0]) {
      case 'write': {
        const path = clean(e[1])
        await ensureDir(tree, path.slice(0, path.lastIndexOf('/')) || '/')
        const old = await exists(tree, path)
        const f = old instanceof FileNode ? old : await tree.create(path, FILE_MODE)
        if (old instanceof FileNode) await tree.truncate(f, 0)
        const content = Buffer.from(e[2])
        if (content.length > 0) await tree.write(f, content, 0)
        break
      }
      case 'append': {
        const f = await tree.lookup(e[1]) as FileNode
        await tree.write(f, Buffer.from(e[2]), f.size)
        break
      }
      case 'mkdir': await ensureDir(tree, clean(e[1])); break
      case 'rmdir': await tree.rmdir(e[1]); break
      case 'rm': await tree.unlink(e[1]); break
      case 'rm -r': await removeAll(tree, clean(e[1])); break
      case 'mv': await tree.rename(e[1], e[2]); break
      case 'chmod': await tree.chmod(e[1], e[2]); break
      case 'touch': await tree.utimens(e[1], undefined, e[2]); break
      case 'symlink': await tree.symlink(e[1], e[2]); break
      case 'link': await tree.link(e[1], e[2]); break
      case 'setxattr': await tree.setxattr(e[1], e[2], Buffer.from(e[3]), 0); break
      case 'removexattr': await tree.removexattr(e[1], e[2]); break
    }
  }
}

async function removeAll (tree: Tree, path: string): Promise<void> {
  const node = await tree.lookup(path)
  if (!(node instanceof DirNode)) { await tree.unlink(path); return }
  for (const [name] of await tree.readdir(path)) await removeAll(tree, `${path}/${name}`)
  await tree.rmdir(path)
}

/** A committed tree in a fresh memory store holding exactly the spec. */
export async function buildTree (spec: TreeSpec, opts: Partial<TreeOptions> = {}): Promise<{ tree: Tree, store: MemoryBlockStore, sink: MemoryCommitSink }> {
  const parts = memoryTree(opts)
  await applySpec(parts.tree, spec)
  await parts.tree.commit()
  return parts
}

async function readAll (tree: Tree, f: FileNode): Promise<Buffer> {
  const out = Buffer.alloc(f.size)
  let off = 0
  while (off < f.size) {
    const n = await tree.read(f, out.subarray(off), f.size - off, off)
    if (n <= 0) throw new Error(`short read of ${f.path()} at ${off}`)
    off += n
  }
  return out
}

/** Content as a string when it is text that reads back the same, else the bytes. */
function contentOf (b: Buffer): string | Buffer {
  const s = b.toString('utf8')
  return Buffer.from(s).equals(b) ? s : b
}

/** The canonical spec of what `tree` holds (see the top of this file). */
export async function listTree (tree: Tree): Promise<TreeSpec> {
  const out: TreeSpec = {}
  const walk = async (dir: string): Promise<void> => {
    const entries = (await tree.readdir(dir)).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    for (const [name, node] of entries) {
      const path = (dir === '/' ? '' : dir.slice(1) + '/') + name
      if (node instanceof DirNode) {
        const before = Object.keys(out).length
        await walk('/' + path)
        const implied = Object.keys(out).length > before
        if (node.attrs.mode !== DIR_MODE) out[path + '/'] = { mode: node.attrs.mode }
        else if (!implied) out[path + '/'] = {}
      } else if (node instanceof SymlinkNode) {
        out[path] = { symlink: node.target }
      } else if (node instanceof FileNode) {
        const content = contentOf(await readAll(tree, node))
        out[path] = node.attrs.mode === FILE_MODE ? content : { content, mode: node.attrs.mode }
      } else {
        throw new Error(`spec: ${path} is a special file, which specs do not describe`)
      }
    }
  }
  await walk('/')
  return out
}

/** The canonical form of a spec, as listTree() would give it back. */
export function canonicalSpec (spec: TreeSpec): TreeSpec {
  const entries = new Map<string, EntrySpec>()
  for (const [key, e] of Object.entries(spec)) {
    const path = clean(key).slice(1)
    if (isDirKey(key)) {
      const mode = (e as DirSpec).mode ?? DIR_MODE
      entries.set(path + '/', mode === DIR_MODE ? {} : { mode })
    } else if (isLink(e)) {
      entries.set(path, { symlink: e.symlink })
    } else {
      const { content, mode } = fileOf(e as FileSpec)
      entries.set(path, mode === FILE_MODE ? contentOf(content) : { content: contentOf(content), mode })
    }
  }
  const out: TreeSpec = {}
  for (const key of [...entries.keys()].sort()) {
    const e = entries.get(key)!
    // A default-mode directory with something under it is implied by that.
    if (isDirKey(key) && (e as DirSpec).mode === undefined && [...entries.keys()].some(k => k !== key && k.startsWith(key))) continue
    out[key] = e
  }
  return out
}

/** Merge tests' clock: the base is made at BASE_TIME; each device's edits at its own later time. */
export const BASE_TIME = Date.UTC(2026, 0, 2, 3, 4, 0)

/**
 * A base tree committed to one memory store, and devices that open it (each with its own commit
 * sink and clock) so their edits share the base's ids, as two devices synced to one base do.
 */
export class MergeWorld {
  private constructor (readonly store: MemoryBlockStore, readonly base: CommitRecord) {}

  static async create (spec: TreeSpec): Promise<MergeWorld> {
    const { store, sink } = await buildTree(spec, { now: () => BASE_TIME })
    return new MergeWorld(store, sink.last!)
  }

  /** A tree opened at `head` (the base unless given) whose clock reads `now`. */
  open (now: number, head: CommitRecord = this.base): { tree: Tree, sink: MemoryCommitSink } {
    const sink = new MemoryCommitSink()
    const tree = new Tree({ store: this.store, cache: new BlockCache(8 * 1024 * 1024), sink, head, now: () => now })
    return { tree, sink }
  }

  /** The base with `edits` applied at `now`, committed. */
  async edited (edits: Edit[], now: number, head: CommitRecord = this.base): Promise<CommitRecord> {
    const { tree, sink } = this.open(now, head)
    await applyEdits(tree, edits)
    await tree.commit()
    return sink.last ?? head
  }

  /** A record for a tree written by materialize() (what a sync commit would append). */
  static record (ref: Pick<CommitRecord, 'root' | 'links'>): CommitRecord {
    const rec: CommitRecord = { v: 1, seq: 1, time: BASE_TIME, root: ref.root, pack: [0, 0] }
    if (ref.links != null) rec.links = ref.links
    return rec
  }

  /** The canonical spec of a committed tree in this world's store. */
  async list (rec: CommitRecord): Promise<TreeSpec> { return await listTree(this.open(BASE_TIME, rec).tree) }
}
