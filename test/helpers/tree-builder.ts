// Trees from compact specs, and specs from trees, for table-driven tests (merge cases: base,
// ours, theirs -> expected). A spec maps paths to entries:
//   'a/b.txt': 'content'                      a file (mode 0644), parents made as needed
//   'run.sh': { content: '#!/bin/sh', mode: 0o755 }
//   'dir/': {}  or  'dir/': { mode: 0o700 }   a directory (mode 0755 unless given)
//   'ln': { symlink: 'a/b.txt' }              a symlink
// listTree() gives the canonical spec: default modes left out, and a directory listed only when
// nothing else implies it (empty, or of another mode), so a canonical spec round-trips exactly.
import { FileNode, DirNode, SymlinkNode, type Node, type Tree, type TreeOptions } from '../../src/fs/tree/tree.js'
import { memoryTree, type MemoryBlockStore, type MemoryCommitSink } from './memory-store.js'

export type FileSpec = string | Buffer | { content: string | Buffer, mode?: number }
export type DirSpec = { mode?: number }
export type LinkSpec = { symlink: string }
export type EntrySpec = FileSpec | DirSpec | LinkSpec
export type TreeSpec = Record<string, EntrySpec>

/** One row of a merge table: what each side holds and what their merge must give. */
export interface MergeCase { name: string, base: TreeSpec, ours: TreeSpec, theirs: TreeSpec, expected: TreeSpec }

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
