// space_fuse3: what the addon's files share — the op list, a request slot, the mount handle and
// the functions one file offers the others. One file per concern:
//   napi-util.c  small N-API helpers                requests.c  slots, workers, dispatch and reply
//   ops.c        the libfuse operations table        listing.c   readdir listings (opendir..releasedir)
//   inval.c      kernel-cache invalidation threads   mount.c     mount, unmount, module init
//   fastread.c   reads of checked blocks answered on the worker, without JS (its table:
//                fastread-table.c; JS's calls on it: fastread-napi.c)
// The threading model is described in requests.c, the invalidation API in inval.c.
#ifndef SPACE_FUSE3_H
#define SPACE_FUSE3_H

#define FUSE_USE_VERSION 35
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fuse.h>
#include <fuse_lowlevel.h>
#include <node_api.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define OPS(X) \
  X(init) X(getattr) X(readlink) X(mknod) X(mkdir) X(unlink) X(rmdir) X(symlink) X(rename) \
  X(link) X(chmod) X(chown) X(truncate) X(open) X(read) X(write) X(statfs) X(flush) X(release) \
  X(fsync) X(setxattr) X(getxattr) X(listxattr) X(removexattr) X(readdir) \
  X(fsyncdir) X(access) X(create) X(utimens) X(fallocate)

#define AS_ENUM(n) OP_##n,
enum { OPS(AS_ENUM) OP_COUNT };
extern const char *const space_op_names[OP_COUNT];

#define NNUM 7
#define STAT_FIELDS 12
// readdir packs a stat per entry and three more numbers: 1 if the attributes are exact, and the
// entry's offset as two (hi, lo: offset = hi * 2^32 + lo).
#define READDIR_FIELDS (STAT_FIELDS + 3)
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
  uint64_t *offs;         // readdir: each entry's offset (its position in the listing)
  bool more;              // readdir: the listing goes on after this page
  napi_ref copybuf;       // read without external buffers: the JS buffer to copy back from
  napi_ref extbuf;        // read/write: the external Buffer over libfuse's memory, detached at the reply
  uint64_t inval_wait;    // invalidations (inval.c) this reply must not overtake
} slot_t;

struct inval_item;
typedef struct fastread fastread_t;

// One invalidation thread and its queue (inval.c).
typedef struct inval_queue {
  pthread_mutex_t mu;
  pthread_cond_t cv;       // work arrived, or stop
  pthread_cond_t done_cv;  // `done` moved
  struct inval_item *head, *tail;
  uint64_t enqueued;       // sequence number of the last item queued
  uint64_t done;           // every item up to this one is finished
  bool stop, started;
  pthread_t thread;
  int rootfd;              // the mount's root (O_PATH), opened on first use by an entry invalidation
  struct mnt *m;
} inval_queue_t;

typedef struct mnt {
  struct fuse *fuse;
  struct fuse_session *se;
  char *mountpoint;
  napi_threadsafe_function tsfn;
  napi_threadsafe_function inval_tsfn; // settles the promises of the async invalidation API
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
  inval_queue_t before_reply; // invalidations a reply waits for (invalidate())
  inval_queue_t later;        // invalidations nothing waits for (invalidatePath/invalidateEntry)
  fastread_t *fr;             // native reads (fastread.c)
  bool unmount_started, unmounted;
  napi_deferred deferred;
  napi_async_work work;
  char err[256];
} mnt_t;

// napi-util.c
#define NAPI_OK(env, call) do { if ((call) != napi_ok) { throw_last(env, #call); return NULL; } } while (0)
void throw_last (napi_env env, const char *what);
bool get_num (napi_env env, napi_value obj, const char *key, double *out);
bool get_bool (napi_env env, napi_value obj, const char *key);
char *get_string (napi_env env, napi_value v);
bool get_bytes (napi_env env, napi_value v, void **data, size_t *len);
bool get_f64 (napi_env env, napi_value v, double **data, size_t *count);
mnt_t *get_mnt (napi_env env, napi_value v);

// requests.c
mnt_t *current (void);
slot_t *acquire (mnt_t *m, int op);
void release_slot (mnt_t *m, slot_t *s);
int64_t call_js (mnt_t *m, slot_t *s);
void *worker (void *arg);
void dispatch (napi_env env, napi_value js_cb, void *context, void *data);
napi_value Reply (napi_env env, napi_callback_info info);

// ops.c
extern const struct fuse_operations space_operations;
void fill_stat (const double *a, struct stat *st);

// listing.c
int f_opendir (const char *path, struct fuse_file_info *fi);
int f_releasedir (const char *path, struct fuse_file_info *fi);
int f_readdir (const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
               struct fuse_file_info *fi, enum fuse_readdir_flags flags);

// inval.c
bool inval_start (mnt_t *m);
void inval_stop (mnt_t *m);
void inval_settle_left (napi_env env, mnt_t *m);
void inval_barrier (mnt_t *m, uint64_t target);
void inval_free (mnt_t *m);
napi_status inval_make_tsfn (napi_env env, mnt_t *m);
napi_value Invalidate (napi_env env, napi_callback_info info);
napi_value InvalidatePath (napi_env env, napi_callback_info info);
napi_value InvalidateEntry (napi_env env, napi_callback_info info);

// fastread.c, fastread-table.c, fastread-napi.c
fastread_t *fastread_new (void);
void fastread_free (fastread_t *fr);
/** Answers a read from the table: bytes placed in buf, or -1 when JS must answer it. */
int fastread_read (mnt_t *m, uint64_t fh, char *buf, size_t size, off_t off);
napi_value FastEnable (napi_env env, napi_callback_info info);
napi_value FastFile (napi_env env, napi_callback_info info);
napi_value FastFree (napi_env env, napi_callback_info info);
napi_value FastBind (napi_env env, napi_callback_info info);
napi_value FastPut (napi_env env, napi_callback_info info);
napi_value FastPutStream (napi_env env, napi_callback_info info);
napi_value FastDrop (napi_env env, napi_callback_info info);
napi_value FastStats (napi_env env, napi_callback_info info);

// Opens a request to JS in an op (a worker thread) and answers libfuse with JS's result.
#define BEGIN(opcode) \
  mnt_t *m = current(); \
  if (m == NULL) return -EIO; \
  slot_t *s = acquire(m, opcode);

#define END \
  int64_t r = call_js(m, s); \
  release_slot(m, s); \
  return (int)r;

#endif
