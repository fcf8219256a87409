// Re-sealing a whole drive under fresh keys: the last step of moving a store from the temporary
// key file to the identity's key (issue 8.5). Rekeying the journal (rekey.ts) changes only the
// commit key; the root, directory and file keys inside the tree stay, so a leaked temporary key
// plus an old copy of the journal would open every later version of the root and, through it,
// everything written after the migration. Here every directory, file, block and block map is
// copied into a tree with new random ids and keys, committed as the next version; after that,
// nothing written opens with any key the temporary key leads to.
//
// Crash safety: a marker file (RESEAL_MARKER, naming the retired key file) is made durable before
// the journal is rekeyed and removed after the re-sealed tree is committed; the retired key file
// is deleted last. An open that finds the marker finishes the job first (the copy starts over).
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { Kind } from '../fs/tree/format.js'
import { FileNode, DirNode, SymlinkNode, SpecialNode, type Node, type Tree } from '../fs/tree/tree.js'
import { BLOCK_SIZE } from '../fs/tree/format.js'

export const RESEAL_MARKER = 'reseal-pending'

export interface ResealProgress { files: number, totalFiles: number, bytes: number, totalBytes: number }

interface Marker { retiredKeyFile: string | null }

/** Writes the marker durably: a re-seal is owed before the store may be used. */
export async function markResealPending (dataDir: string, retiredKeyFile: string | null): Promise<void> {
  const path = join(dataDir, RESEAL_MARKER)
  const body: Marker = { retiredKeyFile }
  await fsp.writeFile(path + '.tmp', JSON.stringify(body) + '\n', { mode: 0o600, flush: true })
  await fsp.rename(path + '.tmp', path)
  const dir = await fsp.open(dataDir, 'r')
  try { await dir.sync() } finally { await dir.close() }
}

/** The pending re-seal's marker, or null when none is owed. */
export async function resealPending (dataDir: string): Promise<Marker | null> {
  try {
    return JSON.parse(await fsp.readFile(join(dataDir, RESEAL_MARKER), 'utf8')) as Marker
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

export async function clearResealPending (dataDir: string): Promise<void> {
  await fsp.rm(join(dataDir, RESEAL_MARKER), { force: true })
  const dir = await fsp.open(dataDir, 'r')
  try { await dir.sync() } finally { await dir.close() }
}

const TYPE_BITS: Partial<Record<Kind, number>> = { [Kind.Fifo]: 0o010000, [Kind.Char]: 0o020000, [Kind.Block]: 0o060000, [Kind.Socket]: 0o140000 }

/**
 * Copies everything of `from` (the drive as committed) into `to` (an empty tree with fresh root
 * keys over the same store and journal): names, content (holes stay holes), modes, owners,
 * atime/mtime, xattrs, symlinks, device nodes, hard links. ctime becomes the copy's time.
 */
export async function copyTree (from: Tree, to: Tree, progress: (p: ResealProgress) => void = () => {}): Promise<ResealProgress> {
  const totals = await count(from, '/')
  const p: ResealProgress = { files: 0, totalFiles: totals.files, bytes: 0, totalBytes: totals.bytes }
  const linked = new Map<Node, string>()
  const buf = Buffer.allocUnsafe(BLOCK_SIZE)
  const copyDir = async (path: string): Promise<void> => {
    for (const [name, node] of await from.readdir(path)) {
      const child = path === '/' ? `/${name}` : `${path}/${name}`
      const a = node.attrs
      const seen = linked.get(node)
      if (seen != null) { await to.link(seen, child); continue }
      if (!(node instanceof DirNode) && node.nlink > 1) linked.set(node, child)
      if (node instanceof DirNode) {
        await to.mkdir(child, a.mode, a.uid, a.gid)
        await copyDir(child)
      } else if (node instanceof FileNode) {
        const f = await to.create(child, a.mode, a.uid, a.gid)
        // Only stored blocks are copied (the block map's keys).
        for (const idx of [...(await from.blocksOf(node)).keys()].sort((x, y) => x - y)) {
          const pos = idx * BLOCK_SIZE
          if (pos >= node.size) continue
          const n = await from.read(node, buf, Math.min(BLOCK_SIZE, node.size - pos), pos)
          await to.write(f, buf.subarray(0, n), pos)
          p.bytes += n
        }
        await to.truncate(f, node.size)
        p.files++
        progress(p)
      } else if (node instanceof SymlinkNode) {
        await to.symlink(node.target, child, a.uid, a.gid)
      } else if (node instanceof SpecialNode) {
        await to.mknod(child, (TYPE_BITS[node.kind] ?? 0) | a.mode, node.rdev, a.uid, a.gid)
      }
      await copyAttrs(from, to, node, child)
    }
  }
  await copyDir('/')
  await copyAttrs(from, to, from.root, '/')
  return p
}

/** Mode, xattrs and times last: adding children changes a directory's mtime. */
async function copyAttrs (from: Tree, to: Tree, node: Node, path: string): Promise<void> {
  for (const name of await from.listxattr(node)) await to.setxattr(path, name, await from.getxattr(node, name), 0)
  if (!(node instanceof SymlinkNode)) await to.chmod(path, node.attrs.mode)
  await to.chown(path, node.attrs.uid, node.attrs.gid)
  await to.utimens(path, node.attrs.atime, node.attrs.mtime)
}

async function count (t: Tree, path: string): Promise<{ files: number, bytes: number }> {
  let files = 0
  let bytes = 0
  for (const [name, node] of await t.readdir(path)) {
    if (node instanceof DirNode) {
      const c = await count(t, path === '/' ? `/${name}` : `${path}/${name}`)
      files += c.files
      bytes += c.bytes
    } else if (node instanceof FileNode) {
      files++
      bytes += node.size
    }
  }
  return { files, bytes }
}
