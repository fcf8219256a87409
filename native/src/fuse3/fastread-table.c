// The native read table (see fastread.c for what JS promises about it): per file its key and
// size and its entries in chunks of FR_CHUNK, the handle -> file map the workers look up, and the
// key pages.
//
// Keys live in pages mapped for them (mlock'ed where allowed, left out of core dumps), zeroed
// when their file is dropped; the worker's stack copy is zeroed after each read.
#include "fastread-table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define FR_KEYS_PER_PAGE_SET 2048     // keys per mapping of 64 KiB
#define FR_KEY_SETS 16                // at most 32,768 files with entries at once

// ---- key pages ------------------------------------------------------------------------------

static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *key_sets[FR_KEY_SETS];
static unsigned char *key_free; // free slots, linked through their first bytes

unsigned char *fr_key_alloc (void) {
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

void fr_key_release (unsigned char *k) {
  explicit_bzero(k, KEY_LEN);
  pthread_mutex_lock(&key_mu);
  memcpy(k, &key_free, sizeof key_free);
  key_free = k;
  pthread_mutex_unlock(&key_mu);
}

// ---- the table (callers hold fr->mu) --------------------------------------------------------

fr_file_t *fr_file_of (fastread_t *fr, int32_t fid) {
  return fid >= 0 && (uint32_t)fid < fr->nfiles && fr->files[fid].key != NULL ? &fr->files[fid] : NULL;
}

fr_entry_t *fr_entry_of (fr_file_t *f, uint64_t idx) {
  uint64_t c = idx / FR_CHUNK;
  if (c >= f->nchunks || f->chunks[c] == NULL) return NULL;
  fr_entry_t *e = &f->chunks[c][idx % FR_CHUNK];
  return e->set ? e : NULL;
}

size_t fr_patched_size (uint8_t n) { return sizeof(fr_patched_t) + (size_t)n * sizeof(fr_obj_t); }

void fr_entry_clear (fastread_t *fr, fr_entry_t *e) {
  if (e->px != NULL) { fr->pbytes -= fr_patched_size(e->px->n); free(e->px); e->px = NULL; }
  free(e->check);
  e->check = NULL;
  e->set = 0;
}

void fr_drop_all (fastread_t *fr, fr_file_t *f) {
  for (uint32_t c = 0; c < f->nchunks; c++) {
    if (f->chunks[c] == NULL) continue;
    for (int i = 0; i < FR_CHUNK; i++) if (f->chunks[c][i].set) { fr_entry_clear(fr, &f->chunks[c][i]); fr->entries--; }
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
void fr_drop_range (fastread_t *fr, fr_file_t *f, uint64_t from, uint64_t to) {
  if (f->nchunks == 0 || f->count == 0) return;
  if (to >= (uint64_t)f->nchunks * FR_CHUNK) to = (uint64_t)f->nchunks * FR_CHUNK - 1;
  for (uint64_t c = from / FR_CHUNK; c <= to / FR_CHUNK && f->count > 0; c++) {
    fr_entry_t *chunk = f->chunks[c];
    if (chunk == NULL) continue;
    uint64_t lo = c == from / FR_CHUNK ? from % FR_CHUNK : 0;
    uint64_t hi = c == to / FR_CHUNK ? to % FR_CHUNK : FR_CHUNK - 1;
    for (uint64_t i = lo; i <= hi; i++) {
      if (!chunk[i].set) continue;
      fr_entry_clear(fr, &chunk[i]);
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

int32_t fr_bound (fastread_t *fr, uint64_t fh) {
  if (fr->bcount == 0) return -1;
  fr_bind_t *b = &fr->binds[bind_slot(fr, fh)];
  return b->fid >= 0 ? b->fid : -1;
}

void fr_unbind (fastread_t *fr, uint64_t fh) {
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

bool fr_bind (fastread_t *fr, uint64_t fh, int32_t fid) {
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

void fr_free_file (fastread_t *fr, int32_t fid) {
  fr_file_t *f = fr_file_of(fr, fid);
  if (f == NULL) return;
  fr_drop_all(fr, f);
  fr_key_release(f->key);
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
  for (uint32_t i = 0; i < n; i++) fr_unbind(fr, fhs[i]);
  if (fhs != stack) free(fhs);
}

fr_entry_t *fr_entry_for_put (fr_file_t *f, uint64_t idx) {
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
  for (uint32_t i = 0; i < fr->nfiles; i++) fr_free_file(fr, (int32_t)i);
  free(fr->files);
  free(fr->binds);
  pthread_mutex_destroy(&fr->mu);
  free(fr);
}
