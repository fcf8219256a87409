// Sealed at rest: nothing we wrote (contents, names) appears in the store, and a flipped byte in
// a stored block gives EIO for that range only, with a log line naming file and block.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync, writeFileSync, openSync, readSync, closeSync, fsyncSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Mount, tempDirs, removeDirs, type Dirs } from '../helpers/mount.js'

const dirs: Dirs = tempDirs()
let m: Mount | null = null
after(async () => { await m?.cleanup(); removeDirs(dirs) })

function allFiles (dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n)
    if (statSync(p).isDirectory()) allFiles(p, out)
    else out.push(p)
  }
  return out
}

const MARK = 'PLAINTEXT-CANARY-7f3a9'
const NAME = 'secret-name-canary-b41c'

test('no plaintext content or name reaches the store', async () => {
  m = await Mount.start(dirs)
  writeFileSync(m.path(`${NAME}.txt`), `${MARK}\n`.repeat(5000))
  writeFileSync(m.path('small'), MARK)
  const big = Buffer.alloc(3 * 128 * 1024 + 17, `${MARK} `)
  writeFileSync(m.path('big'), big)
  await m.stop()
  m = null
  const needles = [MARK, NAME, MARK.slice(0, 12)].map(s => Buffer.from(s))
  const files = allFiles(dirs.data).concat(allFiles(dirs.config))
  assert.ok(files.length >= 3, 'the store has files')
  for (const f of files) {
    const bytes = readFileSync(f)
    for (const n of needles) assert.equal(bytes.indexOf(n), -1, `${n.toString()} found in ${f}`)
  }
})

test('a flipped byte in a block gives EIO for that block and names it in the log; the rest reads', async () => {
  m = await Mount.start(dirs)
  const victim = randomBytes(4 * 128 * 1024)
  const fd = openSync(m.path('victim.bin'), 'w')
  writeFileSync(fd, victim)
  fsyncSync(fd)
  closeSync(fd)
  writeFileSync(m.path('bystander.txt'), 'still fine')
  await m.stop()

  // The victim's blocks were the last full blocks appended: flip a byte inside the last but one.
  const packs = readdirSync(join(dirs.data, 'packs')).sort()
  const pack = join(dirs.data, 'packs', packs[packs.length - 1])
  const bytes = readFileSync(pack)
  const markerAt = bytes.length - 3 * 128 * 1024
  assert.ok(markerAt > 0)
  bytes[markerAt] ^= 0x01
  writeFileSync(pack, bytes)

  m = await Mount.start(dirs)
  const rfd = openSync(m.path('victim.bin'), 'r')
  const buf = Buffer.alloc(128 * 1024)
  let bad = -1
  for (let b = 0; b < 4; b++) {
    try {
      readSync(rfd, buf, 0, buf.length, b * 128 * 1024)
      assert.ok(buf.equals(victim.subarray(b * 128 * 1024, (b + 1) * 128 * 1024)), `block ${b} content`)
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'EIO', `daemon log:\n${m.stderr}`)
      assert.equal(bad, -1, 'only one block fails')
      bad = b
    }
  }
  closeSync(rfd)
  assert.notEqual(bad, -1, 'the corrupted block was detected')
  // The log names the file by id, not by its name (logs are plaintext on disk).
  const log = await m.waitForLog(new RegExp(`integrity: file id [0-9a-f]{16} block ${bad}`))
  assert.ok(!log.includes('victim'), `the log holds no file name:\n${log}`)
  assert.equal(readFileSync(m.path('bystander.txt'), 'utf8'), 'still fine')
  assert.equal(readFileSync(m.path('small'), 'utf8'), MARK)
  await m.stop()
  m = null
})
