// space_sys: the process facts and memory calls Node has no API for.
//   peerCred(fd)        -> { pid, uid, gid } of the process at the other end of a connected Unix
//                          socket (SO_PEERCRED): the kernel's word, not a file anyone can chown.
//   disableCoreDumps()  -> RLIMIT_CORE 0 (soft and hard) and PR_SET_DUMPABLE 0, so a crash or
//                          a same-uid ptrace/gcore cannot copy the daemon's keys out of memory.
//   mallocTrim()        -> malloc_trim(0): glibc gives the free memory of every arena back to
//                          the kernel (a write or read burst leaves tens of MiB free in them).
//   mallocTune(arenas, mmapMin) -> mallopt(M_ARENA_MAX, arenas) and, if mmapMin > 0, a fixed
//                          M_MMAP_THRESHOLD of mmapMin bytes (glibc otherwise raises it to the
//                          largest block freed, up to 32 MiB): true if glibc took them.
//   discard(u8)         -> madvise(MADV_DONTNEED) of the whole pages inside a Uint8Array (shared
//                          memory included): the pages read as zeros afterwards and cost no RAM
//                          until written again. For memory the caller knows to be unused.
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <malloc.h>
#include <stdint.h>
#include <stdbool.h>
#include <unistd.h>

static napi_value throw_errno (napi_env env, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  napi_throw_error(env, "ERR_SYS", msg);
  return NULL;
}

static napi_value set_int (napi_env env, napi_value obj, const char *key, int64_t v) {
  napi_value n;
  napi_create_int64(env, v, &n);
  napi_set_named_property(env, obj, key, n);
  return obj;
}

static napi_value peer_cred (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "peerCred(fd: number)");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return throw_errno(env, "getsockopt(SO_PEERCRED)");
  napi_value out;
  napi_create_object(env, &out);
  set_int(env, out, "pid", cred.pid);
  set_int(env, out, "uid", cred.uid);
  set_int(env, out, "gid", cred.gid);
  return out;
}

static napi_value disable_core_dumps (napi_env env, napi_callback_info info) {
  struct rlimit none = { 0, 0 };
  if (setrlimit(RLIMIT_CORE, &none) != 0) return throw_errno(env, "setrlimit(RLIMIT_CORE)");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return throw_errno(env, "prctl(PR_SET_DUMPABLE)");
  napi_value out;
  napi_get_boolean(env, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0, &out);
  return out;
}

static napi_value malloc_trim_all (napi_env env, napi_callback_info info) {
  napi_value out;
#ifdef __GLIBC__
  napi_get_boolean(env, malloc_trim(0) == 1, &out);
#else
  napi_get_boolean(env, false, &out);
#endif
  return out;
}

static napi_value malloc_tune (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t arenas, mmap_min;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &arenas) != napi_ok || napi_get_value_int32(env, argv[1], &mmap_min) != napi_ok) {
    napi_throw_type_error(env, NULL, "mallocTune(arenas: number, mmapMin: number)");
    return NULL;
  }
  bool ok = false;
#ifdef __GLIBC__
  ok = mallopt(M_ARENA_MAX, arenas) == 1;
  if (mmap_min > 0) ok = mallopt(M_MMAP_THRESHOLD, mmap_min) == 1 && ok;
#endif
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

static napi_value discard (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_typedarray_type type;
  size_t length, off;
  void *p;
  napi_value ab;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &p, &ab, &off) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "discard(view: Uint8Array)");
    return NULL;
  }
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)p + length) & ~(page - 1);
  int64_t done = 0;
  if (end > start) {
    if (madvise((void *)start, end - start, MADV_DONTNEED) != 0) return throw_errno(env, "madvise(MADV_DONTNEED)");
    done = (int64_t)(end - start);
  }
  napi_value out;
  napi_create_int64(env, done, &out);
  return out;
}

NAPI_MODULE_INIT () {
  napi_value fn;
  napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &fn);
  napi_set_named_property(env, exports, "peerCred", fn);
  napi_create_function(env, "disableCoreDumps", NAPI_AUTO_LENGTH, disable_core_dumps, NULL, &fn);
  napi_set_named_property(env, exports, "disableCoreDumps", fn);
  napi_create_function(env, "mallocTrim", NAPI_AUTO_LENGTH, malloc_trim_all, NULL, &fn);
  napi_set_named_property(env, exports, "mallocTrim", fn);
  napi_create_function(env, "mallocTune", NAPI_AUTO_LENGTH, malloc_tune, NULL, &fn);
  napi_set_named_property(env, exports, "mallocTune", fn);
  napi_create_function(env, "discard", NAPI_AUTO_LENGTH, discard, NULL, &fn);
  napi_set_named_property(env, exports, "discard", fn);
  return exports;
}
