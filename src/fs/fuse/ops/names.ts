// unlink, link, symlink, readlink, mknod.
import type { OpContext } from '../context.js'
import type { Caller } from '../binding.js'

export async function unlink (ctx: OpContext, path: string): Promise<void> {
  if (ctx.handles.unhide(path)) return // see Handles.hide
  await ctx.tree.unlink(path)
  ctx.changed('removed', path)
}

export async function link (ctx: OpContext, from: string, to: string): Promise<void> {
  await ctx.tree.link(from, to)
  ctx.changed('created', to)
}

export async function symlink (ctx: OpContext, target: string, path: string, caller?: Caller): Promise<void> {
  await ctx.tree.symlink(target, path, caller?.uid, caller?.gid)
  ctx.changed('created', path)
}

export async function readlink (ctx: OpContext, path: string): Promise<string> {
  return await ctx.tree.readlink(path)
}

export async function mknod (ctx: OpContext, path: string, mode: number, dev: number, caller?: Caller): Promise<void> {
  await ctx.tree.mknod(path, mode, dev, caller?.uid, caller?.gid)
  ctx.changed('created', path)
}
