// A file held open for writing on one device (a log, a database, a download) does not stop the
// other devices' changes from appearing there: alpha appends to an open log every 100 ms for
// ten seconds while beta creates and edits other files, and each of beta's changes shows in
// alpha's mount within seconds, the log still open; at the end the log holds every byte on both
// devices and nothing else differs. When beta edits the very file alpha holds open, the merge
// waits for alpha to close it: nothing is lost and both devices converge.
// Real processes on 127.0.0.1: a hub and two daemons of one identity, each with its own mount.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, until, read, treeOf, type Device } from './helpers-devices.js'

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')
const shaOf = (p: string): string | null => { try { return sha(readFileSync(p)) } catch { return null } }

/** Appends a line every `everyMs` for `ms` to a file held open; the bytes written. */
async function appendFor (path: string, ms: number, everyMs: number, tag: string, open: { now: boolean }): Promise<Buffer> {
  const fd = openSync(path, 'a')
  open.now = true
  const written: Buffer[] = []
  try {
    const t0 = Date.now()
    for (let i = 0; Date.now() - t0 < ms; i++) {
      const line = Buffer.from(`${tag} line ${i} at ${Date.now() - t0} ms ${'.'.repeat(i % 50)}\n`)
      writeSync(fd, line)
      written.push(line)
      await sleep(everyMs)
    }
  } finally {
    open.now = false
    closeSync(fd)
  }
  return Buffer.concat(written)
}

describe('a file open for writing while the other device changes things', { timeout: 240_000 }, () => {
  let c: Cluster
  let devs: Device[] = []

  before(async () => {
    c = await Cluster.start('space-writer', ['alpha', 'beta'])
    devs = c.devs
  })

  after(async () => { await c?.stop() })

  it('beta\'s changes appear in alpha\'s mount while alpha\'s log stays open, and the log ends whole on both', async t => {
    const [A, B] = devs
    writeFileSync(A.path('notes.txt'), 'first notes\n')
    await until('alpha\'s notes in beta\'s mount', () => read(B.path('notes.txt')) === 'first notes\n')
    const open = { now: false }
    const logging = appendFor(A.path('app.log'), 10_000, 100, 'alpha', open)
    await until('the log open', () => open.now)
    await sleep(1000)
    const waits: number[] = []
    for (let i = 0; i < 3; i++) {
      writeFileSync(B.path(`beta-${i}.txt`), `beta's file ${i}\n`)
      if (i === 1) writeFileSync(B.path('notes.txt'), 'notes edited on beta\n')
      waits.push(await until(`beta's file ${i} in alpha's mount`, () => read(A.path(`beta-${i}.txt`)) === `beta's file ${i}\n`, 8000))
      assert.ok(open.now, `the log was still open when beta's file ${i} appeared`)
    }
    await until('beta\'s edit in alpha\'s mount', () => read(A.path('notes.txt')) === 'notes edited on beta\n', 8000)
    assert.ok(open.now, 'the log was still open when beta\'s edit appeared')
    t.diagnostic(`beta's files in alpha's mount after ${waits.join(', ')} ms, the log open`)
    assert.ok(waits.every(ms => ms < 5000), `each of beta's changes within 5 s: ${waits.join(', ')} ms`)
    const bytes = await logging
    const want = sha(bytes)
    for (const d of devs) await until(`the whole log on ${d.name}`, () => shaOf(d.path('app.log')) === want, 30_000)
    await until('the same files on both', () => JSON.stringify([...treeOf(A.mnt)]) === JSON.stringify([...treeOf(B.mnt)]), 20_000)
    assert.deepEqual([...treeOf(A.mnt).keys()], ['app.log', 'beta-0.txt', 'beta-1.txt', 'beta-2.txt', 'notes.txt'], 'no conflict copy, nothing else')
    assert.equal(read(A.path('notes.txt')), 'notes edited on beta\n')
  })

  it('beta\'s edit of the file alpha holds open waits for alpha to close it; nothing is lost and both converge', async () => {
    const [A, B] = devs
    writeFileSync(A.path('shared.log'), 'start\n')
    await until('the shared file in beta\'s mount', () => read(B.path('shared.log')) === 'start\n')
    const open = { now: false }
    const logging = appendFor(A.path('shared.log'), 5000, 100, 'alpha', open)
    await until('the file open', () => open.now)
    await sleep(500)
    const theirs = 'beta replaced this while alpha wrote\n'
    writeFileSync(B.path('shared.log'), theirs)
    writeFileSync(B.path('beside.txt'), 'beta beside\n')
    const ours = Buffer.concat([Buffer.from('start\n'), await logging])
    // Both versions somewhere on both devices, and the two trees the same.
    const holds = (d: Device, want: string): boolean => [...treeOf(d.mnt).values()].includes(want)
    for (const d of devs) {
      await until(`alpha's and beta's versions on ${d.name}`, () => holds(d, sha(ours)) && holds(d, sha(theirs)) && read(d.path('beside.txt')) === 'beta beside\n', 30_000)
    }
    await until('the same files on both', () => JSON.stringify([...treeOf(A.mnt)]) === JSON.stringify([...treeOf(B.mnt)]), 20_000)
  })
})
