// Directory listings: opendir, readdir and releasedir. Answered here, not in JS, except the
// listing's pages, which a request to JS fetches: the whole listing of a plain directory, a page
// at a time of a big (sharded) one, each page from just after the position the kernel is at.
#include "fuse3.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

// A directory listing's current page, kept from opendir to releasedir in fi->fh (both answered
// here, not in JS). Each entry has an offset of its own, its position in the listing (JS gives
// them: a plain directory's entries numbered 1, 2, ... in one page that ends the listing; a big
// one's from their name's hash, in order); the kernel asks for the entries after an offset. One
// within the page is served from it; the page's end fetches the next one after its last entry
// (offset and name, so that names sharing an offset are not lost); any other offset (a seekdir)
// fetches the page after it. A big folder is thus never held whole, here or in JS.
// Giving libfuse offsets is what makes readdirplus work in its high-level API: only then does it
// register each entry (do_lookup) and hand the kernel its attributes, so that `ls -l` needs no
// getattr per entry. Attributes go with an entry only when
//  - JS knew them exactly (a directory not loaded yet does not know its link count), and
//  - no op that changes attributes ran since the page was asked for (mnt.changes): a later
//    request would otherwise hand the kernel an old size or type over what it learned since.
// Entries without them still carry inode number and type, and are looked up as usual.
typedef struct listing {
  char *names;          // NUL-separated
  const char **name;    // count pointers into names
  struct stat *stats;   // count
  bool *exact;          // count
  uint64_t *offs;       // count, non-decreasing
  size_t count;
  uint64_t after;       // the offset this page follows (0: the listing's start)
  uint64_t changes;     // mnt.changes when the page was asked for
  bool more;            // the listing goes on after this page
  bool filled;
} listing_t;

static void free_listing (listing_t *l) {
  free(l->names);
  free(l->name);
  free(l->stats);
  free(l->exact);
  free(l->offs);
  memset(l, 0, sizeof *l);
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

// Fetches the page after offset `after` (and the name there, or NULL) into `l`. On failure `l`
// keeps the page it had: the kernel retries at the offset it is at, and a plain directory's
// offsets (numbered by place) must then be found in that page again, not be taken for the
// position of a name's hash in a new request, which would list names twice.
static int fetch_page (mnt_t *m, const char *path, bool plus, uint64_t after, const char *after_name, listing_t *l) {
  slot_t *s = acquire(m, OP_readdir);
  s->s1 = path;
  s->s2 = after_name;
  s->num[0] = plus ? 1 : 0;
  s->num[1] = (double)(after >> 32);
  s->num[2] = (double)(after & 0xffffffffu);
  uint64_t changes = __atomic_load_n(&m->changes, __ATOMIC_SEQ_CST);
  int r = (int)call_js(m, s);
  const char **name = NULL;
  if (r == 0) {
    name = malloc((s->count > 0 ? s->count : 1) * sizeof *name);
    if (name == NULL) r = -ENOMEM;
  }
  if (r == 0) {
    free_listing(l);
    l->name = name;
    l->names = s->names;
    l->stats = s->stats;
    l->exact = s->exact;
    l->offs = s->offs;
    l->count = s->count;
    l->more = s->more;
    l->after = after;
    l->changes = changes;
    s->names = NULL;
    s->stats = NULL;
    s->exact = NULL;
    s->offs = NULL;
    const char *p = l->names;
    for (size_t i = 0; i < l->count; i++) { l->name[i] = p; p += strlen(p) + 1; }
    l->filled = true;
  }
  release_slot(m, s);
  return r;
}

// Whether offset `off` falls in the page (then *at: the first entry after it).
static bool in_page (const listing_t *l, uint64_t off, size_t *at) {
  if (!l->filled || off < l->after) return false;
  if (off == l->after) { *at = 0; return true; }
  if (l->count == 0 || off > l->offs[l->count - 1]) {
    if (l->more) return false;
    *at = l->count;
    return true;
  }
  size_t lo = 0, hi = l->count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (l->offs[mid] <= off) lo = mid + 1; else hi = mid;
  }
  *at = lo;
  return true;
}

// Hands libfuse the entries from index `from` on, until its buffer is full or the page ends.
//
// With attributes, libfuse registers an entry (raises its lookup count) before it finds that the
// entry does not fit, and the kernel never forgets what it never got: that node would stay in
// libfuse's table for good. The reply buffer's size is not passed to us, so it is learned: when a
// readdirplus buffer fills up, the bytes that fit are kept (the smallest seen, per mount), and
// later requests stop before that many. At most the first full reply of a mount costs one node.
static void fill_from (mnt_t *m, const listing_t *l, size_t from, void *buf, fuse_fill_dir_t filler, bool plus) {
  bool attrs = plus && __atomic_load_n(&m->changes, __ATOMIC_SEQ_CST) == l->changes;
  size_t room = __atomic_load_n(&m->rdplus_room, __ATOMIC_RELAXED); // 0: not known yet
  size_t used = 0;
  for (size_t i = from; i < l->count; i++) {
    size_t need = plus ? fuse_add_direntry_plus(NULL, NULL, 0, l->name[i], NULL, 0) : 0;
    if (attrs && room != 0 && used > 0 && used + need > room) break;
    if (filler(buf, l->name[i], &l->stats[i], (off_t)l->offs[i], attrs && l->exact[i] ? FUSE_FILL_DIR_PLUS : 0) != 0) {
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
  mnt_t *m = current();
  if (m == NULL) return -EIO;
  uint64_t at_off = off > 0 ? (uint64_t)off : 0;
  size_t at = 0;
  // Offset 0 is a new listing (opendir, rewinddir): a new snapshot, as before.
  if (at_off > 0 && in_page(l, at_off, &at)) {
    if (at < l->count || !l->more) { fill_from(m, l, at, buf, filler, plus); return 0; }
    // The page's end: the next page follows its last entry.
    uint64_t last = l->offs[l->count - 1];
    char *name = strdup(l->name[l->count - 1]);
    if (name == NULL) return -ENOMEM;
    int r = fetch_page(m, path, plus, last, name, l);
    free(name);
    if (r == 0) fill_from(m, l, 0, buf, filler, plus);
    return r;
  }
  int r = fetch_page(m, path, plus, at_off, NULL, l);
  if (r == 0) fill_from(m, l, 0, buf, filler, plus);
  return r;
}
