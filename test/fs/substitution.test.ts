// No rollback, no mix and match: sealed bytes that authenticate (an older version of the same
// block, an older root directory node) but are not what the tree names are refused on every read
// path, because each block is checked against the CID it is fetched by. The records are swapped
// in the pack files on disk between two mounts, as anyone with write access to the store could.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, writeFileSync, openSync, writeSync, fsyncSync, closeSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { Mount, tempDirs, removeDirs, space, sh, type Dirs } from '../helpers/mount.js'

const B = 128 * 1024
const cleanups: Array<() => Promise<void> | void> = []
after(async () => { for (const c of cleanups.reverse()) await c() })

function fresh (): Dirs {
  const d = tempDirs()
  cleanups.push(() => removeDirs(d))
  return d
}

async function mount (d: Dirs): Promise<Mount> {
  const m = await Mount.start(d)
  cleanups.push(() => m.cleanup())
  return m
}

/** One record of a pack file (docs/format.md "Pack files"): its CID and where its sealed bytes lie. */
interface Rec { pack: string, cid: string, at: number, length: number }

/** Every record of every pack, in append order (parsed here from the byte table, on purpose). */
function records (d: Dirs): Rec[] {
  const out: Rec[] = []
  const dir = join(d.data, 'packs')
  for (const name of readdirSync(dir).filter(n => n.endsWith('.pack')).sort()) {
    const bytes = readFileSync(join(dir, name))
    let off = 9
    while (off < bytes.length && bytes[off] === 1) {
      const c = bytes[off + 1]
      const cid = CID.decode(bytes.subarray(off + 2, off + 2 + c)).toString()
      const length = bytes.readUInt32BE(off + 2 + c)
      out.push({ pack: join(dir, name), cid, at: off + 6 + c, length })
      off += 6 + c + length
    }
  }
  return out
}

/** Writes the sealed bytes of `from` over those of `over` (same length), leaving headers alone. */
function substitute (from: Rec, over: Rec): void {
  assert.equal(from.length, over.length, 'the substituted records have the same length')
  const src = readFileSync(from.pack).subarray(from.at, from.at + from.length)
  const bytes = readFileSync(over.pack)
  src.copy(bytes, over.at)
  writeFileSync(over.pack, bytes)
}

function writeAndCommit (path: string, data: Buffer, flags = 'w'): void {
  const fd = openSync(path, flags)
  writeSync(fd, data, 0, data.length, 0)
  fsyncSync(fd) // fsync commits the tree
  closeSync(fd)
}

function roots (d: Dirs): string[] {
  const r = space(['log', '--json', '--limit', '1000', '--data-dir', d.data, '--config-dir', d.config])
  assert.equal(r.status, 0, r.stderr)
  return r.stdout.trim().split('\n').map(l => JSON.parse(l) as { seq: number, root: string }).sort((a, b) => a.seq - b.seq).map(e => e.root)
}

test('an older sealed version of block 0 written over the current one reads as EIO on the streaming and the small-read path, never as the old bytes', async () => {
  const d = fresh()
  const older = randomBytes(B)
  const current = randomBytes(B)
  let m = await mount(d)
  writeAndCommit(m.path('f.bin'), older)
  writeAndCommit(m.path('f.bin'), current, 'r+')
  assert.ok(readFileSync(m.path('f.bin')).equals(current))
  assert.equal(await m.stop(), 0)

  // The file's only full-size records: block 0 as first committed, then as rewritten.
  const full = records(d).filter(r => r.length === B + 13 + 32 * 16) // sealed v2: 32 segments
  assert.equal(full.length, 2, 'two sealed versions of block 0 in the packs')
  substitute(full[0], full[1])

  m = await mount(d)
  // O_DIRECT reads reach the daemon as they are asked (no readahead, no retry page by page).
  const readDirect = (bs: number): void => {
    const got = join(d.base, `read-${bs}.out`)
    const r = sh(`dd if=${m.path('f.bin')} of=${got} bs=${bs} count=1 iflag=direct status=none`, { allowFail: true })
    assert.notEqual(r.status, 0, `a ${bs}-byte read fails`)
    assert.match(r.stderr, /Input\/output error/)
    assert.equal(readFileSync(got).length, 0, `no bytes from a ${bs}-byte read, never the old ones`)
  }
  // Streaming: a whole-block read, opened by the native run reader straight from the pack.
  readDirect(B)
  // Small reads: 4 KiB, through the store's get() and the decrypted-block cache.
  readDirect(4096)
  // And an ordinary read through the page cache (whose failed readahead is retried page by page).
  assert.throws(() => readFileSync(m.path('f.bin')), { code: 'EIO' })
  const log = await m.waitForLog(/(integrity: file id [0-9a-f]{16} block 0: block \S+ does not match its CID[^]*){3}/)
  assert.ok(!log.includes('authentication failed'), 'the old version authenticates: only the CID check refuses it')
  assert.equal(await m.stop(), 0)
})

test('an older sealed version of a block deep in a stream is refused there (EIO), where the stream is answered without JS', async () => {
  const d = fresh()
  const n = 32
  const data = randomBytes(n * B)
  let m = await mount(d)
  writeAndCommit(m.path('s.bin'), data)
  const rewritten = randomBytes(B)
  const fd = openSync(m.path('s.bin'), 'r+')
  writeSync(fd, rewritten, 0, B, 20 * B)
  fsyncSync(fd)
  closeSync(fd)
  assert.equal(await m.stop(), 0)
  // The first commit sealed blocks 0..31 in order; the second, block 20 again.
  const full = records(d).filter(r => r.length === B + 13 + 32 * 16)
  assert.equal(full.length, n + 1, 'the 32 blocks and block 20 again')
  substitute(full[20], full[n])

  process.env.SPACE_DEBUG_NATIVE_READS = '1'
  try {
    m = await mount(d)
  } finally { delete process.env.SPACE_DEBUG_NATIVE_READS }
  const got = join(d.base, 'stream.out')
  // 1 MiB requests: the first reaches JS and puts the blocks after it ahead of the stream; the
  // second (blocks 8-15) is answered without JS; the third holds block 20.
  const r = sh(`dd if=${m.path('s.bin')} of=${got} bs=1M iflag=direct status=none`, { allowFail: true })
  assert.notEqual(r.status, 0, 'the stream fails')
  assert.match(r.stderr, /Input\/output error/)
  const out = readFileSync(got)
  assert.equal(out.length, 16 * B, 'the stream stops at the request holding block 20')
  assert.ok(out.equals(data.subarray(0, 16 * B)), 'the blocks before it read back')
  await m.waitForLog(/integrity: file id [0-9a-f]{16} block 20: block \S+ does not match its CID/)
  assert.equal(await m.stop(), 0)
  assert.ok(!m.stderr.includes('authentication failed'), 'the old version authenticates: only the CID check refuses it')
  const line = /native reads: (\d+) answered natively/.exec(m.stderr)
  assert.ok(line != null && Number(line[1]) >= 1, `the stream was answered natively in part: ${line?.[0] ?? 'no stats'}`)
})

test('an older root directory node written over the current one does not bring a deleted file back: the listing is EIO', async () => {
  const d = fresh()
  let m = await mount(d)
  // Enough entries that one entry more or less leaves the root node in the same Padmé size
  // class (granularity 2 KiB here), so the old node fits the new one's record exactly; should
  // a run land on a class boundary, one more filler shifts both and it is tried again.
  for (let i = 0; i < 300; i++) writeFileSync(m.path(`filler-${String(i).padStart(4, '0')}`), '')
  let pair: [Rec, Rec] | null = null
  for (let attempt = 0; attempt < 8 && pair == null; attempt++) {
    if (attempt > 0) writeFileSync(m.path(`filler-extra-${attempt}`), '')
    writeAndCommit(m.path('gone.txt'), Buffer.from('deleted'))
    sh(`rm ${m.path('gone.txt')}`)
    const dir = openSync(m.mnt, 'r')
    fsyncSync(dir) // fsyncdir commits the deletion
    closeSync(dir)
    assert.equal(await m.stop(), 0)
    // The commit before the last one listed gone.txt; the last one does not.
    const [withIt, without] = roots(d).slice(-2)
    const recs = records(d)
    const a = recs.find(r => r.cid === withIt)
    const b = recs.find(r => r.cid === without)
    assert.ok(a != null && b != null, 'both root nodes are in the packs')
    if (a.length === b.length) pair = [a, b]
    else m = await mount(d)
  }
  assert.ok(pair != null, 'the two root nodes got the same sealed length')
  substitute(pair[0], pair[1])

  m = await mount(d)
  assert.throws(() => readdirSync(m.mnt), { code: 'EIO' })
  assert.equal(existsSync(m.path('gone.txt')), false, 'the deleted file does not come back')
  assert.throws(() => readFileSync(m.path('gone.txt')), (err: NodeJS.ErrnoException) => err.code === 'EIO' || err.code === 'ENOENT')
  await m.waitForLog(/integrity: directory id [0-9a-f]{16}.*does not match its CID/)
  assert.equal(await m.stop(), 0)
})
