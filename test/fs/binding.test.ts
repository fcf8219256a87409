// What the libfuse 3 binding (native/, src/fs/fuse/fuse3-native.ts) adds over libfuse 2: the
// caller's uid/gid on new names, atime and mtime set independently, renameat2 flags, and a clean
// unmount with a file still open. Skipped unless that binding mounts (SPACE_FUSE=fuse3, or it is
// the default in select.ts).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { tempDirs, Mount, removeDirs, sh, bindingName, isMounted, type Dirs } from '../helpers/mount.js'

const NOBODY = 'setpriv --reuid=65534 --regid=65534 --clear-groups'
const skip = bindingName() !== 'fuse3' && 'needs the libfuse 3 binding (SPACE_FUSE=fuse3)'

let dirs: Dirs
let m: Mount
const p = (...parts: string[]): string => m.path(...parts)

before(async () => {
  if (skip !== false) return
  dirs = tempDirs('space-binding-')
  fs.chmodSync(dirs.base, 0o755)
  m = await Mount.start(dirs, ['--allow-other'])
})

after(async () => {
  await m?.cleanup()
  if (dirs != null) removeDirs(dirs)
})

test('names another user creates belong to that user: file, directory, symlink, fifo', { skip }, () => {
  fs.mkdirSync(p('theirs'))
  fs.chownSync(p('theirs'), 65534, 65534)
  sh(`${NOBODY} sh -c "echo x > '${p('theirs/f')}' && mkdir '${p('theirs/d')}' && ln -s f '${p('theirs/l')}' && mkfifo '${p('theirs/q')}'"`)
  for (const name of ['f', 'd', 'l', 'q']) {
    const st = fs.lstatSync(p('theirs', name))
    assert.deepEqual([name, st.uid, st.gid], [name, 65534, 65534])
  }
  // And root's own files stay root's.
  fs.writeFileSync(p('mine'), 'y')
  assert.equal(fs.statSync(p('mine')).uid, 0)
  // The kernel applied the caller's umask before the mode reached us.
  sh(`${NOBODY} sh -c "umask 077 && echo z > '${p('theirs/private')}'"`)
  assert.equal(fs.statSync(p('theirs/private')).mode & 0o777, 0o600)
})

test('touch -m changes only mtime, touch -a only atime', { skip }, () => {
  const f = p('times')
  fs.writeFileSync(f, 't')
  const t0 = new Date(1_500_000_000_000)
  fs.utimesSync(f, t0, t0)
  sh(`touch -m -d '2001-02-03 04:05:06.789 UTC' '${f}'`)
  let st = fs.statSync(f)
  assert.equal(st.mtimeMs, Date.UTC(2001, 1, 3, 4, 5, 6, 789))
  assert.equal(st.atimeMs, t0.getTime())
  sh(`touch -a -d '1999-12-31 23:59:59.5 UTC' '${f}'`)
  st = fs.statSync(f)
  assert.equal(st.atimeMs, Date.UTC(1999, 11, 31, 23, 59, 59, 500))
  assert.equal(st.mtimeMs, Date.UTC(2001, 1, 3, 4, 5, 6, 789))
  // UTIME_NOW for one time only.
  const before = Date.now()
  sh(`touch -m '${f}'`)
  st = fs.statSync(f)
  assert.ok(st.mtimeMs >= before - 1000 && st.mtimeMs <= Date.now() + 1000, `mtime ${st.mtimeMs} is now`)
  assert.equal(st.atimeMs, Date.UTC(1999, 11, 31, 23, 59, 59, 500))
})

// renameat2 through ctypes: prints 0 or the errno name.
function renameat2 (from: string, to: string, flags: number): string {
  const py = `
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
r = libc.renameat2(AT_FDCWD, sys.argv[1].encode(), AT_FDCWD, sys.argv[2].encode(), int(sys.argv[3]))
print(0 if r == 0 else errno.errorcode[ctypes.get_errno()])
`
  return sh(`python3 -c '${py}' '${from}' '${to}' ${flags}`).stdout.trim()
}

test('renameat2: RENAME_NOREPLACE refuses an existing target; RENAME_EXCHANGE is EINVAL', { skip }, () => {
  fs.writeFileSync(p('a'), 'A')
  fs.writeFileSync(p('b'), 'B')
  assert.equal(renameat2(p('a'), p('b'), 1), 'EEXIST')
  assert.equal(fs.readFileSync(p('a'), 'utf8'), 'A')
  assert.equal(fs.readFileSync(p('b'), 'utf8'), 'B')
  assert.equal(renameat2(p('a'), p('c'), 1), '0')
  assert.equal(fs.readFileSync(p('c'), 'utf8'), 'A')
  assert.ok(!fs.existsSync(p('a')))
  assert.equal(renameat2(p('b'), p('c'), 2), 'EINVAL')
  assert.equal(fs.readFileSync(p('b'), 'utf8'), 'B')
  // mv --no-clobber (coreutils uses RENAME_NOREPLACE) keeps the target.
  sh(`mv --no-clobber '${p('b')}' '${p('c')}'`, { allowFail: true })
  assert.equal(fs.readFileSync(p('c'), 'utf8'), 'A')
})

test('an unlinked open file leaves no .fuse_hidden entry once closed, and fstat works meanwhile', { skip }, () => {
  fs.mkdirSync(p('hid'))
  fs.writeFileSync(p('hid/f'), '12345')
  const fd = fs.openSync(p('hid/f'), 'r+')
  fs.unlinkSync(p('hid/f'))
  fs.writeSync(fd, 'abcdefgh', 0)
  assert.equal(fs.fstatSync(fd).size, 8)
  fs.closeSync(fd)
  assert.deepEqual(fs.readdirSync(p('hid')), [])
})

test('SIGTERM with a file still open: the daemon unmounts and exits 0', { skip }, async () => {
  fs.writeFileSync(p('held'), 'held open')
  const fd = fs.openSync(p('held'), 'r')
  try {
    const code = await m.stop()
    assert.equal(code, 0)
    assert.ok(!isMounted(m.mnt))
    // The detached mount's connection is gone: the old fd fails instead of hanging.
    assert.throws(() => fs.readSync(fd, Buffer.alloc(4), 0, 4, 0))
  } finally {
    fs.closeSync(fd)
  }
})
