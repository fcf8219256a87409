// space_mem: memcpy between typed arrays, shared memory included.
//
// V8 copies into and out of a SharedArrayBuffer with relaxed atomic word moves (TypedArray#set,
// and Buffer#copy, which uses it), at a fraction of memcpy's speed; in a 1 GiB write that was 18%
// of all CPU. Our sealing slots live in shared memory, so their copies come here. The JS side
// (src/crypto/copy.ts) checks bounds; this only checks that it got typed arrays.
#include <node_api.h>
#include <string.h>

static int view (napi_env env, napi_value v, unsigned char **data, size_t *len) {
  napi_typedarray_type type;
  size_t length;
  void *p;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, &length, &p, &ab, &off) != napi_ok || type != napi_uint8_array) return -1;
  *data = p;
  *len = length;
  return 0;
}

// copy(target, targetStart, source, sourceStart, count): returns count.
static napi_value copy (napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  unsigned char *dst, *src;
  size_t dlen, slen;
  int64_t dpos, spos, n;
  napi_value out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      view(env, argv[0], &dst, &dlen) != 0 || view(env, argv[2], &src, &slen) != 0 ||
      napi_get_value_int64(env, argv[1], &dpos) != napi_ok || napi_get_value_int64(env, argv[3], &spos) != napi_ok ||
      napi_get_value_int64(env, argv[4], &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "copy(target: Uint8Array, targetStart, source: Uint8Array, sourceStart, count)");
    return NULL;
  }
  if (dpos < 0 || spos < 0 || n < 0 || (uint64_t)(dpos + n) > dlen || (uint64_t)(spos + n) > slen) {
    napi_throw_range_error(env, NULL, "copy out of bounds");
    return NULL;
  }
  memmove(dst + dpos, src + spos, (size_t)n);
  napi_create_int64(env, n, &out);
  return out;
}

NAPI_MODULE_INIT () {
  napi_value fn;
  napi_create_function(env, "copy", NAPI_AUTO_LENGTH, copy, NULL, &fn);
  napi_set_named_property(env, exports, "copy", fn);
  return exports;
}
