// Native reads: a FUSE read that falls entirely in blocks JS has checked is answered on the
// worker thread that received it (pread of the 4 KiB segments it covers, AES-256-GCM open and
// tag check, reply), with no hand-off to the JS thread. This file owns the table JS fills and
// empties (per file: its key, its size, and per block index where the sealed object lies and its
// nonce and associated data; for a block with sealed patches, per 4 KiB segment the object that
// holds it), the handle -> file map the worker looks up, and that read.
//
// What JS promises (src/fs/tree/file-read.ts, src/fs/fuse/native-reads.ts): an entry names a
// clean block (format 2, not dirty) whose objects named in it were each checked against their CID
// in this process, at a place in a pack that never changes (packs are append-only and closed only
// after unmount); every change that could change what a block index reads as (write, truncate,
// fallocate, a merge swapped in under an open file, the file's last handle closed) drops the
// entries first, synchronously on the JS thread, before the change is visible. A segment that
// authenticates under the checked object's nonce and position can only be that object's, so the
// CID pin holds as on the JS path.
//
// Streaming entries (readPutStream): a block sealed whole that no read has checked yet comes with
// its CID's digest instead of a nonce, put ahead of a stream by the JS read that found the table
// empty. Its first read here reads the whole record (blocks back to back in one pack: one pread,
// O_DIRECT where the pack is open so), hashes it and compares with the digest before anything is
// opened, as the JS run reader (space_block.c) does; the nonce then comes from the checked bytes
// and the entry becomes an ordinary one (on the pack's buffered descriptor). A stream of cold
// blocks so never waits for the JS thread or the libuv pool: four hand-offs between threads per
// 1 MiB request, and the JS thread's allocations, are gone.
//
// Anything the table cannot answer (no entry for a block, past the end of the file, a failed
// read or tag) falls back to the JS path, which answers or reports the error as before.
//
// Locking: one mutex per mount, held only to look up and copy an entry set (and the key) into the
// worker's stack, never across the pread: JS's drops wait at most for such a copy. A read whose
// lookup came before a drop may still answer with the old bytes: it was concurrent with the
// change (the change's reply comes after the drop).
//
// Keys live in pages mapped for them (mlock'ed where allowed, left out of core dumps), zeroed
// when their file is dropped; the worker's stack copy is zeroed after each read.
#include "fuse3.h"
#include "../block/seal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FR_BLOCK (128 * 1024)
#define FR_CHUNK 256                  // entries per chunk of a file's table
#define FR_MAX_ENTRIES (128 * 1024)   // per mount: 9 MiB of entries, 16 GiB of blocks
#define FR_MAX_READ (1024 * 1024)     // larger reads go to JS (the streaming path)
#define FR_MAX_BLOCKS (FR_MAX_READ / FR_BLOCK + 1)
#define FR_KEYS_PER_PAGE_SET 2048     // keys per mapping of 64 KiB
#define FR_KEY_SETS 16                // at most 32,768 files with entries at once
#define FR_SEGS (FR_BLOCK / SEGMENT)
#define FR_MAX_OBJS 33                // a base and its patches (a fold comes at 16 patched segments)
#define FR_HOLE 0xff                  // segment map: zeros
#define FR_UNKNOWN 0xfe               // segment map: its object not checked yet: JS answers
#define FR_MAX_PATCH_BYTES (16 << 20) // per mount, for the object lists of patched blocks
#define FR_RUN_GAP 256                // bytes between two records that still count as back to back

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

// ---- key pages ------------------------------------------------------------------------------

static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *key_sets[FR_KEY_SETS];
static unsigned char *key_free; // free slots, linked through their first bytes

static unsigned char *key_alloc (void) {
  pthread_mutex_lock(&key_mu);
  if (key_free == NULL) {
    for (int i = 0; i < FR_KEY_SETS; i++) {
      if (key_sets[i] != NULL) continue;
      size_t len = (size_t)FR_KEYS_PER_PAGE_SET * KEY_LEN;
      void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) break;
      (void)mlock(p, len);               // not swapped out where the limit allows
      (void)madvise(p, len, MADV_DONTDUMP);
      key_sets[i] = p;
      for (int k = FR_KEYS_PER_PAGE_SET - 1; k >= 0; k--) {
        unsigned char *slot = key_sets[i] + (size_t)k * KEY_LEN;
        memcpy(slot, &key_free, sizeof key_free);
        key_free = slot;
      }
      break;
    }
  }
  unsigned char *k = key_free;
  if (k != NULL) memcpy(&key_free, k, sizeof key_free);
  pthread_mutex_unlock(&key_mu);
  return k;
}

static void key_release (unsigned char *k) {
  explicit_bzero(k, KEY_LEN);
  pthread_mutex_lock(&key_mu);
  memcpy(k, &key_free, sizeof key_free);
  key_free = k;
  pthread_mutex_unlock(&key_mu);
}

// ---- the table (callers hold fr->mu) --------------------------------------------------------

static fr_file_t *file_of (fastread_t *fr, int32_t fid) {
  return fid >= 0 && (uint32_t)fid < fr->nfiles && fr->files[fid].key != NULL ? &fr->files[fid] : NULL;
}

static fr_entry_t *entry_of (fr_file_t *f, uint64_t idx) {
  uint64_t c = idx / FR_CHUNK;
  if (c >= f->nchunks || f->chunks[c] == NULL) return NULL;
  fr_entry_t *e = &f->chunks[c][idx % FR_CHUNK];
  return e->set ? e : NULL;
}

static size_t patched_size (uint8_t n) { return sizeof(fr_patched_t) + (size_t)n * sizeof(fr_obj_t); }

static void entry_clear (fastread_t *fr, fr_entry_t *e) {
  if (e->px != NULL) { fr->pbytes -= patched_size(e->px->n); free(e->px); e->px = NULL; }
  free(e->check);
  e->check = NULL;
  e->set = 0;
}

static void drop_all (fastread_t *fr, fr_file_t *f) {
  for (uint32_t c = 0; c < f->nchunks; c++) {
    if (f->chunks[c] == NULL) continue;
    for (int i = 0; i < FR_CHUNK; i++) if (f->chunks[c][i].set) { entry_clear(fr, &f->chunks[c][i]); fr->entries--; }
    free(f->chunks[c]);
  }
  free(f->chunks);
  f->chunks = NULL;
  f->nchunks = 0;
  f->count = 0;
  f->size = 0;
}

/* By chunk, skipping empty ones, and done once the file holds no entry: a growing write drops
 * from its old last block to the end, which walked every index up to the chunk capacity (9 ms per
 * drop at 1M indices, on the JS thread, under the mutex). */
static void drop_range (fastread_t *fr, fr_file_t *f, uint64_t from, uint64_t to) {
  if (f->nchunks == 0 || f->count == 0) return;
  if (to >= (uint64_t)f->nchunks * FR_CHUNK) to = (uint64_t)f->nchunks * FR_CHUNK - 1;
  for (uint64_t c = from / FR_CHUNK; c <= to / FR_CHUNK && f->count > 0; c++) {
    fr_entry_t *chunk = f->chunks[c];
    if (chunk == NULL) continue;
    uint64_t lo = c == from / FR_CHUNK ? from % FR_CHUNK : 0;
    uint64_t hi = c == to / FR_CHUNK ? to % FR_CHUNK : FR_CHUNK - 1;
    for (uint64_t i = lo; i <= hi; i++) {
      if (!chunk[i].set) continue;
      entry_clear(fr, &chunk[i]);
      f->count--;
      fr->entries--;
    }
  }
}

static uint32_t bind_slot (fastread_t *fr, uint64_t fh) {
  uint32_t mask = fr->bcap - 1, i = (uint32_t)((fh * 0x9e3779b97f4a7c15ull) >> 32) & mask;
  while (fr->binds[i].fid >= 0 && fr->binds[i].fh != fh) i = (i + 1) & mask;
  return i;
}

static int32_t bound (fastread_t *fr, uint64_t fh) {
  if (fr->bcount == 0) return -1;
  fr_bind_t *b = &fr->binds[bind_slot(fr, fh)];
  return b->fid >= 0 ? b->fid : -1;
}

static void unbind (fastread_t *fr, uint64_t fh) {
  if (fr->bcount == 0) return;
  uint32_t mask = fr->bcap - 1, i = bind_slot(fr, fh);
  if (fr->binds[i].fid < 0) return;
  fr->binds[i].fid = -1;
  fr->bcount--;
  // Backward-shift deletion: later members of the probe run move up into the hole.
  for (uint32_t j = (i + 1) & mask; fr->binds[j].fid >= 0; j = (j + 1) & mask) {
    fr_bind_t b = fr->binds[j];
    fr->binds[j].fid = -1;
    fr->binds[bind_slot(fr, b.fh)] = b;
  }
}

static bool bind (fastread_t *fr, uint64_t fh, int32_t fid) {
  if ((fr->bcount + 1) * 2 > fr->bcap) {
    uint32_t cap = fr->bcap == 0 ? 64 : fr->bcap * 2;
    fr_bind_t *old = fr->binds, *nb = malloc(sizeof *nb * cap);
    if (nb == NULL) return false;
    for (uint32_t i = 0; i < cap; i++) nb[i].fid = -1;
    uint32_t oldcap = fr->bcap;
    fr->binds = nb;
    fr->bcap = cap;
    for (uint32_t i = 0; i < oldcap; i++) if (old[i].fid >= 0) fr->binds[bind_slot(fr, old[i].fh)] = old[i];
    free(old);
  }
  uint32_t i = bind_slot(fr, fh);
  if (fr->binds[i].fid < 0) fr->bcount++;
  fr->binds[i].fh = fh;
  fr->binds[i].fid = fid;
  return true;
}

static void free_file (fastread_t *fr, int32_t fid) {
  fr_file_t *f = file_of(fr, fid);
  if (f == NULL) return;
  drop_all(fr, f);
  key_release(f->key);
  f->key = NULL;
  // No handle may keep naming this fid: the next file given it would answer that handle's reads.
  // (Collected first: an unbind moves other members of its probe run.)
  uint32_t n = 0;
  for (uint32_t i = 0; i < fr->bcap; i++) if (fr->binds[i].fid == fid) n++;
  uint64_t stack[16], *fhs = n <= 16 ? stack : malloc(sizeof *fhs * n);
  if (fhs == NULL) { // out of memory: clear them in place and rebuild the probe runs
    for (uint32_t i = 0; i < fr->bcap; i++) if (fr->binds[i].fid == fid) { fr->binds[i].fid = -1; fr->bcount--; }
    for (uint32_t i = 0; i < fr->bcap; i++) {
      if (fr->binds[i].fid < 0) continue;
      fr_bind_t b = fr->binds[i];
      fr->binds[i].fid = -1;
      fr->binds[bind_slot(fr, b.fh)] = b;
    }
    return;
  }
  n = 0;
  for (uint32_t i = 0; i < fr->bcap; i++) if (fr->binds[i].fid == fid) fhs[n++] = fr->binds[i].fh;
  for (uint32_t i = 0; i < n; i++) unbind(fr, fhs[i]);
  if (fhs != stack) free(fhs);
}

// ---- the read on the worker -------------------------------------------------------------------

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
typedef struct { unsigned char sealed[V2_HEADER + (FR_BLOCK / SEGMENT) * SEGMENT_SEALED]; unsigned char plain[FR_BLOCK]; } scratch_t;
static void scratch_free (void *p) { if (p != NULL) { explicit_bzero(((scratch_t *)p)->plain, FR_BLOCK); free(p); } }
static void scratch_init (void) { (void)pthread_key_create(&scratch_key, scratch_free); }

// Runs of whole records read for their check go into one of FR_RUN_BUFS buffers shared by the
// workers (page-aligned for O_DIRECT, each grown to the largest run, ~1.1 MiB): a buffer per
// worker (10) took the 4 GiB copy's peak RSS up by ~12 MiB. A worker waits for a free one, so at
// most that many such reads are in flight: 8 read a cold GiB faster than 4 in each of four
// pairs (0.80-1.39 against 0.95-1.54 s, load ~4), for ~4.5 MiB more.
#define FR_RUN_BUFS 8
static pthread_mutex_t run_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t run_cv = PTHREAD_COND_INITIALIZER;
static struct { unsigned char *buf; size_t len; bool busy; } run_bufs[FR_RUN_BUFS];

static scratch_t *scratch (void) {
  pthread_once(&scratch_once, scratch_init);
  scratch_t *s = pthread_getspecific(scratch_key);
  if (s == NULL && (s = malloc(sizeof *s)) != NULL && pthread_setspecific(scratch_key, s) != 0) { free(s); s = NULL; }
  return s;
}

static void run_give (int slot);

// A free run buffer of at least `want` bytes (waiting for one), its number in *slot; NULL when out of memory.
static unsigned char *run_take (size_t want, int *slot) {
  pthread_mutex_lock(&run_mu);
  int i;
  for (;;) {
    for (i = 0; i < FR_RUN_BUFS && run_bufs[i].busy; i++) {}
    if (i < FR_RUN_BUFS) break;
    pthread_cond_wait(&run_cv, &run_mu);
  }
  run_bufs[i].busy = true;
  pthread_mutex_unlock(&run_mu);
  if (run_bufs[i].len < want) {
    free(run_bufs[i].buf);
    run_bufs[i].len = 0;
    if (posix_memalign((void **)&run_bufs[i].buf, PAGE, want) != 0) run_bufs[i].buf = NULL;
    else run_bufs[i].len = want;
  }
  *slot = i;
  if (run_bufs[i].buf == NULL) { run_give(i); return NULL; }
  return run_bufs[i].buf;
}

static void run_give (int slot) {
  pthread_mutex_lock(&run_mu);
  run_bufs[slot].busy = false;
  pthread_cond_signal(&run_cv);
  pthread_mutex_unlock(&run_mu);
}

static bool pread_all (int fd, unsigned char *dst, size_t len, int64_t pos) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, dst + done, len - done, (off_t)(pos + (int64_t)done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += (size_t)n;
  }
  return true;
}

// Block bytes [a, b) into dst from the objects holding them, one pread and open per run of
// segments one object holds (zeros for a hole, or past an object's plaintext); false: JS answers.
static bool read_block (const fr_src_t *src, const unsigned char *key, int64_t a, int64_t b, char *dst, scratch_t *s) {
  uint32_t s0 = (uint32_t)(a / SEGMENT), s1 = (uint32_t)((b - 1) / SEGMENT);
  for (uint32_t ra = s0; ra <= s1;) {
    uint8_t o = src->seg[ra];
    uint32_t rb = ra;
    while (rb < s1 && src->seg[rb + 1] == o) rb++;
    int64_t lo = (int64_t)ra * SEGMENT > a ? (int64_t)ra * SEGMENT : a;
    int64_t hi = (int64_t)(rb + 1) * SEGMENT < b ? (int64_t)(rb + 1) * SEGMENT : b;
    int64_t stop = lo;
    if (o != FR_HOLE) {
      if (o >= src->n) return false; // FR_UNKNOWN
      const fr_obj_t *ob = &src->obj[o];
      int64_t plain = v2_plain_length(ob->len);
      if (plain < 0 || ra < ob->first) return false;
      int64_t oend = (int64_t)ob->first * SEGMENT + plain; // where its plaintext ends in the block
      stop = hi < oend ? hi : oend;
      if (stop > lo) {
        uint32_t x1 = (uint32_t)((stop - 1) / SEGMENT);
        uint32_t last = ob->first + (uint32_t)segments_of(plain) - 1;
        size_t off = V2_HEADER + (size_t)(ra - ob->first) * SEGMENT_SEALED;
        size_t end = V2_HEADER + (size_t)(x1 - ob->first + 1) * SEGMENT_SEALED;
        if (end > ob->len) end = ob->len;
        if (!pread_all(ob->fd, s->sealed, end - off, ob->pos + (int64_t)off)) return false;
        int64_t n = open_segs(key, src->ad, ob->nonce, ra, last, s->sealed, end - off, s->plain);
        if (n < 0) return false;
        memcpy(dst + (lo - a), s->plain + (lo - (int64_t)ra * SEGMENT), (size_t)(stop - lo));
        explicit_bzero(s->plain, (size_t)n);
      } else {
        stop = lo;
      }
    }
    if (stop < hi) memset(dst + (stop - a), 0, (size_t)(hi - stop));
    ra = rb + 1;
  }
  return true;
}

static bool read_checked_in (const fr_src_t *src, uint64_t n, const unsigned char *key, uint64_t idx, uint64_t off, uint64_t end,
                             char *buf, scratch_t *s, unsigned char (*nonces)[NONCE_LEN], unsigned char *run, int64_t rstart,
                             int fd, size_t need, size_t want, bool direct);

// Streaming entries src[0..n) (back to back in one pack), block indices from idx: their records
// read in one pread, each hashed and compared with its digest, then its bytes of file range
// [off, end) opened into buf (which holds file bytes from off). Each one's nonce into nonces[i].
// false: JS answers (a failed read, digest or tag; nothing unauthenticated stays in buf).
static bool read_checked (const fr_src_t *src, uint64_t n, const unsigned char *key, uint64_t idx, uint64_t off, uint64_t end,
                          char *buf, scratch_t *s, unsigned char (*nonces)[NONCE_LEN]) {
  bool direct = src[0].ck.direct;
  int fd = src[0].ck.dfd;
  int64_t start = src[0].obj[0].pos, stop = src[n - 1].obj[0].pos + (int64_t)src[n - 1].obj[0].len;
  int64_t rstart = direct ? start & ~(int64_t)(PAGE - 1) : start;
  size_t need = (size_t)(stop - rstart);
  size_t want = direct ? (need + PAGE - 1) & ~(size_t)(PAGE - 1) : need;
  int slot;
  unsigned char *run = run_take(want, &slot);
  if (run == NULL) return false;
  bool ok = read_checked_in(src, n, key, idx, off, end, buf, s, nonces, run, rstart, fd, need, want, direct);
  run_give(slot);
  return ok;
}

static bool read_checked_in (const fr_src_t *src, uint64_t n, const unsigned char *key, uint64_t idx, uint64_t off, uint64_t end,
                             char *buf, scratch_t *s, unsigned char (*nonces)[NONCE_LEN], unsigned char *run, int64_t rstart,
                             int fd, size_t need, size_t want, bool direct) {
  for (size_t done = 0; done < need;) {
    ssize_t got = pread(fd, run + done, want - done, (off_t)(rstart + (int64_t)done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    done += (size_t)got;
    if (direct && done < need && done % PAGE != 0) return false; // cut short
  }
  for (uint64_t k = 0; k < n; k++) {
    const fr_obj_t *ob = &src[k].obj[0];
    const unsigned char *sealed = run + (ob->pos - rstart);
    unsigned char got[DIGEST_LEN];
    if (ob->len <= V2_HEADER || sealed[0] != SEAL_V2 || digest(src[k].ck.hash[0], sealed, ob->len, got) != 0 ||
        CRYPTO_memcmp(got, src[k].ck.hash + 1, DIGEST_LEN) != 0) return false;
    int64_t plain = v2_plain_length(ob->len);
    if (plain < 0) return false;
    int64_t bstart = (int64_t)((idx + k) * FR_BLOCK);
    int64_t a = (int64_t)off > bstart ? (int64_t)off - bstart : 0;
    int64_t b = (int64_t)end < bstart + FR_BLOCK ? (int64_t)end - bstart : FR_BLOCK;
    char *dst = buf + (bstart + a - (int64_t)off);
    int64_t pb = b < plain ? b : plain; // the block's bytes this object holds
    if (pb > a) {
      uint32_t s0 = (uint32_t)(a / SEGMENT), s1 = (uint32_t)((pb - 1) / SEGMENT);
      uint32_t last = (uint32_t)segments_of(plain) - 1;
      size_t so = V2_HEADER + (size_t)s0 * SEGMENT_SEALED, se = V2_HEADER + (size_t)(s1 + 1) * SEGMENT_SEALED;
      if (se > ob->len) se = ob->len;
      int64_t opened_end = (int64_t)(s1 + 1) * SEGMENT < plain ? (int64_t)(s1 + 1) * SEGMENT : plain;
      // Straight into the reply when the segments opened are exactly the bytes asked for.
      bool straight = a == (int64_t)s0 * SEGMENT && opened_end <= b;
      unsigned char *into = straight ? (unsigned char *)dst : s->plain;
      int64_t got_n = open_segs(key, src[k].ad, sealed + 1, s0, last, sealed + so, se - so, into);
      if (got_n < 0) return false;
      if (!straight) {
        memcpy(dst, s->plain + (a - (int64_t)s0 * SEGMENT), (size_t)(pb - a));
        explicit_bzero(s->plain, (size_t)got_n);
      }
    }
    if (pb < b) memset(dst + (pb > a ? pb - a : 0), 0, (size_t)(b - (pb > a ? pb : a)));
    memcpy(nonces[k], sealed + 1, NONCE_LEN);
  }
  return true;
}

// After a read checked them: the streaming entries of blocks idx.. become ordinary entries
// (their nonce known, on the buffered descriptor), where they are still the ones read.
static void mark_checked (fastread_t *fr, int32_t fid, uint64_t idx, const fr_src_t *src, uint64_t n, unsigned char (*nonces)[NONCE_LEN]) {
  pthread_mutex_lock(&fr->mu);
  fr_file_t *f = file_of(fr, fid);
  for (uint64_t k = 0; f != NULL && k < n; k++) {
    fr_entry_t *e = entry_of(f, idx + k);
    if (e == NULL || e->check == NULL || e->px != NULL || e->whole.pos != src[k].obj[0].pos || e->whole.len != src[k].obj[0].len ||
        e->whole.fd != src[k].obj[0].fd || memcmp(e->check->hash, src[k].ck.hash, HASH_ENTRY) != 0 ||
        memcmp(e->ad, src[k].ad, AD_V2_PREFIX) != 0) continue;
    memcpy(e->whole.nonce, nonces[k], NONCE_LEN);
    free(e->check);
    e->check = NULL;
  }
  pthread_mutex_unlock(&fr->mu);
}

// A table entry as the sources a read works from.
static void src_of (const fr_entry_t *e, fr_src_t *src) {
  memcpy(src->ad, e->ad, AD_V2_PREFIX);
  src->check = e->check != NULL;
  if (src->check) src->ck = *e->check;
  if (e->px == NULL) {
    src->n = 1;
    memset(src->seg, 0, FR_SEGS);
    src->obj[0] = e->whole;
  } else {
    src->n = e->px->n;
    memcpy(src->seg, e->px->seg, FR_SEGS);
    memcpy(src->obj, e->px->obj, (size_t)e->px->n * sizeof(fr_obj_t));
  }
}

int fastread_read (mnt_t *m, uint64_t fh, char *buf, size_t size, off_t off) {
  fastread_t *fr = m->fr;
  if (fr == NULL || !fr->enabled || size == 0 || size > FR_MAX_READ || off < 0) return -1;
  fr_src_t es[FR_MAX_BLOCKS];
  unsigned char key[KEY_LEN];
  unsigned char nonces[FR_MAX_BLOCKS][NONCE_LEN];
  uint64_t end = 0, first = 0, nb = 0;
  bool ok = false, checked = false;
  pthread_mutex_lock(&fr->mu);
  int32_t fid = bound(fr, fh);
  fr_file_t *f = file_of(fr, fid);
  if (f != NULL && f->count > 0 && (uint64_t)off < f->size) {
    end = (uint64_t)off + size < f->size ? (uint64_t)off + size : f->size;
    first = (uint64_t)off / FR_BLOCK;
    nb = (end - 1) / FR_BLOCK - first + 1;
    ok = true;
    for (uint64_t i = 0; ok && i < nb; i++) {
      fr_entry_t *e = entry_of(f, first + i);
      if (e == NULL) ok = false;
      else src_of(e, &es[i]);
    }
    if (ok) memcpy(key, f->key, KEY_LEN);
  }
  pthread_mutex_unlock(&fr->mu);
  if (!ok) { atomic_fetch_add(&fr->fallbacks, 1); return -1; }
  scratch_t *s = scratch();
  ok = s != NULL;
  for (uint64_t i = 0; ok && i < nb;) {
    if (es[i].check) {
      // Streaming entries lying back to back in one pack: one read, each checked, then opened.
      uint64_t j = i + 1;
      while (j < nb && es[j].check && es[j].ck.dfd == es[i].ck.dfd && es[j].ck.direct == es[i].ck.direct &&
             es[j].obj[0].pos >= es[j - 1].obj[0].pos + (int64_t)es[j - 1].obj[0].len &&
             es[j].obj[0].pos - (es[j - 1].obj[0].pos + (int64_t)es[j - 1].obj[0].len) <= FR_RUN_GAP) j++;
      ok = read_checked(&es[i], j - i, key, first + i, (uint64_t)off, end, buf + 0, s, &nonces[i]);
      checked = true;
      i = j;
      continue;
    }
    int64_t start = (int64_t)((first + i) * FR_BLOCK);
    int64_t a = (int64_t)off > start ? (int64_t)off : start;
    int64_t b = (int64_t)end < start + FR_BLOCK ? (int64_t)end : start + FR_BLOCK;
    ok = read_block(&es[i], key, a - start, b - start, buf + (a - (int64_t)off), s);
    i++;
  }
  if (ok && checked) {
    for (uint64_t i = 0; i < nb;) {
      if (!es[i].check) { i++; continue; }
      uint64_t j = i + 1;
      while (j < nb && es[j].check) j++;
      mark_checked(fr, fid, first + i, &es[i], j - i, &nonces[i]);
      i = j;
    }
  }
  explicit_bzero(key, KEY_LEN);
  explicit_bzero(es, sizeof es);
  seal_dctx_forget(); // the worker's OpenSSL context held this file's expanded key
  if (!ok) { atomic_fetch_add(&fr->fallbacks, 1); return -1; }
  atomic_fetch_add(&fr->hits, 1);
  return (int)(end - (uint64_t)off);
}

// ---- life ------------------------------------------------------------------------------------

fastread_t *fastread_new (void) {
  fastread_t *fr = calloc(1, sizeof *fr);
  if (fr == NULL) return NULL;
  pthread_mutex_init(&fr->mu, NULL);
  atomic_init(&fr->hits, 0);
  atomic_init(&fr->fallbacks, 0);
  return fr;
}

// After the workers stopped: nothing reads the table any more.
void fastread_free (fastread_t *fr) {
  if (fr == NULL) return;
  for (uint32_t i = 0; i < fr->nfiles; i++) free_file(fr, (int32_t)i);
  free(fr->files);
  free(fr->binds);
  pthread_mutex_destroy(&fr->mu);
  free(fr);
}

// ---- N-API (JS thread) -----------------------------------------------------------------------

static bool arg_i64 (napi_env env, napi_value v, int64_t *out) { return napi_get_value_int64(env, v, out) == napi_ok; }

static fastread_t *args (napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) return NULL;
  mnt_t *m = get_mnt(env, argv[0]);
  return m != NULL ? m->fr : NULL;
}

static napi_value num (napi_env env, double v) { napi_value r; napi_create_double(env, v, &r); return r; }

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
  unsigned char *k = key_alloc();
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
  if (fid < 0) key_release(k);
  return num(env, fid);
}

// readFileFree(h, fid): drops the file's entries and handles and zeroes its key.
napi_value FastFree (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fastread_t *fr = args(env, info, 2, argv);
  int64_t fid;
  if (fr == NULL || !arg_i64(env, argv[1], &fid)) { napi_throw_type_error(env, NULL, "readFileFree(handle, fid)"); return NULL; }
  pthread_mutex_lock(&fr->mu);
  free_file(fr, (int32_t)fid);
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
  if (fid < 0 || file_of(fr, (int32_t)fid) == NULL) unbind(fr, (uint64_t)fh);
  else ok = bind(fr, (uint64_t)fh, (int32_t)fid);
  pthread_mutex_unlock(&fr->mu);
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
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
    if ((px = malloc(patched_size((uint8_t)n))) == NULL) ok = false;
    else { px->n = (uint8_t)n; memcpy(px->seg, sm, FR_SEGS); memcpy(px->obj, ob, n * sizeof *ob); }
  }
  pthread_mutex_lock(&fr->mu);
  fr_file_t *f = ok ? file_of(fr, (int32_t)fid) : NULL;
  ok = f != NULL && (px == NULL || fr->pbytes + patched_size(px->n) <= FR_MAX_PATCH_BYTES);
  if (ok) {
    uint64_t c = (uint64_t)idx / FR_CHUNK;
    if (c >= f->nchunks) {
      uint32_t nc = f->nchunks == 0 ? 4 : f->nchunks;
      while (nc <= c) nc *= 2;
      fr_entry_t **chunks = realloc(f->chunks, sizeof *chunks * nc);
      if (chunks == NULL) ok = false;
      else { memset(chunks + f->nchunks, 0, sizeof *chunks * (nc - f->nchunks)); f->chunks = chunks; f->nchunks = nc; }
    }
    if (ok && f->chunks[c] == NULL && (f->chunks[c] = calloc(FR_CHUNK, sizeof **f->chunks)) == NULL) ok = false;
    fr_entry_t *e = ok ? &f->chunks[c][idx % FR_CHUNK] : NULL;
    if (e != NULL && !e->set && fr->entries >= FR_MAX_ENTRIES) ok = false;
    if (ok) {
      if (e->set) entry_clear(fr, e);
      else { f->count++; fr->entries++; }
      memcpy(e->ad, ad, AD_V2_PREFIX);
      if (px == NULL) e->whole = ob[0];
      else { e->px = px; fr->pbytes += patched_size(px->n); px = NULL; }
      e->set = 1;
      f->size = (uint64_t)size;
    }
  }
  pthread_mutex_unlock(&fr->mu);
  free(px); // not kept
  explicit_bzero(ob, sizeof ob);
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

// Entry idx of file f for a put, its chunk allocated (caller holds fr->mu); NULL when out of memory.
static fr_entry_t *entry_for_put (fr_file_t *f, uint64_t idx) {
  uint64_t c = idx / FR_CHUNK;
  if (c >= f->nchunks) {
    uint32_t nc = f->nchunks == 0 ? 4 : f->nchunks;
    while (nc <= c) nc *= 2;
    fr_entry_t **chunks = realloc(f->chunks, sizeof *chunks * nc);
    if (chunks == NULL) return NULL;
    memset(chunks + f->nchunks, 0, sizeof *chunks * (nc - f->nchunks));
    f->chunks = chunks;
    f->nchunks = nc;
  }
  if (f->chunks[c] == NULL && (f->chunks[c] = calloc(FR_CHUNK, sizeof **f->chunks)) == NULL) return NULL;
  return &f->chunks[c][idx % FR_CHUNK];
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
  fr_file_t *f = ok ? file_of(fr, (int32_t)fid) : NULL;
  for (size_t i = 0; f != NULL && i < n; i++) {
    const double *o = objs + i * 5;
    const unsigned char *h = (const unsigned char *)hashes + i * HASH_ENTRY;
    if (!(o[0] >= 0 && o[0] <= INT32_MAX && o[1] >= 0 && o[1] <= INT32_MAX && o[3] >= 0 && o[4] > V2_HEADER &&
          o[4] <= V2_HEADER + FR_SEGS * SEGMENT_SEALED && (h[0] == MH_BLAKE3 || h[0] == MH_SHA2_256))) continue;
    if (fr->entries >= FR_MAX_ENTRIES) break;
    fr_entry_t *e = entry_for_put(f, (uint64_t)first + i);
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
  fr_file_t *f = file_of(fr, (int32_t)fid);
  if (f != NULL) {
    if (to < 0) drop_all(fr, f); // the size goes with them: nothing answers until JS puts again
    else if (from >= 0 && to >= from) drop_range(fr, f, (uint64_t)from, (uint64_t)to);
  }
  pthread_mutex_unlock(&fr->mu);
  return NULL;
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
