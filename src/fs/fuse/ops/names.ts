// unlink, link, symlink, readlink, mknod.
import type { OpContext } from '../context.js'

export async function unlink (ctx: OpContext, path: string): Promise<void> {
  await ctx.tree.unlink(path)
  ctx.changed('removed', path)
}

export async function link (ctx: OpContext, from: string, to: string): Promise<void> {
  await ctx.tree.link(from, to)
}

export async function symlink (ctx: OpContext, target: string, path: string): Promise<void> {
  await ctx.tree.symlink(target, path)
  ctx.changed('created', path)
}

export async function readlink (ctx: OpContext, path: string): Promise<string> {
  return await ctx.tree.readlink(path)
}

export async function mknod (ctx: OpContext, path: string, mode: number, dev: number): Promise<void> {
  await ctx.tree.mknod(path, mode, dev)
  ctx.changed('created', path)
}
