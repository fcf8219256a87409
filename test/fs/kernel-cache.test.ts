// The kernel-cache invalidation API replication will use (MountedDrive.kernel): the tree changes
// behind the kernel's back (through the tree object, as merging another device's changes will),
// the kernel still serves what it cached, and after invalidatePath / invalidateEntry stat, read
// and open see the change at once. The drive is mounted in this process, so the test touches the
// mount only through async fs calls (libuv's threads): a sync call would block the thread that
// answers FUSE.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { tempDirs, removeDirs, bindingName, type Dirs } from '../helpers/mount.js'
import { Drive, mountDrive, type MountedDrive } from '../../src/daemon.js'
import { FileNode } from '../../src/fs/tree/nodes.js'

const skip = bindingName() !== 'fuse3' && 'needs the libfuse 3 binding (libfuse 2 cannot invalidate)'
const ENOENT = -2

let dirs: Dirs
let mounted: MountedDrive
const p = (rel: string): string => dirs.mnt + rel

before(async () => {
  if (skip !== false) return
  dirs = tempDirs('space-kcache-')
  const drive = await Drive.open(dirs.data, randomBytes(32))
  mounted = await mountDrive(drive, { mountpoint: dirs.mnt })
})

after(async () => {
  await mounted?.stop()
  if (dirs != null) removeDirs(dirs)
})

test('invalidatePath: a file changed in the tree shows its new size, mode and content at once, also through an open descriptor', { skip }, async () => {
  const tree = mounted.drive.tree
  await fsp.writeFile(p('/f'), 'hello')
  const fh = await fsp.open(p('/f'), 'r')
  try {
    const buf = Buffer.alloc(16)
    assert.equal((await fh.read(buf, 0, 16, 0)).bytesRead, 5) // page cache and attributes cached
    assert.equal((await fsp.stat(p('/f'))).size, 5)

    const node = await tree.lookup('/f') as FileNode
    await tree.write(node, Buffer.from('HELLO, world'), 0)
    await tree.chmod('/f', 0o600)
    const cached = await fsp.stat(p('/f'))
    assert.deepEqual([cached.size, cached.mode & 0o777], [5, 0o644], 'the kernel answers from its cache until told')

    assert.equal(await mounted.kernel.invalidatePath('/f'), 0)
    const st = await fsp.stat(p('/f'))
    assert.deepEqual([st.size, st.mode & 0o777], [12, 0o600])
    const { bytesRead } = await fh.read(buf.fill(0), 0, 16, 0)
    assert.equal(buf.subarray(0, bytesRead).toString(), 'HELLO, world')
  } finally { await fh.close() }
  assert.equal(await mounted.kernel.invalidatePath('/never-looked-up'), ENOENT, 'nothing cached is no error')
})

test('invalidateEntry: names removed, added and replaced in the tree show at once in stat, open and readdir, in the root and below', { skip }, async () => {
  const tree = mounted.drive.tree
  await fsp.mkdir(p('/d'))
  await fsp.writeFile(p('/d/gone'), 'g')
  await fsp.writeFile(p('/d/swapped'), 'old')
  await fsp.writeFile(p('/top'), 't')
  for (const f of ['/d/gone', '/d/swapped', '/top']) await fsp.stat(p(f)) // entries cached

  await tree.unlink('/d/gone')
  await tree.unlink('/top')
  await tree.unlink('/d/swapped')
  const n = await tree.create('/d/swapped', 0o640)
  await tree.write(n, Buffer.from('new content'), 0)
  await tree.create('/d/added', 0o644)
  assert.equal((await fsp.stat(p('/d/gone'))).size, 1, 'the kernel still has the removed name')
  assert.deepEqual((await fsp.readdir(p('/d'))).sort(), ['added', 'swapped'], 'listings are never cached')

  assert.equal(await mounted.kernel.invalidateEntry('/d', 'gone'), 0)
  assert.equal(await mounted.kernel.invalidateEntry('/', 'top'), 0)
  assert.equal(await mounted.kernel.invalidateEntry('/d', 'swapped'), 0)
  await assert.rejects(fsp.stat(p('/d/gone')), { code: 'ENOENT' })
  await assert.rejects(fsp.stat(p('/top')), { code: 'ENOENT' })
  const st = await fsp.stat(p('/d/swapped'))
  assert.deepEqual([st.ino, st.size, st.mode & 0o777], [n.ino, 11, 0o640])
  assert.equal(await fsp.readFile(p('/d/swapped'), 'utf8'), 'new content')
  assert.equal((await fsp.stat(p('/d/added'))).size, 0)
  // O_EXCL trusts a cached entry: the removed name can be created again.
  await fsp.writeFile(p('/d/gone'), 'again', { flag: 'wx' })
  assert.equal(await mounted.kernel.invalidateEntry('/no-such-dir', 'x'), ENOENT)
})
