// The store lock under a race: a lock caught empty (being written by its taker) is not taken
// over, rewriting it never shows readers a half-written file, and a process removes only its own.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync, readFileSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { takeLock, releaseLock, writeLock, readLock } from '../../src/drive/lock.js'

test('an empty or unreadable fresh lock is held; an old one is taken over; only its own lock is released', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-lock-'))
  try {
    const lock = join(dir, 'lock')
    writeFileSync(lock, '') // another process between its O_EXCL create and its write
    await assert.rejects(takeLock(lock), { code: 'ERR_STORE_IN_USE' })
    assert.equal(readFileSync(lock, 'utf8'), '', 'left as it was')
    const old = (Date.now() - 120_000) / 1000
    utimesSync(lock, old, old) // garbage left long ago: taken over
    await takeLock(lock)
    assert.equal(readLock(lock)?.pid, process.pid)
    await writeLock(lock, '/somewhere')
    assert.equal(readLock(lock)?.mountpoint, '/somewhere')
    // Someone else's lock (a live pid: ours is taken, so use the parent's) is not removed by us.
    writeFileSync(lock, JSON.stringify({ pid: process.ppid, mountpoint: null, started: new Date().toISOString() }))
    await releaseLock(lock)
    assert.equal(readLock(lock)?.pid, process.ppid)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
