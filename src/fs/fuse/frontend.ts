// Turns the async ops in ops/ into the callback table a FuseBinding mounts. Every op runs on the
// one JS thread: ops never block, and every failure is answered with an errno from errno.ts.
// Before any answer the kernel is told about other names of linked nodes that changed
// (kernel-names.ts), so the caller can stat them as soon as it has the answer.
import type { Cb, FuseOps } from './binding.js'
import type { OpContext } from './context.js'
import { errnoOf } from './errno.js'
import type { TreeErrorCode } from '../tree/errors.js'
import * as attr from './ops/attr.js'
import * as dir from './ops/dir.js'
import * as file from './ops/file.js'
import * as names from './ops/names.js'
import { rename } from './ops/rename.js'
import * as xattr from './ops/xattr.js'
import { NativeReads } from './native-reads.js'

export interface FrontendOptions {
  /** Called with unexpected (non-user) errors: bugs and I/O failures worth a log line. */
  onError: (op: string, path: string, err: unknown) => void
  /** A full disk: expected, and worth a line rather than a stack per request. */
  onNoSpace?: (op: string, path: string, err: unknown) => void
}

/** Answers, not failures: no log line for them. */
const EXPECTED_CODES: TreeErrorCode[] = ['ERR_NOT_FOUND', 'ERR_EXISTS', 'ERR_NOT_DIR', 'ERR_IS_DIR', 'ERR_NOT_EMPTY', 'ERR_NAME_TOO_LONG', 'ERR_NO_ATTR', 'ERR_NOT_PERMITTED', 'ERR_UNSUPPORTED', 'ERR_INVALID', 'ERR_INTEGRITY']
const EXPECTED = new Set<string>(EXPECTED_CODES)

export function buildOps (ctx: OpContext, opts: FrontendOptions): FuseOps {
  function fail (op: string, path: string, err: unknown): number {
    const code = (err as { code?: string })?.code
    if (code === 'ERR_NO_SPACE') opts.onNoSpace?.(op, path, err)
    else if (code == null || !EXPECTED.has(code)) opts.onError(op, path, err)
    return errnoOf(err)
  }
  // Answers `cb(0, result)` or `cb(-errno)`. `own`: the names whose kernel inodes the kernel
  // updates itself from this op (kernel-names.ts), by default `path`.
  function wrap<T> (op: string, path: string, p: Promise<T>, cb: Cb<T>, own: string[] = [path]): void {
    p.then(r => { ctx.kernel.beforeReply(own); cb(0, r) }, err => {
      const e = fail(op, path, err)
      ctx.kernel.beforeReply(own)
      cb(e)
    })
  }
  // read/write answer with a byte count or a negative errno in the first argument.
  function count (op: string, path: string, p: Promise<number>, cb: (n: number) => void): void {
    p.then(n => { ctx.kernel.beforeReply([path]); cb(n) }, err => {
      const e = fail(op, path, err)
      ctx.kernel.beforeReply([path])
      cb(e)
    })
  }

  return {
    init: cb => cb(0),
    statfs: (path, cb) => wrap('statfs', path, attr.statfs(ctx), cb),
    getattr: (path, cb) => wrap('getattr', path, attr.getattr(ctx, path), cb),
    fgetattr: (path, fd, cb) => wrap('fgetattr', path, attr.fgetattr(ctx, path, fd), cb),
    access: (path, _mode, cb) => wrap('access', path, attr.access(ctx, path), cb),
    readdir: (path, cb) => {
      dir.readdir(ctx, path).then(([n, s, x]) => cb(0, n, s, x), err => cb(fail('readdir', path, err)))
    },
    readdirPage: (path, after, cb) => {
      dir.readdirPage(ctx, path, after).then(page => cb(0, page), err => cb(fail('readdir', path, err)))
    },
    open: (path, flags, cb) => wrap('open', path, file.open(ctx, path, flags), cb),
    create: (path, mode, cb, caller) => wrap('create', path, file.create(ctx, path, mode, caller), cb),
    read: (path, fd, buf, len, pos, cb) => count('read', path, file.read(ctx, fd, buf, len, pos), cb),
    nativeReads: table => {
      ctx.reads = new NativeReads(table)
      ctx.tree.setReadShortcut(ctx.reads)
    },
    write: (path, fd, buf, len, pos, cb) => count('write', path, file.write(ctx, path, fd, buf, len, pos), cb),
    fsync: (path, _datasync, _fd, cb) => wrap('fsync', path, file.fsync(ctx), cb),
    fsyncdir: (path, _datasync, _fd, cb) => wrap('fsyncdir', path, dir.fsyncdir(ctx), cb),
    release: (path, fd, cb) => wrap('release', path, file.release(ctx, fd), cb),
    truncate: (path, size, cb) => wrap('truncate', path, file.truncate(ctx, path, size), cb),
    ftruncate: (path, fd, size, cb) => wrap('ftruncate', path, file.ftruncate(ctx, path, fd, size), cb),
    fallocate: (path, fd, mode, offset, length, cb) => wrap('fallocate', path, file.fallocate(ctx, path, fd, mode, offset, length), cb),
    utimens: (path, atime, mtime, cb) => wrap('utimens', path, attr.utimens(ctx, path, atime, mtime), cb),
    chmod: (path, mode, cb) => wrap('chmod', path, attr.chmod(ctx, path, mode), cb),
    chown: (path, uid, gid, cb) => wrap('chown', path, attr.chown(ctx, path, uid, gid), cb),
    mknod: (path, mode, dev, cb, caller) => wrap('mknod', path, names.mknod(ctx, path, mode, dev, caller), cb),
    mkdir: (path, mode, cb, caller) => wrap('mkdir', path, dir.mkdir(ctx, path, mode, caller), cb),
    rmdir: (path, cb) => wrap('rmdir', path, dir.rmdir(ctx, path), cb),
    unlink: (path, cb) => wrap('unlink', path, names.unlink(ctx, path), cb),
    rename: (from, to, cb, flags) => wrap('rename', from, rename(ctx, from, to, flags ?? 0), cb, [from, to]),
    // The kernel only moves `from`'s ctime: its link count is invalidated like any other name's.
    link: (from, to, cb) => wrap('link', from, names.link(ctx, from, to), cb, [to]),
    symlink: (target, path, cb, caller) => wrap('symlink', path, names.symlink(ctx, target, path, caller), cb),
    readlink: (path, cb) => wrap('readlink', path, names.readlink(ctx, path), cb),
    setxattr: (path, name, value, _pos, flags, cb) => wrap('setxattr', path, xattr.setxattr(ctx, path, name, value, flags), cb),
    getxattr: (path, name, _pos, cb) => wrap('getxattr', path, xattr.getxattr(ctx, path, name), cb),
    listxattr: (path, cb) => wrap('listxattr', path, xattr.listxattr(ctx, path), cb),
    removexattr: (path, name, cb) => wrap('removexattr', path, xattr.removexattr(ctx, path, name), cb)
  }
}
