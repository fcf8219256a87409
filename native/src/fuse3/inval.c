// Kernel-cache invalidation: dropping what the kernel caches about a name, on threads of their
// own. libfuse's path API gives each NAME its own kernel inode, so when a node with several names
// (a hard link) changes through one, the others keep the old attributes for the attribute
// timeout; and when another device's changes are merged into a running mount, the kernel knows
// nothing of them. The JS API (the handle is mount()'s):
//
//   invalidate(h, paths)           -> number queued. Attributes and page cache of each path, done
//                                     before the reply of any request JS answers after this call
//                                     (the worker waits for it, see "Timing").
//   invalidatePath(h, path)        -> Promise<0 | -errno>. The same, for any path, when it is done;
//                                     nothing waits for it. -ENOENT: the kernel has nothing cached.
//   invalidateEntry(h, dir, name)  -> Promise<0 | -errno>. The kernel forgets the name `name` in
//                                     the directory `dir` (and everything cached below it): its
//                                     next use is a fresh lookup. For names added, removed or
//                                     replaced behind the kernel's back.
//
// Paths are the mount's ("/a/b"), as the kernel knows them: a merge that renamed or removed
// something invalidates the names the kernel saw before it.
//
// What each does (libfuse 3.14, Linux 6.x). fuse_invalidate_path() looks the path up in libfuse's
// own node table (-ENOENT if the kernel never looked it up or forgot it) and sends
// FUSE_NOTIFY_INVAL_INODE for that node with offset 0, length 0: the kernel marks the inode's
// attributes stale at once and then drops its whole page cache, which waits for any page locked
// by a read or write in flight on that inode. libfuse's high-level API has no entry invalidation
// and no node ids, so invalidateEntry finds the directory's node id from the kernel
// (openat2(O_PATH) below the mount's root, from the dcache when it can, then name_to_handle_at:
// a FUSE file handle starts with the node id) and sends FUSE_NOTIFY_INVAL_ENTRY, which takes
// the directory's inode lock in the kernel.
//
// Why threads. A notification is a write to /dev/fuse that the kernel serves at once, and it can
// wait for kernel locks that requests still in flight hold until we answer them: page locks (a
// read, or a write of a partial page, on that inode) and a directory's lock (a create, rename
// or unlink in it). Sent from a worker while its own request is unanswered, it can deadlock: a
// write through one name holds its page while its worker invalidates the other name, whose write
// holds that page while its worker invalidates the first. So notifications are sent by two
// threads of their own, each with a queue that merges repeated paths: `before_reply` for
// invalidate(), `later` for the other two (so a directory walk never delays a reply).
//
// Timing. A change through one name must be invalidated under the other names before the caller
// can learn that it was made: pjdfstest links, then lstats the other name at once, and the kernel
// answers that lstat from its cache without asking us. JS therefore calls invalidate() before it
// answers the request that made the change; Reply() notes how far the before_reply queue is, and
// the worker, after JS answered and before libfuse sends the reply, waits until the thread has
// finished those items. Waiting is bounded (BARRIER_NS): should a notification wait for a page
// lock whose request needs this very reply (the two writes above), the reply goes after the
// bound; by then the kernel has marked the attributes stale, which it does before it touches the
// page cache. The usual cost, nothing queued, is one atomic load per reply. (Measured here: with
// the wait removed, 0 of 5,000 chmod-then-stat pairs through two names were stale, since the
// thread usually wins; the wait turns that race into an order. Invalidating after the reply, from
// the worker, before its next request, would not help: the caller's stat of the other name never
// reaches us while the kernel trusts its cache.)
#include "fuse3.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

// Longest a reply waits for the invalidations JS asked for before it.
#define BARRIER_NS 20000000L
// Spin this long for the invalidation thread before sleeping (it usually needs ~10-30 us).
#define SPIN_NS 30000L
#define FUSE_SUPER_MAGIC 0x65735546

typedef struct inval_item {
  struct inval_item *next;
  uint64_t seq;
  bool entry;            // (dir, name) rather than a path
  char *path;            // the path, or an entry's directory
  char *name;            // an entry's name
  napi_deferred *waiters; // promises to settle with the result (later queue)
  size_t nwaiters, capwaiters;
  int result;
} inval_item_t;

static void free_item (inval_item_t *it) {
  free(it->path);
  free(it->name);
  free(it->waiters);
  free(it);
}

static bool same (const inval_item_t *it, bool entry, const char *path, const char *name) {
  return it->entry == entry && strcmp(it->path, path) == 0 && (!entry || strcmp(it->name, name) == 0);
}

static bool add_waiter (inval_item_t *it, napi_deferred d) {
  if (d == NULL) return true;
  if (it->nwaiters == it->capwaiters) {
    size_t cap = it->capwaiters == 0 ? 2 : it->capwaiters * 2;
    napi_deferred *w = realloc(it->waiters, cap * sizeof *w);
    if (w == NULL) return false;
    it->waiters = w;
    it->capwaiters = cap;
  }
  it->waiters[it->nwaiters++] = d;
  return true;
}

// Queues an invalidation, or joins an identical one still waiting (not yet started: a change
// made after a notification started needs one of its own). False: out of memory.
static bool enqueue (inval_queue_t *q, bool entry, const char *path, const char *name, napi_deferred d) {
  pthread_mutex_lock(&q->mu);
  for (inval_item_t *it = q->head; it != NULL; it = it->next) {
    if (same(it, entry, path, name)) {
      bool ok = add_waiter(it, d);
      pthread_mutex_unlock(&q->mu);
      return ok;
    }
  }
  inval_item_t *it = calloc(1, sizeof *it);
  if (it != NULL) {
    it->entry = entry;
    it->path = strdup(path);
    it->name = entry ? strdup(name) : NULL;
  }
  if (it == NULL || it->path == NULL || (entry && it->name == NULL) || !add_waiter(it, d)) {
    pthread_mutex_unlock(&q->mu);
    if (it != NULL) free_item(it);
    return false;
  }
  it->seq = q->enqueued + 1;
  __atomic_store_n(&q->enqueued, it->seq, __ATOMIC_RELEASE);
  if (q->tail != NULL) q->tail->next = it; else q->head = it;
  q->tail = it;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
  return true;
}

// The kernel's node id of directory `dir` (mount-relative), found through the kernel itself.
static int dir_nodeid (inval_queue_t *q, const char *dir, uint64_t *id) {
  while (*dir == '/') dir++;
  if (*dir == 0) { *id = FUSE_ROOT_ID; return 0; }
  if (q->rootfd < 0) {
    int fd = open(q->m->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct statfs sf;
    // After an unmount the path leads to the directory underneath: not ours.
    if (fstatfs(fd, &sf) != 0 || sf.f_type != FUSE_SUPER_MAGIC) { close(fd); return -ENODEV; }
    q->rootfd = fd;
  }
  struct open_how how = {
    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV | RESOLVE_CACHED
  };
  int fd = (int)syscall(SYS_openat2, q->rootfd, dir, &how, sizeof how);
  if (fd < 0 && errno == EAGAIN) {
    // Some name on the way is not (validly) cached: walk with lookups, which the workers serve.
    how.resolve &= ~(uint64_t)RESOLVE_CACHED;
    fd = (int)syscall(SYS_openat2, q->rootfd, dir, &how, sizeof how);
  }
  if (fd < 0) return -errno;
  union { struct file_handle fh; char room[sizeof(struct file_handle) + 128]; } h;
  h.fh.handle_bytes = 128;
  int mount_id = 0;
  int r = name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH);
  int e = errno;
  close(fd);
  if (r != 0) return -e;
  if (h.fh.handle_bytes < 8) return -EIO;
  // fs/fuse/inode.c fuse_encode_fh: node id high word, low word, generation.
  uint32_t w[2];
  memcpy(w, h.fh.f_handle, sizeof w);
  *id = ((uint64_t)w[0] << 32) | w[1];
  return 0;
}

static int run_item (inval_queue_t *q, inval_item_t *it) {
  mnt_t *m = q->m;
  if (!it->entry) return fuse_invalidate_path(m->fuse, it->path);
  uint64_t parent = 0;
  int r = dir_nodeid(q, it->path, &parent);
  if (r != 0) return r;
  return fuse_lowlevel_notify_inval_entry(m->se, parent, it->name, strlen(it->name));
}

static void *inval_thread (void *arg) {
  inval_queue_t *q = arg;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (q->head == NULL && !q->stop) pthread_cond_wait(&q->cv, &q->mu);
    if (q->stop) break;
    inval_item_t *it = q->head;
    q->head = it->next;
    if (q->head == NULL) q->tail = NULL;
    it->next = NULL;
    pthread_mutex_unlock(&q->mu);
    it->result = run_item(q, it);
    pthread_mutex_lock(&q->mu);
    __atomic_store_n(&q->done, it->seq, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&q->done_cv);
    if (it->nwaiters > 0 && q->m->inval_tsfn != NULL) {
      pthread_mutex_unlock(&q->mu);
      // JS settles the promises and frees the item (settle below).
      if (napi_call_threadsafe_function(q->m->inval_tsfn, it, napi_tsfn_blocking) != napi_ok) free_item(it);
      pthread_mutex_lock(&q->mu);
    } else {
      free_item(it);
    }
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

static bool start_queue (mnt_t *m, inval_queue_t *q) {
  q->m = m;
  q->rootfd = -1;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->done_cv, &ca);
  pthread_condattr_destroy(&ca);
  q->started = pthread_create(&q->thread, NULL, inval_thread, q) == 0;
  return q->started;
}

bool inval_start (mnt_t *m) {
  return start_queue(m, &m->before_reply) && start_queue(m, &m->later);
}

static void stop_queue (inval_queue_t *q) {
  if (!q->started) return;
  pthread_mutex_lock(&q->mu);
  q->stop = true;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
  pthread_join(q->thread, NULL);
  q->started = false;
  pthread_mutex_lock(&q->mu);
  // Nobody waits for what will not be done any more.
  __atomic_store_n(&q->done, q->enqueued, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&q->done_cv);
  pthread_mutex_unlock(&q->mu);
  if (q->rootfd >= 0) { close(q->rootfd); q->rootfd = -1; }
}

// Unmount (libuv pool): after the mount is detached, before the workers are cancelled.
void inval_stop (mnt_t *m) {
  stop_queue(&m->before_reply);
  stop_queue(&m->later);
}

static void settle_item (napi_env env, inval_item_t *it) {
  for (size_t i = 0; i < it->nwaiters; i++) {
    napi_value v;
    napi_create_int32(env, it->result, &v);
    napi_resolve_deferred(env, it->waiters[i], v);
  }
  free_item(it);
}

static void settle (napi_env env, napi_value cb, void *context, void *data) {
  (void)cb; (void)context;
  inval_item_t *it = data;
  if (env == NULL) { free_item(it); return; }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  settle_item(env, it);
  napi_close_handle_scope(env, scope);
}

// Unmount complete (JS thread): what was never sent settles with -ENODEV.
void inval_settle_left (napi_env env, mnt_t *m) {
  inval_queue_t *qs[2] = { &m->before_reply, &m->later };
  for (int k = 0; k < 2; k++) {
    inval_queue_t *q = qs[k];
    pthread_mutex_lock(&q->mu);
    inval_item_t *it = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    while (it != NULL) {
      inval_item_t *next = it->next;
      it->result = -ENODEV;
      settle_item(env, it);
      it = next;
    }
  }
}

void inval_free (mnt_t *m) {
  inval_queue_t *qs[2] = { &m->before_reply, &m->later };
  for (int k = 0; k < 2; k++) {
    if (qs[k]->m == NULL) continue;
    pthread_mutex_destroy(&qs[k]->mu);
    pthread_cond_destroy(&qs[k]->cv);
    pthread_cond_destroy(&qs[k]->done_cv);
  }
}

static int64_t ns_since (const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

// A worker, after JS answered and before libfuse replies: waits until the before_reply thread
// finished every item up to `target`, for at most BARRIER_NS (see "Timing").
void inval_barrier (mnt_t *m, uint64_t target) {
  inval_queue_t *q = &m->before_reply;
  if (target == 0 || __atomic_load_n(&q->done, __ATOMIC_ACQUIRE) >= target) return;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (__atomic_load_n(&q->done, __ATOMIC_ACQUIRE) < target && ns_since(&t0) < SPIN_NS) sched_yield();
  struct timespec dl = t0;
  dl.tv_nsec += BARRIER_NS;
  dl.tv_sec += dl.tv_nsec / 1000000000L;
  dl.tv_nsec %= 1000000000L;
  pthread_mutex_lock(&q->mu);
  while (q->done < target) {
    if (pthread_cond_timedwait(&q->done_cv, &q->mu, &dl) == ETIMEDOUT) break;
  }
  pthread_mutex_unlock(&q->mu);
}

// ---- JS API ------------------------------------------------------------------------------------

static mnt_t *live_mnt (napi_env env, napi_value v) {
  mnt_t *m = get_mnt(env, v);
  return m != NULL && !m->unmount_started && m->before_reply.started && m->later.started ? m : NULL;
}

// invalidate(handle, paths) -> number queued (0 once unmounting).
napi_value Invalidate (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ret;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool isarr = false;
  if (argc < 2 || get_mnt(env, argv[0]) == NULL || napi_is_array(env, argv[1], &isarr) != napi_ok || !isarr) {
    napi_throw_type_error(env, NULL, "invalidate(handle, paths)");
    return NULL;
  }
  mnt_t *m = live_mnt(env, argv[0]);
  uint32_t n = 0, queued = 0;
  napi_get_array_length(env, argv[1], &n);
  for (uint32_t i = 0; m != NULL && i < n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok) continue;
    char *path = get_string(env, v);
    if (path == NULL) continue;
    if (enqueue(&m->before_reply, false, path, NULL, NULL)) queued++;
    free(path);
  }
  napi_create_uint32(env, queued, &ret);
  return ret;
}

static napi_value queue_later (napi_env env, napi_callback_info info, bool entry) {
  size_t argc = 3;
  napi_value argv[3], promise;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < (entry ? 3u : 2u) || get_mnt(env, argv[0]) == NULL) {
    napi_throw_type_error(env, NULL, entry ? "invalidateEntry(handle, dir, name)" : "invalidatePath(handle, path)");
    return NULL;
  }
  char *path = get_string(env, argv[1]);
  char *name = entry ? get_string(env, argv[2]) : NULL;
  if (path == NULL || (entry && name == NULL)) {
    free(path); free(name);
    napi_throw_type_error(env, NULL, "paths and names are strings");
    return NULL;
  }
  napi_deferred d;
  if (napi_create_promise(env, &d, &promise) != napi_ok) { free(path); free(name); throw_last(env, "napi_create_promise"); return NULL; }
  mnt_t *m = live_mnt(env, argv[0]);
  int early = 0;
  if (m == NULL) early = -ENODEV;
  else if (entry && (strchr(name, '/') != NULL || name[0] == 0)) early = -EINVAL;
  else if (!enqueue(&m->later, entry, path, name, d)) early = -ENOMEM;
  if (early != 0) {
    napi_value v;
    napi_create_int32(env, early, &v);
    napi_resolve_deferred(env, d, v);
  }
  free(path);
  free(name);
  return promise;
}

// invalidatePath(handle, path) -> Promise<0 | -errno>
napi_value InvalidatePath (napi_env env, napi_callback_info info) { return queue_later(env, info, false); }

// invalidateEntry(handle, dir, name) -> Promise<0 | -errno>
napi_value InvalidateEntry (napi_env env, napi_callback_info info) { return queue_later(env, info, true); }

// The threadsafe function that settles promises on the JS thread (made in mount.c).
napi_status inval_make_tsfn (napi_env env, mnt_t *m) {
  napi_value name;
  napi_create_string_utf8(env, "space_fuse3_inval", NAPI_AUTO_LENGTH, &name);
  napi_status st = napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, m, settle, &m->inval_tsfn);
  // Pending invalidations must not keep the process alive: the mount does while it exists.
  if (st == napi_ok) napi_unref_threadsafe_function(env, m->inval_tsfn);
  return st;
}
