// open, create, read, write, flush, fsync, release, truncate, ftruncate, fallocate.
import type { OpContext } from '../context.js'
import type { Caller } from '../binding.js'
import { FileNode } from '../../tree/nodes.js'
import { TreeError } from '../../tree/errors.js'
import { updated } from './attr.js'

const O_RDWR = 2

export async function open (ctx: OpContext, path: string, flags: number): Promise<number> {
  const node = await ctx.tree.lookup(path)
  return ctx.handles.add(node, flags)
}

/**
 * `caller` (libfuse 3): the new file belongs to the user who created it, not the mount owner.
 * The handle counts as open for writing (O_RDWR) whatever the flags: a file is created to be
 * written, and a merge swapped in under a writer it does not know of loses what the writer
 * writes next (Handles.writers). Registered with no write flag, every file made by
 * open(O_CREAT) let merges through, and a file growing over several commits kept the size of
 * the commit a merge came after.
 */
export async function create (ctx: OpContext, path: string, mode: number, caller?: Caller): Promise<number> {
  const f = await ctx.tree.create(path, mode, caller?.uid, caller?.gid)
  ctx.changed('created', path)
  return ctx.handles.add(f, O_RDWR)
}

// A handle's first read through JS binds it to its file in the binding's native reads: the
// blocks this read checks answer the next reads of the handle without JS (native-reads.ts).
export async function read (ctx: OpContext, fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
  const f = ctx.handles.file(fh)
  ctx.reads?.bindHandle(fh, f)
  return await ctx.tree.read(f, buf, len, pos)
}

// The kernel's buffer stays valid until we answer, and the tree copies from it into its own
// block buffers; nothing keeps a reference to `buf` past the answer.
export async function write (ctx: OpContext, path: string, fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
  const f = ctx.handles.file(fh)
  const n = await ctx.tree.write(f, len === buf.length ? buf : buf.subarray(0, len), pos)
  ctx.changed('updated', path)
  return n
}

export async function fsync (ctx: OpContext): Promise<void> {
  await ctx.tree.commit()
}

export async function release (ctx: OpContext, fh: number): Promise<void> {
  ctx.reads?.releaseHandle(fh)
  ctx.handles.remove(fh)
}

export async function truncate (ctx: OpContext, path: string, size: number): Promise<void> {
  const node = ctx.handles.hidden(path) ?? await ctx.tree.lookup(path)
  if (!(node instanceof FileNode)) throw new TreeError(node.kind === 2 ? 'ERR_IS_DIR' : 'ERR_INVALID', `${path} is not a regular file`)
  await ctx.tree.truncate(node, size)
  updated(ctx, path)
}

export async function ftruncate (ctx: OpContext, path: string, fh: number, size: number): Promise<void> {
  await ctx.tree.truncate(ctx.handles.file(fh), size)
  ctx.changed('updated', path)
}

/** fallocate(2): modes 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE (with or without KEEP_SIZE). */
export async function fallocate (ctx: OpContext, path: string, fh: number, mode: number, offset: number, length: number): Promise<void> {
  await ctx.tree.fallocate(ctx.handles.file(fh), mode, offset, length)
  ctx.changed('updated', path)
}
