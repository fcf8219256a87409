// space_fuse3: a small N-API binding over the libfuse3 high-level (path) API.
//
// Threading. mount() creates the session on the JS thread and starts a fixed pool of worker
// threads, each running fuse_session_receive_buf/fuse_session_process_buf. libfuse calls our
// operations on those workers. An operation takes a request slot, fills in its arguments, queues
// the slot on one threadsafe function (nonblocking; the queue is unbounded) and waits on the
// slot's condition variable. On the JS thread the slot becomes a call of the JS dispatcher
// `dispatch(id, op, s1, s2, buf, n0..n6)`; JS answers, now or later, with `reply(handle, id,
// result, a, b)`, which copies the result into memory the waiting worker owns (struct stat, the
// readlink/xattr buffer, a readdir list) and wakes it. Directory fillers, fi->fh and every other
// libfuse call happen on the worker. JS never blocks; concurrency is the number of workers.
//
// Buffers. read and write hand JS an external Buffer over libfuse's own memory (read: the reply
// buffer libfuse allocated; write: the kernel's request data in the worker's receive buffer),
// so there is no copy. The Buffer is valid only until JS replies to that request. Where external
// buffers are not allowed (a V8 sandbox) it falls back to copies.
//
// Lifetime. The handle (an External) owns the session, the workers and the slots. It is kept
// alive by a reference while mounted. unmount() runs on the libuv pool: it marks the session as
// exiting, detaches the mount (umount2 MNT_DETACH as root, else fusermount3 -u -z), cancels the
// workers (cancellation is only enabled while a worker waits for the kernel, so a worker serving
// a request finishes it; JS stays free to answer), joins them and destroys the fuse object,
// which closes /dev/fuse. Only then is the threadsafe function released and the promise resolved.
// A reply that arrives for a finished or unknown request is ignored (the id carries a sequence).
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE

#include <fuse.h>
#include <fuse_lowlevel.h>
#include <node_api.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define OPS(X) \
  X(init) X(getattr) X(readlink) X(mknod) X(mkdir) X(unlink) X(rmdir) X(symlink) X(rename) \
  X(link) X(chmod) X(chown) X(truncate) X(open) X(read) X(write) X(statfs) X(flush) X(release) \
  X(fsync) X(setxattr) X(getxattr) X(listxattr) X(removexattr) X(readdir) \
  X(fsyncdir) X(access) X(create) X(utimens) X(fallocate)

#define AS_ENUM(n) OP_##n,
#define AS_NAME(n) #n,
enum { OPS(AS_ENUM) OP_COUNT };
static const char *const OP_NAMES[] = { OPS(AS_NAME) };

#define NNUM 7
#define STAT_FIELDS 12
// readdir packs a stat per entry and one more number: 1 if the attributes are exact.
#define READDIR_FIELDS (STAT_FIELDS + 1)
#define STATFS_FIELDS 11
#define MAX_THREADS 64
// UTIME_OMIT is passed to JS as 2^64 (any value above Number.MAX_SAFE_INTEGER means "omit").
#define OMIT_MS 18446744073709551616.0

typedef struct slot {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint32_t index, seq;
  bool busy;     // owned by a worker (pool)
  bool waiting;  // queued to JS, no reply yet
  int op;
  // inputs
  const char *s1, *s2;
  char *data;
  size_t len;
  double num[NNUM];
  // outputs
  int64_t res;
  uint64_t fh;
  struct stat *st;
  struct statvfs *sv;
  char *out;
  size_t outsize;
  char *names;            // readdir: NUL-separated names
  size_t count;
  struct stat *stats;     // readdir: one per name, or NULL
  bool *exact;            // readdir: whether stats[i] is exact (may go to the kernel as readdirplus)
  napi_ref copybuf;       // read without external buffers: the JS buffer to copy back from
} slot_t;

typedef struct mnt {
  struct fuse *fuse;
  struct fuse_session *se;
  char *mountpoint;
  napi_threadsafe_function tsfn;
  napi_ref self;
  pthread_t threads[MAX_THREADS];
  int nthreads;
  slot_t *slots;
  int nslots;
  pthread_mutex_t pool_mu;
  pthread_cond_t pool_cv;
  double attr_timeout, entry_timeout, negative_timeout;
  unsigned max_write;
  bool writeback;
  uint64_t changes; // bumped when an op that changes attributes starts and when it ends
  size_t rdplus_room; // bytes of entries a readdirplus reply is known to hold (fill_from)
  bool unmount_started, unmounted;
  napi_deferred deferred;
  napi_async_work work;
  char err[256];
} mnt_t;

// ---- small N-API helpers ----------------------------------------------------------------------

#define NAPI_OK(env, call) do { if ((call) != napi_ok) { throw_last(env, #call); return NULL; } } while (0)

static void throw_last (napi_env env, const char *what) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s", what, info != NULL && info->error_message != NULL ? info->error_message : "failed");
    napi_throw_error(env, NULL, msg);
  }
}

static bool get_num (napi_env env, napi_value obj, const char *key, double *out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return false;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return false;
  return napi_get_value_double(env, v, out) == napi_ok;
}

static bool get_bool (napi_env env, napi_value obj, const char *key) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return false;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return false;
  return b;
}

static char *get_string (napi_env env, napi_value v) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  if (s == NULL) return NULL;
  napi_get_value_string_utf8(env, v, s, n + 1, &n);
  return s;
}

// Bytes of a Buffer / Uint8Array / any typed array.
static bool get_bytes (napi_env env, napi_value v, void **data, size_t *len) {
  bool is = false;
  if (napi_is_buffer(env, v, &is) == napi_ok && is) return napi_get_buffer_info(env, v, data, len) == napi_ok;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t n;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env, v, &type, &n, data, &ab, &off) != napi_ok) return false;
    size_t el = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: el = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: el = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: el = 8; break;
      default: el = 1;
    }
    *len = n * el;
    return true;
  }
  return false;
}

static bool get_f64 (napi_env env, napi_value v, double **data, size_t *count) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, count, (void **)data, &ab, &off) != napi_ok) return false;
  return type == napi_float64_array;
}

// ---- request slots ----------------------------------------------------------------------------

static mnt_t *current (void) {
  struct fuse_context *c = fuse_get_context();
  return c != NULL ? (mnt_t *)c->private_data : NULL;
}

static slot_t *acquire (mnt_t *m, int op) {
  pthread_mutex_lock(&m->pool_mu);
  slot_t *s = NULL;
  for (;;) {
    for (int i = 0; i < m->nslots; i++) {
      if (!m->slots[i].busy) { s = &m->slots[i]; break; }
    }
    if (s != NULL) break;
    pthread_cond_wait(&m->pool_cv, &m->pool_mu);
  }
  s->busy = true;
  pthread_mutex_unlock(&m->pool_mu);
  s->op = op;
  s->s1 = s->s2 = NULL;
  s->data = NULL;
  s->len = 0;
  for (int i = 0; i < NNUM; i++) s->num[i] = 0;
  s->res = -EIO;
  s->fh = 0;
  s->st = NULL;
  s->sv = NULL;
  s->out = NULL;
  s->outsize = 0;
  s->names = NULL;
  s->count = 0;
  s->stats = NULL;
  s->exact = NULL;
  s->copybuf = NULL;
  return s;
}

static void release_slot (mnt_t *m, slot_t *s) {
  free(s->names);
  free(s->stats);
  free(s->exact);
  s->names = NULL;
  s->stats = NULL;
  s->exact = NULL;
  pthread_mutex_lock(&m->pool_mu);
  s->busy = false;
  pthread_cond_signal(&m->pool_cv);
  pthread_mutex_unlock(&m->pool_mu);
}

// Wakes the worker waiting on `s` with result `res`. Caller holds s->mu.
static void finish_locked (slot_t *s, int64_t res) {
  s->res = res;
  s->waiting = false;
  pthread_cond_signal(&s->cv);
}

static int64_t wait_js (mnt_t *m, slot_t *s);

// Ops after which attributes the kernel was given earlier may be out of date.
static bool changes_attrs (int op) {
  switch (op) {
    case OP_write: case OP_create: case OP_mknod: case OP_mkdir: case OP_unlink: case OP_rmdir:
    case OP_symlink: case OP_rename: case OP_link: case OP_chmod: case OP_chown: case OP_truncate:
    case OP_utimens: case OP_setxattr: case OP_removexattr: case OP_fallocate:
      return true;
    default:
      return false;
  }
}

// Queues the request to JS and waits for the answer (wait_js), counting attribute changes
// around it: a listing's attributes go to the kernel only while the count has not moved.
static int64_t call_js (mnt_t *m, slot_t *s) {
  bool changes = changes_attrs(s->op);
  if (changes) __atomic_add_fetch(&m->changes, 1, __ATOMIC_SEQ_CST);
  int64_t r = wait_js(m, s);
  if (changes) __atomic_add_fetch(&m->changes, 1, __ATOMIC_SEQ_CST);
  return r;
}

static int64_t wait_js (mnt_t *m, slot_t *s) {
  pthread_mutex_lock(&s->mu);
  s->seq = (s->seq + 1) & 0xffffffu;
  if (s->seq == 0) s->seq = 1;
  s->waiting = true;
  s->res = -EIO;
  pthread_mutex_unlock(&s->mu);
  if (napi_call_threadsafe_function(m->tsfn, s, napi_tsfn_nonblocking) != napi_ok) {
    pthread_mutex_lock(&s->mu);
    s->waiting = false;
    pthread_mutex_unlock(&s->mu);
    return -EIO;
  }
  // JS usually answers within tens of microseconds, about what waking a sleeping thread on the
  // other CPU costs on this kind of VM: look for the answer for up to 50 us before sleeping.
  // sched_yield lets the JS thread run first if it shares this CPU.
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (__atomic_load_n(&s->waiting, __ATOMIC_ACQUIRE)) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > 50000) break;
    sched_yield();
  }
  pthread_mutex_lock(&s->mu);
  while (s->waiting) pthread_cond_wait(&s->cv, &s->mu);
  int64_t r = s->res;
  pthread_mutex_unlock(&s->mu);
  return r;
}

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

static void fill_stat (const double *a, struct stat *st) {
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

// ---- libfuse operations (worker threads) ------------------------------------------------------

#define BEGIN(opcode) \
  mnt_t *m = current(); \
  if (m == NULL) return -EIO; \
  slot_t *s = acquire(m, opcode);

#define END \
  int64_t r = call_js(m, s); \
  release_slot(m, s); \
  return (int)r;

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
  BEGIN(OP_read)
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

// A directory listing, kept from opendir to releasedir in fi->fh (both answered here, not in JS).
// The whole listing comes from JS at offset 0; the kernel then pages through it by offset (entry
// i has offset i + 1). Giving libfuse offsets is what makes readdirplus work in its high-level
// API: only then does it register each entry (do_lookup) and hand the kernel its attributes, so
// that `ls -l` needs no getattr per entry. Attributes go with an entry only when
//  - JS knew them exactly (a directory not loaded yet does not know its link count), and
//  - no op that changes attributes ran since the listing was asked for (mnt.changes): a later
//    page would otherwise hand the kernel an old size or type over what it learned since.
// Entries without them still carry inode number and type, and are looked up as usual.
typedef struct listing {
  char *names;          // NUL-separated
  const char **name;    // count pointers into names
  struct stat *stats;   // count, or NULL
  bool *exact;          // count, or NULL
  size_t count;
  uint64_t changes;     // mnt.changes when the listing was asked for
  bool filled;
} listing_t;

static void free_listing (listing_t *l) {
  free(l->names);
  free(l->name);
  free(l->stats);
  free(l->exact);
  l->names = NULL;
  l->name = NULL;
  l->stats = NULL;
  l->exact = NULL;
  l->count = 0;
  l->filled = false;
}

static int f_opendir (const char *path, struct fuse_file_info *fi) {
  (void)path;
  listing_t *l = calloc(1, sizeof *l);
  if (l == NULL) return -ENOMEM;
  fi->fh = (uint64_t)(uintptr_t)l;
  return 0;
}

static int f_releasedir (const char *path, struct fuse_file_info *fi) {
  (void)path;
  listing_t *l = (listing_t *)(uintptr_t)fi->fh;
  if (l != NULL) { free_listing(l); free(l); }
  fi->fh = 0;
  return 0;
}

// Takes the listing JS answered with out of the slot (on failure the old one is gone too).
static int fetch_listing (mnt_t *m, slot_t *s, listing_t *l) {
  free_listing(l);
  uint64_t changes = __atomic_load_n(&m->changes, __ATOMIC_SEQ_CST);
  int64_t r = call_js(m, s);
  if (r != 0) return (int)r;
  l->name = malloc((s->count > 0 ? s->count : 1) * sizeof *l->name);
  if (l->name == NULL) return -ENOMEM;
  l->names = s->names;
  l->stats = s->stats;
  l->exact = s->exact;
  l->count = s->count;
  l->changes = changes;
  s->names = NULL;
  s->stats = NULL;
  s->exact = NULL;
  const char *p = l->names;
  for (size_t i = 0; i < l->count; i++) { l->name[i] = p; p += strlen(p) + 1; }
  l->filled = true;
  return 0;
}

// Hands libfuse the entries from index `from` on, until its buffer is full.
//
// With attributes, libfuse registers an entry (raises its lookup count) before it finds that the
// entry does not fit, and the kernel never forgets what it never got: that node would stay in
// libfuse's table for good. The reply buffer's size is not passed to us, so it is learned: when a
// readdirplus buffer fills up, the bytes that fit are kept (the smallest seen, per mount), and
// later pages stop before that many. At most the first full page of a mount costs one node.
static void fill_from (mnt_t *m, const listing_t *l, size_t from, void *buf, fuse_fill_dir_t filler, bool plus) {
  bool attrs = plus && l->stats != NULL && l->exact != NULL &&
    __atomic_load_n(&m->changes, __ATOMIC_SEQ_CST) == l->changes;
  size_t room = __atomic_load_n(&m->rdplus_room, __ATOMIC_RELAXED); // 0: not known yet
  size_t used = 0;
  for (size_t i = from; i < l->count; i++) {
    const struct stat *st = l->stats != NULL ? &l->stats[i] : NULL;
    size_t need = plus ? fuse_add_direntry_plus(NULL, NULL, 0, l->name[i], NULL, 0) : 0;
    if (attrs && room != 0 && used > 0 && used + need > room) break;
    if (filler(buf, l->name[i], st, (off_t)i + 1, attrs && l->exact[i] ? FUSE_FILL_DIR_PLUS : 0) != 0) {
      if (plus && used > 0 && (room == 0 || used < room)) __atomic_store_n(&m->rdplus_room, used, __ATOMIC_RELAXED);
      break;
    }
    used += need;
  }
}

static int f_readdir (const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  bool plus = (flags & FUSE_READDIR_PLUS) != 0;
  listing_t *l = (listing_t *)(uintptr_t)fi->fh;
  if (l == NULL) return -EBADF;
  mnt_t *mm = current();
  if (mm == NULL) return -EIO;
  if (off > 0 && l->filled) {
    fill_from(mm, l, (size_t)off, buf, filler, plus);
    return 0;
  }
  BEGIN(OP_readdir)
  s->s1 = path;
  s->num[0] = plus ? 1 : 0;
  int r = fetch_listing(m, s, l);
  release_slot(m, s);
  if (r == 0) fill_from(m, l, (size_t)(off > 0 ? off : 0), buf, filler, plus);
  return r;
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

static const struct fuse_operations OPERATIONS = {
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

// ---- worker threads ---------------------------------------------------------------------------

static void free_buf (void *p) {
  struct fuse_buf *b = p;
  free(b->mem);
  b->mem = NULL;
}

static void *worker (void *arg) {
  mnt_t *m = arg;
  struct fuse_buf fbuf;
  memset(&fbuf, 0, sizeof fbuf);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  pthread_cleanup_push(free_buf, &fbuf);
  while (!fuse_session_exited(m->se)) {
    // Cancellation (unmount) only while waiting for the kernel, never while serving a request.
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    int res = fuse_session_receive_buf(m->se, &fbuf);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res <= 0) {
      // ENODEV: unmounted from outside. The session is over for every worker.
      if (res < 0) fuse_session_exit(m->se);
      break;
    }
    fuse_session_process_buf(m->se, &fbuf);
  }
  pthread_cleanup_pop(1);
  return NULL;
}

// ---- JS side: dispatch ------------------------------------------------------------------------

static void noop_finalize (napi_env env, void *data, void *hint) { (void)env; (void)data; (void)hint; }

static napi_value str_or_null (napi_env env, const char *s) {
  napi_value v;
  if (s == NULL) napi_get_null(env, &v);
  else napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

// Fails request `seq` on `s` unless it was answered (the slot may already serve a newer one).
static void fail_slot (slot_t *s, uint32_t seq, int64_t res) {
  pthread_mutex_lock(&s->mu);
  if (s->waiting && s->seq == seq) finish_locked(s, res);
  pthread_mutex_unlock(&s->mu);
}

static void dispatch (napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  slot_t *s = data;
  pthread_mutex_lock(&s->mu);
  uint32_t seq = s->seq;
  pthread_mutex_unlock(&s->mu);
  if (env == NULL || js_cb == NULL) { fail_slot(s, seq, -EIO); return; }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[5 + NNUM];
  napi_value undef;
  napi_get_undefined(env, &undef);
  napi_get_null(env, &argv[4]);
  if ((s->op == OP_read || s->op == OP_write || s->op == OP_setxattr) && s->len > 0) {
    napi_status st = napi_create_external_buffer(env, s->len, s->data, noop_finalize, NULL, &argv[4]);
    if (st != napi_ok) {
      // External buffers not allowed: copy in (write/setxattr) or copy back at reply (read).
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) { napi_value e; napi_get_and_clear_last_exception(env, &e); }
      if (s->op == OP_read) {
        void *p;
        napi_create_buffer(env, s->len, &p, &argv[4]);
        napi_create_reference(env, argv[4], 1, &s->copybuf);
      } else {
        napi_create_buffer_copy(env, s->len, s->data, NULL, &argv[4]);
      }
    }
  } else if (s->op == OP_read || s->op == OP_write || s->op == OP_setxattr) {
    void *p;
    napi_create_buffer(env, 0, &p, &argv[4]);
  }
  double id = (double)seq * 256.0 + (double)s->index;
  napi_create_double(env, id, &argv[0]);
  napi_create_int32(env, s->op, &argv[1]);
  argv[2] = str_or_null(env, s->s1);
  argv[3] = str_or_null(env, s->s2);
  for (int i = 0; i < NNUM; i++) napi_create_double(env, s->num[i], &argv[5 + i]);
  napi_status st = napi_call_function(env, undef, js_cb, 5 + NNUM, argv, NULL);
  if (st != napi_ok) {
    // The dispatcher threw: the request fails, and the exception surfaces as uncaught.
    fail_slot(s, seq, -EIO);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
  }
  napi_close_handle_scope(env, scope);
}

// ---- JS side: reply ---------------------------------------------------------------------------

static mnt_t *get_mnt (napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

// Copies a reply's data into the waiting worker's memory; returns the result for libfuse.
static int64_t take_result (napi_env env, slot_t *s, int64_t r, napi_value a, napi_value b) {
  if (s->copybuf != NULL) {
    napi_value buf;
    void *p = NULL;
    size_t n = 0;
    if (r > 0 && napi_get_reference_value(env, s->copybuf, &buf) == napi_ok && get_bytes(env, buf, &p, &n)) {
      if ((size_t)r > n) r = (int64_t)n;
      memcpy(s->data, p, (size_t)r);
    }
    napi_delete_reference(env, s->copybuf);
    s->copybuf = NULL;
  }
  if (r < 0) return r < -4095 ? -EIO : r;
  switch (s->op) {
    case OP_read:
      return (size_t)r > s->len ? -EIO : r;
    case OP_write:
      return (size_t)r > s->len ? -EIO : r;
    case OP_getattr: {
      double *d;
      size_t n;
      if (!get_f64(env, a, &d, &n) || n < STAT_FIELDS) return -EIO;
      fill_stat(d, s->st);
      return 0;
    }
    case OP_statfs: {
      double *d;
      size_t n;
      if (!get_f64(env, a, &d, &n) || n < STATFS_FIELDS) return -EIO;
      memset(s->sv, 0, sizeof *s->sv);
      s->sv->f_bsize = (unsigned long)d[0];
      s->sv->f_frsize = (unsigned long)d[1];
      s->sv->f_blocks = (fsblkcnt_t)d[2];
      s->sv->f_bfree = (fsblkcnt_t)d[3];
      s->sv->f_bavail = (fsblkcnt_t)d[4];
      s->sv->f_files = (fsfilcnt_t)d[5];
      s->sv->f_ffree = (fsfilcnt_t)d[6];
      s->sv->f_favail = (fsfilcnt_t)d[7];
      s->sv->f_fsid = (unsigned long)d[8];
      s->sv->f_flag = (unsigned long)d[9];
      s->sv->f_namemax = (unsigned long)d[10];
      return 0;
    }
    case OP_readlink: {
      size_t n = 0;
      if (napi_get_value_string_utf8(env, a, s->out, s->outsize, &n) != napi_ok) return -EIO;
      return 0;
    }
    case OP_getxattr:
    case OP_listxattr: {
      void *p = NULL;
      size_t n = 0;
      if (!get_bytes(env, a, &p, &n)) return -EIO;
      if (n > INT32_MAX) return -E2BIG;
      if (s->outsize == 0) return (int64_t)n;
      if (n > s->outsize) return -ERANGE;
      if (n > 0) memcpy(s->out, p, n);
      return (int64_t)n;
    }
    case OP_open:
    case OP_create:
      s->fh = (uint64_t)r;
      return 0;
    case OP_readdir: {
      bool isarr = false;
      uint32_t count = 0;
      if (napi_is_array(env, a, &isarr) != napi_ok || !isarr) return -EIO;
      napi_get_array_length(env, a, &count);
      double *d = NULL;
      size_t nd = 0;
      bool have_stats = get_f64(env, b, &d, &nd) && nd >= (size_t)count * READDIR_FIELDS;
      size_t total = 0;
      size_t cap = 4096;
      char *names = malloc(cap);
      struct stat *stats = have_stats ? calloc(count > 0 ? count : 1, sizeof *stats) : NULL;
      bool *exact = have_stats ? calloc(count > 0 ? count : 1, sizeof *exact) : NULL;
      if (names == NULL || (have_stats && (stats == NULL || exact == NULL))) { free(names); free(stats); free(exact); return -ENOMEM; }
      for (uint32_t i = 0; i < count; i++) {
        napi_value v;
        size_t n = 0;
        if (napi_get_element(env, a, i, &v) != napi_ok ||
            napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) { free(names); free(stats); free(exact); return -EIO; }
        if (total + n + 1 > cap) {
          while (total + n + 1 > cap) cap *= 2;
          char *bigger = realloc(names, cap);
          if (bigger == NULL) { free(names); free(stats); free(exact); return -ENOMEM; }
          names = bigger;
        }
        napi_get_value_string_utf8(env, v, names + total, n + 1, &n);
        total += n + 1;
        if (have_stats) {
          fill_stat(d + (size_t)i * READDIR_FIELDS, &stats[i]);
          exact[i] = d[(size_t)i * READDIR_FIELDS + STAT_FIELDS] != 0;
        }
      }
      s->names = names;
      s->stats = stats;
      s->exact = exact;
      s->count = count;
      return 0;
    }
    default:
      return r > INT32_MAX ? -EIO : r;
  }
}

// reply(handle, id, result, a?, b?) -> whether a waiting request took the answer.
static napi_value Reply (napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_value ret;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mnt_t *m = argc >= 1 ? get_mnt(env, argv[0]) : NULL;
  double id = 0, res = -EIO;
  if (m == NULL || argc < 3 || napi_get_value_double(env, argv[1], &id) != napi_ok ||
      napi_get_value_double(env, argv[2], &res) != napi_ok) {
    napi_throw_type_error(env, NULL, "reply(handle, id, result, a?, b?)");
    return NULL;
  }
  napi_value undef;
  napi_get_undefined(env, &undef);
  uint64_t uid = (uint64_t)id;
  uint32_t index = (uint32_t)(uid & 0xff);
  uint32_t seq = (uint32_t)(uid >> 8);
  bool taken = false;
  if (id >= 0 && index < (uint32_t)m->nslots) {
    slot_t *s = &m->slots[index];
    pthread_mutex_lock(&s->mu);
    if (s->waiting && s->seq == seq) {
      int64_t r = isfinite(res) ? (int64_t)res : -EIO;
      r = take_result(env, s, r, argc > 3 ? argv[3] : undef, argc > 4 ? argv[4] : undef);
      finish_locked(s, r);
      taken = true;
    }
    pthread_mutex_unlock(&s->mu);
  }
  napi_get_boolean(env, taken, &ret);
  return ret;
}

// ---- mount / unmount --------------------------------------------------------------------------

static void free_mnt (mnt_t *m) {
  if (m->slots != NULL) {
    for (int i = 0; i < m->nslots; i++) {
      pthread_mutex_destroy(&m->slots[i].mu);
      pthread_cond_destroy(&m->slots[i].cv);
    }
    free(m->slots);
  }
  pthread_mutex_destroy(&m->pool_mu);
  pthread_cond_destroy(&m->pool_cv);
  free(m->mountpoint);
  free(m);
}

static void finalize_mnt (napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  mnt_t *m = data;
  // Only reachable once unmounted: the handle is referenced while mounted.
  if (m->unmounted) free_mnt(m);
}

static void tsfn_finalize (napi_env env, void *data, void *hint) { (void)env; (void)data; (void)hint; }

// mount(mountpoint, options, config, dispatch, implemented) -> handle
// options: the -o string (fsname=..,subtype=..,default_permissions,allow_other)
// config: { attrTimeout, entryTimeout, negativeTimeout?, maxWrite, threads?, writebackCache? }
// implemented: names from OPS that JS serves; the others are left to libfuse and the kernel
// (flush: answered without a round trip to JS). opendir and releasedir are always answered here.
static napi_value Mount (napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) { napi_throw_type_error(env, NULL, "mount(mountpoint, options, config, dispatch, implemented)"); return NULL; }
  bool has[OP_COUNT] = { false };
  uint32_t nimpl = 0;
  NAPI_OK(env, napi_get_array_length(env, argv[4], &nimpl));
  for (uint32_t i = 0; i < nimpl; i++) {
    napi_value v;
    char name[32];
    size_t n = 0;
    if (napi_get_element(env, argv[4], i, &v) != napi_ok ||
        napi_get_value_string_utf8(env, v, name, sizeof name, &n) != napi_ok) continue;
    for (int k = 0; k < OP_COUNT; k++) if (strcmp(name, OP_NAMES[k]) == 0) has[k] = true;
  }
  has[OP_init] = has[OP_getattr] = true;
  struct fuse_operations ops = OPERATIONS;
#define CLEAR_MISSING(n) if (!has[OP_##n]) ops.n = NULL;
  OPS(CLEAR_MISSING)
#undef CLEAR_MISSING
  char *mountpoint = get_string(env, argv[0]);
  char *options = get_string(env, argv[1]);
  if (mountpoint == NULL || options == NULL) {
    free(mountpoint); free(options);
    napi_throw_type_error(env, NULL, "mountpoint and options must be strings");
    return NULL;
  }
  mnt_t *m = calloc(1, sizeof *m);
  if (m == NULL) { free(mountpoint); free(options); napi_throw_error(env, NULL, "out of memory"); return NULL; }
  m->mountpoint = mountpoint;
  pthread_mutex_init(&m->pool_mu, NULL);
  pthread_cond_init(&m->pool_cv, NULL);
  double threads = 10, max_write = 1 << 20;
  m->attr_timeout = 1;
  m->entry_timeout = 1;
  m->negative_timeout = 0;
  get_num(env, argv[2], "attrTimeout", &m->attr_timeout);
  get_num(env, argv[2], "entryTimeout", &m->entry_timeout);
  get_num(env, argv[2], "negativeTimeout", &m->negative_timeout);
  get_num(env, argv[2], "maxWrite", &max_write);
  get_num(env, argv[2], "threads", &threads);
  m->writeback = get_bool(env, argv[2], "writebackCache");
  if (max_write < 4096) max_write = 4096;
  m->max_write = max_write > (1 << 20) ? (1u << 20) : (unsigned)max_write;
  m->nthreads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : (int)threads;
  // One slot per worker, plus a few for requests from other threads (none expected).
  m->nslots = m->nthreads + 4;
  m->slots = calloc((size_t)m->nslots, sizeof *m->slots);
  if (m->slots == NULL) { free(options); free_mnt(m); napi_throw_error(env, NULL, "out of memory"); return NULL; }
  for (int i = 0; i < m->nslots; i++) {
    pthread_mutex_init(&m->slots[i].mu, NULL);
    pthread_cond_init(&m->slots[i].cv, NULL);
    m->slots[i].index = (uint32_t)i;
  }

  char *args_v[] = { "space", "-o", options, NULL };
  struct fuse_args args = FUSE_ARGS_INIT(3, args_v);
  m->fuse = fuse_new(&args, &ops, sizeof ops, m);  // copies ops
  fuse_opt_free_args(&args);
  free(options);
  if (m->fuse == NULL) { free_mnt(m); napi_throw_error(env, "ERR_FUSE", "fuse_new failed (bad options?)"); return NULL; }
  m->se = fuse_get_session(m->fuse);
  if (fuse_mount(m->fuse, m->mountpoint) != 0) {
    fuse_destroy(m->fuse);
    free_mnt(m);
    napi_throw_error(env, "ERR_FUSE", "fuse_mount failed");
    return NULL;
  }

  napi_value handle, name;
  napi_create_string_utf8(env, "space_fuse3", NAPI_AUTO_LENGTH, &name);
  if (napi_create_external(env, m, finalize_mnt, NULL, &handle) != napi_ok ||
      napi_create_reference(env, handle, 1, &m->self) != napi_ok ||
      napi_create_threadsafe_function(env, argv[3], NULL, name, 0, 1, NULL, tsfn_finalize, m, dispatch, &m->tsfn) != napi_ok) {
    fuse_session_unmount(m->se);
    fuse_destroy(m->fuse);
    m->unmounted = true;  // the external (if made) frees it
    throw_last(env, "mount: setting up the handle");
    return NULL;
  }

  // Workers take no signals: Node's handlers run on its own threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int started = 0;
  for (; started < m->nthreads; started++) {
    if (pthread_create(&m->threads[started], NULL, worker, m) != 0) break;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (started == 0) {
    fuse_session_unmount(m->se);
    fuse_destroy(m->fuse);
    napi_release_threadsafe_function(m->tsfn, napi_tsfn_abort);
    napi_delete_reference(env, m->self);
    m->unmounted = true;
    napi_throw_error(env, "ERR_FUSE", "cannot start FUSE worker threads");
    return NULL;
  }
  m->nthreads = started;
  return handle;
}

static void run_fusermount (mnt_t *m) {
  pid_t pid;
  char *argv[] = { "fusermount3", "-u", "-z", "-q", m->mountpoint, NULL };
  if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) != 0) {
    snprintf(m->err, sizeof m->err, "cannot run fusermount3");
    return;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) snprintf(m->err, sizeof m->err, "fusermount3 -u -z %s failed", m->mountpoint);
}

static void unmount_execute (napi_env env, void *data) {
  (void)env;
  mnt_t *m = data;
  fuse_session_exit(m->se);
  struct pollfd p = { .fd = fuse_session_fd(m->se), .events = 0, .revents = 0 };
  bool gone = poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
  if (!gone) {
    // Lazy: a shell sitting in the mount must not keep the daemon from stopping.
    if (umount2(m->mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
      if (errno == EPERM || errno == EACCES) run_fusermount(m);
      else if (errno != EINVAL && errno != ENOENT) snprintf(m->err, sizeof m->err, "umount %s: %s", m->mountpoint, strerror(errno));
    }
  }
  // Workers waiting for the kernel are cancelled; one serving a request finishes it first.
  for (int i = 0; i < m->nthreads; i++) pthread_cancel(m->threads[i]);
  for (int i = 0; i < m->nthreads; i++) pthread_join(m->threads[i], NULL);
  // Closes /dev/fuse: if files were still open on the detached mount, the connection aborts.
  fuse_destroy(m->fuse);
  m->fuse = NULL;
}

static void unmount_complete (napi_env env, napi_status status, void *data) {
  mnt_t *m = data;
  m->unmounted = true;
  napi_release_threadsafe_function(m->tsfn, napi_tsfn_release);
  napi_delete_async_work(env, m->work);
  if (status == napi_ok && m->err[0] == 0) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, m->deferred, undef);
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, m->err[0] != 0 ? m->err : "unmount failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, m->deferred, err);
  }
  // From here the external owns the memory; it is freed when JS drops the handle.
  napi_delete_reference(env, m->self);
  m->self = NULL;
}

// unmount(handle) -> Promise<void>; a second call rejects.
static napi_value Unmount (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value promise, name;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mnt_t *m = argc >= 1 ? get_mnt(env, argv[0]) : NULL;
  if (m == NULL) { napi_throw_type_error(env, NULL, "unmount(handle)"); return NULL; }
  if (m->unmount_started) { napi_throw_error(env, NULL, "already unmounted"); return NULL; }
  m->unmount_started = true;
  NAPI_OK(env, napi_create_promise(env, &m->deferred, &promise));
  napi_create_string_utf8(env, "space_fuse3_unmount", NAPI_AUTO_LENGTH, &name);
  NAPI_OK(env, napi_create_async_work(env, NULL, name, unmount_execute, unmount_complete, m, &m->work));
  NAPI_OK(env, napi_queue_async_work(env, m->work));
  return promise;
}

static napi_value Init (napi_env env, napi_value exports) {
  napi_value fn, names, v;
  napi_create_function(env, "mount", NAPI_AUTO_LENGTH, Mount, NULL, &fn);
  napi_set_named_property(env, exports, "mount", fn);
  napi_create_function(env, "unmount", NAPI_AUTO_LENGTH, Unmount, NULL, &fn);
  napi_set_named_property(env, exports, "unmount", fn);
  napi_create_function(env, "reply", NAPI_AUTO_LENGTH, Reply, NULL, &fn);
  napi_set_named_property(env, exports, "reply", fn);
  napi_create_array_with_length(env, OP_COUNT, &names);
  for (uint32_t i = 0; i < OP_COUNT; i++) {
    napi_create_string_utf8(env, OP_NAMES[i], NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, names, i, v);
  }
  napi_set_named_property(env, exports, "OPS", names);
  napi_create_int32(env, fuse_version(), &v);
  napi_set_named_property(env, exports, "fuseVersion", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
