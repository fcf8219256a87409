// Patches @cocalc/fuse-native 2.4.3 (libfuse 2) where it cannot do what the drive needs, then
// rebuilds it. Each edit is applied once (idempotent) and fails loudly if the source is not the
// version it was written for. Run by scripts/setup.sh after npm install.
//  1. utimens passes atime twice, so mtime never reaches JS (upstream issue
//     sagemathinc/fuse-native#3); UTIME_NOW/UTIME_OMIT arrive as a meaningless 1073 ms. After:
//     mtime arrives, NOW as the current time, OMIT as 2^64-1 ("leave unchanged").
//  2. getxattr of a name outside user.* is answered ENODATA on the libfuse thread: the kernel
//     asks for security.capability before every write and ls -l asks two names per file, and a
//     round trip to the JS thread for an answer that never changes costs ~60 us each.
import { readFileSync, writeFileSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const dir = dirname(require.resolve('@cocalc/fuse-native/package.json'))
const file = join(dir, 'fuse-native.c')
let src = readFileSync(file, 'utf8')

const edits = [
  ['  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)\n  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)',
    '  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)\n  FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)'],
  ['  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);',
    '  l->atime = space_utimens_ms(&tv[0]);\n  l->mtime = space_utimens_ms(&tv[1]);'],
  ['\nstatic void populate_stat (', `
// space-patch: UTIME_OMIT -> UINT64_MAX, UTIME_NOW -> now
static uint64_t space_utimens_ms (const struct timespec* ts) {
  if (ts->tv_nsec == UTIME_OMIT) return UINT64_MAX;
  if (ts->tv_nsec == UTIME_NOW) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return timespec_to_uint64(&now);
  }
  return timespec_to_uint64(ts);
}

static void populate_stat (`],
  ['(const char *path, const char *name, char *value, size_t size), {\n  l->path = path;\n',
    '(const char *path, const char *name, char *value, size_t size), {\n  if (strncmp(name, "user.", 5) != 0) return -ENODATA; // space-patch\n  l->path = path;\n']
]

let changed = false
for (const [from, to] of edits) {
  if (src.includes(to)) continue
  if (src.split(from).length !== 2) throw new Error(`patch-fuse-native: unexpected source in ${file} (looking for ${JSON.stringify(from.slice(0, 50))}); was the package upgraded?`)
  src = src.replace(from, to)
  changed = true
}
if (changed) {
  writeFileSync(file, src)
  rmSync(join(dir, 'build'), { recursive: true, force: true })
  console.log('patch-fuse-native: patched; rebuilding')
}

try {
  require(join(dir, 'build/Release/fuse.node'))
} catch {
  rmSync(join(dir, 'build'), { recursive: true, force: true })
  execFileSync('npm', ['rebuild', '@cocalc/fuse-native'], { stdio: ['ignore', 'ignore', 'inherit'] })
  require(join(dir, 'build/Release/fuse.node'))
}
