// Persistent and crash-safe: kill -9 of the mount process under a heavy write load, then a
// remount (which clears the stale mount by itself) shows a consistent tree with every byte that
// was fsync'd before the kill.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, isMounted, space, type Dirs } from '../helpers/mount.js'

const dirs: Dirs = tempDirs()
let m: Mount | null = null
const children: ChildProcess[] = []
after(async () => {
  for (const c of children) if (c.exitCode == null) c.kill('SIGKILL')
  await m?.cleanup()
  removeDirs(dirs)
})

// Writes f<i> (content derived from i), fsyncs it, then records i in a log outside the mount.
const WRITER = `
const fs = require('fs'); const [dir, log] = process.argv.slice(1);
for (let i = 0; ; i++) {
  const body = Buffer.alloc(20000 + (i % 7) * 30000, 'abcdefghijklmnopqrstuvwxyz'.charAt(i % 26) + i);
  try {
    const fd = fs.openSync(dir + '/f' + i, 'w'); fs.writeSync(fd, body); fs.fsyncSync(fd); fs.closeSync(fd);
  } catch { process.exit(0) }
  fs.appendFileSync(log, i + '\\n');
}`

function body (i: number): Buffer {
  return Buffer.alloc(20000 + (i % 7) * 30000, 'abcdefghijklmnopqrstuvwxyz'.charAt(i % 26) + String(i))
}

function walk (dir: string): number {
  let n = 0
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const st = statSync(p)
    if (st.isDirectory()) n += walk(p)
    else { readFileSync(p); n++ }
  }
  return n
}

test('kill -9 during heavy writes loses nothing that was fsynced', async () => {
  m = await Mount.start(dirs)
  const log = join(dirs.base, 'fsynced.log')
  children.push(spawn(process.execPath, ['-e', WRITER, m.mnt, log], { stdio: 'ignore' }))
  // Bulk load without fsync alongside, in a subdirectory.
  children.push(spawn('bash', ['-c', `mkdir -p ${m.mnt}/bulk && for j in $(seq 1 1000); do head -c 3000000 /dev/urandom > ${m.mnt}/bulk/b$j || exit 0; done`], { stdio: 'ignore' }))
  const deadline = Date.now() + 60_000
  while (!existsSync(log) || readFileSync(log, 'utf8').split('\n').length < 40) {
    assert.ok(Date.now() < deadline, 'the writer made progress')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  await m.kill()
  for (const c of children) if (c.exitCode == null) c.kill('SIGKILL')
  const done = readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number)
  assert.ok(isMounted(dirs.mnt), 'a killed mount leaves a stale mount behind')

  m = await Mount.start(dirs) // must clear the stale mount itself
  for (const i of done) {
    const got = readFileSync(m.path(`f${i}`))
    assert.ok(got.equals(body(i)), `f${i} was fsynced and must be intact`)
  }
  // Every file in the tree reads without an integrity error.
  assert.ok(walk(m.mnt) >= done.length)
  await m.stop()
  m = null

  const hist = space(['log', '--data-dir', dirs.data, '--config-dir', dirs.config, '--json', '--limit', '1000'])
  assert.equal(hist.status, 0, hist.stderr)
  const entries = hist.stdout.trim().split('\n').map(l => JSON.parse(l) as { seq: number, root: string })
  assert.ok(entries.length >= done.length / 10, 'commits are listed')
  assert.ok(entries.every(e => /^baf/.test(e.root)))
})
