// The Buffers the libfuse 3 addon hands JS for a read's reply and a write's data lie over
// libfuse's own memory and are detached at the reply (native/src/fuse3/requests.c): V8 counts
// an undetached one as external memory until it is collected, and a stream of 1 MiB requests
// started a full collection every ~32 MiB. The addon is mounted here in this process over one
// file served by the test's own ops; a child process reads and writes it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import * as fs from 'node:fs'
import { join } from 'node:path'
import type { Dirs } from '../helpers/mount.js'
import { mountOps, skipUnlessFuse3 } from '../helpers/ops-mount.js'
import type { FuseOps, StatLike } from '../../src/fs/fuse/binding.js'

const run = promisify(execFile)
const skip = skipUnlessFuse3
const ENOENT = -2
const SIZE = 4 << 20

const now = Date.now()
const stat = (dir: boolean): StatLike => ({
  mode: dir ? 0o40755 : 0o100644, uid: 0, gid: 0, size: dir ? 4096 : SIZE, nlink: dir ? 2 : 1, ino: dir ? 1 : 2, rdev: 0,
  blksize: 4096, blocks: SIZE / 512, mtime: now, atime: now, ctime: now
})
/** The file's byte at `pos`. */
const byteAt = (pos: number): number => (pos * 7 + (pos >> 12)) & 0xff

/** Per request: the Buffer's length when JS got it and once the reply went. */
const seen: Array<{ op: 'read' | 'write', before: number, after: number }> = []
const written: Buffer[] = []

const ops: Partial<FuseOps> = {
  init: cb => cb(0),
  getattr: (path, cb) => { if (path === '/') cb(0, stat(true)); else if (path === '/f') cb(0, stat(false)); else cb(ENOENT) },
  fgetattr: (path, _fd, cb) => { if (path === '/f') cb(0, stat(false)); else cb(ENOENT) },
  open: (_path, _flags, cb) => cb(0, 1),
  release: (_path, _fd, cb) => cb(0),
  truncate: (_path, _size, cb) => cb(0),
  ftruncate: (_path, _fd, _size, cb) => cb(0),
  read: (_path, _fd, buf, len, pos, cb) => {
    const n = Math.max(0, Math.min(len, SIZE - pos))
    for (let i = 0; i < n; i++) buf[i] = byteAt(pos + i)
    const entry = { op: 'read' as const, before: buf.length, after: -1 }
    seen.push(entry)
    // Answered later, as the daemon does (its reads settle on the pool).
    setImmediate(() => { cb(n); entry.after = buf.length })
  },
  write: (_path, _fd, buf, len, _pos, cb) => {
    written.push(Buffer.from(buf.subarray(0, len))) // a copy: the data is libfuse's until the reply
    const entry = { op: 'write' as const, before: buf.length, after: -1 }
    seen.push(entry)
    setImmediate(() => { cb(len); entry.after = buf.length })
  }
}
const mounted = mountOps('reqbuf', ops, { maxWrite: 1 << 20 })
const dirs = (): Dirs => mounted.dirs

test('a read reply\'s Buffer is empty once answered, and the reader got every byte', { skip }, async () => {
  seen.length = 0
  const copy = join(dirs().base, 'copy')
  await run('dd', [`if=${join(dirs().mnt, 'f')}`, `of=${copy}`, 'bs=1M', 'iflag=direct', 'status=none'])
  const got = fs.readFileSync(copy)
  assert.equal(got.length, SIZE)
  for (let i = 0; i < SIZE; i += 4093) assert.equal(got[i], byteAt(i), `byte ${i}`)
  const reads = seen.filter(s => s.op === 'read')
  assert.ok(reads.length >= 4, `${reads.length} reads`)
  assert.ok(reads.every(r => r.before > 0), 'each read got its reply buffer')
  assert.deepEqual(reads.filter(r => r.after !== 0), [], 'no reply buffer outlives its reply')
})

test('a write\'s data Buffer is empty once answered, and the data reached the handler', { skip }, async () => {
  seen.length = 0
  written.length = 0
  const src = join(dirs().base, 'src')
  const data = Buffer.alloc(2 << 20)
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff
  fs.writeFileSync(src, data)
  await run('dd', [`if=${src}`, `of=${join(dirs().mnt, 'f')}`, 'bs=1M', 'conv=notrunc', 'status=none'])
  assert.deepEqual(Buffer.concat(written), data)
  const writes = seen.filter(s => s.op === 'write')
  assert.ok(writes.length >= 2, `${writes.length} writes`)
  assert.deepEqual(writes.filter(w => w.after !== 0), [], 'no write buffer outlives its reply')
})
