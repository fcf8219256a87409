// Keeps what the kernel caches per name true to the tree when it cannot know a name changed.
// libfuse's path API gives each name its own kernel inode, so after a change of a hard-linked node
// through one name (size, link count, mode, times, content) the kernel would show the old values
// under its other names until their attribute timeout ends. Before an op is answered, the other
// names of every linked node changed since the last answer are invalidated (the binding makes
// them go before the reply: native/src/fuse3/inval.c, "Timing"). The names whose inodes the kernel
// updates itself from the op (the name written, chmod-ed, truncated; the new name of a link or a
// rename) are left out: invalidating the name a write holds a page of would wait for the write.
// link() is the exception that proves it: the kernel only moves the old name's ctime, so the old
// name is invalidated with the others.
//
// The same object is how code outside the FUSE ops (merging another device's changes, issue 9)
// tells the kernel about changes it made to the tree: invalidatePath and invalidateEntry.
import type { KernelCache } from './binding.js'

/** What this needs of the tree's link table (nodes.ts LinkTable). */
export interface ChangedLinks { takeChanged: () => string[] }

export class KernelNames {
  private cache: KernelCache | null = null

  constructor (private readonly links: ChangedLinks) {}

  /** The mount's cache, once it exists (MountOptions.onKernelCache); without one nothing is sent. */
  attach (cache: KernelCache): void { this.cache = cache }

  /** Before answering an op: the names of linked nodes that changed, but for `own` (see above). */
  beforeReply (own: readonly string[]): void {
    const paths = this.links.takeChanged()
    if (paths.length === 0 || this.cache == null) return
    const others = paths.filter(p => !own.includes(p))
    if (others.length > 0) this.cache.beforeReply(others)
  }

  /**
   * The kernel drops the attributes and page cache it holds for `path`; resolves when done
   * (0, or -ENOENT when it held nothing). For changes made to the tree outside a FUSE op.
   */
  async invalidatePath (path: string): Promise<number> {
    return this.cache != null ? await this.cache.invalidatePath(path) : 0
  }

  /** The kernel forgets the name `name` in `dir` (added, removed or replaced outside a FUSE op). */
  async invalidateEntry (dir: string, name: string): Promise<number> {
    return this.cache != null ? await this.cache.invalidateEntry(dir, name) : 0
  }

  /** Whether the binding can invalidate at all (libfuse 2 cannot). */
  get active (): boolean { return this.cache != null }
}
