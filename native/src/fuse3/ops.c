// The libfuse operations (run on worker threads): each packs its arguments into a request slot
// for JS (requests.c) and hands JS's answer back to libfuse; getxattr of names we never store is
// answered here. Listing operations live in listing.c.
#include "fuse3.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#define AS_NAME(n) #n,
const char *const space_op_names[OP_COUNT] = { OPS(AS_NAME) };

static double fh_arg (struct fuse_file_info *fi) {
  return fi != NULL ? (double)fi->fh : -1;
}

static void put_caller (slot_t *s, int at) {
  struct fuse_context *c = fuse_get_context();
  s->num[at] = c->uid;
  s->num[at + 1] = c->gid;
  s->num[at + 2] = c->pid;
  s->num[at + 3] = c->umask;
}

static double ts_ms (const struct timespec *t) {
  if (t->tv_nsec == UTIME_OMIT) return OMIT_MS;
  struct timespec now;
  if (t->tv_nsec == UTIME_NOW) {
    clock_gettime(CLOCK_REALTIME, &now);
    t = &now;
  }
  // Whole milliseconds: the tree stores ms, and a fraction would not survive its format.
  return (double)t->tv_sec * 1000.0 + (double)(t->tv_nsec / 1000000);
}

static struct timespec ms_ts (double ms) {
  struct timespec t;
  double sec = floor(ms / 1000.0);
  long long ns = llround((ms - sec * 1000.0) * 1e6);
  if (ns >= 1000000000LL) { sec += 1; ns -= 1000000000LL; }
  if (ns < 0) ns = 0;
  t.tv_sec = (time_t)sec;
  t.tv_nsec = (long)ns;
  return t;
}

void fill_stat (const double *a, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_mode = (mode_t)a[0];
  st->st_uid = (uid_t)a[1];
  st->st_gid = (gid_t)a[2];
  st->st_size = (off_t)a[3];
  st->st_nlink = (nlink_t)a[4];
  st->st_ino = (ino_t)a[5];
  st->st_rdev = (dev_t)a[6];
  st->st_blksize = (blksize_t)a[7];
  st->st_blocks = (blkcnt_t)a[8];
  st->st_atim = ms_ts(a[9]);
  st->st_mtim = ms_ts(a[10]);
  st->st_ctim = ms_ts(a[11]);
}

static void *f_init (struct fuse_conn_info *conn, struct fuse_config *cfg) {
  mnt_t *m = current();
  cfg->use_ino = 1;
  cfg->readdir_ino = 1;
  // Not hard_remove: with it, fstat() of an open-but-unlinked file fails with ESTALE (the kernel
  // sends GETATTR without a handle, and libfuse has no path for the node any more). Instead
  // libfuse renames such a file to .fuse_hiddenXXXX and unlinks that name at the last close.
  cfg->hard_remove = 0;
  cfg->nullpath_ok = 0;
  cfg->intr = 0;
  cfg->attr_timeout = m->attr_timeout;
  cfg->entry_timeout = m->entry_timeout;
  cfg->negative_timeout = m->negative_timeout;
  conn->max_write = m->max_write;  // libfuse caps it at its buffer (1 MiB) and sets max_pages
  conn->time_gran = 1000000;       // the tree keeps milliseconds
  // open() does not truncate: let the kernel send O_TRUNC as a separate setattr.
  conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
  // The kernel clears suid/sgid on write and chown itself (as with libfuse 2).
  conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
  conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  if (m->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
  slot_t *s = acquire(m, OP_init);
  call_js(m, s);
  release_slot(m, s);
  return m;
}

static int f_getattr (const char *path, struct stat *st, struct fuse_file_info *fi) {
  if (path == NULL && fi == NULL) return -ENOENT;
  BEGIN(OP_getattr)
  s->s1 = path;
  s->num[0] = fh_arg(fi);
  s->st = st;
  END
}

static int f_readlink (const char *path, char *buf, size_t size) {
  if (size == 0) return -EINVAL;
  BEGIN(OP_readlink)
  s->s1 = path;
  s->out = buf;
  s->outsize = size;
  END
}

static int f_mknod (const char *path, mode_t mode, dev_t rdev) {
  BEGIN(OP_mknod)
  s->s1 = path;
  s->num[0] = mode;
  s->num[1] = (double)rdev;
  put_caller(s, 2);
  END
}

static int f_mkdir (const char *path, mode_t mode) {
  BEGIN(OP_mkdir)
  s->s1 = path;
  s->num[0] = mode;
  put_caller(s, 1);
  END
}

static int f_unlink (const char *path) {
  BEGIN(OP_unlink)
  s->s1 = path;
  END
}

static int f_rmdir (const char *path) {
  BEGIN(OP_rmdir)
  s->s1 = path;
  END
}

static int f_symlink (const char *target, const char *path) {
  BEGIN(OP_symlink)
  s->s1 = target;
  s->s2 = path;
  put_caller(s, 0);
  END
}

static int f_rename (const char *from, const char *to, unsigned int flags) {
  BEGIN(OP_rename)
  s->s1 = from;
  s->s2 = to;
  s->num[0] = flags;
  END
}

static int f_link (const char *from, const char *to) {
  BEGIN(OP_link)
  s->s1 = from;
  s->s2 = to;
  END
}

// chmod/chown/utimens go by path (FuseOps has no handle form): a file unlinked while open keeps
// its .fuse_hidden name (hard_remove off), which the JS side resolves (Handles.target).
static int f_chmod (const char *path, mode_t mode, struct fuse_file_info *fi) {
  if (path == NULL) return -ENOENT;
  BEGIN(OP_chmod)
  s->s1 = path;
  s->num[0] = mode;
  s->num[1] = fh_arg(fi);
  END
}

static int f_chown (const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  if (path == NULL) return -ENOENT;
  BEGIN(OP_chown)
  s->s1 = path;
  s->num[0] = uid;
  s->num[1] = gid;
  s->num[2] = fh_arg(fi);
  END
}

static int f_truncate (const char *path, off_t size, struct fuse_file_info *fi) {
  if (path == NULL && fi == NULL) return -ENOENT;
  BEGIN(OP_truncate)
  s->s1 = path;
  s->num[0] = (double)size;
  s->num[1] = fh_arg(fi);
  END
}

static int f_open (const char *path, struct fuse_file_info *fi) {
  BEGIN(OP_open)
  s->s1 = path;
  s->num[0] = fi->flags;
  int64_t r = call_js(m, s);
  if (r == 0) fi->fh = s->fh;
  release_slot(m, s);
  return (int)r;
}

static int f_read (const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  mnt_t *m = current();
  if (m == NULL) return -EIO;
  // Blocks JS has checked and registered are answered here, on this worker (fastread.c).
  if (fi != NULL) { int n = fastread_read(m, fi->fh, buf, size, off); if (n >= 0) return n; }
  slot_t *s = acquire(m, OP_read);
  s->s1 = path;
  s->data = buf;
  s->len = size;
  s->num[0] = fh_arg(fi);
  s->num[1] = (double)size;
  s->num[2] = (double)off;
  END
}

static int f_write (const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  BEGIN(OP_write)
  s->s1 = path;
  s->data = (char *)buf;
  s->len = size;
  s->num[0] = fh_arg(fi);
  s->num[1] = (double)size;
  s->num[2] = (double)off;
  END
}

static int f_statfs (const char *path, struct statvfs *sv) {
  BEGIN(OP_statfs)
  s->s1 = path;
  s->sv = sv;
  END
}

static int f_flush (const char *path, struct fuse_file_info *fi) {
  BEGIN(OP_flush)
  s->s1 = path;
  s->num[0] = fh_arg(fi);
  END
}

static int f_release (const char *path, struct fuse_file_info *fi) {
  BEGIN(OP_release)
  s->s1 = path;
  s->num[0] = fh_arg(fi);
  END
}

static int f_fsync (const char *path, int datasync, struct fuse_file_info *fi) {
  BEGIN(OP_fsync)
  s->s1 = path;
  s->num[0] = datasync;
  s->num[1] = fh_arg(fi);
  END
}

static int f_setxattr (const char *path, const char *name, const char *value, size_t size, int flags) {
  BEGIN(OP_setxattr)
  s->s1 = path;
  s->s2 = name;
  s->data = (char *)value;
  s->len = size;
  s->num[0] = flags;
  END
}

static int f_getxattr (const char *path, const char *name, char *value, size_t size) {
  // Only user.* is stored. The kernel asks for security.capability before every write and ls -l
  // for two names per file: answer those here instead of a round trip to JS for each.
  if (strncmp(name, "user.", 5) != 0) return -ENODATA;
  BEGIN(OP_getxattr)
  s->s1 = path;
  s->s2 = name;
  s->out = value;
  s->outsize = size;
  END
}

static int f_listxattr (const char *path, char *list, size_t size) {
  BEGIN(OP_listxattr)
  s->s1 = path;
  s->out = list;
  s->outsize = size;
  END
}

static int f_removexattr (const char *path, const char *name) {
  BEGIN(OP_removexattr)
  s->s1 = path;
  s->s2 = name;
  END
}

static int f_fsyncdir (const char *path, int datasync, struct fuse_file_info *fi) {
  BEGIN(OP_fsyncdir)
  s->s1 = path;
  s->num[0] = datasync;
  s->num[1] = fh_arg(fi);
  END
}

static int f_access (const char *path, int mask) {
  BEGIN(OP_access)
  s->s1 = path;
  s->num[0] = mask;
  END
}

static int f_create (const char *path, mode_t mode, struct fuse_file_info *fi) {
  BEGIN(OP_create)
  s->s1 = path;
  s->num[0] = mode;
  s->num[1] = fi->flags;
  put_caller(s, 2);
  int64_t r = call_js(m, s);
  if (r == 0) fi->fh = s->fh;
  release_slot(m, s);
  return (int)r;
}

static int f_utimens (const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  if (path == NULL) return -ENOENT;
  BEGIN(OP_utimens)
  s->s1 = path;
  s->num[0] = ts_ms(&tv[0]);
  s->num[1] = ts_ms(&tv[1]);
  s->num[2] = fh_arg(fi);
  END
}

// mode is the fallocate(2) mode (FALLOC_FL_* bits); JS decides which it supports (EOPNOTSUPP).
static int f_fallocate (const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  BEGIN(OP_fallocate)
  s->s1 = path;
  s->num[0] = mode;
  s->num[1] = (double)off;
  s->num[2] = (double)len;
  s->num[3] = fh_arg(fi);
  END
}

const struct fuse_operations space_operations = {
  .init = f_init,
  .getattr = f_getattr,
  .readlink = f_readlink,
  .mknod = f_mknod,
  .mkdir = f_mkdir,
  .unlink = f_unlink,
  .rmdir = f_rmdir,
  .symlink = f_symlink,
  .rename = f_rename,
  .link = f_link,
  .chmod = f_chmod,
  .chown = f_chown,
  .truncate = f_truncate,
  .open = f_open,
  .read = f_read,
  .write = f_write,
  .statfs = f_statfs,
  .flush = f_flush,
  .release = f_release,
  .fsync = f_fsync,
  .setxattr = f_setxattr,
  .getxattr = f_getxattr,
  .listxattr = f_listxattr,
  .removexattr = f_removexattr,
  .opendir = f_opendir,
  .readdir = f_readdir,
  .releasedir = f_releasedir,
  .fsyncdir = f_fsyncdir,
  .access = f_access,
  .create = f_create,
  .utimens = f_utimens,
  .fallocate = f_fallocate,
};

