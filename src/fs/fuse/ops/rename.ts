// rename: within and across directories, atomically replacing an existing target.
import type { OpContext } from '../context.js'
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../binding.js'
import { TreeError } from '../../tree/errors.js'

/** `flags` are renameat2's (libfuse 3): NOREPLACE fails with EEXIST; EXCHANGE is not supported. */
export async function rename (ctx: OpContext, from: string, to: string, flags = 0): Promise<void> {
  if ((flags & ~RENAME_NOREPLACE) !== 0) {
    throw new TreeError('ERR_INVALID', (flags & RENAME_EXCHANGE) !== 0 ? 'RENAME_EXCHANGE is not supported' : `rename flags ${flags}`)
  }
  await ctx.tree.rename(from, to, (flags & RENAME_NOREPLACE) !== 0)
  ctx.changed('renamed', from, to)
}
