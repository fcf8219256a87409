// A hard-linked file's names through a real mount show a change made through any one of them at
// once, with no sleep: size, link count, mode, owner, times (exact) and content, also through a
// descriptor already open under another name, and after a rename over one of its names. The
// kernel caches attributes per name for the mount's 1 s attribute timeout; each test first has
// the other name's attributes cached, so without the invalidation it would see the old ones.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { tempDirs, Mount, removeDirs, bindingName, type Dirs } from '../helpers/mount.js'

const skip = bindingName() !== 'fuse3' && 'libfuse 2 cannot invalidate: its names show changes when the attribute timeout ends'

let dirs: Dirs
let m: Mount

before(async () => {
  if (skip !== false) return
  dirs = tempDirs('space-link-attrs-')
  m = await Mount.start(dirs)
})

after(async () => {
  await m?.cleanup()
  if (dirs != null) removeDirs(dirs)
})

const same = (a: fs.Stats, b: fs.Stats): void => {
  assert.deepEqual(
    [b.ino, b.size, b.nlink, b.mode, b.uid, b.gid, b.mtimeMs, b.ctimeMs],
    [a.ino, a.size, a.nlink, a.mode, a.uid, a.gid, a.mtimeMs, a.ctimeMs])
}

test('a write, chmod, chown, utimes, truncate, link and unlink through one name show under the other at once', { skip }, () => {
  fs.mkdirSync(m.path('d'))
  const a = m.path('a')
  const b = m.path('d', 'b')
  fs.writeFileSync(a, 'one')
  assert.equal(fs.statSync(a).nlink, 1)
  fs.linkSync(a, b)
  assert.equal(fs.statSync(a).nlink, 2) // the kernel itself moves only the old name's ctime
  same(fs.statSync(a), fs.statSync(b)) // both names' attributes are cached now

  fs.appendFileSync(a, ' two')
  let st = fs.statSync(b)
  assert.equal(st.size, 7)
  same(fs.statSync(a), st)
  assert.equal(fs.readFileSync(b, 'utf8'), 'one two')

  fs.chmodSync(a, 0o600)
  assert.equal(fs.statSync(b).mode & 0o7777, 0o600)
  fs.chownSync(b, 65534, 65533)
  st = fs.statSync(a)
  assert.deepEqual([st.uid, st.gid], [65534, 65533])
  fs.utimesSync(a, new Date(1_000_000_123), new Date(2_000_000_456))
  st = fs.statSync(b)
  assert.deepEqual([st.atimeMs, st.mtimeMs], [1_000_000_123, 2_000_000_456])
  same(fs.statSync(a), st)

  fs.truncateSync(b, 2)
  assert.equal(fs.statSync(a).size, 2)
  assert.equal(fs.readFileSync(a, 'utf8'), 'on')

  const c = m.path('c')
  fs.linkSync(b, c)
  assert.equal(fs.statSync(a).nlink, 3)
  assert.equal(fs.statSync(b).nlink, 3)
  const before = fs.statSync(a).ctimeMs
  fs.unlinkSync(c)
  st = fs.statSync(b)
  assert.equal(st.nlink, 2)
  assert.ok(st.ctimeMs >= before)
  same(fs.statSync(a), st)
})

test('a descriptor open under one name reads what was written through the other, even from its page cache', { skip }, () => {
  const x = m.path('x')
  const y = m.path('y')
  fs.writeFileSync(x, 'aaaaaaaa')
  fs.linkSync(x, y)
  const fd = fs.openSync(y, 'r')
  try {
    const buf = Buffer.alloc(8)
    assert.equal(fs.readSync(fd, buf, 0, 8, 0), 8) // y's page cache holds 'aaaaaaaa'
    fs.writeFileSync(x, 'bbbbbbbbbbbb')
    const n = fs.readSync(fd, buf.fill(0), 0, 8, 0)
    assert.equal(buf.subarray(0, n).toString(), 'bbbbbbbb')
    assert.equal(fs.fstatSync(fd).size, 12)
  } finally { fs.closeSync(fd) }
})

test('a rename over one name of a linked file, and a rename of one of its names, show under the other names at once', { skip }, () => {
  const p = m.path('p')
  const q = m.path('q')
  const r = m.path('r')
  fs.writeFileSync(p, 'linked')
  fs.linkSync(p, q)
  fs.linkSync(p, r)
  fs.writeFileSync(m.path('other'), 'other')
  assert.equal(fs.statSync(p).nlink, 3)
  assert.equal(fs.statSync(r).nlink, 3)

  fs.renameSync(m.path('other'), q) // q now names another file: p and r lose a name
  assert.equal(fs.statSync(p).nlink, 2)
  assert.equal(fs.statSync(r).nlink, 2)
  assert.equal(fs.readFileSync(q, 'utf8'), 'other')
  assert.equal(fs.statSync(q).nlink, 1)

  const ctime = fs.statSync(p).ctimeMs
  fs.renameSync(r, m.path('r2'))
  const st = fs.statSync(p)
  assert.ok(st.ctimeMs >= ctime)
  same(fs.statSync(m.path('r2')), st)
  assert.equal(st.nlink, 2)
})
