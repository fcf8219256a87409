// Hard links through a real mount: ln(1), cp -al and a local git clone (which hard-links its
// objects) give names that stat(1) reports with one inode number and the right link count,
// whose content is the same under each, and which come back linked after a remount.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { tempDirs, Mount, removeDirs, sh, bindingName, type Dirs } from '../helpers/mount.js'

let dirs: Dirs
let m: Mount

before(async () => {
  dirs = tempDirs('space-links-')
  m = await Mount.start(dirs)
})

after(async () => {
  await m?.cleanup()
  if (dirs != null) removeDirs(dirs)
})

/** `stat -c '%h %i'`: link count and inode number, as the kernel reports them. */
const hi = (path: string): string => sh(`stat -c '%h %i' '${path}'`).stdout.trim()
/**
 * The kernel caches each name's attributes for the mount's attribute timeout (1 s). The libfuse 3
 * binding invalidates a linked node's other names when it changes (link-attrs.test.ts); through
 * libfuse 2 a change shows under another name once that name's cache expires (docs/format.md).
 */
const attrsExpire = async (): Promise<void> => {
  if (bindingName() !== 'fuse3') await new Promise(resolve => setTimeout(resolve, 1100))
}

test('ln gives a second name with the same inode and a link count of 2; content is shared; rm of one name keeps the other', async () => {
  const a = m.path('a.txt')
  const b = m.path('sub', 'b.txt')
  fs.mkdirSync(m.path('sub'))
  fs.writeFileSync(a, 'one')
  sh(`ln '${a}' '${b}'`)
  await attrsExpire()
  const [nlink, ino] = hi(a).split(' ')
  assert.equal(nlink, '2')
  assert.equal(hi(b), `2 ${ino}`)
  fs.appendFileSync(b, ' two')
  await attrsExpire() // a's cached size
  assert.equal(fs.readFileSync(a, 'utf8'), 'one two')
  fs.chmodSync(a, 0o600)
  await attrsExpire()
  assert.equal(fs.statSync(b).mode & 0o777, 0o600)
  const failed = sh(`ln '${m.path('sub')}' '${m.path('sub2')}'`, { allowFail: true })
  assert.notEqual(failed.status, 0, 'a hard link to a directory is refused')
  const taken = sh(`ln '${a}' '${b}'`, { allowFail: true })
  assert.match(taken.stderr, /exists/)
  fs.writeFileSync(m.path('c.txt'), 'three')
  sh(`ln '${m.path('c.txt')}' '${m.path('c2.txt')}' && rm '${m.path('c.txt')}'`)
  await attrsExpire()
  assert.equal(hi(m.path('c2.txt')).split(' ')[0], '1')
  assert.equal(fs.readFileSync(m.path('c2.txt'), 'utf8'), 'three')
})

test('a file open under one name keeps working after that name is removed; the other name sees its writes', async () => {
  const a = m.path('open-a')
  const b = m.path('open-b')
  fs.writeFileSync(a, 'start')
  fs.linkSync(a, b)
  const fd = fs.openSync(a, 'r+')
  try {
    fs.unlinkSync(a)
    await attrsExpire()
    assert.equal(fs.statSync(b).nlink, 1)
    fs.writeSync(fd, 'START', 0)
    assert.equal(fs.fstatSync(fd).ino, fs.statSync(b).ino)
  } finally { fs.closeSync(fd) }
  assert.equal(fs.readFileSync(b, 'utf8'), 'START')
  assert.deepEqual(fs.readdirSync(m.mnt).filter(n => n.startsWith('.fuse_hidden')), [])
})

test('cp -al and a local git clone make hard links that survive an unmount and a remount', async () => {
  fs.mkdirSync(m.path('tree', 'deep'), { recursive: true })
  fs.writeFileSync(m.path('tree', 'x'), 'x'.repeat(300_000))
  fs.writeFileSync(m.path('tree', 'deep', 'y'), 'y')
  sh(`cp -al '${m.path('tree')}' '${m.path('copy')}'`)
  await attrsExpire()
  assert.equal(hi(m.path('copy', 'x')), hi(m.path('tree', 'x')))
  assert.equal(hi(m.path('copy', 'deep', 'y')).split(' ')[0], '2')

  const env = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', GIT_CONFIG_NOSYSTEM: '1', HOME: dirs.base }
  sh('git init -q repo && cd repo && echo hi > f && git add f && git commit -qm one', { cwd: m.mnt, env })
  sh('git clone -q --local repo clone', { cwd: m.mnt, env })
  const objects = sh('cd clone && find .git/objects -type f -links +1 | wc -l', { cwd: m.mnt }).stdout.trim()
  assert.ok(Number(objects) >= 3, `hard-linked objects in the clone: ${objects}`)
  assert.equal(sh('git -C clone log --format=%s', { cwd: m.mnt, env }).stdout.trim(), 'one')
  const before = { x: hi(m.path('copy', 'x')), y: hi(m.path('tree', 'deep', 'y')) }

  assert.equal(await m.stop(), 0)
  m = await Mount.start(dirs)
  assert.equal(fs.readFileSync(m.path('copy', 'x'), 'utf8'), 'x'.repeat(300_000))
  assert.equal(fs.readFileSync(m.path('a.txt'), 'utf8'), 'one two')
  const x = hi(m.path('copy', 'x'))
  assert.equal(x.split(' ')[0], before.x.split(' ')[0])
  assert.equal(hi(m.path('tree', 'x')), x, 'one inode under both names after the remount')
  assert.equal(hi(m.path('sub', 'b.txt')), hi(m.path('a.txt')))
  assert.equal(hi(m.path('copy', 'deep', 'y')).split(' ')[0], before.y.split(' ')[0])
  fs.writeFileSync(m.path('copy', 'deep', 'y'), 'changed')
  await attrsExpire() // the other name's cached size
  assert.equal(fs.readFileSync(m.path('tree', 'deep', 'y'), 'utf8'), 'changed')
  assert.equal(sh('git -C clone fsck && git -C clone log --format=%s', { cwd: m.mnt, env }).stdout.trim(), 'one')
})
