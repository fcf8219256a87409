// AES-256-GCM of v2 segments (seal.h), shared by the block addon (space_block.c, block/calls.c)
// and the FUSE addon's native reads (fuse3/fastread.c): one decryption and one encryption context
// per thread, set up once (later inits load only key and nonce). OpenSSL is Node's own.
#include "seal.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

static __thread EVP_CIPHER_CTX *ctx;
static __thread EVP_CIPHER_CTX *ectx;

// The thread's decryption context, set up for AES-256-GCM once; later inits only load key and nonce.
EVP_CIPHER_CTX *seal_dctx (void) {
  if (ctx == NULL) {
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL) return NULL;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) { EVP_CIPHER_CTX_free(ctx); ctx = NULL; }
  }
  return ctx;
}

void seal_dctx_forget (void) {
  static const unsigned char zero[32] = { 0 };
  if (ctx != NULL) EVP_DecryptInit_ex(ctx, NULL, NULL, zero, NULL);
}

// Plaintext length of a v2 object of `len` sealed bytes; -1 when no v2 object is that long.
int64_t v2_plain_length (size_t len) {
  if (len < V2_HEADER + TAG_LEN) return -1;
  size_t body = len - V2_HEADER, full = body / SEGMENT_SEALED, rest = body - full * SEGMENT_SEALED;
  if (rest == 0) return (int64_t)(full * SEGMENT);
  if (rest < TAG_LEN || (rest == TAG_LEN && full > 0)) return -1;
  return (int64_t)(full * SEGMENT + rest - TAG_LEN);
}

size_t segments_of (int64_t plain) { return plain <= 0 ? 1 : (size_t)((plain + SEGMENT - 1) / SEGMENT); }

static void segment_iv (unsigned char *iv, const unsigned char *nonce, uint32_t s) {
  memcpy(iv, nonce, NONCE_LEN);
  iv[8] ^= (unsigned char)(s >> 24); iv[9] ^= (unsigned char)(s >> 16); iv[10] ^= (unsigned char)(s >> 8); iv[11] ^= (unsigned char)s;
}

static void segment_ad (unsigned char *ad, const unsigned char *prefix, uint32_t s, bool last) {
  memcpy(ad, prefix, AD_V2_PREFIX);
  ad[AD_V2_PREFIX] = (unsigned char)(s >> 24); ad[AD_V2_PREFIX + 1] = (unsigned char)(s >> 16);
  ad[AD_V2_PREFIX + 2] = (unsigned char)(s >> 8); ad[AD_V2_PREFIX + 3] = (unsigned char)s;
  ad[AD_V2_PREFIX + 4] = last ? 1 : 0;
}

int64_t open_segs (const unsigned char *key, const unsigned char *prefix, const unsigned char *nonce,
                   uint32_t s0, uint32_t last_seg, const unsigned char *segs, size_t len, unsigned char *dst) {
  size_t full = len / SEGMENT_SEALED, rest = len - full * SEGMENT_SEALED;
  if ((rest != 0 && rest < TAG_LEN) || len == 0) return -ERR_AUTH;
  size_t count = full + (rest != 0), total = len - count * TAG_LEN;
  EVP_CIPHER_CTX *c = seal_dctx();
  if (c == NULL) return -ERR_NOMEM;
  if (EVP_DecryptInit_ex(c, NULL, NULL, key, NULL) != 1) return -ERR_NOMEM;
  unsigned char iv[NONCE_LEN], ad[AD_V2_LEN];
  size_t off = 0, out = 0;
  for (size_t k = 0; k < count; k++) {
    uint32_t s = s0 + (uint32_t)k;
    size_t seg = len - off < SEGMENT_SEALED ? len - off : SEGMENT_SEALED;
    size_t ct = seg - TAG_LEN;
    int n = 0, fin = 0;
    segment_iv(iv, nonce, s);
    segment_ad(ad, prefix, s, s == last_seg);
    if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) != 1 ||
        EVP_DecryptUpdate(c, NULL, &n, ad, AD_V2_LEN) != 1 ||
        (ct > 0 && EVP_DecryptUpdate(c, dst + out, &n, segs + off, (int)ct) != 1) ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(segs + off + ct)) != 1 ||
        EVP_DecryptFinal_ex(c, dst + out + ct, &fin) != 1) {
      memset(dst, 0, total);
      return -ERR_AUTH;
    }
    off += seg;
    out += ct;
  }
  return (int64_t)out;
}

int seal_segs (const unsigned char *key, const unsigned char *prefix, const unsigned char *nonce,
               uint32_t first, const unsigned char *plain, size_t plainlen, unsigned char *out) {
  if (ectx == NULL) {
    if ((ectx = EVP_CIPHER_CTX_new()) == NULL) return -1;
    if (EVP_EncryptInit_ex(ectx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) { EVP_CIPHER_CTX_free(ectx); ectx = NULL; return -1; }
  }
  size_t count = segments_of((int64_t)plainlen);
  unsigned char iv[NONCE_LEN], ad[AD_V2_LEN], tmp[SEGMENT];
  bool fail = EVP_EncryptInit_ex(ectx, NULL, NULL, key, NULL) != 1;
  for (size_t k = count; !fail && k-- > 0;) {
    uint32_t s = first + (uint32_t)k;
    size_t from = k * SEGMENT, len = plainlen - from < SEGMENT ? plainlen - from : SEGMENT;
    int n = 0, fin = 0;
    segment_iv(iv, nonce, s);
    segment_ad(ad, prefix, s, k == count - 1);
    unsigned char *dst = out + k * SEGMENT_SEALED;
    fail = EVP_EncryptInit_ex(ectx, NULL, NULL, NULL, iv) != 1 ||
      EVP_EncryptUpdate(ectx, NULL, &n, ad, AD_V2_LEN) != 1 ||
      (len > 0 && EVP_EncryptUpdate(ectx, tmp, &n, plain + from, (int)len) != 1) ||
      EVP_EncryptFinal_ex(ectx, tmp + len, &fin) != 1;
    if (!fail) {
      memmove(dst, tmp, len);
      fail = EVP_CIPHER_CTX_ctrl(ectx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, dst + len) != 1;
    }
  }
  OPENSSL_cleanse(tmp, sizeof tmp);
  return fail ? -1 : 0;
}
