// space_sys: the two process facts Node has no API for.
//   peerCred(fd)        -> { pid, uid, gid } of the process at the other end of a connected Unix
//                          socket (SO_PEERCRED): the kernel's word, not a file anyone can chown.
//   disableCoreDumps()  -> RLIMIT_CORE 0 (soft and hard) and PR_SET_DUMPABLE 0, so a crash or
//                          a same-uid ptrace/gcore cannot copy the daemon's keys out of memory.
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

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

NAPI_MODULE_INIT () {
  napi_value fn;
  napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &fn);
  napi_set_named_property(env, exports, "peerCred", fn);
  napi_create_function(env, "disableCoreDumps", NAPI_AUTO_LENGTH, disable_core_dumps, NULL, &fn);
  napi_set_named_property(env, exports, "disableCoreDumps", fn);
  return exports;
}
