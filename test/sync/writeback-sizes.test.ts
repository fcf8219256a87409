// With the kernel's writeback cache the kernel keeps the size it knows of a file for as long as
// it holds the inode, whatever the daemon answers. A file beta holds open pins its inode across
// a merge of alpha's change, so the merge's invalidation cannot drop it (while it stays open,
// beta sees the old size); once beta closes the file, its name is invalidated again and beta's mount shows alpha's size and bytes, grown or
// shrunk (a shrunk file must not read as zeros up to the old size).
// Real processes on 127.0.0.1: a hub and two daemons of one identity, each with its own mount.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { closeSync, openSync, readSync, statSync, writeFileSync } from 'node:fs'
import { Cluster, until, read, type Device } from './helpers-devices.js'

describe('a file open on beta while alpha changes its size, with the writeback cache', { timeout: 240_000 }, () => {
  let c: Cluster
  let A: Device
  let B: Device
  const saved = process.env.SPACE_WRITEBACK_CACHE

  before(async () => {
    process.env.SPACE_WRITEBACK_CACHE = '1' // the daemons inherit it (test/helpers/mount.ts)
    c = await Cluster.start('space-wbsize', ['alpha', 'beta'])
    ;[A, B] = c.devs
  })

  after(async () => {
    await c?.stop()
    if (saved === undefined) delete process.env.SPACE_WRITEBACK_CACHE; else process.env.SPACE_WRITEBACK_CACHE = saved
  })

  for (const [what, before, then] of [['grown', 'hello', 'HELLO, world, and more'], ['shrunk', 'a longer first version', 'short']] as const) {
    it(`a file ${what} on alpha shows alpha's size and bytes on beta once beta closes it`, async () => {
      const name = `${what}.txt`
      writeFileSync(A.path(name), before)
      await until(`the file in beta's mount`, () => read(B.path(name)) === before)
      const fd = openSync(B.path(name), 'r')
      try {
        const buf = Buffer.alloc(64)
        assert.equal(readSync(fd, buf, 0, 64, 0), before.length)
        assert.equal(statSync(B.path(name)).size, before.length)
        writeFileSync(A.path(name), then)
        writeFileSync(A.path(`${what}-after.txt`), 'after') // merged with the change, or later
        await until('alpha\'s later file in beta\'s mount', () => read(B.path(`${what}-after.txt`)) === 'after')
        // A lookup while the file is open (ls -l beside a reader) gives the pinned inode a new
        // name in the kernel, which would keep it, and its old size, after the close.
        statSync(B.path(name))
      } finally { closeSync(fd) }
      // The kernel learns of the close before the daemon does (release is sent after close returns).
      await until(`beta's size of ${name} is alpha's`, () => statSync(B.path(name)).size === then.length, 5000)
      assert.equal(read(B.path(name)), then)
    })
  }
})
