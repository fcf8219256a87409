// space_block: reads a run of sealed objects that lie back to back in a file, checks each against
// the CID it is fetched by and opens it (AES-256-GCM) straight into the caller's memory, in one
// job on the libuv pool.
//
// The streaming read path used to take, per 128 KiB block, a pool hop for the pack read, a hop to
// the seal worker and back, an allocation for the plaintext and two copies (worker -> slot ->
// reply buffer). Here one FUSE read request is one pool job: one pread of the blocks' whole run
// into this thread's scratch buffer (with O_DIRECT the disk writes it there: no page-cache copy),
// then each block decrypted into the destination. OpenSSL is Node's own (the node binary exports
// it; its headers come with Node's).
//
// Sealed layouts (src/crypto/aead.ts, docs/format.md): v1 = 0x01 | type u8 | nonce[12] |
// ciphertext | tag[16]; v2 = 0x02 | nonce[12] | per 4 KiB segment s: ciphertext | tag[16], segment
// s under nonce XOR u32be(s) (last 4 bytes) with AD = prefix | s u32 BE | last u8. The associated
// data is built by the caller (aead.ts owns its format) and passed in per object: v1's AD (30
// bytes) followed by v2's prefix (29). On any failure the destination range is zeroed:
// unauthenticated plaintext never stays in caller memory.
//
// Besides whole runs (openRun), readPart reads part of one block: the first time with the whole
// record hashed against its CID and only the segments asked for opened (the nonce goes back to
// the caller, who remembers it for this CID), later only those segments' bytes (pread of 4112
// per segment) opened under the remembered nonce. A segment that authenticates under the
// verified object's nonce and its position can only be that object's: the CID pin holds.
// sealSegments/openSegments are the same segment crypto, synchronous, for the seal worker and
// the JS thread (block/calls.c); the crypto itself is block/seal.c.
//
// Authentication binds a block to its file, index and type but not to its version: an older
// sealed version of the same block authenticates. So before opening, the sealed bytes are hashed
// (BLAKE3, multihash 0x1e, with the official C implementation Debian ships; sha2-256, 0x12, of
// old stores, with OpenSSL) and compared with the digest of the CID the tree names; that makes
// the commit's root CID pin every byte read. The hash runs over the bytes in this thread's
// scratch buffer, which the decryption reads next, while they are still in cache.
#include <node_api.h>
#include <openssl/crypto.h>
#include "block/seal.h"
#include "block/calls.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { double offset, length, dst, room; } block_t; // as the caller's Float64Array

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref dst_ref, nonces_ref;
  int fd;
  int64_t position;
  size_t length;
  bool direct;
  unsigned char key[KEY_LEN];
  int type;
  size_t n, adlen;
  unsigned char *ads;   // n * adlen
  unsigned char *hashes; // n * HASH_ENTRY
  block_t *blocks;      // n
  int64_t *results;     // n: plaintext length, or -status
  unsigned char *dst;
  size_t dstlen;
  unsigned char *nonces; // openRun: n * NONCE_LEN, each v2 object's nonce (zeros for v1); may be NULL
  // readPart
  bool part, known;
  unsigned char nonce[NONCE_LEN];
  uint32_t first;
  int64_t from, to;
  int status, err;      // of the run (the read)
  char msg[96];
} job_t;

// One scratch buffer and cipher context per pool thread, kept for the thread's life.
static __thread unsigned char *scratch;
static __thread size_t scratch_len;
static __thread unsigned char *pscratch; // readPart's plaintext before the asked-for bytes are copied out
static __thread size_t pscratch_len;

static int grow (unsigned char **buf, size_t *len, size_t want) {
  if (*len >= want) return 0;
  free(*buf);
  *len = 0;
  if (posix_memalign((void **)buf, PAGE, want) != 0) { *buf = NULL; return -1; }
  *len = want;
  return 0;
}

// With O_DIRECT the read covers whole pages into the page-aligned scratch buffer; `*data` then
// points past the lead-in.
static int read_run (job_t *j, unsigned char **data) {
  int64_t start = j->direct ? j->position & ~(int64_t)(PAGE - 1) : j->position;
  size_t need = (size_t)(j->position - start) + j->length;
  size_t want = j->direct ? (need + PAGE - 1) & ~(size_t)(PAGE - 1) : need;
  if (grow(&scratch, &scratch_len, want) != 0) { j->status = ERR_ERRNO; j->err = ENOMEM; return -1; }
  size_t done = 0;
  while (done < need) {
    ssize_t got = pread(j->fd, scratch + done, want - done, (off_t)(start + (int64_t)done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) { j->status = ERR_ERRNO; j->err = errno; return -1; }
    done += (size_t)got;
    // Zero bytes, or a short direct read (the end of the file) that still left some out: cut short.
    if (got == 0 || (j->direct && done < need && done % PAGE != 0)) { j->status = ERR_SHORT; return -1; }
  }
  *data = scratch + (j->position - start);
  return 0;
}

// Checks `len` sealed bytes against block i's digest; 0 or -status.
static int64_t check_hash (job_t *j, size_t i, const unsigned char *sealed, size_t len) {
  const unsigned char *want = j->hashes + i * HASH_ENTRY;
  unsigned char got[DIGEST_LEN];
  if (digest(want[0], sealed, len, got) != 0) return -ERR_UNSUPPORTED;
  if (CRYPTO_memcmp(got, want + 1, DIGEST_LEN) != 0) return -ERR_MISMATCH;
  return 0;
}

// Opens one block; returns its plaintext length or -status. Its destination is zeroed on failure.
static int64_t open_block (job_t *j, size_t i, unsigned char *sealed, size_t len, unsigned char *dst, size_t room) {
  const unsigned char *ad = j->ads + i * j->adlen;
  int64_t h = check_hash(j, i, sealed, len);
  if (h != 0) {
    size_t zero = len > V2_HEADER + TAG_LEN ? len - V2_HEADER - TAG_LEN : 0;
    memset(dst, 0, zero > room ? room : zero);
    return h;
  }
  if (len < 1) return -ERR_AUTH;
  if (sealed[0] == SEAL_V1) return open_v1(j->key, j->type, ad, sealed, len, dst, room);
  if (sealed[0] != SEAL_V2) return -ERR_FORMAT;
  int64_t plain = v2_plain_length(len);
  if (plain < 0) return -ERR_AUTH;
  if ((size_t)plain > room) return -ERR_RANGE;
  if (j->nonces != NULL) memcpy(j->nonces + i * NONCE_LEN, sealed + 1, NONCE_LEN);
  return open_segs(j->key, ad + AD_V1_LEN, sealed + 1, 0, (uint32_t)segments_of(plain) - 1, sealed + V2_HEADER, len - V2_HEADER, dst);
}

static void execute (napi_env env, void *data) {
  job_t *j = data;
  unsigned char *run = NULL;
  if (read_run(j, &run) != 0) return;
  for (size_t i = 0; i < j->n; i++) {
    block_t *b = &j->blocks[i];
    j->results[i] = open_block(j, i, run + (size_t)b->offset, (size_t)b->length, j->dst + (size_t)b->dst, (size_t)b->room);
  }
  j->status = OK;
}

// readPart: bytes [from, to) (block coordinates) of the one object of the job, whose segments are
// numbered from `first`; copies what the object holds of them into dst and returns how many.
static int64_t read_part (job_t *j) {
  const unsigned char *ad = j->ads;
  size_t reclen = j->length;
  int64_t base = (int64_t)j->first * SEGMENT;
  unsigned char *sealed = NULL;
  if (!j->known) {
    if (read_run(j, &sealed) != 0) return 0;
    int64_t h = check_hash(j, 0, sealed, reclen);
    if (h != 0) return h;
    if (reclen < 1) return -ERR_AUTH;
    if (sealed[0] == SEAL_V1) {
      if (j->first != 0) return -ERR_FORMAT;
      if (grow(&pscratch, &pscratch_len, reclen) != 0) return -ERR_NOMEM;
      int64_t n = open_v1(j->key, j->type, ad, sealed, reclen, pscratch, pscratch_len);
      if (n < 0) return n;
      int64_t end = j->to < n ? j->to : n;
      if (end <= j->from) return 0;
      memcpy(j->dst, pscratch + j->from, (size_t)(end - j->from));
      return end - j->from;
    }
    if (sealed[0] != SEAL_V2) return -ERR_FORMAT;
    memcpy(j->nonce, sealed + 1, NONCE_LEN);
  }
  int64_t plain = v2_plain_length(reclen);
  if (plain < 0) return -ERR_AUTH;
  uint32_t last_seg = j->first + (uint32_t)segments_of(plain) - 1;
  int64_t end = j->to < base + plain ? j->to : base + plain;
  if (end <= j->from) return 0;
  uint32_t s0 = (uint32_t)(j->from / SEGMENT), s1 = (uint32_t)((end - 1) / SEGMENT);
  size_t off = V2_HEADER + (size_t)(s0 - j->first) * SEGMENT_SEALED;
  size_t stop = V2_HEADER + (size_t)(s1 - j->first + 1) * SEGMENT_SEALED;
  if (stop > reclen) stop = reclen;
  unsigned char *segs;
  if (j->known) {
    // Only the segments asked for: their bytes, at their place in the record.
    j->position += (int64_t)off;
    j->length = stop - off;
    if (read_run(j, &segs) != 0) return 0;
  } else {
    segs = sealed + off;
  }
  if (grow(&pscratch, &pscratch_len, (size_t)(s1 - s0 + 1) * SEGMENT) != 0) return -ERR_NOMEM;
  int64_t n = open_segs(j->key, ad + AD_V1_LEN, j->nonce, s0, last_seg, segs, stop - off, pscratch);
  if (n < 0) return n;
  size_t skip = (size_t)(j->from - (int64_t)s0 * SEGMENT);
  memcpy(j->dst, pscratch + skip, (size_t)(end - j->from));
  memset(pscratch, 0, (size_t)n);
  return end - j->from;
}

static void execute_part (napi_env env, void *data) {
  job_t *j = data;
  j->status = OK;
  int64_t r = read_part(j);
  if (j->status != OK) return; // the read failed: the promise rejects
  j->results[0] = r;
  if (r < 0) memset(j->dst, 0, (size_t)(j->to - j->from));
}

static void free_job (napi_env env, job_t *j) {
  if (j->dst_ref != NULL) napi_delete_reference(env, j->dst_ref);
  if (j->nonces_ref != NULL) napi_delete_reference(env, j->nonces_ref);
  if (j->work != NULL) napi_delete_async_work(env, j->work);
  OPENSSL_cleanse(j->key, KEY_LEN);
  free(j->ads);
  free(j->hashes);
  free(j->blocks);
  free(j->results);
  free(j);
}

static void complete (napi_env env, napi_status status, void *data) {
  job_t *j = data;
  if (status != napi_ok) { j->status = ERR_ERRNO; j->err = ECANCELED; }
  if (j->status == OK && j->part) {
    // readPart: the bytes placed (or -status), and the object's nonce for the caller to keep.
    napi_value obj, v, buf;
    void *p;
    napi_create_object(env, &obj);
    napi_create_int64(env, j->results[0], &v);
    napi_set_named_property(env, obj, "n", v);
    napi_create_buffer_copy(env, NONCE_LEN, j->nonce, &p, &buf);
    napi_set_named_property(env, obj, "nonce", buf);
    napi_resolve_deferred(env, j->deferred, obj);
  } else if (j->status == OK) {
    napi_value arr, v;
    napi_create_array_with_length(env, j->n, &arr);
    for (size_t i = 0; i < j->n; i++) {
      napi_create_int64(env, j->results[i], &v);
      napi_set_element(env, arr, (uint32_t)i, v);
    }
    napi_resolve_deferred(env, j->deferred, arr);
  } else {
    // ERR_ERRNO carries the number in `errno`; the JS side names it as node's fs errors do.
    const char *code = j->status == ERR_SHORT ? "ERR_SHORT" : "ERR_ERRNO";
    const char *msg = j->status == ERR_SHORT ? "sealed data cut short in its file" : strerror(j->err);
    napi_value c, m, e, no;
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_error(env, c, m, &e);
    napi_create_int32(env, j->err, &no);
    napi_set_named_property(env, e, "errno", no);
    napi_reject_deferred(env, j->deferred, e);
  }
  free_job(env, j);
}

// openRun(fd, position, length, direct, key: Uint8Array(32), type, ads: Uint8Array (n equal-size
//   associated data), blocks: Float64Array (n x [offset in run, sealed length, dst offset, room]),
//   hashes: Uint8Array (n x [multihash code, 32-byte digest]), dst: Uint8Array) ->
//   Promise<number[]>: per block its plaintext length, or -3 (authentication failed), -4 (unknown
//   version), -5 (larger than its room), -6 (out of memory), -7 (the bytes do not match the
//   digest), -8 (a hash function other than BLAKE3 and sha2-256). A failed read rejects (code
//   ERR_ERRNO with errno, or ERR_SHORT). `dst` must stay untouched by others until the promise
//   settles. Optional 11th argument nonces: Uint8Array(n * 12), filled with each v2 block's nonce
//   (zeros for v1; meaningful only for blocks that opened), for the caller to remember by CID.
//   Each ads entry is POS_LEN bytes: v1's associated data, then v2's prefix.
static napi_value open_run (napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11], promise, name;
  void *key, *ads, *blocks, *hashes, *dst;
  size_t keylen, adslen, nums, hasheslen, dstlen;
  int32_t fd, type;
  int64_t position, length;
  bool direct = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 10 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &position) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || napi_get_value_bool(env, argv[3], &direct) != napi_ok ||
      bytes_of(env, argv[4], napi_uint8_array, &key, &keylen) != 0 || napi_get_value_int32(env, argv[5], &type) != napi_ok ||
      bytes_of(env, argv[6], napi_uint8_array, &ads, &adslen) != 0 || bytes_of(env, argv[7], napi_float64_array, &blocks, &nums) != 0 ||
      bytes_of(env, argv[8], napi_uint8_array, &hashes, &hasheslen) != 0 || bytes_of(env, argv[9], napi_uint8_array, &dst, &dstlen) != 0) {
    napi_throw_type_error(env, NULL, "openRun(fd, position, length, direct, key: Uint8Array, type, ads: Uint8Array, blocks: Float64Array, hashes: Uint8Array, dst: Uint8Array)");
    return NULL;
  }
  size_t n = nums / 4;
  void *nonces = NULL;
  size_t nonceslen = 0;
  napi_valuetype nt = napi_undefined;
  if (argc >= 11) napi_typeof(env, argv[10], &nt);
  if (nt != napi_undefined && nt != napi_null && bytes_of(env, argv[10], napi_uint8_array, &nonces, &nonceslen) != 0) {
    napi_throw_type_error(env, NULL, "openRun: nonces must be a Uint8Array");
    return NULL;
  }
  bool ok = (nonces == NULL || nonceslen == n * NONCE_LEN) && fd >= 0 && position >= 0 && length >= 0 && length <= MAX_RUN && keylen == KEY_LEN &&
    nums % 4 == 0 && n >= 1 && n <= MAX_BLOCKS && adslen % n == 0 && adslen / n <= MAX_AD && hasheslen == n * HASH_ENTRY;
  for (size_t i = 0; ok && i < n; i++) {
    const block_t *b = (const block_t *)blocks + i;
    ok = b->offset >= 0 && b->length >= 0 && b->offset + b->length <= (double)length &&
      b->dst >= 0 && b->room >= 0 && b->dst + b->room <= (double)dstlen;
  }
  if (!ok) {
    napi_throw_range_error(env, NULL, "openRun: a block lies outside its run or its destination, or a bad fd, key, hash table or size");
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j);
  if (j != NULL) {
    j->ads = malloc(adslen + 1); // + 1: never malloc(0)
    j->hashes = malloc(hasheslen);
    j->blocks = malloc(n * sizeof *j->blocks);
    j->results = malloc(n * sizeof *j->results);
  }
  if (j == NULL || j->ads == NULL || j->hashes == NULL || j->blocks == NULL || j->results == NULL) {
    if (j != NULL) free_job(env, j);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  j->fd = fd;
  j->position = position;
  j->length = (size_t)length;
  j->direct = direct;
  memcpy(j->key, key, KEY_LEN);
  j->type = type;
  j->n = n;
  j->adlen = adslen / n;
  memcpy(j->ads, ads, adslen);
  memcpy(j->hashes, hashes, hasheslen);
  memcpy(j->blocks, blocks, n * sizeof *j->blocks);
  j->dst = dst;
  j->dstlen = dstlen;
  j->nonces = nonces;
  if (nonces != NULL) memset(nonces, 0, nonceslen);
  if (napi_create_reference(env, argv[9], 1, &j->dst_ref) != napi_ok ||
      (nonces != NULL && napi_create_reference(env, argv[10], 1, &j->nonces_ref) != napi_ok) ||
      napi_create_string_utf8(env, "space.openRun", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok ||
      napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    free_job(env, j); // nothing was queued
    napi_throw_error(env, NULL, "openRun: could not queue the read");
    return NULL;
  }
  return promise;
}

// readPart(fd, position, length, direct, key: Uint8Array(32), type, ad: Uint8Array(59: v1 AD,
//   v2 AD prefix), hash: Uint8Array(33: multihash code, digest), nonce: Uint8Array(12) | null,
//   first, from, to, dst: Uint8Array(>= to - from)) -> Promise<{ n, nonce }>: bytes [from, to)
//   (block coordinates) of one object of `length` sealed bytes at `position`, whose segments are
//   numbered from `first`. Without a nonce the whole record is read and checked against `hash`
//   (then only the segments asked for are opened) and the object's nonce comes back; with the
//   nonce remembered from such a read only the segments' bytes are read and opened under it.
//   n: bytes placed at dst[0, n) (the object may end before `to`), or a negative status as
//   openRun's (dst[0, to - from) zeroed). A failed read rejects.
static napi_value read_part_fn (napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value argv[13], promise, name;
  void *key, *ad, *hash, *nonce = NULL, *dst;
  size_t keylen, adlen, hashlen, noncelen = 0, dstlen;
  int32_t fd, type;
  int64_t position, length, first, from, to;
  bool direct = false;
  napi_valuetype nt = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 13 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &position) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || napi_get_value_bool(env, argv[3], &direct) != napi_ok ||
      bytes_of(env, argv[4], napi_uint8_array, &key, &keylen) != 0 || napi_get_value_int32(env, argv[5], &type) != napi_ok ||
      bytes_of(env, argv[6], napi_uint8_array, &ad, &adlen) != 0 || bytes_of(env, argv[7], napi_uint8_array, &hash, &hashlen) != 0 ||
      napi_typeof(env, argv[8], &nt) != napi_ok || (nt != napi_null && nt != napi_undefined && bytes_of(env, argv[8], napi_uint8_array, &nonce, &noncelen) != 0) ||
      napi_get_value_int64(env, argv[9], &first) != napi_ok || napi_get_value_int64(env, argv[10], &from) != napi_ok ||
      napi_get_value_int64(env, argv[11], &to) != napi_ok || bytes_of(env, argv[12], napi_uint8_array, &dst, &dstlen) != 0) {
    napi_throw_type_error(env, NULL, "readPart(fd, position, length, direct, key, type, ad, hash, nonce, first, from, to, dst)");
    return NULL;
  }
  bool ok = fd >= 0 && position >= 0 && length >= 0 && length <= MAX_RUN && keylen == KEY_LEN && adlen == POS_LEN &&
    hashlen == HASH_ENTRY && (nonce == NULL || noncelen == NONCE_LEN) && first >= 0 && first < (1 << 20) &&
    from >= first * SEGMENT && to >= from && (size_t)(to - from) <= dstlen && to - from <= MAX_RUN;
  if (!ok) {
    napi_throw_range_error(env, NULL, "readPart: a bad fd, key, associated data, hash, nonce or range");
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j);
  if (j != NULL) {
    j->ads = malloc(adlen);
    j->hashes = malloc(hashlen);
    j->results = malloc(sizeof *j->results);
  }
  if (j == NULL || j->ads == NULL || j->hashes == NULL || j->results == NULL) {
    if (j != NULL) free_job(env, j);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  j->part = true;
  j->fd = fd;
  j->position = position;
  j->length = (size_t)length;
  j->direct = direct;
  memcpy(j->key, key, KEY_LEN);
  j->type = type;
  j->n = 1;
  j->adlen = adlen;
  memcpy(j->ads, ad, adlen);
  memcpy(j->hashes, hash, hashlen);
  j->known = nonce != NULL;
  if (nonce != NULL) memcpy(j->nonce, nonce, NONCE_LEN);
  j->first = (uint32_t)first;
  j->from = from;
  j->to = to;
  j->dst = dst;
  j->dstlen = dstlen;
  if (napi_create_reference(env, argv[12], 1, &j->dst_ref) != napi_ok ||
      napi_create_string_utf8(env, "space.readPart", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute_part, complete, j, &j->work) != napi_ok ||
      napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    free_job(env, j);
    napi_throw_error(env, NULL, "readPart: could not queue the read");
    return NULL;
  }
  return promise;
}

NAPI_MODULE_INIT () {
  napi_value fn;
  napi_create_function(env, "openRun", NAPI_AUTO_LENGTH, open_run, NULL, &fn);
  napi_set_named_property(env, exports, "openRun", fn);
  napi_create_function(env, "readPart", NAPI_AUTO_LENGTH, read_part_fn, NULL, &fn);
  napi_set_named_property(env, exports, "readPart", fn);
  napi_create_function(env, "sealSegments", NAPI_AUTO_LENGTH, seal_segments, NULL, &fn);
  napi_set_named_property(env, exports, "sealSegments", fn);
  napi_create_function(env, "openSegments", NAPI_AUTO_LENGTH, open_segments, NULL, &fn);
  napi_set_named_property(env, exports, "openSegments", fn);
  napi_create_function(env, "digest", NAPI_AUTO_LENGTH, digest_of, NULL, &fn);
  napi_set_named_property(env, exports, "digest", fn);
  return exports;
}
