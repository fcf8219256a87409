// readdir, mkdir, rmdir, fsyncdir (opendir/releasedir are left to libfuse: see binding.ts).
import type { OpContext } from '../context.js'
import type { Caller, StatLike } from '../binding.js'

/**
 * Names with their attributes where those are exact without loading more (the kernel keeps them
 * as if looked up: `ls -l` then needs no getattr per entry); null where a lookup must tell.
 */
export async function readdir (ctx: OpContext, path: string): Promise<[string[], Array<StatLike | null>]> {
  const dir = await ctx.tree.lookup(path)
  const entries = await ctx.tree.readdir(path)
  const names = ['.', '..']
  const stats: Array<StatLike | null> = [ctx.tree.stat(dir), ctx.tree.stat(dir.parent ?? dir)]
  for (const [name, node] of entries) {
    names.push(name)
    stats.push(ctx.tree.statIfExact(node))
  }
  return [names, stats]
}

export async function mkdir (ctx: OpContext, path: string, mode: number, caller?: Caller): Promise<void> {
  await ctx.tree.mkdir(path, mode, caller?.uid, caller?.gid)
  ctx.changed('created', path)
}

export async function rmdir (ctx: OpContext, path: string): Promise<void> {
  await ctx.tree.rmdir(path)
  ctx.changed('removed', path)
}

export async function fsyncdir (ctx: OpContext): Promise<void> {
  await ctx.tree.commit()
}
