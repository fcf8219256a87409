// Fixes two bugs in @cocalc/fuse-native 2.4.3's utimens (upstream issue sagemathinc/fuse-native#3)
// and rebuilds it: the C side passes atime twice (mtime never reaches JS), and UTIME_NOW /
// UTIME_OMIT arrive as a meaningless 1073 ms. After this, mtime arrives, NOW arrives as the
// current time, and OMIT as 2^64-1 ("leave unchanged"). Idempotent; fails loudly if the source
// is not the version this was written for. Run by scripts/setup.sh after npm install.
import { readFileSync, writeFileSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const dir = dirname(require.resolve('@cocalc/fuse-native/package.json'))
const file = join(dir, 'fuse-native.c')
const MARK = '// space-patch: utimens v1'
let src = readFileSync(file, 'utf8')

if (!src.includes(MARK)) {
  const edits = [
    ['  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)', '  FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)'],
    ['  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);',
      '  l->atime = space_utimens_ms(&tv[0]);\n  l->mtime = space_utimens_ms(&tv[1]);'],
    ['static void populate_stat (', `${MARK}
static uint64_t space_utimens_ms (const struct timespec* ts) {
  if (ts->tv_nsec == UTIME_OMIT) return UINT64_MAX;
  if (ts->tv_nsec == UTIME_NOW) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return timespec_to_uint64(&now);
  }
  return timespec_to_uint64(ts);
}

static void populate_stat (`]
  ]
  for (const [from, to] of edits) {
    if (src.split(from).length !== 2) throw new Error(`patch-fuse-native: unexpected source in ${file} (looking for ${JSON.stringify(from.slice(0, 40))}); was the package upgraded?`)
    src = src.replace(from, to)
  }
  writeFileSync(file, src)
  rmSync(join(dir, 'build'), { recursive: true, force: true })
  console.log('patch-fuse-native: patched utimens; rebuilding')
}

try {
  require(join(dir, 'build/Release/fuse.node'))
} catch {
  rmSync(join(dir, 'build'), { recursive: true, force: true })
  execFileSync('npm', ['rebuild', '@cocalc/fuse-native'], { stdio: ['ignore', 'ignore', 'inherit'] })
  require(join(dir, 'build/Release/fuse.node'))
}
