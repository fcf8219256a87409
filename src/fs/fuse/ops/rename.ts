// rename: within and across directories, atomically replacing an existing target.
import type { OpContext } from '../context.js'
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../binding.js'
import { TreeError } from '../../tree/errors.js'

// The name libfuse 2 and 3 give a hidden file: .fuse_hidden followed by 16 hex digits.
const HIDDEN = /\/\.fuse_hidden[0-9a-f]{16}$/

/** `flags` are renameat2's (libfuse 3): NOREPLACE fails with EEXIST; EXCHANGE is not supported. */
export async function rename (ctx: OpContext, from: string, to: string, flags = 0): Promise<void> {
  if ((flags & ~RENAME_NOREPLACE) !== 0) {
    throw new TreeError('ERR_INVALID', (flags & RENAME_EXCHANGE) !== 0 ? 'RENAME_EXCHANGE is not supported' : `rename flags ${flags}`)
  }
  if (flags === 0 && HIDDEN.test(to)) {
    // libfuse hiding a file that is unlinked while open (see Handles.hide). Only for an open
    // file: a closed one renamed to such a name (say, restored from a backup) is a plain rename.
    const node = await ctx.tree.lookup(from)
    if (ctx.handles.isOpen(node)) {
      await ctx.tree.unlink(from)
      ctx.handles.hide(to, node)
      ctx.changed('removed', from)
      return
    }
  }
  await ctx.tree.rename(from, to, (flags & RENAME_NOREPLACE) !== 0)
  ctx.changed('renamed', from, to)
}
