// The native read table's shared parts (fastread-table.c owns it, fastread.c reads it on the
// workers, fastread-napi.c is how JS fills and empties it): its limits, its entries, and the
// calls on it. Every fr_* call on a table is made with fr->mu held.
#ifndef SPACE_FASTREAD_TABLE_H
#define SPACE_FASTREAD_TABLE_H

#include "fuse3.h"
#include "../block/seal.h"

#include <stdatomic.h>

#define FR_BLOCK (128 * 1024)
#define FR_CHUNK 256                  // entries per chunk of a file's table
#define FR_MAX_ENTRIES (128 * 1024)   // per mount: 9 MiB of entries, 16 GiB of blocks
#define FR_SEGS (FR_BLOCK / SEGMENT)
#define FR_MAX_OBJS 33                // a base and its patches (a fold comes at 16 patched segments)
#define FR_HOLE 0xff                  // segment map: zeros
#define FR_UNKNOWN 0xfe               // segment map: its object not checked yet: JS answers
#define FR_MAX_PATCH_BYTES (16 << 20) // per mount, for the object lists of patched blocks

// One sealed object of a block: its record in a pack, its nonce, the block segment its own
// segments are numbered from (a patch's first; 0 for a base).
typedef struct {
  int64_t pos;
  int32_t fd;
  uint32_t len;
  unsigned char nonce[NONCE_LEN];
  uint8_t first;
} fr_obj_t;

// A patched block: which object holds each segment, and the objects.
typedef struct {
  uint8_t n;
  uint8_t seg[FR_SEGS];
  fr_obj_t obj[];
} fr_patched_t;

// A streaming entry's object before its first read: where to read it whole (dfd: O_DIRECT when
// `direct`) and the digest its sealed bytes must have; whole.fd is the buffered descriptor.
typedef struct {
  int32_t dfd;
  unsigned char direct;
  unsigned char hash[HASH_ENTRY];
} fr_check_t;

typedef struct {
  fr_obj_t whole;               // a block sealed whole (px == NULL)
  unsigned char ad[AD_V2_PREFIX];
  unsigned char set;
  fr_patched_t *px;             // else its objects
  fr_check_t *check;            // a streaming entry not read yet (whole's nonce unknown), else NULL
} fr_entry_t;

// A block's sources as a read copies them out of the table.
typedef struct {
  unsigned char ad[AD_V2_PREFIX];
  uint8_t n;
  bool check;                   // obj[0] is read whole and checked against `ck` first
  fr_check_t ck;
  uint8_t seg[FR_SEGS];
  fr_obj_t obj[FR_MAX_OBJS];
} fr_src_t;

typedef struct {
  fr_entry_t **chunks;
  uint32_t nchunks;
  uint32_t count;
  uint64_t size;               // the file's size when its entries were put
  unsigned char *key;          // KEY_LEN bytes in a key page; NULL: slot free
} fr_file_t;

typedef struct { uint64_t fh; int32_t fid; } fr_bind_t; // fid < 0: empty

struct fastread {
  pthread_mutex_t mu;
  fr_file_t *files;
  uint32_t nfiles;
  fr_bind_t *binds;
  uint32_t bcap, bcount;       // bcap a power of two
  uint32_t entries;
  size_t pbytes;               // bytes of fr_patched_t held
  atomic_uint_fast64_t hits, fallbacks;
  bool enabled;
};

unsigned char *fr_key_alloc (void);
void fr_key_release (unsigned char *k);
fr_file_t *fr_file_of (fastread_t *fr, int32_t fid);
fr_entry_t *fr_entry_of (fr_file_t *f, uint64_t idx);
/** Entry idx of file f for a put, its chunk allocated; NULL when out of memory. */
fr_entry_t *fr_entry_for_put (fr_file_t *f, uint64_t idx);
size_t fr_patched_size (uint8_t n);
void fr_entry_clear (fastread_t *fr, fr_entry_t *e);
void fr_drop_all (fastread_t *fr, fr_file_t *f);
void fr_drop_range (fastread_t *fr, fr_file_t *f, uint64_t from, uint64_t to);
/** The file handle fh reads, or -1. */
int32_t fr_bound (fastread_t *fr, uint64_t fh);
void fr_unbind (fastread_t *fr, uint64_t fh);
bool fr_bind (fastread_t *fr, uint64_t fh, int32_t fid);
void fr_free_file (fastread_t *fr, int32_t fid);

#endif
