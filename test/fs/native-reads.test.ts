// Native reads (native/src/fuse3/fastread.c): reads of blocks JS has checked are answered on
// libfuse's worker thread. Through a real mount: they return the file's bytes at any offset and
// length, most reads of a checked file never reach JS, and after every write, truncate or hole
// punched through another handle the next read returns the new bytes (a model of the file is
// compared after each step). Reads use O_DIRECT so that each one reaches the daemon.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tempDirs, Mount, removeDirs, sh, bindingName, readAt, type Dirs } from '../helpers/mount.js'

const B = 128 * 1024
const skip = bindingName() === 'fuse2' ? 'native reads are the libfuse 3 binding\'s' : false

let dirs: Dirs | undefined
let m: Mount | undefined

/** Deterministic pseudo-random numbers (xorshift32), so a failure can be replayed. */
function rng (seed: number): (n: number) => number {
  let x = seed >>> 0 || 1
  return n => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n }
}

/** The daemon's count of reads answered natively and by JS, printed at unmount. */
function nativeStats (stderr: string): { native: number, js: number } {
  const line = /native reads: (\d+) answered natively, (\d+) by JS/.exec(stderr)
  assert.ok(line != null, `no native read line in the daemon's log:\n${stderr}`)
  return { native: Number(line[1]), js: Number(line[2]) }
}

async function restart (): Promise<{ native: number, js: number }> {
  assert.equal(await m!.stop(), 0)
  const stats = nativeStats(m!.stderr)
  m = await Mount.start(dirs!)
  return stats
}

before(async () => {
  process.env.SPACE_DEBUG_NATIVE_READS = '1'
  dirs = tempDirs('space-nread-')
  m = await Mount.start(dirs)
})

after(async () => {
  await m?.cleanup()
  if (dirs != null) removeDirs(dirs)
})

test('reads of checked blocks return the file\'s bytes at any offset and length, and most never reach JS', { skip }, async t => {
  const file = m!.path('read.bin')
  const model = randomBytes(24 * B + 1234) // the last block short
  fs.writeFileSync(file, model)
  const w = fs.openSync(file, 'r')
  fs.fsyncSync(w) // committed: its blocks sealed, so that reads check them and put them in the table
  fs.closeSync(w)
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT)
  try {
    const r = rng(1)
    const lens = [1, 100, 4095, 4096, 4097, 20_000, B - 1, B, B + 1, 3 * B + 7, 1024 * 1024]
    for (let i = 0; i < 3000; i++) {
      const len = lens[r(lens.length)]
      const pos = r(model.length + 2000) // past the end too
      const got = readAt(fd, pos, len)
      assert.ok(got.equals(model.subarray(pos, pos + len)), `read ${i}: ${len} bytes at ${pos}`)
    }
  } finally {
    fs.closeSync(fd)
  }
  const stats = await restart()
  t.diagnostic(`reads answered natively: ${stats.native}, by JS: ${stats.js}`)
  assert.ok(stats.native > 2000, `reads answered natively: ${stats.native} (by JS: ${stats.js})`)
})

test('after each write, truncate and punched hole through another handle, reads through a held handle return the new bytes', { skip }, async t => {
  const file = m!.path('model.bin')
  let model = randomBytes(64 * B + 300)
  fs.writeFileSync(file, model)
  const reader = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT)
  const writer = fs.openSync(file, 'r+')
  fs.fsyncSync(writer)
  const r = rng(7)
  const check = (what: string, pos: number, len: number, fd = reader): void => {
    const got = readAt(fd, pos, len)
    const want = model.subarray(pos, pos + len)
    assert.ok(got.equals(want), `${what}: ${len} bytes at ${pos} (size ${model.length}) differ from the model`)
  }
  try {
    // Every block checked once and put in the table: the writes below land on blocks that
    // native reads answer, and the read right after each must not.
    // (In shuffled order: reads in sequence go through the block cache by read-ahead instead.)
    const order = [...Array(Math.ceil(model.length / B)).keys()].sort(() => r(3) - 1)
    for (const i of order) check('first pass', i * B, B)
    for (let step = 0; step < 500; step++) {
      const op = r(100)
      if (op < 45) {
        // Reads around one place, as a program reads its working set: the first checks what
        // changed, the next are native.
        const at = r(model.length)
        for (let k = 0; k < 8; k++) check(`step ${step} read ${k}`, Math.max(0, at - 2 * B + r(4 * B)), [1, 4096, 5000, B, 2 * B + 3][r(5)])
      } else if (op < 80) {
        // A write anywhere (one in ten around the end, growing the file), then the bytes around it at once.
        const len = [1, 100, 4096, 4096 * 3, B + 17][r(5)]
        const pos = r(10) === 0 ? Math.max(0, model.length - B + r(2 * B)) : r(model.length)
        const data = randomBytes(len)
        check(`step ${step} before a write of ${len} at ${pos}`, Math.floor(pos / B) * B, B)
        fs.writeSync(writer, data, 0, len, pos)
        if (pos + len > model.length) model = Buffer.concat([model, Buffer.alloc(pos + len - model.length)])
        data.copy(model, pos)
        check(`step ${step} after a write of ${len} at ${pos}`, Math.max(0, pos - 4096), len + 8192)
        check(`step ${step} after a write, the whole block`, Math.floor(pos / B) * B, B)
      } else if (op < 82) {
        const size = 32 * B + r(40 * B)
        fs.ftruncateSync(writer, size)
        model = size <= model.length ? Buffer.from(model.subarray(0, size)) : Buffer.concat([model, Buffer.alloc(size - model.length)])
        check(`step ${step} after a truncate to ${size}`, Math.max(0, size - B - 100), 2 * B + 200)
      } else if (op < 87) {
        const pos = r(model.length)
        const len = Math.min(model.length - pos, 1 + r(3 * B))
        check(`step ${step} before punching ${len} at ${pos}`, pos, len)
        sh(`fallocate -p -o ${pos} -l ${len} ${file}`)
        model.fill(0, pos, pos + len)
        check(`step ${step} after punching ${len} at ${pos}`, Math.max(0, pos - 100), len + 200)
      } else if (op < 95) {
        fs.fsyncSync(writer) // a commit: dirty blocks sealed, to be checked and put again
        check(`step ${step} after fsync`, r(model.length), B)
      } else {
        check(`step ${step} through the writer`, r(model.length), 4096, writer)
      }
    }
    for (let p = 0; p < model.length; p += B) check('last pass', p, B)
  } finally {
    fs.closeSync(reader)
    fs.closeSync(writer)
  }
  const stats = await restart()
  t.diagnostic(`reads answered natively: ${stats.native}, by JS: ${stats.js}`)
  assert.ok(stats.native > 100, `reads answered natively: ${stats.native} (by JS: ${stats.js})`)
  assert.ok(fs.readFileSync(file).equals(model), 'the file after a remount')
})

test('a cold stream of a committed file is answered natively after its first request, byte for byte', { skip }, async t => {
  const file = m!.path('stream.bin')
  const model = randomBytes(24 * 8 * B + 5000) // 24 MiB and a short last block
  fs.writeFileSync(file, model)
  const w = fs.openSync(file, 'r')
  fs.fsyncSync(w)
  fs.closeSync(w)
  await restart() // cold: no block checked in this process, no entry in the table
  // 1 MiB O_DIRECT requests, as they come: the first reaches JS, which puts the blocks after it
  // ahead of the stream (each checked against its CID where it is read).
  const out = `${dirs!.base}/stream.out`
  sh(`dd if=${file} of=${out} bs=1M iflag=direct status=none`)
  assert.ok(fs.readFileSync(out).equals(model), 'the stream read back differs from what was written')
  // Read again: the entries are ordinary ones now (checked), through another handle and at odd places.
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT)
  try {
    for (const [pos, len] of [[3 * B + 100, 4096], [10 * B, 2 * B], [model.length - 3000, 8192]]) {
      assert.ok(readAt(fd, pos, len).equals(model.subarray(pos, pos + len)), `${len} bytes at ${pos}`)
    }
  } finally { fs.closeSync(fd) }
  const stats = await restart()
  t.diagnostic(`reads answered natively: ${stats.native}, by JS: ${stats.js}`)
  // (The new mount reads before the next test stops it: a daemon stopped within milliseconds of
  // printing "mounted" is sometimes ended by the signal itself, before its handler.)
  assert.ok(fs.readFileSync(file).equals(model), 'the file through the new mount')
  assert.ok(stats.native >= 22, `reads answered natively: ${stats.native} of ${stats.native + stats.js} (24 requests of the stream)`)
})

test('with SPACE_NATIVE_READS=0 every read goes to JS', { skip }, async () => {
  assert.equal(await m!.stop(), 0)
  process.env.SPACE_NATIVE_READS = '0'
  try {
    m = await Mount.start(dirs!)
    const fd = fs.openSync(m.path('read.bin'), fs.constants.O_RDONLY | fs.constants.O_DIRECT)
    try { for (let i = 0; i < 50; i++) readAt(fd, i * 4096, 4096) } finally { fs.closeSync(fd) }
    assert.equal(await m.stop(), 0)
    assert.equal(nativeStats(m.stderr).native, 0)
  } finally {
    delete process.env.SPACE_NATIVE_READS
  }
  m = await Mount.start(dirs!)
})
