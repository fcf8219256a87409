// The small interface between our FUSE frontend and whatever libfuse binding sits under it.
// fuse-native.ts implements it over @cocalc/fuse-native (libfuse 2), fuse3-native.ts over our own
// libfuse 3 addon in native/; select.ts picks one.
export type Cb<T = void> = (errno: number, result?: T) => void

export interface StatLike {
  mode: number, uid: number, gid: number, size: number, nlink: number, ino: number, rdev: number,
  blksize: number, blocks: number, atime: number, mtime: number, ctime: number
}

export interface StatfsLike {
  bsize: number, frsize: number, blocks: number, bfree: number, bavail: number,
  files: number, ffree: number, favail: number, fsid: number, flag: number, namemax: number
}

/** A listing position (a readdir offset: hi * 2^32 + lo) and the name there (null: a position only, as seekdir gives it). */
export interface DirPos { hi: number, lo: number, name: string | null }

/** One page of a listing: names, their attributes (see readdir), each one's position, and whether the directory ends with it. */
export interface DirPageLike { names: string[], stats: StatLike[], exact: boolean[], pos: Array<{ hi: number, lo: number }>, end: boolean }

/** Who asked, for ops that create a name (libfuse 3 only: fuse_get_context()). */
export interface Caller { uid: number, gid: number, pid: number, umask: number }

/** renameat2 flags (libfuse 3 only). */
export const RENAME_NOREPLACE = 1
export const RENAME_EXCHANGE = 2

/**
 * Path-based operations, callback style; errno values are negative, 0 is success. flush is
 * optional and our frontend leaves it out: it would do nothing, and without it libfuse answers
 * it without a round trip to JS. opendir and releasedir are the bindings' own business (the
 * libfuse 3 addon keeps each open directory's listing between them).
 */
export interface FuseOps {
  init: (cb: Cb) => void
  statfs: (path: string, cb: Cb<StatfsLike>) => void
  getattr: (path: string, cb: Cb<StatLike>) => void
  fgetattr: (path: string, fd: number, cb: Cb<StatLike>) => void
  access: (path: string, mode: number, cb: Cb) => void
  /** exact[i] false: stats[i] may be off until a lookup of that name (link count, st_blocks). */
  readdir: (path: string, cb: (errno: number, names?: string[], stats?: StatLike[], exact?: boolean[]) => void) => void
  /** The listing by pages, after position `after` (null: from the start); the libfuse 3 binding uses it when present. */
  readdirPage?: (path: string, after: DirPos | null, cb: (errno: number, page?: DirPageLike) => void) => void
  flush?: (path: string, fd: number, cb: Cb) => void
  open: (path: string, flags: number, cb: Cb<number>) => void
  create: (path: string, mode: number, cb: Cb<number>, caller?: Caller) => void
  read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => void
  /** The binding answers reads of the blocks put in `table` itself (libfuse 3 only); called before any request. */
  nativeReads?: (table: NativeReadTable) => void
  write: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => void
  fsync: (path: string, datasync: boolean, fd: number, cb: Cb) => void
  fsyncdir: (path: string, datasync: boolean, fd: number, cb: Cb) => void
  release: (path: string, fd: number, cb: Cb) => void
  truncate: (path: string, size: number, cb: Cb) => void
  ftruncate: (path: string, fd: number, size: number, cb: Cb) => void
  /** fallocate(2) on an open file; `mode` is its FALLOC_FL_* bits (libfuse 3 only). */
  fallocate?: (path: string, fd: number, mode: number, offset: number, length: number, cb: Cb) => void
  /** Times in ms; a value above Number.MAX_SAFE_INTEGER means UTIME_OMIT (leave unchanged). */
  utimens: (path: string, atime: number, mtime: number, cb: Cb) => void
  chmod: (path: string, mode: number, cb: Cb) => void
  chown: (path: string, uid: number, gid: number, cb: Cb) => void
  mknod: (path: string, mode: number, dev: number, cb: Cb, caller?: Caller) => void
  mkdir: (path: string, mode: number, cb: Cb, caller?: Caller) => void
  rmdir: (path: string, cb: Cb) => void
  unlink: (path: string, cb: Cb) => void
  rename: (from: string, to: string, cb: Cb, flags?: number) => void
  link: (from: string, to: string, cb: Cb) => void
  symlink: (target: string, path: string, cb: Cb, caller?: Caller) => void
  readlink: (path: string, cb: Cb<string>) => void
  setxattr: (path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb) => void
  getxattr: (path: string, name: string, position: number, cb: Cb<Buffer | null>) => void
  listxattr: (path: string, cb: Cb<string[]>) => void
  removexattr: (path: string, name: string, cb: Cb) => void
}

export interface MountOptions {
  fsname: string
  allowOther: boolean
  defaultPermissions: boolean
  /** Largest write the kernel may send, bytes. */
  maxWrite: number
  attrTimeout: number
  entryTimeout: number
  /** Kernel writeback cache (libfuse 3 only; changes mtime and O_APPEND handling). Off by default. */
  writebackCache?: boolean
  /** Called with the mount's KernelCache as soon as it exists, before any request is answered. */
  onKernelCache?: (cache: KernelCache) => void
}

/**
 * Makes the kernel forget what it caches about names (libfuse 3 only: native/src/fuse3/inval.c).
 * Paths are the mount's ("/a/b"), as the kernel knows them; results are 0 or a negative errno
 * (-ENOENT: the kernel had nothing cached there, which is no error).
 */
export interface KernelCache {
  /** Attributes and page cache of each path, dropped before the reply of any request answered after this call. */
  beforeReply: (paths: string[]) => void
  /** Attributes and page cache of `path`, once done (nothing waits for it). */
  invalidatePath: (path: string) => Promise<number>
  /** The kernel forgets the name `name` in directory `dir` and all it cached below it: the next use looks it up. */
  invalidateEntry: (dir: string, name: string) => Promise<number>
}

/**
 * Reads the binding answers without JS (native/src/fuse3/fastread.c): per file a key, and per
 * block index where its checked v2 object lies; reads through a bound handle that fall entirely
 * in such blocks never reach `read`. Every call is synchronous and done when it returns.
 */
export interface NativeReadTable {
  /** A file with this key: its number, or -1 when the table is full. */
  file: (key: Uint8Array) => number
  /** Drops the file's entries and handles, and zeroes its key. */
  freeFile: (fid: number) => void
  /** Reads through handle `fh` are of file `fid` (-1: of none). */
  bind: (fh: number, fid: number) => void
  /**
   * Block `idx` of file `fid` (now `size` bytes) reads from these checked v2 objects (`objs`: n x
   * [fd, position, length, first segment], `nonces`: n x 12 bytes), segment s from objs[seg[s]]
   * (255: a hole, 254: not checked: JS answers); false: not kept.
   */
  put: (fid: number, size: number, idx: number, adPrefix: Uint8Array, objs: Float64Array, nonces: Uint8Array, seg: Uint8Array) => boolean
  /**
   * Blocks first.. of file `fid` (now `size` bytes), each one v2 object not checked yet (`objs`:
   * n x [buffered fd, fd to read it whole with, 1 if O_DIRECT, position, length]; zeros: none),
   * checked against its digest (`hashes`: n x 33) at its first read there; blocks with an entry
   * keep it. Returns the entries kept. Absent where the addon has no streaming entries.
   */
  putStream?: (fid: number, size: number, first: number, adPrefixes: Uint8Array, objs: Float64Array, hashes: Uint8Array) => number
  /** Forgets blocks from..to of file `fid` (to = -1: all, and its size). */
  drop: (fid: number, from: number, to: number) => void
  stats: () => { hits: number, fallbacks: number, entries: number, files: number }
}

export interface FuseMount {
  readonly mountpoint: string
  unmount: () => Promise<void>
  /** null: the binding cannot invalidate (libfuse 2: names show changes when the attribute timeout ends). */
  readonly kernel: KernelCache | null
}

export interface FuseBinding {
  mount: (mountpoint: string, ops: FuseOps, opts: MountOptions) => Promise<FuseMount>
  /** Detaches a mount left behind by a dead process. */
  clearStale: (mountpoint: string) => Promise<void>
}
