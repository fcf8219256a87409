// Native reads: a FUSE read that falls entirely in blocks JS has checked is answered on the
// worker thread that received it (pread of the 4 KiB segments it covers, AES-256-GCM open and
// tag check, reply), with no hand-off to the JS thread. The table JS fills and empties (per
// file: its key, its size, and per block index where the sealed object lies and its
// nonce and associated data; for a block with sealed patches, per 4 KiB segment the object that
// holds it) and the handle -> file map are fastread-table.c's, JS's calls on them
// fastread-napi.c's; this file is the read on the worker.
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
#include "fastread-table.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FR_MAX_READ (1024 * 1024)     // larger reads go to JS (the streaming path)
#define FR_MAX_BLOCKS (FR_MAX_READ / FR_BLOCK + 1)
#define FR_RUN_GAP 256                // bytes between two records that still count as back to back

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
  fr_file_t *f = fr_file_of(fr, fid);
  for (uint64_t k = 0; f != NULL && k < n; k++) {
    fr_entry_t *e = fr_entry_of(f, idx + k);
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
  int32_t fid = fr_bound(fr, fh);
  fr_file_t *f = fr_file_of(fr, fid);
  if (f != NULL && f->count > 0 && (uint64_t)off < f->size) {
    end = (uint64_t)off + size < f->size ? (uint64_t)off + size : f->size;
    first = (uint64_t)off / FR_BLOCK;
    nb = (end - 1) / FR_BLOCK - first + 1;
    ok = true;
    for (uint64_t i = 0; ok && i < nb; i++) {
      fr_entry_t *e = fr_entry_of(f, first + i);
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
