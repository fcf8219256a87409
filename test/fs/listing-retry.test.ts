// The libfuse 3 addon's listings (native/src/fuse3/listing.c) when fetching a page fails: the
// handle keeps the page it had, so a program that goes on from a position it was at after the
// error gets the names after it, once each. The addon is mounted here in this process over a
// small directory served by the test's own ops (the binding is what is tested), and a real
// program (perl: opendir, telldir, rewinddir, seekdir) lists it from a child process.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Dirs } from '../helpers/mount.js'
import { mountOps, skipUnlessFuse3 } from '../helpers/ops-mount.js'
import type { FuseOps, StatLike, DirPageLike } from '../../src/fs/fuse/binding.js'

const run = promisify(execFile)
const skip = skipUnlessFuse3
const ENOENT = -2
const EIO = -5

const NAMES = ['a1', 'b2', 'c3', 'd4', 'e5', 'f6']
const now = Date.now()
const stat = (dir: boolean, ino = 1): StatLike => ({
  mode: dir ? 0o40755 : 0o100644, uid: 0, gid: 0, size: dir ? 4096 : 1, nlink: dir ? 2 : 1, ino, rdev: 0,
  blksize: 4096, blocks: 1, mtime: now, atime: now, ctime: now
})

/** Fetches of a listing from its start so far; the one numbered `failAt` fails with EIO. */
let fromStart = 0
let failAt = -1
const asked: Array<string | null> = []

function page (after: { hi: number, lo: number } | null): DirPageLike {
  // As the daemon does: a listing from the start is numbered by place; one after a position is
  // taken to follow the names' hash order (here: every name sorts after any position with hi 0),
  // so a place number taken for a hash position would list every name again.
  if (after == null) return { names: NAMES, stats: NAMES.map((_, i) => stat(false, i + 2)), exact: NAMES.map(() => true), pos: NAMES.map((_, i) => ({ hi: 0, lo: i + 1 })), end: true }
  return { names: NAMES, stats: NAMES.map((_, i) => stat(false, i + 2)), exact: NAMES.map(() => true), pos: NAMES.map((_, i) => ({ hi: 1, lo: i })), end: true }
}

const ops: Partial<FuseOps> = {
  init: cb => cb(0),
  getattr: (path, cb) => {
    if (path === '/') { cb(0, stat(true)); return }
    if (NAMES.includes(path.slice(1))) { cb(0, stat(false)); return }
    cb(ENOENT)
  },
  readdirPage: (_path, after, cb) => {
    asked.push(after == null ? null : `${after.hi}:${after.lo}`)
    if (after == null && fromStart++ === failAt) { cb(EIO); return }
    cb(0, page(after))
  }
}
const mounted = mountOps('listing', ops, { maxWrite: 131072 })
const dirs = (): Dirs => mounted.dirs

test('a listing resumed at its position after a failed page fetch lists each name once', { skip }, async () => {
  fromStart = 0
  failAt = 1 // the rewinddir's fetch
  // Two names, the position after them, a rewind whose listing fails, then on from the position.
  const script = `
    opendir(my $d, $ARGV[0]) or die "opendir: $!";
    my @first = (scalar readdir($d), scalar readdir($d));
    my $pos = telldir($d);
    rewinddir($d);
    $! = 0; my $x = readdir($d);
    print "rewind:", (defined $x ? "ok" : ($! + 0)), "\\n";
    seekdir($d, $pos);
    my @rest = readdir($d);
    print join("\\n", @first, @rest), "\\n";`
  const { stdout } = await run('perl', ['-e', script, dirs().mnt])
  const [rewind, ...names] = stdout.trim().split('\n')
  assert.equal(rewind, 'rewind:5', 'the failed fetch reaches the program as EIO')
  const listed = names.filter(n => n !== '.' && n !== '..')
  assert.deepEqual(listed, NAMES, `each name once, in order (fetches: ${JSON.stringify(asked)})`)
})
