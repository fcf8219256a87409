// The sealed-object crypto the block addon shares between its pool jobs (space_block.c) and its
// calls on the JS thread (block/calls.c), and whose v2 segment part the FUSE addon's native reads
// use too (fuse3/fastread.c): layouts, segment nonces and associated data, AES-256-GCM opening of
// v1 objects (seal.c) and v2 segments, sealing of v2 segments (segments.c), and the CID digests
// (seal.c). Layouts are in space_block.c's header comment and docs/format.md.
#ifndef SPACE_BLOCK_SEAL_H
#define SPACE_BLOCK_SEAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEAL_V1 1
#define SEAL_V2 2
#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (2 + NONCE_LEN)  // v1
#define V2_HEADER (1 + NONCE_LEN)
#define SEGMENT 4096
#define SEGMENT_SEALED (SEGMENT + TAG_LEN)
#define AD_V1_LEN 30
#define AD_V2_PREFIX 29
#define AD_V2_LEN (AD_V2_PREFIX + 5)
#define POS_LEN (AD_V1_LEN + AD_V2_PREFIX) // per object: v1 AD, then v2's AD prefix
#define KEY_LEN 32
#define MAX_AD 64
#define MAX_BLOCKS 256
#define MAX_RUN (64 << 20)
#define PAGE 4096
#define DIGEST_LEN 32
#define HASH_ENTRY (1 + DIGEST_LEN) // per block: multihash code (one byte), digest
#define MH_BLAKE3 0x1e
#define MH_SHA2_256 0x12

// Statuses. Run-level failures reject the promise; block-level ones are that block's result (negative).
enum { OK, ERR_ERRNO, ERR_SHORT, ERR_AUTH, ERR_FORMAT, ERR_RANGE, ERR_NOMEM, ERR_MISMATCH, ERR_UNSUPPORTED };

/** The calling thread's AES-256-GCM decryption context (segments.c), or NULL when out of memory. */
struct evp_cipher_ctx_st *seal_dctx (void);
// Loads an all-zero key into this thread's decryption context, so the expanded key of the last
// file it opened does not stay in the context's (ordinary heap) memory.
void seal_dctx_forget (void);
/** Plaintext length of a v2 object of `len` sealed bytes; -1 when no v2 object is that long. */
int64_t v2_plain_length (size_t len);
size_t segments_of (int64_t plain);
/** The digest of `len` bytes under multihash `code` into out[DIGEST_LEN]; -1 for another code. */
int digest (int code, const unsigned char *data, size_t len, unsigned char *out);
/**
 * Opens consecutive sealed v2 segments numbered s0, s0 + 1, ... (`len` sealed bytes back to
 * back) into dst; segment `last_seg` is the object's final one (AD last = 1). Returns the
 * plaintext length, or -ERR_AUTH with dst zeroed.
 */
int64_t open_segs (const unsigned char *key, const unsigned char *prefix, const unsigned char *nonce,
                   uint32_t s0, uint32_t last_seg, const unsigned char *segs, size_t len, unsigned char *dst);
/** Opens a v1 object of sealed type `type` (sealed[0] checked by the caller) into dst; plaintext length or -status. */
int64_t open_v1 (const unsigned char *key, int type, const unsigned char *ad, const unsigned char *sealed, size_t len, unsigned char *dst, size_t room);
/**
 * Seals `plainlen` bytes as v2 segments first, first + 1, ... (the last one with last = 1) into
 * out (ciphertext | tag per segment, no header): 0, or -1 when AES-GCM fails. Segments are
 * sealed from the last one back through a 4 KiB buffer, so `out` may lie in the same memory as
 * `plain`, starting at or after it.
 */
int seal_segs (const unsigned char *key, const unsigned char *prefix, const unsigned char *nonce,
               uint32_t first, const unsigned char *plain, size_t plainlen, unsigned char *out);
#endif
