// Mount and unmount, and the module's exports.
//
// Lifetime. The handle (an External) owns the session, the workers and the slots. It is kept
// alive by a reference while mounted. unmount() runs on the libuv pool: it marks the session as
// exiting, detaches the mount (umount2 MNT_DETACH as root, else fusermount3 -u -z), cancels the
// workers (cancellation is only enabled while a worker waits for the kernel, so a worker serving
// a request finishes it; JS stays free to answer), joins them and destroys the fuse object,
// which closes /dev/fuse. Only then is the threadsafe function released and the promise resolved.
// A reply that arrives for a finished or unknown request is ignored (the id carries a sequence).
// The invalidation threads (inval.c) stop after the mount is detached and before the workers:
// a notification waiting on the kernel's page locks needs the workers to finish what holds them.
#include "fuse3.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void free_mnt (mnt_t *m) {
  if (m->slots != NULL) {
    for (int i = 0; i < m->nslots; i++) {
      pthread_mutex_destroy(&m->slots[i].mu);
      pthread_cond_destroy(&m->slots[i].cv);
    }
    free(m->slots);
  }
  inval_free(m);
  fastread_free(m->fr);
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
    for (int k = 0; k < OP_COUNT; k++) if (strcmp(name, space_op_names[k]) == 0) has[k] = true;
  }
  has[OP_init] = has[OP_getattr] = true;
  struct fuse_operations ops = space_operations;
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
  m->fr = fastread_new();
  if (m->slots == NULL || m->fr == NULL) { free(options); free_mnt(m); napi_throw_error(env, NULL, "out of memory"); return NULL; }
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
      napi_create_threadsafe_function(env, argv[3], NULL, name, 0, 1, NULL, tsfn_finalize, m, dispatch, &m->tsfn) != napi_ok ||
      inval_make_tsfn(env, m) != napi_ok) {
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
  bool inval = started > 0 && inval_start(m);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!inval) {
    inval_stop(m);
    fuse_session_exit(m->se);
    for (int i = 0; i < started; i++) pthread_cancel(m->threads[i]);
    for (int i = 0; i < started; i++) pthread_join(m->threads[i], NULL);
    fuse_session_unmount(m->se);
    fuse_destroy(m->fuse);
    napi_release_threadsafe_function(m->tsfn, napi_tsfn_abort);
    napi_release_threadsafe_function(m->inval_tsfn, napi_tsfn_abort);
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
  inval_stop(m);
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
  inval_settle_left(env, m);
  napi_release_threadsafe_function(m->inval_tsfn, napi_tsfn_release);
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
  napi_create_function(env, "invalidate", NAPI_AUTO_LENGTH, Invalidate, NULL, &fn);
  napi_set_named_property(env, exports, "invalidate", fn);
  napi_create_function(env, "invalidatePath", NAPI_AUTO_LENGTH, InvalidatePath, NULL, &fn);
  napi_set_named_property(env, exports, "invalidatePath", fn);
  napi_create_function(env, "invalidateEntry", NAPI_AUTO_LENGTH, InvalidateEntry, NULL, &fn);
  napi_set_named_property(env, exports, "invalidateEntry", fn);
  static const struct { const char *name; napi_callback fn; } fast[] = {
    { "nativeReads", FastEnable }, { "readFile", FastFile }, { "readFileFree", FastFree }, { "readBind", FastBind },
    { "readPut", FastPut }, { "readPutStream", FastPutStream }, { "readDrop", FastDrop }, { "readStats", FastStats }
  };
  for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++) {
    napi_create_function(env, fast[i].name, NAPI_AUTO_LENGTH, fast[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fast[i].name, fn);
  }
  napi_create_array_with_length(env, OP_COUNT, &names);
  for (uint32_t i = 0; i < OP_COUNT; i++) {
    napi_create_string_utf8(env, space_op_names[i], NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, names, i, v);
  }
  napi_set_named_property(env, exports, "OPS", names);
  napi_create_int32(env, fuse_version(), &v);
  napi_set_named_property(env, exports, "fuseVersion", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
