// fallocate(2) through a real mount with util-linux's fallocate(1): growing, punching holes and
// zeroing ranges give the bytes and sizes Linux promises, after a remount too, and punched
// blocks stop counting in st_blocks. (The libfuse 2 binding has no fallocate: skipped there.)
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tempDirs, Mount, removeDirs, sh, bindingName, type Dirs } from '../helpers/mount.js'

const B = 128 * 1024
const skip = bindingName() === 'fuse2' ? 'libfuse 2 binding has no fallocate' : false

let dirs: Dirs
let m: Mount

before(async () => {
  dirs = tempDirs('space-fallocate-')
  m = await Mount.start(dirs)
})

after(async () => {
  await m?.cleanup()
  if (dirs != null) removeDirs(dirs)
})

test('fallocate grows, punches holes and zeroes ranges with the bytes and sizes Linux gives', { skip }, async () => {
  const file = m.path('f.bin')
  const model = randomBytes(8 * B + 100)
  fs.writeFileSync(file, model)
  sh(`fallocate -p -o ${B} -l ${3 * B} ${file}`) // whole blocks 1..3 become holes
  model.fill(0, B, 4 * B)
  sh(`fallocate -p -o ${5 * B + 10} -l 1000 ${file}`) // inside a block
  model.fill(0, 5 * B + 10, 5 * B + 1010)
  sh(`fallocate -z -o ${6 * B - 5} -l 20 ${file}`) // across a block boundary
  model.fill(0, 6 * B - 5, 6 * B + 15)
  sh(`fallocate -z -o ${8 * B} -l ${2 * B} ${file}`) // past the end: grows
  const grown = Buffer.concat([model.subarray(0, 8 * B), Buffer.alloc(2 * B)])
  sh(`fallocate -n -l ${20 * B} ${file}`) // KEEP_SIZE: nothing changes
  sh(`fallocate -l ${11 * B} ${file}`) // mode 0 past the end: grows with zeros
  const want = Buffer.concat([grown, Buffer.alloc(B)])
  assert.ok(fs.readFileSync(file).equals(want), 'content through the mount')
  assert.equal(fs.statSync(file).size, 11 * B)
  // The punched blocks are holes: at least 3 blocks' worth fewer sectors than a full file.
  assert.ok(fs.statSync(file).blocks <= (11 * B - 3 * B) / 512, `st_blocks ${fs.statSync(file).blocks}`)
  const unsupported = sh(`fallocate -c -o 0 -l ${B} ${file}`, { allowFail: true }) // COLLAPSE_RANGE
  assert.notEqual(unsupported.status, 0)
  assert.match(unsupported.stderr, /not supported/i)
  assert.equal(await m.stop(), 0)
  m = await Mount.start(dirs)
  assert.ok(fs.readFileSync(file).equals(want), 'content after a remount')
})
