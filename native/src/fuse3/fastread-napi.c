// The native read table's N-API half, on the JS thread: JS turns the path on, gives each file a
// key and its handles, puts checked and streaming entries and drops them (fastread.c says what
// JS promises in doing so), and reads the counters.
#include "fastread-table.h"

#include <stdlib.h>
#include <string.h>

static bool arg_i64 (napi_env env, napi_value v, int64_t *out) { return napi_get_value_int64(env, v, out) == napi_ok; }

static fastread_t *args (napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) return NULL;
  mnt_t *m = get_mnt(env, argv[0]);
  return m != NULL ? m->fr : NULL;
}

static napi_value num (napi_env env, double v) { napi_value r; napi_create_double(env, v, &r); return r; }
static napi_value boolean (napi_env env, bool v) { napi_value r; napi_get_boolean(env, v, &r); return r; }

// nativeReads(h, on): turns the native read path on or off (off: every read goes to JS).
napi_value FastEnable (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fastread_t *fr = args(env, info, 2, argv);
  bool on = false;
  if (fr == NULL || napi_get_value_bool(env, argv[1], &on) != napi_ok) { napi_throw_type_error(env, NULL, "nativeReads(handle, on)"); return NULL; }
  pthread_mutex_lock(&fr->mu);
  fr->enabled = on;
  pthread_mutex_unlock(&fr->mu);
  return NULL;
}

// readFile(h, key: Uint8Array(32)) -> fid >= 0, or -1 when no key page is left.
napi_value FastFile (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fastread_t *fr = args(env, info, 2, argv);
  void *key; size_t len;
  if (fr == NULL || !get_bytes(env, argv[1], &key, &len) || len != KEY_LEN) { napi_throw_type_error(env, NULL, "readFile(handle, key)"); return NULL; }
  unsigned char *k = fr_key_alloc();
  if (k == NULL) return num(env, -1);
  memcpy(k, key, KEY_LEN);
  pthread_mutex_lock(&fr->mu);
  int32_t fid = -1;
  for (uint32_t i = 0; i < fr->nfiles; i++) if (fr->files[i].key == NULL) { fid = (int32_t)i; break; }
  if (fid < 0) {
    uint32_t n = fr->nfiles == 0 ? 16 : fr->nfiles * 2;
    fr_file_t *files = realloc(fr->files, sizeof *files * n);
    if (files != NULL) {
      memset(files + fr->nfiles, 0, sizeof *files * (n - fr->nfiles));
      fid = (int32_t)fr->nfiles;
      fr->files = files;
      fr->nfiles = n;
    }
  }
  if (fid >= 0) fr->files[fid].key = k;
  pthread_mutex_unlock(&fr->mu);
  if (fid < 0) fr_key_release(k);
  return num(env, fid);
}

// readFileFree(h, fid): drops the file's entries and handles and zeroes its key.
napi_value FastFree (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fastread_t *fr = args(env, info, 2, argv);
  int64_t fid;
  if (fr == NULL || !arg_i64(env, argv[1], &fid)) { napi_throw_type_error(env, NULL, "readFileFree(handle, fid)"); return NULL; }
  pthread_mutex_lock(&fr->mu);
  fr_free_file(fr, (int32_t)fid);
  pthread_mutex_unlock(&fr->mu);
  return NULL;
}

// readBind(h, fh, fid): reads through handle fh look up file fid; fid < 0 unbinds fh.
napi_value FastBind (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  fastread_t *fr = args(env, info, 3, argv);
  int64_t fh, fid;
  if (fr == NULL || !arg_i64(env, argv[1], &fh) || !arg_i64(env, argv[2], &fid)) { napi_throw_type_error(env, NULL, "readBind(handle, fh, fid)"); return NULL; }
  pthread_mutex_lock(&fr->mu);
  bool ok = true;
  if (fid < 0 || fr_file_of(fr, (int32_t)fid) == NULL) fr_unbind(fr, (uint64_t)fh);
  else ok = fr_bind(fr, (uint64_t)fh, (int32_t)fid);
  pthread_mutex_unlock(&fr->mu);
  return boolean(env, ok);
}

// readDrop(h, fid, from, to): forgets blocks from..to of file fid (to < 0: all of them, and its size).
napi_value FastDrop (napi_env env, napi_callback_info info) {
  napi_value argv[4];
  fastread_t *fr = args(env, info, 4, argv);
  int64_t fid, from, to;
  if (fr == NULL || !arg_i64(env, argv[1], &fid) || !arg_i64(env, argv[2], &from) || !arg_i64(env, argv[3], &to)) {
    napi_throw_type_error(env, NULL, "readDrop(handle, fid, from, to)");
    return NULL;
  }
  pthread_mutex_lock(&fr->mu);
  fr_file_t *f = fr_file_of(fr, (int32_t)fid);
  if (f != NULL) {
    if (to < 0) fr_drop_all(fr, f); // the size goes with them: nothing answers until JS puts again
    else if (from >= 0 && to >= from) fr_drop_range(fr, f, (uint64_t)from, (uint64_t)to);
  }
  pthread_mutex_unlock(&fr->mu);
  return NULL;
}

// readPut(h, fid, size, idx, adPrefix: Uint8Array(29), objs: Float64Array(n x [fd, position,
//   length, first]), nonces: Uint8Array(n x 12), seg: Uint8Array(32)) -> bool: block idx of file
//   fid (whose size is now `size`) is read from these checked v2 objects, segment s from object
//   seg[s] (255: a hole, zeros; 254: not checked, JS answers). false: not kept (the mount's
//   budget is spent, or a bad argument).
napi_value FastPut (napi_env env, napi_callback_info info) {
  napi_value argv[8];
  fastread_t *fr = args(env, info, 8, argv);
  int64_t fid, size, idx;
  void *ad, *nonces, *seg; size_t alen, nlen, slen, count;
  double *objs;
  if (fr == NULL || !arg_i64(env, argv[1], &fid) || !arg_i64(env, argv[2], &size) || !arg_i64(env, argv[3], &idx) ||
      !get_bytes(env, argv[4], &ad, &alen) || !get_f64(env, argv[5], &objs, &count) ||
      !get_bytes(env, argv[6], &nonces, &nlen) || !get_bytes(env, argv[7], &seg, &slen)) {
    napi_throw_type_error(env, NULL, "readPut(handle, fid, size, idx, adPrefix, objs, nonces, seg)");
    return NULL;
  }
  size_t n = count / 4;
  bool ok = alen == AD_V2_PREFIX && count % 4 == 0 && n >= 1 && n <= FR_MAX_OBJS && nlen == n * NONCE_LEN &&
    slen == FR_SEGS && size >= 0 && idx >= 0 && idx < (1ll << 31);
  fr_obj_t ob[FR_MAX_OBJS];
  for (size_t i = 0; ok && i < n; i++) {
    double fd = objs[i * 4], pos = objs[i * 4 + 1], len = objs[i * 4 + 2], first = objs[i * 4 + 3];
    ok = fd >= 0 && fd <= INT32_MAX && pos >= 0 && len > 0 && len <= V2_HEADER + FR_SEGS * SEGMENT_SEALED && first >= 0 && first < FR_SEGS;
    if (!ok) break;
    ob[i].fd = (int32_t)fd; ob[i].pos = (int64_t)pos; ob[i].len = (uint32_t)len; ob[i].first = (uint8_t)first;
    memcpy(ob[i].nonce, (unsigned char *)nonces + i * NONCE_LEN, NONCE_LEN);
  }
  const uint8_t *sm = seg;
  bool whole = ok && n == 1 && ob[0].first == 0;
  for (size_t k = 0; ok && k < FR_SEGS; k++) {
    if (sm[k] != FR_HOLE && sm[k] != FR_UNKNOWN && sm[k] >= n) ok = false;
    if (sm[k] != 0) whole = false;
  }
  fr_patched_t *px = NULL;
  if (ok && !whole) {
    if ((px = malloc(fr_patched_size((uint8_t)n))) == NULL) ok = false;
    else { px->n = (uint8_t)n; memcpy(px->seg, sm, FR_SEGS); memcpy(px->obj, ob, n * sizeof *ob); }
  }
  pthread_mutex_lock(&fr->mu);
  fr_file_t *f = ok ? fr_file_of(fr, (int32_t)fid) : NULL;
  ok = f != NULL && (px == NULL || fr->pbytes + fr_patched_size(px->n) <= FR_MAX_PATCH_BYTES);
  if (ok) {
    fr_entry_t *e = fr_entry_for_put(f, (uint64_t)idx);
    if (e == NULL || (!e->set && fr->entries >= FR_MAX_ENTRIES)) ok = false;
    if (ok) {
      if (e->set) fr_entry_clear(fr, e);
      else { f->count++; fr->entries++; }
      memcpy(e->ad, ad, AD_V2_PREFIX);
      if (px == NULL) e->whole = ob[0];
      else { e->px = px; fr->pbytes += fr_patched_size(px->n); px = NULL; }
      e->set = 1;
      f->size = (uint64_t)size;
    }
  }
  pthread_mutex_unlock(&fr->mu);
  free(px); // not kept
  explicit_bzero(ob, sizeof ob);
  return boolean(env, ok);
}

// readPutStream(h, fid, size, first, ads: Uint8Array(n x 29), objs: Float64Array(n x [fd,
//   direct fd, direct, position, length]), hashes: Uint8Array(n x 33: multihash code, digest))
//   -> entries kept: blocks first..first+n-1 of file fid (now `size` bytes) are each one v2
//   object sealed whole, not checked yet, at `position` (fd: buffered; direct fd: the same pack,
//   O_DIRECT when `direct` is 1), whose sealed bytes must hash to its digest. Blocks that have an
//   entry keep it; the puts stop at the mount's budget.
napi_value FastPutStream (napi_env env, napi_callback_info info) {
  napi_value argv[7];
  fastread_t *fr = args(env, info, 7, argv);
  int64_t fid, size, first;
  void *ads, *hashes; size_t alen, hlen, count;
  double *objs;
  if (fr == NULL || !arg_i64(env, argv[1], &fid) || !arg_i64(env, argv[2], &size) || !arg_i64(env, argv[3], &first) ||
      !get_bytes(env, argv[4], &ads, &alen) || !get_f64(env, argv[5], &objs, &count) || !get_bytes(env, argv[6], &hashes, &hlen)) {
    napi_throw_type_error(env, NULL, "readPutStream(handle, fid, size, first, ads, objs, hashes)");
    return NULL;
  }
  size_t n = count / 5;
  double kept = 0;
  bool ok = count % 5 == 0 && alen == n * AD_V2_PREFIX && hlen == n * HASH_ENTRY && size >= 0 && first >= 0 && first + (int64_t)n <= (1ll << 31);
  pthread_mutex_lock(&fr->mu);
  fr_file_t *f = ok ? fr_file_of(fr, (int32_t)fid) : NULL;
  for (size_t i = 0; f != NULL && i < n; i++) {
    const double *o = objs + i * 5;
    const unsigned char *h = (const unsigned char *)hashes + i * HASH_ENTRY;
    if (!(o[0] >= 0 && o[0] <= INT32_MAX && o[1] >= 0 && o[1] <= INT32_MAX && o[3] >= 0 && o[4] > V2_HEADER &&
          o[4] <= V2_HEADER + FR_SEGS * SEGMENT_SEALED && (h[0] == MH_BLAKE3 || h[0] == MH_SHA2_256))) continue;
    if (fr->entries >= FR_MAX_ENTRIES) break;
    fr_entry_t *e = fr_entry_for_put(f, (uint64_t)first + i);
    if (e == NULL) break;
    if (e->set) continue; // an entry (checked, or put ahead before) stays
    fr_check_t *ck = malloc(sizeof *ck);
    if (ck == NULL) break;
    ck->dfd = (int32_t)o[1];
    ck->direct = o[2] != 0;
    memcpy(ck->hash, h, HASH_ENTRY);
    memset(&e->whole, 0, sizeof e->whole);
    e->whole.fd = (int32_t)o[0];
    e->whole.pos = (int64_t)o[3];
    e->whole.len = (uint32_t)o[4];
    memcpy(e->ad, (const unsigned char *)ads + i * AD_V2_PREFIX, AD_V2_PREFIX);
    e->px = NULL;
    e->check = ck;
    e->set = 1;
    f->count++;
    fr->entries++;
    kept++;
  }
  if (f != NULL && kept > 0) f->size = (uint64_t)size;
  pthread_mutex_unlock(&fr->mu);
  return num(env, kept);
}

// readStats(h) -> [reads answered here, reads handed to JS, entries, files with a key]
napi_value FastStats (napi_env env, napi_callback_info info) {
  napi_value argv[1], arr;
  fastread_t *fr = args(env, info, 1, argv);
  if (fr == NULL) { napi_throw_type_error(env, NULL, "readStats(handle)"); return NULL; }
  pthread_mutex_lock(&fr->mu);
  double files = 0, entries = fr->entries;
  for (uint32_t i = 0; i < fr->nfiles; i++) if (fr->files[i].key != NULL) files++;
  pthread_mutex_unlock(&fr->mu);
  napi_create_array_with_length(env, 4, &arr);
  napi_set_element(env, arr, 0, num(env, (double)atomic_load(&fr->hits)));
  napi_set_element(env, arr, 1, num(env, (double)atomic_load(&fr->fallbacks)));
  napi_set_element(env, arr, 2, num(env, entries));
  napi_set_element(env, arr, 3, num(env, files));
  return arr;
}
