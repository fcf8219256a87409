// readdir, mkdir, rmdir, fsyncdir (opendir/releasedir are the binding's: see binding.ts).
import type { OpContext } from '../context.js'
import type { Caller, DirPageLike, DirPos, StatLike } from '../binding.js'

/** Entries in a listing's first page (small: the first answer comes soon) and in each later one (fewer round trips). */
export const FIRST_PAGE = 256
export const PAGE = 2048

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

/**
 * One page of a listing (the libfuse 3 binding pages through big folders: dir-listing.ts), from
 * just after `after` (null: from the start, "." and ".." first). Each entry's position is its
 * readdir offset; stats and exactness as for readdir.
 */
export async function readdirPage (ctx: OpContext, path: string, after: DirPos | null): Promise<DirPageLike> {
  const dir = await ctx.tree.lookup(path)
  const page = await ctx.tree.readdirPage(path, after, after == null ? FIRST_PAGE : PAGE)
  const names: string[] = []
  const stats: StatLike[] = []
  const exact: boolean[] = []
  const pos: Array<{ hi: number, lo: number }> = []
  if (after == null) {
    names.push('.', '..')
    stats.push(ctx.tree.stat(dir), ctx.tree.stat(dir.parent ?? dir))
    exact.push(true, true)
    pos.push({ hi: 0, lo: 1 }, { hi: 0, lo: 2 })
  }
  for (let i = 0; i < page.entries.length; i++) {
    const [name, node] = page.entries[i]
    names.push(name)
    stats.push(ctx.tree.stat(node))
    exact.push(ctx.tree.isStatExact(node))
    pos.push(page.pos != null ? page.pos[i] : { hi: 0, lo: i + 3 })
  }
  return { names, stats, exact, pos, end: page.end }
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
