import type { CID } from 'multiformats/cid'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Drive } from '../../src/daemon.js'
import { FileNode } from '../../src/fs/tree/nodes.js'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'

const B = BLOCK_SIZE

// A tiny deterministic PRNG so a failure can be replayed.
function prng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

async function readAll (drive: Drive, f: FileNode): Promise<Buffer> {
  const out = Buffer.alloc(f.size)
  let off = 0
  while (off < f.size) {
    const n = await drive.tree.read(f, out.subarray(off), Math.min(300_000, f.size - off), off)
    assert.ok(n > 0)
    off += n
  }
  return out
}

test('random writes and truncates match a plain buffer model, across commits and reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-tree-'))
  const key = randomBytes(32)
  try {
    let drive = await Drive.open(dir, key)
    let f = await drive.tree.create('/model.bin', 0o644)
    let model = Buffer.alloc(0)
    const rnd = prng(42)
    for (let i = 0; i < 400; i++) {
      const r = rnd()
      if (r < 0.75) {
        const pos = Math.floor(rnd() * 5 * B)
        const len = 1 + Math.floor(rnd() * (rnd() < 0.3 ? 2 * B + 5 : 3000))
        const data = randomBytes(len)
        await drive.tree.write(f, data, pos)
        if (pos + len > model.length) model = Buffer.concat([model, Buffer.alloc(pos + len - model.length)])
        data.copy(model, pos)
      } else if (r < 0.9) {
        const size = Math.floor(rnd() * 5 * B)
        await drive.tree.truncate(f, size)
        model = size <= model.length ? Buffer.from(model.subarray(0, size)) : Buffer.concat([model, Buffer.alloc(size - model.length)])
      } else {
        await drive.commit()
      }
      assert.equal(f.size, model.length)
      if (i % 25 === 0) assert.ok((await readAll(drive, f)).equals(model), `content after op ${i}`)
    }
    // Reads at every offset near block boundaries, of every small length.
    for (const base of [0, B - 3, 2 * B - 1]) {
      for (let off = base; off < base + 6; off++) {
        for (const len of [1, 2, 7, B, B + 1]) {
          const out = Buffer.alloc(len)
          const n = await drive.tree.read(f, out, len, off)
          const want = model.subarray(Math.min(off, model.length), Math.min(off + len, model.length))
          assert.equal(n, want.length)
          assert.ok(out.subarray(0, n).equals(want), `read(${off}, ${len})`)
        }
      }
    }
    await drive.close()
    drive = await Drive.open(dir, key)
    f = await drive.tree.lookup('/model.bin') as FileNode
    assert.equal(f.size, model.length)
    assert.ok((await readAll(drive, f)).equals(model), 'content after reopen')
    await drive.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a petabyte sparse file stores nothing and reads zeros', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-tree-'))
  try {
    const drive = await Drive.open(dir, randomBytes(32))
    const f = await drive.tree.create('/sparse', 0o644)
    await drive.tree.truncate(f, 2 ** 50)
    await drive.tree.write(f, Buffer.from('tail'), 2 ** 50 - 4)
    const out = Buffer.alloc(8)
    assert.equal(await drive.tree.read(f, out, 8, 2 ** 49), 8)
    assert.deepEqual(out, Buffer.alloc(8))
    assert.equal(await drive.tree.read(f, out, 8, 2 ** 50 - 4), 4)
    assert.equal(out.subarray(0, 4).toString(), 'tail')
    assert.ok(drive.tree.stat(f).blocks <= B / 512)
    await drive.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('every commit is listed with its root, oldest first, and survives reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-tree-'))
  const key = randomBytes(32)
  try {
    const drive = await Drive.open(dir, key)
    for (let i = 0; i < 3; i++) {
      await drive.tree.mkdir(`/d${i}`, 0o755)
      await drive.commit()
    }
    const log = drive.log()
    assert.deepEqual(log.map(e => e.seq), [1, 2, 3])
    assert.equal(new Set(log.map(e => e.root)).size, 3, 'each commit has its own root CID')
    assert.ok(log.every(e => e.root.startsWith('bafkr4i')), 'roots are CIDv1 raw blake3')
    await drive.close()
    assert.deepEqual(await Drive.readLog(dir, key), log)
    await assert.rejects(Drive.open(dir, randomBytes(32)), { code: 'ERR_WRONG_KEY' })
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

// The binding frees a read's reply buffer as soon as the read answers. A block that fails
// integrity must not make read() answer while other blocks are still being opened into it: here
// block 0 lies apart from blocks 1..24 in the pack, so its job fails while theirs still run. Both
// read paths: native runs straight from the pack, and (no locate()) the decrypted-block cache.
test('a read that fails on one block touches its buffer no more once it has answered', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-tree-'))
  const key = randomBytes(32)
  try {
    let drive = await Drive.open(dir, key)
    const f = await drive.tree.create('/v.bin', 0o644)
    await drive.tree.write(f, randomBytes(24 * B), B)
    await drive.commit()
    await drive.tree.write(f, randomBytes(B), 0)
    await drive.commit()
    const cid = f.blocks!.get(0)! as CID
    const sealed = Buffer.from(await drive.store.get(cid))
    // One more commit: damage in the head commit's own pack bytes sets that commit aside at open
    // (its record checks them; docs/format.md "Recovery rules"), and this test is about reads.
    await drive.tree.write(await drive.tree.create('/later', 0o644), Buffer.from('later'), 0)
    await drive.commit()
    await drive.close()
    const packs = join(dir, 'packs')
    let flipped = 0
    for (const name of readdirSync(packs)) {
      const bytes = readFileSync(join(packs, name))
      const at = bytes.indexOf(sealed)
      if (at < 0) continue
      bytes[at + 100] ^= 0x01
      writeFileSync(join(packs, name), bytes)
      flipped++
    }
    assert.equal(flipped, 1, 'the sealed block was found in one pack')
    for (let round = 0; round < 6; round++) {
      drive = await Drive.open(dir, key)
      if (round % 2 === 1) Object.defineProperty(drive.store, 'locate', { value: undefined })
      const g = await drive.tree.lookup('/v.bin') as FileNode
      const out = Buffer.alloc(25 * B)
      await assert.rejects(drive.tree.read(g, out, out.length, 0), { code: 'ERR_INTEGRITY' })
      out.fill(0xaa) // what the reply buffer's next owner would write
      await new Promise(resolve => setTimeout(resolve, 50))
      await drive.close()
      assert.ok(out.equals(Buffer.alloc(out.length, 0xaa)), `round ${round}: read wrote into its buffer after answering`)
    }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
