// Persistent and crash-safe: kill -9 of the mount process under a heavy write load, then a
// remount (which clears the stale mount by itself) shows a consistent tree with every byte that
// was fsync'd before the kill. Two loads: whole files written and fsync'd, and random 4 KiB and
// 64 KiB writes inside a 48 MiB file with an fsync every 32 writes (patches, folds and the block
// map tree: issue 10).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, isMounted, space, type Dirs } from '../helpers/mount.js'

const dirs: Dirs = tempDirs()
const dirs2: Dirs = tempDirs()
let m: Mount | null = null
const children: ChildProcess[] = []
after(async () => {
  for (const c of children) if (c.exitCode == null) c.kill('SIGKILL')
  await m?.cleanup()
  removeDirs(dirs)
  removeDirs(dirs2)
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

// Random writes into one big file: write n covers `pagesOf(n)` (one 4 KiB page, every 8th a
// 64 KiB run), each page holding n, its page number and a pattern of both; after every 32nd write
// the file is fsync'd and n + 1 (the writes now durable) appended to a log outside the mount.
const PAGES = 48 * 256 // 48 MiB of 4 KiB pages
const RANDOM_WRITER = `
const fs = require('fs'); const [file, log] = process.argv.slice(1);
const PAGES = ${PAGES};
${pagesOfSource()}
const fd = fs.openSync(file, 'w+'); fs.ftruncateSync(fd, PAGES * 4096); fs.fsyncSync(fd); fs.appendFileSync(log, '0\\n');
for (let n = 0; ; n++) {
  const [first, count] = pagesOf(n);
  const buf = Buffer.alloc(count * 4096);
  for (let k = 0; k < count; k++) fill(buf.subarray(k * 4096, (k + 1) * 4096), n, first + k);
  try { fs.writeSync(fd, buf, 0, buf.length, first * 4096); if (n % 32 === 31) fs.fsyncSync(fd) } catch { process.exit(0) }
  if (n % 32 === 31) fs.appendFileSync(log, (n + 1) + '\\n');
}`

function pagesOfSource (): string {
  return `function pagesOf (n) {
  let h = Math.imul(n + 1, 2654435761) >>> 0; h = (h ^ (h >>> 15)) >>> 0; h = Math.imul(h, 2246822519) >>> 0; h = (h ^ (h >>> 13)) >>> 0;
  return n % 8 === 7 ? [(h % (PAGES / 16)) * 16, 16] : [h % PAGES, 1];
}
function fill (page, n, p) { page.writeUInt32BE(n, 0); page.writeUInt32BE(p, 4); for (let i = 8; i < 4096; i++) page[i] = (n * 31 + p * 7 + i) & 0xff }`
}

test('kill -9 during random 4 KiB and 64 KiB writes with fsync every 32 loses no fsync\'d write', async () => {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const { pagesOf, fill } = new Function('PAGES', pagesOfSource() + '; return { pagesOf, fill }')(PAGES) as {
    pagesOf: (n: number) => [number, number], fill: (page: Buffer, n: number, p: number) => void
  }
  m = await Mount.start(dirs2)
  const log = join(dirs2.base, 'fsynced.log')
  const writer = spawn(process.execPath, ['-e', RANDOM_WRITER, m.path('db.img'), log], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  writer.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  children.push(writer)
  const fsyncs = (): number => existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0
  const deadline = Date.now() + 90_000
  const start = Date.now()
  while (fsyncs() < 200 || Date.now() - start < 4000) { // ~17 writes per block: past the fold of many blocks, narrow map trees
    assert.ok(Date.now() < deadline && writer.exitCode == null, `the writer made progress (${fsyncs()} fsyncs): ${stderr}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  await m.kill()
  for (const c of children) if (c.exitCode == null) c.kill('SIGKILL')
  const durable = Math.max(...readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number))

  // For each page: the writes to it, in order.
  const writesTo = new Map<number, number[]>()
  let n = 0
  for (; n < durable + 100_000; n++) {
    const [first, count] = pagesOf(n)
    for (let p = first; p < first + count; p++) { const w = writesTo.get(p); if (w == null) writesTo.set(p, [n]); else w.push(n) }
  }
  m = await Mount.start(dirs2)
  const got = readFileSync(m.path('db.img'))
  assert.equal(got.length, PAGES * 4096)
  const want = Buffer.alloc(4096)
  let checked = 0
  for (let p = 0; p < PAGES; p++) {
    const page = got.subarray(p * 4096, (p + 1) * 4096)
    const writes = writesTo.get(p) ?? []
    const lastDurable = writes.filter(w => w < durable).at(-1)
    if (page.every(b => b === 0)) {
      assert.equal(lastDurable, undefined, `page ${p}: zeros, but write ${String(lastDurable)} to it was fsync'd`)
      continue
    }
    const w = page.readUInt32BE(0)
    assert.equal(page.readUInt32BE(4), p, `page ${p}: holds another page's bytes`)
    assert.ok(writes.includes(w), `page ${p}: holds write ${w}, which never went there`)
    assert.ok(lastDurable == null || w >= lastDurable, `page ${p}: holds write ${w}, older than the fsync'd write ${String(lastDurable)}`)
    fill(want, w, p)
    assert.ok(page.equals(want), `page ${p}: the bytes of write ${w} are damaged`)
    checked++
  }
  assert.ok(checked > 1000, `${checked} pages written`)
  await m.stop()
  m = null
  const fsck = space(['fsck', '--data-dir', dirs2.data, '--config-dir', dirs2.config])
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr)
})
