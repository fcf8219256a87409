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
// Sealed layout (src/crypto/aead.ts, docs/format.md): version u8 | type u8 | nonce[12] |
// ciphertext | tag[16]. The associated data is built by the caller (aead.ts owns its format) and
// passed in. On any failure the destination range is zeroed: unauthenticated plaintext never
// stays in caller memory.
//
// Authentication binds a block to its file, index and type but not to its version: an older
// sealed version of the same block authenticates. So before opening, the sealed bytes are hashed
// (BLAKE3, multihash 0x1e, with the official C implementation Debian ships; sha2-256, 0x12, of
// old stores, with OpenSSL) and compared with the digest of the CID the tree names; that makes
// the commit's root CID pin every byte read. The hash runs over the bytes in this thread's
// scratch buffer, which the decryption reads next, while they are still in cache.
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "blake3.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEAL_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (2 + NONCE_LEN)
#define KEY_LEN 32
#define MAX_AD 64
#define MAX_BLOCKS 256
#define MAX_RUN (64 << 20)
#define PAGE 4096
#define DIGEST_LEN 32
#define HASH_ENTRY (1 + DIGEST_LEN) // per block: multihash code (one byte), digest
#define MH_BLAKE3 0x1e
#define MH_SHA2_256 0x12

// Run-level failures reject the promise; block-level ones are that block's result (negative).
enum { OK, ERR_ERRNO, ERR_SHORT, ERR_AUTH, ERR_FORMAT, ERR_RANGE, ERR_NOMEM, ERR_MISMATCH, ERR_UNSUPPORTED };

typedef struct { double offset, length, dst, room; } block_t; // as the caller's Float64Array

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref dst_ref;
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
  int status, err;      // of the run (the read)
  char msg[96];
} job_t;

// One scratch buffer and cipher context per pool thread, kept for the thread's life.
static __thread unsigned char *scratch;
static __thread size_t scratch_len;
static __thread EVP_CIPHER_CTX *ctx;

// With O_DIRECT the read covers whole pages into the page-aligned scratch buffer; `*data` then
// points past the lead-in.
static int read_run (job_t *j, unsigned char **data) {
  int64_t start = j->direct ? j->position & ~(int64_t)(PAGE - 1) : j->position;
  size_t need = (size_t)(j->position - start) + j->length;
  size_t want = j->direct ? (need + PAGE - 1) & ~(size_t)(PAGE - 1) : need;
  if (scratch_len < want) {
    free(scratch);
    scratch = NULL;
    scratch_len = 0;
    if (posix_memalign((void **)&scratch, PAGE, want) != 0) { j->status = ERR_ERRNO; j->err = ENOMEM; return -1; }
    scratch_len = want;
  }
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

// The digest of `len` bytes under multihash `code` into out[DIGEST_LEN]; -1 for another code.
static int digest (int code, const unsigned char *data, size_t len, unsigned char *out) {
  if (code == MH_BLAKE3) {
    blake3_hasher h;
    blake3_hasher_init(&h);
    blake3_hasher_update(&h, data, len);
    blake3_hasher_finalize(&h, out, DIGEST_LEN);
    return 0;
  }
  if (code == MH_SHA2_256) return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
  return -1;
}

// Opens one block; returns its plaintext length or -status. Its destination is zeroed on failure.
static int64_t open_block (job_t *j, size_t i, unsigned char *sealed, size_t len, unsigned char *dst, size_t room) {
  const unsigned char *want = j->hashes + i * HASH_ENTRY;
  unsigned char got[DIGEST_LEN];
  size_t zero = len > HEADER_LEN + TAG_LEN ? len - HEADER_LEN - TAG_LEN : 0;
  if (zero > room) zero = room;
  if (digest(want[0], sealed, len, got) != 0) { memset(dst, 0, zero); return -ERR_UNSUPPORTED; }
  if (CRYPTO_memcmp(got, want + 1, DIGEST_LEN) != 0) { memset(dst, 0, zero); return -ERR_MISMATCH; }
  if (len < HEADER_LEN + TAG_LEN) return -ERR_AUTH;
  if (sealed[0] != SEAL_VERSION) return -ERR_FORMAT;
  if (sealed[1] != j->type) return -ERR_AUTH;
  size_t ct = len - HEADER_LEN - TAG_LEN;
  if (ct > room || ct > INT_MAX) return -ERR_RANGE;
  // The context is set up for AES-256-GCM once per thread; later inits only load key and nonce.
  if (ctx == NULL) {
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL) return -ERR_NOMEM;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) { EVP_CIPHER_CTX_free(ctx); ctx = NULL; return -ERR_NOMEM; }
  }
  int n = 0, fin = 0;
  if (EVP_DecryptInit_ex(ctx, NULL, NULL, j->key, sealed + 2) != 1 ||
      EVP_DecryptUpdate(ctx, NULL, &n, j->ads + i * j->adlen, (int)j->adlen) != 1 ||
      EVP_DecryptUpdate(ctx, dst, &n, sealed + HEADER_LEN, (int)ct) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, sealed + HEADER_LEN + ct) != 1 ||
      EVP_DecryptFinal_ex(ctx, dst + n, &fin) != 1) {
    memset(dst, 0, ct);
    return -ERR_AUTH;
  }
  return (int64_t)n + fin;
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

static void free_job (napi_env env, job_t *j) {
  if (j->dst_ref != NULL) napi_delete_reference(env, j->dst_ref);
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
  if (j->status == OK) {
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

static int bytes_of (napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *count) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  return napi_get_typedarray_info(env, v, &type, count, data, &ab, &off) == napi_ok && type == want ? 0 : -1;
}

// openRun(fd, position, length, direct, key: Uint8Array(32), type, ads: Uint8Array (n equal-size
//   associated data), blocks: Float64Array (n x [offset in run, sealed length, dst offset, room]),
//   hashes: Uint8Array (n x [multihash code, 32-byte digest]), dst: Uint8Array) ->
//   Promise<number[]>: per block its plaintext length, or -3 (authentication failed), -4 (unknown
//   version), -5 (larger than its room), -6 (out of memory), -7 (the bytes do not match the
//   digest), -8 (a hash function other than BLAKE3 and sha2-256). A failed read rejects (code
//   ERR_ERRNO with errno, or ERR_SHORT). `dst` must stay untouched by others until the promise
//   settles.
static napi_value open_run (napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10], promise, name;
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
  bool ok = fd >= 0 && position >= 0 && length >= 0 && length <= MAX_RUN && keylen == KEY_LEN &&
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
  if (napi_create_reference(env, argv[9], 1, &j->dst_ref) != napi_ok ||
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

// digest(code, bytes: Uint8Array) -> Uint8Array(32): the hash openRun checks blocks with, on the
//   calling thread (for tests and measurements); throws for a code other than 0x1e and 0x12.
static napi_value digest_of (napi_env env, napi_callback_info info) {
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

NAPI_MODULE_INIT () {
  napi_value fn;
  napi_create_function(env, "openRun", NAPI_AUTO_LENGTH, open_run, NULL, &fn);
  napi_set_named_property(env, exports, "openRun", fn);
  napi_create_function(env, "digest", NAPI_AUTO_LENGTH, digest_of, NULL, &fn);
  napi_set_named_property(env, exports, "digest", fn);
  return exports;
}
