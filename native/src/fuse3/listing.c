// Directory listings: opendir, readdir and releasedir. Answered here, not in JS, except the
// listing itself, which one request to JS fetches at offset 0.
#include "fuse3.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

// A directory listing, kept from opendir to releasedir in fi->fh (both answered here, not in JS).
// The whole listing comes from JS at offset 0; the kernel then pages through it by offset (entry
// i has offset i + 1). Giving libfuse offsets is what makes readdirplus work in its high-level
// API: only then does it register each entry (do_lookup) and hand the kernel its attributes, so
// that `ls -l` needs no getattr per entry. Attributes go with an entry only when
//  - JS knew them exactly (a directory not loaded yet does not know its link count), and
//  - no op that changes attributes ran since the listing was asked for (mnt.changes): a later
//    page would otherwise hand the kernel an old size or type over what it learned since.
// Entries without them still carry inode number and type, and are looked up as usual.
typedef struct listing {
  char *names;          // NUL-separated
  const char **name;    // count pointers into names
  struct stat *stats;   // count, or NULL
  bool *exact;          // count, or NULL
  size_t count;
  uint64_t changes;     // mnt.changes when the listing was asked for
  bool filled;
} listing_t;

static void free_listing (listing_t *l) {
  free(l->names);
  free(l->name);
  free(l->stats);
  free(l->exact);
  l->names = NULL;
  l->name = NULL;
  l->stats = NULL;
  l->exact = NULL;
  l->count = 0;
  l->filled = false;
}

int f_opendir (const char *path, struct fuse_file_info *fi) {
  (void)path;
  listing_t *l = calloc(1, sizeof *l);
  if (l == NULL) return -ENOMEM;
  fi->fh = (uint64_t)(uintptr_t)l;
  return 0;
}

int f_releasedir (const char *path, struct fuse_file_info *fi) {
  (void)path;
  listing_t *l = (listing_t *)(uintptr_t)fi->fh;
  if (l != NULL) { free_listing(l); free(l); }
  fi->fh = 0;
  return 0;
}

// Takes the listing JS answered with out of the slot (on failure the old one is gone too).
static int fetch_listing (mnt_t *m, slot_t *s, listing_t *l) {
  free_listing(l);
  uint64_t changes = __atomic_load_n(&m->changes, __ATOMIC_SEQ_CST);
  int64_t r = call_js(m, s);
  if (r != 0) return (int)r;
  l->name = malloc((s->count > 0 ? s->count : 1) * sizeof *l->name);
  if (l->name == NULL) return -ENOMEM;
  l->names = s->names;
  l->stats = s->stats;
  l->exact = s->exact;
  l->count = s->count;
  l->changes = changes;
  s->names = NULL;
  s->stats = NULL;
  s->exact = NULL;
  const char *p = l->names;
  for (size_t i = 0; i < l->count; i++) { l->name[i] = p; p += strlen(p) + 1; }
  l->filled = true;
  return 0;
}

// Hands libfuse the entries from index `from` on, until its buffer is full.
//
// With attributes, libfuse registers an entry (raises its lookup count) before it finds that the
// entry does not fit, and the kernel never forgets what it never got: that node would stay in
// libfuse's table for good. The reply buffer's size is not passed to us, so it is learned: when a
// readdirplus buffer fills up, the bytes that fit are kept (the smallest seen, per mount), and
// later pages stop before that many. At most the first full page of a mount costs one node.
static void fill_from (mnt_t *m, const listing_t *l, size_t from, void *buf, fuse_fill_dir_t filler, bool plus) {
  bool attrs = plus && l->stats != NULL && l->exact != NULL &&
    __atomic_load_n(&m->changes, __ATOMIC_SEQ_CST) == l->changes;
  size_t room = __atomic_load_n(&m->rdplus_room, __ATOMIC_RELAXED); // 0: not known yet
  size_t used = 0;
  for (size_t i = from; i < l->count; i++) {
    const struct stat *st = l->stats != NULL ? &l->stats[i] : NULL;
    size_t need = plus ? fuse_add_direntry_plus(NULL, NULL, 0, l->name[i], NULL, 0) : 0;
    if (attrs && room != 0 && used > 0 && used + need > room) break;
    if (filler(buf, l->name[i], st, (off_t)i + 1, attrs && l->exact[i] ? FUSE_FILL_DIR_PLUS : 0) != 0) {
      if (plus && used > 0 && (room == 0 || used < room)) __atomic_store_n(&m->rdplus_room, used, __ATOMIC_RELAXED);
      break;
    }
    used += need;
  }
}

int f_readdir (const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
               struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  bool plus = (flags & FUSE_READDIR_PLUS) != 0;
  listing_t *l = (listing_t *)(uintptr_t)fi->fh;
  if (l == NULL) return -EBADF;
  mnt_t *mm = current();
  if (mm == NULL) return -EIO;
  if (off > 0 && l->filled) {
    fill_from(mm, l, (size_t)off, buf, filler, plus);
    return 0;
  }
  BEGIN(OP_readdir)
  s->s1 = path;
  s->num[0] = plus ? 1 : 0;
  int r = fetch_listing(m, s, l);
  release_slot(m, s);
  if (r == 0) fill_from(m, l, (size_t)(off > 0 ? off : 0), buf, filler, plus);
  return r;
}

