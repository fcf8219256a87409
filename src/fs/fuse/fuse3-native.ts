// FuseBinding over our own libfuse 3 addon (native/, built by scripts/build-native.sh). The addon
// runs libfuse's workers on their own threads and calls `dispatch` on the JS thread for every
// request; each request is answered exactly once through `reply`. The mount's KernelCache
// (invalidate, invalidatePath, invalidateEntry) is native/src/fuse3/inval.c's. See
// native/src/fuse3/ (fuse3.h lists its files).
import { createRequire } from 'node:module'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import type { Caller, DirPageLike, FuseBinding, FuseMount, FuseOps, KernelCache, MountOptions, NativeReadTable, StatLike, StatfsLike } from './binding.js'

const require = createRequire(import.meta.url)
const run = promisify(execFile)

type Handle = object
interface Addon {
  OPS: string[]
  fuseVersion: number
  mount: (mountpoint: string, options: string, cfg: Record<string, unknown>, dispatch: Dispatch, implemented: string[]) => Handle
  unmount: (h: Handle) => Promise<void>
  reply: (h: Handle, id: number, result: number, a?: unknown, b?: unknown) => boolean
  invalidate: (h: Handle, paths: string[]) => number
  invalidatePath: (h: Handle, path: string) => Promise<number>
  invalidateEntry: (h: Handle, dir: string, name: string) => Promise<number>
  // Native reads (fastread.c)
  nativeReads: (h: Handle, on: boolean) => void
  readPutStream?: (h: Handle, fid: number, size: number, first: number, ads: Uint8Array, objs: Float64Array, hashes: Uint8Array) => number
  readFile: (h: Handle, key: Uint8Array) => number
  readFileFree: (h: Handle, fid: number) => void
  readBind: (h: Handle, fh: number, fid: number) => boolean
  readPut: (h: Handle, fid: number, size: number, idx: number, adPrefix: Uint8Array, objs: Float64Array, nonces: Uint8Array, seg: Uint8Array) => boolean
  readDrop: (h: Handle, fid: number, from: number, to: number) => void
  readStats: (h: Handle) => number[]
}
// (id, op, s1, s2, buf, n0..n6): the meaning of each argument depends on the op, see HANDLERS.
type Dispatch = (id: number, op: number, s1: string | null, s2: string | null, buf: Buffer | null,
  n0: number, n1: number, n2: number, n3: number, n4: number, n5: number, n6: number) => void
type Reply = (result: number, a?: unknown, b?: unknown) => void
type Handler = (ops: FuseOps, r: Reply, s1: string | null, s2: string | null, buf: Buffer | null,
  n0: number, n1: number, n2: number, n3: number, n4: number, n5: number) => void

const EIO = -5
const ADDON_PATH = process.env.SPACE_FUSE3_ADDON ??
  fileURLToPath(new URL('../../../../native/build/Release/space_fuse3.node', import.meta.url))

let addon: Addon | null = null
let loadError: Error | null = null
/** Loads the addon once; throws the load error (missing build, missing libfuse3) every time. */
export function loadAddon (): Addon {
  if (addon != null) return addon
  if (loadError != null) throw loadError
  try {
    addon = require(ADDON_PATH) as Addon
    return addon
  } catch (err) {
    loadError = err as Error
    throw loadError
  }
}

export function fuse3Available (): boolean {
  try { loadAddon(); return true } catch { return false }
}

const STAT_FIELDS = 12
const READDIR_FIELDS = STAT_FIELDS + 3
function putStat (a: Float64Array, at: number, st: StatLike): void {
  a[at] = st.mode; a[at + 1] = st.uid; a[at + 2] = st.gid; a[at + 3] = st.size; a[at + 4] = st.nlink
  a[at + 5] = st.ino; a[at + 6] = st.rdev; a[at + 7] = st.blksize; a[at + 8] = st.blocks
  a[at + 9] = Number(st.atime); a[at + 10] = Number(st.mtime); a[at + 11] = Number(st.ctime)
}
function statArray (st: StatLike): Float64Array {
  const a = new Float64Array(STAT_FIELDS)
  putStat(a, 0, st)
  return a
}
function statfsArray (s: StatfsLike): Float64Array {
  return Float64Array.of(s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.fsid, s.flag, s.namemax)
}
const caller = (uid: number, gid: number, pid: number, umask: number): Caller => ({ uid, gid, pid, umask })
// An errno from a callback: 0, or negative (a positive one is taken as the same error).
const err = (e: number): number => e > 0 ? -e : e
// The path of an open file that was unlinked is unknown (null): handle-based ops still work.
const p = (s: string | null): string => s ?? ''

const HANDLERS: Record<string, Handler> = {
  // init is handled in mount(): it resolves the mount.
  getattr: (ops, r, path, _s2, _b, fh) => {
    const done = (e: number, st?: StatLike): void => { e === 0 && st != null ? r(0, statArray(st)) : r(err(e) || EIO) }
    if (fh >= 0) ops.fgetattr(p(path), fh, done)
    else ops.getattr(p(path), done)
  },
  readlink: (ops, r, path) => ops.readlink(p(path), (e, t) => { e === 0 ? r(0, t ?? '') : r(err(e)) }),
  mknod: (ops, r, path, _s2, _b, mode, dev, uid, gid, pid, umask) =>
    ops.mknod(p(path), mode, dev, e => r(err(e)), caller(uid, gid, pid, umask)),
  mkdir: (ops, r, path, _s2, _b, mode, uid, gid, pid, umask) =>
    ops.mkdir(p(path), mode, e => r(err(e)), caller(uid, gid, pid, umask)),
  unlink: (ops, r, path) => ops.unlink(p(path), e => r(err(e))),
  rmdir: (ops, r, path) => ops.rmdir(p(path), e => r(err(e))),
  symlink: (ops, r, target, path, _b, uid, gid, pid, umask) =>
    ops.symlink(p(target), p(path), e => r(err(e)), caller(uid, gid, pid, umask)),
  rename: (ops, r, from, to, _b, flags) => ops.rename(p(from), p(to), e => r(err(e)), flags),
  link: (ops, r, from, to) => ops.link(p(from), p(to), e => r(err(e))),
  chmod: (ops, r, path, _s2, _b, mode) => ops.chmod(p(path), mode, e => r(err(e))),
  chown: (ops, r, path, _s2, _b, uid, gid) => ops.chown(p(path), uid, gid, e => r(err(e))),
  truncate: (ops, r, path, _s2, _b, size, fh) => {
    if (fh >= 0) ops.ftruncate(p(path), fh, size, e => r(err(e)))
    else ops.truncate(p(path), size, e => r(err(e)))
  },
  open: (ops, r, path, _s2, _b, flags) => ops.open(p(path), flags, (e, fh) => r(e === 0 ? fh ?? 0 : err(e))),
  // buf is the addon's view of libfuse's memory: valid only until r() is called.
  read: (ops, r, path, _s2, buf, fh, len, pos) => ops.read(p(path), fh, buf!, len, pos, n => r(n)),
  write: (ops, r, path, _s2, buf, fh, len, pos) => ops.write(p(path), fh, buf!, len, pos, n => r(n)),
  statfs: (ops, r, path) => ops.statfs(p(path), (e, s) => { e === 0 && s != null ? r(0, statfsArray(s)) : r(err(e) || EIO) }),
  // flush only reaches JS when the ops table has it (see mount()).
  flush: (ops, r, path, _s2, _b, fh) => ops.flush!(p(path), fh, e => r(err(e))),
  release: (ops, r, path, _s2, _b, fh) => ops.release(p(path), fh, e => r(err(e))),
  fsync: (ops, r, path, _s2, _b, datasync, fh) => ops.fsync(p(path), datasync !== 0, fh, e => r(err(e))),
  // The value is copied: the xattr table may keep it.
  setxattr: (ops, r, path, name, buf, flags) => ops.setxattr(p(path), p(name), Buffer.from(buf!), 0, flags, e => r(err(e))),
  getxattr: (ops, r, path, name) => ops.getxattr(p(path), p(name), 0, (e, v) => {
    e === 0 ? r(0, v ?? Buffer.alloc(0)) : r(err(e))
  }),
  listxattr: (ops, r, path) => ops.listxattr(p(path), (e, names) => {
    e === 0 ? r(0, Buffer.from((names ?? []).map(n => n + '\0').join(''))) : r(err(e))
  }),
  removexattr: (ops, r, path, name) => ops.removexattr(p(path), p(name), e => r(err(e))),
  // s2: the name at the position listed last, n0: readdirplus, n1/n2: that position (0: the start).
  // The answer: 0 if the directory ends with this page, else 1; names; per entry its stat, 1 if
  // exact (the addon sends only those with readdirplus) and its position (two numbers).
  readdir: (ops, r, path, afterName, _b, _plus, hi, lo) => {
    const send = (e: number, page?: DirPageLike): void => {
      if (e !== 0 || page == null) { r(err(e) || EIO); return }
      const { names, stats, exact, pos } = page
      const packed = new Float64Array(names.length * READDIR_FIELDS)
      for (let i = 0; i < names.length; i++) {
        const at = i * READDIR_FIELDS
        putStat(packed, at, stats[i])
        packed[at + STAT_FIELDS] = exact[i] ? 1 : 0
        packed[at + STAT_FIELDS + 1] = pos[i].hi
        packed[at + STAT_FIELDS + 2] = pos[i].lo
      }
      r(page.end ? 0 : 1, names, packed)
    }
    if (ops.readdirPage != null) {
      ops.readdirPage(p(path), hi === 0 && lo === 0 ? null : { hi, lo, name: afterName }, send)
      return
    }
    ops.readdir(p(path), (e, names, stats, exact) => {
      if (e !== 0 || names == null || stats == null || stats.length !== names.length) { r(err(e) || EIO); return }
      send(0, { names, stats, exact: exact ?? names.map(() => false), pos: names.map((_, i) => ({ hi: 0, lo: i + 1 })), end: true })
    })
  },
  fsyncdir: (ops, r, path, _s2, _b, datasync, fh) => ops.fsyncdir(p(path), datasync !== 0, fh, e => r(err(e))),
  access: (ops, r, path, _s2, _b, mask) => ops.access(p(path), mask, e => r(err(e))),
  create: (ops, r, path, _s2, _b, mode, _flags, uid, gid, pid, umask) =>
    ops.create(p(path), mode, (e, fh) => r(e === 0 ? fh ?? 0 : err(e)), caller(uid, gid, pid, umask)),
  utimens: (ops, r, path, _s2, _b, atime, mtime) => ops.utimens(p(path), atime, mtime, e => r(err(e))),
  fallocate: (ops, r, path, _s2, _b, mode, offset, length, fh) => ops.fallocate!(p(path), fh, mode, offset, length, e => r(err(e)))
}

/** libfuse's option syntax: commas separate options, a backslash escapes. */
const optValue = (v: string): string => v.replace(/[\\,]/g, c => '\\' + c)

export class Fuse3Binding implements FuseBinding {
  /** Worker threads (concurrent requests in flight). */
  constructor (private readonly threads = 10) {}

  async mount (mountpoint: string, ops: FuseOps, opts: MountOptions): Promise<FuseMount> {
    const a = loadAddon()
    const table = a.OPS.map(name => HANDLERS[name])
    const INIT = a.OPS.indexOf('init')
    // getattr also serves fgetattr; an op missing from `ops` is left to libfuse and the kernel.
    const implemented = a.OPS.filter(n => n === 'init' || n === 'getattr' ||
      (HANDLERS[n] != null && typeof (ops as unknown as Record<string, unknown>)[n] === 'function'))
    let handle: Handle | null = null
    let inited!: (e: number) => void
    const init = new Promise<number>(resolve => { inited = resolve })

    const dispatch: Dispatch = (id, op, s1, s2, buf, n0, n1, n2, n3, n4, n5) => {
      const h = handle!
      let answered = false
      const r: Reply = (result, x, y) => {
        if (answered) return
        answered = true
        a.reply(h, id, result, x, y)
      }
      if (op === INIT) {
        ops.init(e => { r(0); inited(err(e)) })
        return
      }
      const fn = table[op]
      if (fn == null) { r(-38); return } // ENOSYS
      try {
        fn(ops, r, s1, s2, buf, n0, n1, n2, n3, n4, n5)
      } catch (e) {
        r(EIO)
        throw e
      }
    }

    const o = [`fsname=${optValue(opts.fsname)}`, 'subtype=space']
    if (opts.defaultPermissions) o.push('default_permissions')
    if (opts.allowOther) o.push('allow_other')
    handle = a.mount(mountpoint, o.join(','), {
      attrTimeout: opts.attrTimeout,
      entryTimeout: opts.entryTimeout,
      maxWrite: opts.maxWrite,
      threads: this.threads,
      writebackCache: opts.writebackCache === true
    }, dispatch, implemented)
    const h = handle
    // Native reads: on unless SPACE_NATIVE_READS=0 (which sends every read to JS, as before).
    if (process.env.SPACE_NATIVE_READS !== '0' && ops.nativeReads != null && typeof a.readPut === 'function') {
      const table: NativeReadTable = {
        file: key => a.readFile(h, key),
        freeFile: fid => { a.readFileFree(h, fid) },
        bind: (fh, fid) => { a.readBind(h, fh, fid) },
        put: (fid, size, idx, adPrefix, objs, nonces, seg) => a.readPut(h, fid, size, idx, adPrefix, objs, nonces, seg),
        putStream: typeof a.readPutStream === 'function' && process.env.SPACE_STREAM_ENTRIES !== '0'
          ? (fid, size, first, ads, objs, hashes) => a.readPutStream!(h, fid, size, first, ads, objs, hashes)
          : undefined,
        drop: (fid, from, to) => { a.readDrop(h, fid, from, to) },
        stats: () => { const [hits, fallbacks, entries, files] = a.readStats(h); return { hits, fallbacks, entries, files } }
      }
      ops.nativeReads(table)
      a.nativeReads(h, true)
    }
    const kernel: KernelCache = {
      beforeReply: paths => { if (paths.length > 0) a.invalidate(h, paths) },
      invalidatePath: async path => await a.invalidatePath(h, path),
      invalidateEntry: async (dir, name) => await a.invalidateEntry(h, dir, name)
    }
    // Requests reach JS only from the next turn of the event loop: this comes first.
    opts.onKernelCache?.(kernel)

    let closing: Promise<void> | null = null
    const unmount = async (): Promise<void> => {
      if (closing == null && process.env.SPACE_DEBUG_NATIVE_READS === '1') {
        const [hits, fallbacks, entries, files] = a.readStats(h)
        process.stderr.write(`native reads: ${hits} answered natively, ${fallbacks} by JS; ${entries} blocks of ${files} files in the table\n`)
      }
      closing ??= a.unmount(handle!)
      await closing
    }
    let timer: NodeJS.Timeout | undefined
    const initErr = await Promise.race([
      init,
      new Promise<number>(resolve => { timer = setTimeout(() => resolve(-110), 30_000) }) // ETIMEDOUT
    ]).finally(() => clearTimeout(timer))
    if (initErr !== 0) {
      await unmount().catch(() => {})
      throw new Error(initErr === -110 ? 'the kernel never sent FUSE_INIT' : `init failed: errno ${-initErr}`)
    }
    return { mountpoint, unmount, kernel }
  }

  async clearStale (mountpoint: string): Promise<void> {
    await run('fusermount3', ['-uz', mountpoint]).catch(async () => await run('fusermount', ['-uz', mountpoint])).catch(() => {})
  }
}
