// Requests: the slots a worker fills for JS, the worker threads, dispatch to JS and its reply.
// (space_fuse3 is a small N-API binding over the libfuse3 high-level (path) API; fuse3.h lists
// its files.)
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
// so there is no copy. The Buffer is valid only until JS replies to that request, and is
// detached then: V8 counts an ArrayBuffer's bytes as external memory until it is collected or
// detached, and 1 MiB per request of a stream counted that way started a full collection every
// ~32 MiB (41 per GiB read: 0.3-0.5 s of the JS thread and 0.9 s of V8's helpers per cold GiB).
// A detached Buffer also reads as empty: nothing can touch libfuse's memory after the reply.
// Where external buffers are not allowed (a V8 sandbox) it falls back to copies.

#include "fuse3.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

mnt_t *current (void) {
  struct fuse_context *c = fuse_get_context();
  return c != NULL ? (mnt_t *)c->private_data : NULL;
}

slot_t *acquire (mnt_t *m, int op) {
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
  s->offs = NULL;
  s->more = false;
  s->copybuf = NULL;
  s->extbuf = NULL;
  s->inval_wait = 0;
  return s;
}

void release_slot (mnt_t *m, slot_t *s) {
  free(s->names);
  free(s->stats);
  free(s->exact);
  free(s->offs);
  s->names = NULL;
  s->stats = NULL;
  s->exact = NULL;
  s->offs = NULL;
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
int64_t call_js (mnt_t *m, slot_t *s) {
  bool changes = changes_attrs(s->op);
  if (changes) __atomic_add_fetch(&m->changes, 1, __ATOMIC_SEQ_CST);
  int64_t r = wait_js(m, s);
  if (changes) __atomic_add_fetch(&m->changes, 1, __ATOMIC_SEQ_CST);
  // What JS asked the kernel to forget before answering goes first (inval.c, "Timing").
  inval_barrier(m, s->inval_wait);
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


// ---- worker threads ---------------------------------------------------------------------------

static void free_buf (void *p) {
  struct fuse_buf *b = p;
  free(b->mem);
  b->mem = NULL;
}

void *worker (void *arg) {
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

// The request's external Buffer goes (JS thread, before the worker may free its memory).
static void detach_extbuf (napi_env env, slot_t *s) {
  if (s->extbuf == NULL) return;
  napi_value buf, ab;
  if (napi_get_reference_value(env, s->extbuf, &buf) == napi_ok && buf != NULL &&
      napi_get_typedarray_info(env, buf, NULL, NULL, NULL, &ab, NULL) == napi_ok)
    (void)napi_detach_arraybuffer(env, ab);
  napi_delete_reference(env, s->extbuf);
  s->extbuf = NULL;
}

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

void dispatch (napi_env env, napi_value js_cb, void *context, void *data) {
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
    if (st == napi_ok && napi_create_reference(env, argv[4], 1, &s->extbuf) != napi_ok) s->extbuf = NULL;
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
    detach_extbuf(env, s);
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
      // a: names; b: per name its stat, exactness and offset (READDIR_FIELDS); r: 1 if more follow.
      bool isarr = false;
      uint32_t count = 0;
      if (napi_is_array(env, a, &isarr) != napi_ok || !isarr) return -EIO;
      napi_get_array_length(env, a, &count);
      double *d = NULL;
      size_t nd = 0;
      if (!get_f64(env, b, &d, &nd) || nd < (size_t)count * READDIR_FIELDS) return -EIO;
      size_t total = 0;
      size_t cap = 4096;
      char *names = malloc(cap);
      size_t n1 = count > 0 ? count : 1;
      struct stat *stats = calloc(n1, sizeof *stats);
      bool *exact = calloc(n1, sizeof *exact);
      uint64_t *offs = calloc(n1, sizeof *offs);
      if (names == NULL || stats == NULL || exact == NULL || offs == NULL) { free(names); free(stats); free(exact); free(offs); return -ENOMEM; }
      for (uint32_t i = 0; i < count; i++) {
        napi_value v;
        size_t n = 0;
        if (napi_get_element(env, a, i, &v) != napi_ok ||
            napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) { free(names); free(stats); free(exact); free(offs); return -EIO; }
        if (total + n + 1 > cap) {
          while (total + n + 1 > cap) cap *= 2;
          char *bigger = realloc(names, cap);
          if (bigger == NULL) { free(names); free(stats); free(exact); free(offs); return -ENOMEM; }
          names = bigger;
        }
        napi_get_value_string_utf8(env, v, names + total, n + 1, &n);
        total += n + 1;
        const double *e = d + (size_t)i * READDIR_FIELDS;
        fill_stat(e, &stats[i]);
        exact[i] = e[STAT_FIELDS] != 0;
        offs[i] = (uint64_t)e[STAT_FIELDS + 1] * 4294967296ull + (uint64_t)e[STAT_FIELDS + 2];
      }
      s->names = names;
      s->stats = stats;
      s->exact = exact;
      s->offs = offs;
      s->count = count;
      s->more = r == 1 && count > 0;
      return 0;
    }
    default:
      return r > INT32_MAX ? -EIO : r;
  }
}

// reply(handle, id, result, a?, b?) -> whether a waiting request took the answer.
napi_value Reply (napi_env env, napi_callback_info info) {
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
      detach_extbuf(env, s);
      s->inval_wait = __atomic_load_n(&m->before_reply.enqueued, __ATOMIC_ACQUIRE);
      finish_locked(s, r);
      taken = true;
    }
    pthread_mutex_unlock(&s->mu);
  }
  napi_get_boolean(env, taken, &ret);
  return ret;
}

