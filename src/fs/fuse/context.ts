// What every FUSE op gets: the tree, the open-handle table and a few services of the daemon.
import type { Tree, Node, FileNode } from '../tree/tree.js'
import type { StatfsLike } from './binding.js'
import { TreeError } from '../tree/errors.js'
import { FileNode as FileNodeClass } from '../tree/nodes.js'
import type { KernelNames } from './kernel-names.js'
import type { NativeReads } from './native-reads.js'

export interface Handle { node: Node, flags: number }

/** Open files by handle number; an open file keeps working after unlink or rename. */
export class Handles {
  private readonly table = new Map<number, Handle>()
  private next = 1

  add (node: Node, flags: number): number {
    const fh = this.next++
    this.table.set(fh, { node, flags })
    if (node instanceof FileNodeClass) node.pins++ // its block map stays loaded while open (tree/load.ts)
    return fh
  }

  get (fh: number): Handle {
    const h = this.table.get(fh)
    if (h == null) throw new TreeError('ERR_BAD_HANDLE', `no open handle ${fh}`)
    return h
  }

  file (fh: number): FileNode {
    const { node } = this.get(fh)
    if (!(node instanceof FileNodeClass)) throw new TreeError('ERR_IS_DIR', 'not a regular file')
    return node
  }

  remove (fh: number): void {
    const h = this.table.get(fh)
    if (h == null) return
    this.table.delete(fh)
    if (h.node instanceof FileNodeClass) h.node.pins--
    const fn = this.closed.get(h.node)
    if (fn != null && !this.isOpen(h.node)) {
      this.closed.delete(h.node)
      fn()
    }
  }

  // Under the kernel's writeback cache the kernel keeps the size it knows of a file for as long
  // as it holds the inode; an open file pins it, so a merge's invalidation cannot drop it. What a
  // merge changed under an open file is invalidated again once its last handle is released.
  private readonly closed = new Map<Node, () => void>()
  /** Runs `fn` when `node` has no open handle left (at once if it has none now). */
  afterClose (node: Node, fn: () => void): void {
    if (!this.isOpen(node)) { fn(); return }
    this.closed.set(node, fn)
  }

  /** The files with open handles (a merge swapped in under the mount keeps them their nodes). */
  openFiles (): FileNode[] {
    const out = new Set<FileNode>()
    for (const h of this.table.values()) if (h.node instanceof FileNodeClass) out.add(h.node)
    return [...out]
  }

  /**
   * The files open for writing (O_WRONLY or O_RDWR): a merge keeps them in the tree with what
   * they wrote, and waits while it would change one of them (src/sync/attach.ts).
   */
  writers (): FileNode[] {
    const out = new Set<FileNode>()
    for (const h of this.table.values()) if ((h.flags & 3) !== 0 && h.node instanceof FileNodeClass) out.add(h.node)
    return [...out]
  }

  /** Whether some file is open for writing. */
  writersOpen (): boolean { return this.writers().length > 0 }

  isOpen (node: Node): boolean {
    for (const h of this.table.values()) if (h.node === node) return true
    return false
  }

  // libfuse (hard_remove off) renames a file that is unlinked while open to .fuse_hiddenXXXX and
  // unlinks that name after the last release. We unlink it from the tree at the rename and keep
  // the node here under that name, so it is never listed, never committed, and stat() on the
  // hidden name (fstat of the open fd) still works.
  private readonly hiddenNodes = new Map<string, Node>()
  hide (path: string, node: Node): void { this.hiddenNodes.set(path, node) }
  hidden (path: string): Node | undefined { return this.hiddenNodes.get(path) }
  unhide (path: string): boolean { return this.hiddenNodes.delete(path) }
  /** What an attribute op on `path` acts on: the hidden node (fchmod, futimens... of an unlinked open file) or the path. */
  target (path: string): Node | string { return this.hiddenNodes.get(path) ?? path }
  get size (): number { return this.table.size }
}

export type ChangeKind = 'created' | 'updated' | 'removed' | 'renamed'

export interface OpContext {
  tree: Tree
  handles: Handles
  statfs: () => Promise<StatfsLike>
  /** Called after each successful namespace or content change (for the event stream). */
  changed: (kind: ChangeKind, path: string, to?: string) => void
  /** Tells the kernel about other names of linked nodes an op changed (kernel-names.ts). */
  kernel: Pick<KernelNames, 'beforeReply'>
  /** Reads the binding answers itself (libfuse 3): set by the frontend when the binding offers them. */
  reads?: NativeReads
}
