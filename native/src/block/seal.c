// The sealed-object crypto only the block addon needs (seal.h): v1 opening and the CID digests
// (BLAKE3 from the C implementation Debian ships, sha2-256 of old stores from OpenSSL, which is
// Node's own). The v2 segment crypto, which the FUSE addon's native reads share, is segments.c.
#include "seal.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "blake3.h"
#include <limits.h>
#include <string.h>

// The digest of `len` bytes under multihash `code` into out[DIGEST_LEN]; -1 for another code.
int digest (int code, const unsigned char *data, size_t len, unsigned char *out) {
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

int64_t open_v1 (const unsigned char *key, int type, const unsigned char *ad, const unsigned char *sealed, size_t len, unsigned char *dst, size_t room) {
  if (len < HEADER_LEN + TAG_LEN) return -ERR_AUTH;
  if (sealed[1] != type) return -ERR_AUTH;
  size_t ct = len - HEADER_LEN - TAG_LEN;
  if (ct > room || ct > INT_MAX) return -ERR_RANGE;
  EVP_CIPHER_CTX *c = seal_dctx();
  if (c == NULL) return -ERR_NOMEM;
  int n = 0, fin = 0;
  if (EVP_DecryptInit_ex(c, NULL, NULL, key, sealed + 2) != 1 ||
      EVP_DecryptUpdate(c, NULL, &n, ad, AD_V1_LEN) != 1 ||
      EVP_DecryptUpdate(c, dst, &n, sealed + HEADER_LEN, (int)ct) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(sealed + HEADER_LEN + ct)) != 1 ||
      EVP_DecryptFinal_ex(c, dst + n, &fin) != 1) {
    memset(dst, 0, ct);
    return -ERR_AUTH;
  }
  return (int64_t)n + fin;
}

