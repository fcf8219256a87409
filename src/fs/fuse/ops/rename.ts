// rename: within and across directories, atomically replacing an existing target.
import type { OpContext } from '../context.js'

export async function rename (ctx: OpContext, from: string, to: string): Promise<void> {
  await ctx.tree.rename(from, to)
  ctx.changed('renamed', from, to)
}
