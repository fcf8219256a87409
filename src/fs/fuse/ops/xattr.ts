// Extended attributes: only the user.* namespace is stored. Other namespaces read as absent,
// which also answers the kernel's security.capability probe on every write without a lookup.
import type { OpContext } from '../context.js'
import { fail } from '../../tree/errors.js'
import { updated } from './attr.js'

export async function setxattr (ctx: OpContext, path: string, name: string, value: Buffer, flags: number): Promise<void> {
  await ctx.tree.setxattr(ctx.handles.target(path), name, value, flags)
  updated(ctx, path)
}

export async function getxattr (ctx: OpContext, path: string, name: string): Promise<Buffer> {
  if (!name.startsWith('user.')) fail('ERR_NO_ATTR', `${name} is not set`)
  return await ctx.tree.getxattr(ctx.handles.target(path), name)
}

export async function listxattr (ctx: OpContext, path: string): Promise<string[]> {
  return await ctx.tree.listxattr(ctx.handles.target(path))
}

export async function removexattr (ctx: OpContext, path: string, name: string): Promise<void> {
  await ctx.tree.removexattr(ctx.handles.target(path), name)
  updated(ctx, path)
}
