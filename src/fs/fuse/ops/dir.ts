// readdir, mkdir, rmdir, fsyncdir (opendir/releasedir are the binding's: see binding.ts).
import type { OpContext } from '../context.js'
import type { Caller, StatLike } from '../binding.js'

/**
 * Names with their attributes, and whether each is exact without loading more: exact ones may go
 * to the kernel with the listing (readdirplus, so `ls -l` needs no getattr per entry), the others
 * only give inode number and type, and a lookup tells the rest.
 */
export async function readdir (ctx: OpContext, path: string): Promise<[string[], StatLike[], boolean[]]> {
  const dir = await ctx.tree.lookup(path)
  const entries = await ctx.tree.readdir(path)
  const names = ['.', '..']
  const stats = [ctx.tree.stat(dir), ctx.tree.stat(dir.parent ?? dir)]
  const exact = [true, true]
  for (const [name, node] of entries) {
    names.push(name)
    stats.push(ctx.tree.stat(node))
    exact.push(ctx.tree.isStatExact(node))
  }
  return [names, stats, exact]
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
