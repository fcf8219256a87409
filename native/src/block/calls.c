// The block addon's calls that run on the calling (JS or seal-worker) thread: sealSegments,
// openSegments and digest, thin N-API wrappers around seal.h. The pool jobs are in space_block.c.
#include "calls.h"
#include "seal.h"
#include <limits.h>
#include <string.h>

int bytes_of (napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *count) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  return napi_get_typedarray_info(env, v, &type, count, data, &ab, &off) == napi_ok && type == want ? 0 : -1;
}

// sealSegments(key, adPrefix: Uint8Array(29), nonce: Uint8Array(12), first, plain, out) -> bytes
//   written: plain sealed as v2 segments first, first + 1, ... (the last one with last = 1) into
//   out (ciphertext | tag per segment, no header), on the calling thread. Segments are sealed
//   from the last one back through a 4 KiB buffer, so `out` may lie in the same memory as
//   `plain`, starting at or after it.
napi_value seal_segments (napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], res;
  void *key, *prefix, *nonce, *plain, *out;
  size_t keylen, prefixlen, noncelen, plainlen, outlen;
  int64_t first;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      bytes_of(env, argv[0], napi_uint8_array, &key, &keylen) != 0 || bytes_of(env, argv[1], napi_uint8_array, &prefix, &prefixlen) != 0 ||
      bytes_of(env, argv[2], napi_uint8_array, &nonce, &noncelen) != 0 || napi_get_value_int64(env, argv[3], &first) != napi_ok ||
      bytes_of(env, argv[4], napi_uint8_array, &plain, &plainlen) != 0 || bytes_of(env, argv[5], napi_uint8_array, &out, &outlen) != 0) {
    napi_throw_type_error(env, NULL, "sealSegments(key, adPrefix, nonce, first, plain, out)");
    return NULL;
  }
  size_t count = segments_of((int64_t)plainlen), total = plainlen + count * TAG_LEN;
  if (keylen != KEY_LEN || prefixlen != AD_V2_PREFIX || noncelen != NONCE_LEN || first < 0 || (uint64_t)first > UINT32_MAX - count ||
      outlen < total || plainlen > INT_MAX) {
    napi_throw_range_error(env, NULL, "sealSegments: a bad key, prefix, nonce, first segment or output size");
    return NULL;
  }
  if (seal_segs(key, prefix, nonce, (uint32_t)first, plain, plainlen, out) != 0) {
    napi_throw_error(env, NULL, "sealSegments: AES-GCM failed");
    return NULL;
  }
  napi_create_int64(env, (int64_t)total, &res);
  return res;
}

// openSegments(key, adPrefix(29), nonce(12), first, lastSegment, segs, out) -> plaintext length,
//   or -3 (authentication failed; out zeroed): sealed segments first, first + 1, ... back to
//   back, of an object whose final segment is lastSegment, opened on the calling thread.
napi_value open_segments (napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], res;
  void *key, *prefix, *nonce, *segs, *out;
  size_t keylen, prefixlen, noncelen, segslen, outlen;
  int64_t first, last;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7 ||
      bytes_of(env, argv[0], napi_uint8_array, &key, &keylen) != 0 || bytes_of(env, argv[1], napi_uint8_array, &prefix, &prefixlen) != 0 ||
      bytes_of(env, argv[2], napi_uint8_array, &nonce, &noncelen) != 0 || napi_get_value_int64(env, argv[3], &first) != napi_ok ||
      napi_get_value_int64(env, argv[4], &last) != napi_ok ||
      bytes_of(env, argv[5], napi_uint8_array, &segs, &segslen) != 0 || bytes_of(env, argv[6], napi_uint8_array, &out, &outlen) != 0) {
    napi_throw_type_error(env, NULL, "openSegments(key, adPrefix, nonce, first, lastSegment, segs, out)");
    return NULL;
  }
  size_t count = segslen / SEGMENT_SEALED + (segslen % SEGMENT_SEALED != 0);
  if (keylen != KEY_LEN || prefixlen != AD_V2_PREFIX || noncelen != NONCE_LEN || first < 0 || last < first || last > UINT32_MAX ||
      segslen == 0 || segslen > INT_MAX || outlen < segslen - count * TAG_LEN) {
    napi_throw_range_error(env, NULL, "openSegments: a bad key, prefix, nonce, segment numbers or output size");
    return NULL;
  }
  int64_t n = open_segs(key, prefix, nonce, (uint32_t)first, (uint32_t)last, segs, segslen, out);
  napi_create_int64(env, n, &res);
  return res;
}

// digest(code, bytes: Uint8Array) -> Uint8Array(32): the hash openRun checks blocks with, on the
//   calling thread (for tests and measurements); throws for a code other than 0x1e and 0x12.
napi_value digest_of (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t code;
  void *data, *outp;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &code) != napi_ok || bytes_of(env, argv[1], napi_uint8_array, &data, &len) != 0) {
    napi_throw_type_error(env, NULL, "digest(code, bytes: Uint8Array)");
    return NULL;
  }
  unsigned char md[DIGEST_LEN];
  if (digest(code, data, len, md) != 0) { napi_throw_range_error(env, NULL, "digest: unsupported multihash code"); return NULL; }
  napi_value ab;
  if (napi_create_arraybuffer(env, DIGEST_LEN, &outp, &ab) != napi_ok ||
      napi_create_typedarray(env, napi_uint8_array, DIGEST_LEN, ab, 0, &out) != napi_ok) return NULL;
  memcpy(outp, md, DIGEST_LEN);
  return out;
}
