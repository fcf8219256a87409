// getattr, fgetattr, access, chmod, chown, utimens, statfs.
import type { OpContext } from '../context.js'
import type { StatLike, StatfsLike } from '../binding.js'

export async function getattr (ctx: OpContext, path: string): Promise<StatLike> {
  return await ctx.tree.statLoaded(ctx.handles.hidden(path) ?? await ctx.tree.lookup(path))
}

export async function fgetattr (ctx: OpContext, path: string, fh: number): Promise<StatLike> {
  // libfuse 2 sends fgetattr with fh 0 for paths it has no handle for.
  if (fh === 0) return await getattr(ctx, path)
  return await ctx.tree.statLoaded(ctx.handles.get(fh).node)
}

export async function access (ctx: OpContext, path: string): Promise<void> {
  await ctx.tree.lookup(path)
}

/** An attribute change is an event, unless it was on an unlinked file (no name to report). */
export function updated (ctx: OpContext, path: string): void {
  if (ctx.handles.hidden(path) == null) ctx.changed('updated', path)
}

export async function chmod (ctx: OpContext, path: string, mode: number): Promise<void> {
  await ctx.tree.chmod(ctx.handles.target(path), mode)
  updated(ctx, path)
}

export async function chown (ctx: OpContext, path: string, uid: number, gid: number): Promise<void> {
  await ctx.tree.chown(ctx.handles.target(path), uid, gid)
  updated(ctx, path)
}

// The binding passes UTIME_OMIT as 2^64-1 ("leave unchanged"); UTIME_NOW arrives as a time.
const OMIT = (ms: number): number | undefined => ms > Number.MAX_SAFE_INTEGER ? undefined : ms

export async function utimens (ctx: OpContext, path: string, atime: number, mtime: number): Promise<void> {
  await ctx.tree.utimens(ctx.handles.target(path), OMIT(atime), OMIT(mtime))
  updated(ctx, path)
}

export async function statfs (ctx: OpContext): Promise<StatfsLike> {
  return await ctx.statfs()
}
