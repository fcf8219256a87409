// The block map tree (src/fs/tree/block-map.ts, docs/format.md "Block map node"): a commit
// reseals only the leaves whose blocks changed and the nodes above them; what it seals reads back
// exactly after any mix of writes, truncates and punched holes across tree heights; an older flat
// map still reads; a node moved to another place in the tree is refused.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import { open, seal, sealedLength, SealType, padFrame, unpadFrame } from '../../src/crypto/index.js'
import { BLOCK_SIZE, encode, decode, decodeAny } from '../../src/fs/tree/format.js'
import { sealBlockMap, blockMapPosition } from '../../src/fs/tree/codec.js'
import { FANOUT, LEAF_BLOCKS, NARROW, WIDE, heightFor, nodeIndex, leafBody, nodeBody, entryBody, shapeFor, SMALL_COMMITS } from '../../src/fs/tree/block-map.js'
import { cidOf } from '../../src/store/cid.js'
import { noncedEntryOf, state } from '../../src/fs/tree/block-ref.js'
import { FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE } from '../../src/fs/tree/file-write.js'
import type { FileNode, Tree } from '../../src/fs/tree/tree.js'
import { memoryTree } from '../helpers/memory-store.js'

const B = BLOCK_SIZE
const PAGE = 4096

/** A big sparse file: one 4 KiB page written in each of `every`-th block of `blocks` blocks. */
async function sparseFile (tree: Tree, path: string, blocks: number, every: number): Promise<{ f: FileNode, pages: Map<number, Buffer> }> {
  const f = await tree.create(path, 0o644)
  const pages = new Map<number, Buffer>()
  for (let i = 0; i < blocks; i += every) {
    const p = randomBytes(PAGE)
    await tree.write(f, p, i * B)
    pages.set(i * B, p)
  }
  await tree.truncate(f, blocks * B)
  await tree.commit()
  return { f, pages }
}

async function readAt (tree: Tree, f: FileNode, pos: number, len: number): Promise<Buffer> {
  const out = Buffer.alloc(len)
  return out.subarray(0, await tree.read(f, out, len, pos))
}

/** Opens the root of f's block map and returns its body. */
function rootBody (f: FileNode, sealed: Uint8Array): { v: number, h?: number, c?: Array<[number, CID]>, b?: unknown[] } {
  return decodeAny(unpadFrame(open(f.key, blockMapPosition(f), sealed))!, 'root', [1, 2]) as never
}

test('a commit after 4 KiB writes into three blocks of a 256 MiB file seals three leaves and the nodes above them, not the whole map', async () => {
  const { tree, store } = memoryTree()
  const { f } = await sparseFile(tree, '/vm.img', 2048, 1) // every block stored: a 2,048-entry map
  assert.equal(f.mapTree!.height, 2, '2,048 blocks: leaves, one level of inner nodes, the root')
  assert.equal(f.mapTree!.nodes.size, 128 + 2, '128 leaves of 16 blocks, 2 inner nodes')
  const objects = store.size
  const bytes = store.bytes
  for (const idx of [5, 700, 1500]) await tree.write(f, randomBytes(PAGE), idx * B + 8 * PAGE)
  await tree.commit()
  // 3 patches, 3 leaves, 2 inner nodes (blocks 5 and 700 share the first), the map's root, the root directory.
  assert.equal(store.size - objects, 3 + 3 + 2 + 1 + 1)
  const mapBytes = store.bytes - bytes - 3 * (PAGE + 29)
  assert.ok(mapBytes < 16 * 1024, `map and directory: ${mapBytes} bytes appended (the flat map was ~90 KiB)`)
  assert.equal(f.changedBlocks.size, 0)
})

test('a commit with no change to a big file seals none of its map, and a changed neighbour file leaves its map alone', async () => {
  const { tree, store } = memoryTree()
  const { f } = await sparseFile(tree, '/a', 600, 3)
  const before = f.blockMap!
  const g = await tree.create('/b', 0o644)
  await tree.write(g, Buffer.from('x'), 0)
  const objects = store.size
  await tree.commit()
  assert.equal(store.size - objects, 2, 'the new file\'s block and the root directory')
  assert.ok(f.blockMap!.equals(before))
})

test('random writes, truncates and punched holes across tree heights read back exactly after each commit and after reopening', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/db', 0o644)
  // The model: the file's size and its written pages (everything else reads as zeros).
  let size = 0
  const pages = new Map<number, Buffer>()
  const modelAt = (pos: number, len: number): Buffer => {
    const out = Buffer.alloc(Math.max(0, Math.min(len, size - pos)))
    for (let p = Math.floor(pos / PAGE) * PAGE; p < pos + out.length; p += PAGE) {
      const pg = pages.get(p)
      if (pg != null) pg.copy(out, Math.max(0, p - pos), Math.max(0, pos - p), Math.min(PAGE, pos + out.length - p))
    }
    return out
  }
  let seed = 7
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  const check = async (t: Tree, node: FileNode, when: string): Promise<void> => {
    assert.equal(node.size, size, `${when}: size`)
    const probes = [...pages.keys()].filter(() => rnd(4) === 0).concat([0, size - PAGE, rnd(Math.max(1, size))])
    for (const p of probes) {
      if (p < 0) continue
      const got = await readAt(t, node, p, PAGE + 10)
      assert.ok(got.equals(modelAt(p, PAGE + 10)), `${when}: read at ${p}`)
    }
  }
  const write = async (pos: number, len: number): Promise<void> => {
    pos = Math.floor(pos / PAGE) * PAGE
    const data = randomBytes(len)
    await tree.write(f, data, pos)
    for (let o = 0; o < len; o += PAGE) pages.set(pos + o, data.subarray(o, o + PAGE))
    size = Math.max(size, pos + len)
  }
  const shapes = new Set<unknown>()
  for (let round = 0; round < 12; round++) {
    // Grow past the one-level limit (1,024 blocks) in some rounds, shrink below it in others.
    const span = (round % 4 === 3 ? 1400 : 300) * B
    for (let k = 0; k < 40; k++) {
      const op = rnd(10)
      if (op < 6) await write(rnd(span), PAGE)
      else if (op < 8) await write(rnd(span), B)
      else if (op < 9 && size > 0) {
        const at = Math.floor(rnd(size) / PAGE) * PAGE
        const len = PAGE * (1 + rnd(64))
        await tree.fallocate(f, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, at, len)
        for (let p = at; p < at + len; p += PAGE) pages.delete(p)
      } else {
        const to = Math.floor(rnd(span) / PAGE) * PAGE
        await tree.truncate(f, to)
        size = to
        for (const p of [...pages.keys()]) if (p >= to) pages.delete(p)
      }
    }
    await tree.commit()
    // Small commits (one 4 KiB write each), as fsyncs between few writes make: they let the map turn narrow.
    for (let k = 0; k < 9 && size > PAGE; k++) { await write(rnd(size - PAGE), PAGE); await tree.commit() }
    await check(tree, f, `round ${round}`)
    if (f.blocks!.size > 32) assert.equal(f.mapTree!.height, heightFor(Math.ceil(size / B), f.mapTree!.shape), `round ${round}: height`)
    if (f.blocks!.size > 32) shapes.add(f.mapTree!.shape)
    const again = sink.reopen(store)
    await check(again, await again.lookup('/db') as FileNode, `round ${round}, reopened`)
  }
  assert.ok(shapes.has(NARROW), 'the random writes gave the map the narrow shape in some rounds')
})

test('a flat block map (as format 2 wrote before the tree) still reads, and the next change seals a tree', async () => {
  const { tree, store, sink } = memoryTree()
  const { f, pages } = await sparseFile(tree, '/old', 100, 2)
  // Replace the tree by the flat map the earlier writer sealed for the same blocks.
  f.blockMap = store.put(sealBlockMap(f, f.blocks!))
  f.mapTree = null
  const flat = rootBody(f, await store.get(f.blockMap))
  assert.equal(flat.v, 1)
  assert.equal(flat.b!.length, 50)
  // Make the root directory name the flat map: a metadata change rewrites the entry.
  await tree.chmod('/old', 0o600)
  await tree.commit()
  const one = sink.reopen(store)
  const g = await one.lookup('/old') as FileNode
  assert.ok(g.blockMap!.equals(f.blockMap))
  for (const [pos, p] of pages) assert.ok((await readAt(one, g, pos, PAGE)).equals(p), `flat map: page at ${pos}`)
  assert.equal(g.mapTree, null, 'a flat map has no tree')
  const page = randomBytes(PAGE)
  await one.write(g, page, 51 * B)
  await one.commit()
  assert.equal(rootBody(g, await store.get(g.blockMap!)).v, 2, 'rewritten as a tree')
  const two = sink.reopen(store)
  const h = await two.lookup('/old') as FileNode
  assert.ok((await readAt(two, h, 51 * B, PAGE)).equals(page))
  for (const [pos, p] of pages) assert.ok((await readAt(two, h, pos, PAGE)).equals(p), `tree: page at ${pos}`)
})

test('a leaf named at another place in the tree fails authentication, and an older format 2 reader refuses a tree root by its version', async () => {
  const { tree, store, sink } = memoryTree()
  const { f } = await sparseFile(tree, '/t', 64, 1) // 4 leaves under the root
  const root = rootBody(f, await store.get(f.blockMap!))
  assert.equal(root.v, 2)
  assert.equal(f.mapTree!.shape, WIDE, 'whole blocks only: the wide shape')
  assert.deepEqual(root.c!.map(([s]) => s), [0, 1, 2, 3])
  // An attacker who could seal (they cannot: the key) still could not move leaf 0 to slot 1.
  const swapped = { v: 2, h: root.h, c: [[0, root.c![1][1]], [1, root.c![0][1]], root.c![2], root.c![3]] }
  f.blockMap = store.put(seal(f.key, blockMapPosition(f), padFrame(encode(swapped))))
  f.mapTree = null
  await tree.chmod('/t', 0o600)
  await tree.commit()
  const one = sink.reopen(store)
  const g = await one.lookup('/t') as FileNode
  await assert.rejects(readAt(one, g, 0, PAGE), { code: 'ERR_INTEGRITY', message: /authentication failed/ })
  // A reader that knows only flat maps (body version 1) refuses, naming the version.
  const body = unpadFrame(open(f.key, blockMapPosition(f), await store.get(f.blockMap)))!
  assert.throws(() => decode(body, 'block map'), { code: 'ERR_FORMAT', message: /unknown format version 2/ })
})

test('node positions: leaves of 16 blocks, inner nodes of 64, heights as the file grows', () => {
  assert.equal(LEAF_BLOCKS, 16)
  assert.equal(FANOUT, 64)
  assert.equal(heightFor(1), 1)
  assert.equal(heightFor(1024), 1)
  assert.equal(heightFor(1025), 2)
  assert.equal(heightFor(65536), 2)
  assert.equal(heightFor(65537), 3)
  assert.equal(heightFor(2 ** 36), 6, 'the largest file')
  assert.notEqual(nodeIndex(0, 0), 0, 'no node sits at the root\'s place')
  assert.notEqual(nodeIndex(1, 0), nodeIndex(0, 2 ** 36 / 16 - 1))
})

test('a leaf built from cached entry encodings is byte for byte the canonical dag-cbor of its body, after its blocks change', async () => {
  const { tree } = memoryTree()
  const f = await tree.create('/l', 0o644)
  await tree.truncate(f, 40 * B)
  for (const i of [16, 17, 20, 31]) await tree.write(f, randomBytes(B), i * B) // whole blocks
  for (const i of [18, 20, 25]) await tree.write(f, randomBytes(PAGE), i * B + 3 * PAGE) // patches over a hole and over a block
  await tree.commit()
  const canonical = (): Uint8Array => encode({ v: 4, b: [...f.blocks!].filter(([i]) => i >= 16 && i < 32).sort((x, y) => x[0] - y[0]).map(([i, r]) => noncedEntryOf(i, r)) })
  assert.deepEqual(leafBody(f.blocks!, 1), canonical())
  await tree.write(f, randomBytes(PAGE), 17 * B) // one entry changes, the others come from the cache
  await tree.commit()
  assert.deepEqual(leafBody(f.blocks!, 1), canonical())
  assert.equal(leafBody(f.blocks!, 2), null, 'a leaf of holes only')
})

test('a file rewritten in place, held inline for one commit, then grown past the inline list again reads its new content after a reopen', async () => {
  const { tree, store, sink } = memoryTree()
  const f = await tree.create('/big', 0o644)
  const fill = (c: number): Buffer => Buffer.alloc(B, c)
  for (let i = 0; i < 40; i++) await tree.write(f, fill(0x41), i * B)
  await tree.commit() // 40 blocks: a map tree
  await tree.truncate(f, 0) // O_TRUNC, as cp over it or an editor's save does
  for (let i = 0; i < 16; i++) await tree.write(f, fill(0x42), i * B)
  await tree.commit() // 16 blocks: inline
  for (let i = 16; i < 40; i++) await tree.write(f, fill(0x42), i * B)
  await tree.commit() // a map tree again
  const again = sink.reopen(store)
  const g = await again.lookup('/big') as FileNode
  for (let i = 0; i < 40; i++) {
    const got = await readAt(again, g, i * B, B)
    assert.ok(got.equals(fill(0x42)), `block ${i} after the reopen holds ${String.fromCharCode(got[0])}, not B`)
  }
})

test('inner and root node bodies built from cached CID encodings are the bytes dag-cbor encodes, for 1 to 64 children', () => {
  const cids = Array.from({ length: FANOUT }, () => cidOf(randomBytes(40)))
  for (const n of [1, 2, 23, 24, 25, 63, 64]) {
    // Slots spread over 0 .. 63, so both one-byte and two-byte slot numbers appear.
    const c: Array<[number, CID]> = Array.from({ length: n }, (_, i) => [Math.floor(i * FANOUT / n), cids[i]])
    for (let round = 0; round < 2; round++) { // the second round takes the cached encodings
      assert.deepEqual(Buffer.from(nodeBody(c, null)), Buffer.from(encode({ v: 2, c })), `inner node of ${n}`)
      assert.deepEqual(Buffer.from(nodeBody(c, 3)), Buffer.from(encode({ v: 2, h: 3, c })), `root of ${n}`)
    }
  }
})

test('block entries built from cached CID encodings are the bytes dag-cbor encodes, for any index and patch list, nonces stated or not', () => {
  let k = 0
  // Every third CID states a nonce at the length its place implies, every third one at another (not recorded).
  const cid = (full = sealedLength(B)): CID => {
    const c = cidOf(randomBytes(40))
    k++
    return k % 3 === 0 ? c : state(c, randomBytes(12), k % 3 === 1 ? full : full - 1)
  }
  // CIDs of other lengths than this store's (a sha2-256 CID of v0.1, an identity CID) too.
  for (const c of [CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), CID.create(1, 0x55, identity.digest(randomBytes(300)))]) {
    assert.deepEqual(Buffer.from(entryBody(3, c)), Buffer.from(encode(noncedEntryOf(3, c))), `CID of ${c.bytes.length} bytes`)
  }
  for (const idx of [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 36 + 12345]) {
    const whole = cid()
    assert.deepEqual(Buffer.from(entryBody(idx, whole)), Buffer.from(encode(noncedEntryOf(idx, whole))), `whole block ${idx}`)
    for (const n of [1, 2, 16, 23, 24, 30]) {
      const ref = { base: n % 2 === 0 ? null : cid(), patches: Array.from({ length: n }, (_, k) => ({ first: (k * 7) % 32, count: 1 + (k % 3) })).map(p => {
        const count = Math.min(p.count, 32 - p.first)
        return { cid: cid(sealedLength(count * PAGE)), first: p.first, count }
      }) }
      assert.deepEqual(Buffer.from(entryBody(idx, ref)), Buffer.from(encode(noncedEntryOf(idx, ref))), `block ${idx}, ${n} patches`)
    }
  }
})

/**
 * 1,024 whole blocks (a wide map), then 8 small commits of 4 KiB writes into 8 blocks in 8
 * leaves each: 64 blocks patched (1 in 16), and the map narrow from the 8th commit on.
 */
async function narrowFile (tree: Tree, path: string): Promise<{ f: FileNode, pages: Map<number, Buffer> }> {
  const { f } = await sparseFile(tree, path, 1024, 1)
  assert.equal(f.mapTree!.shape, WIDE)
  const pages = new Map<number, Buffer>()
  for (let c = 0; c < SMALL_COMMITS; c++) {
    for (let j = 0; j < 8; j++) {
      const at = (c * 128 + j * 16) * B + 5 * PAGE
      const p = randomBytes(PAGE)
      await tree.write(f, p, at)
      pages.set(at, p)
    }
    await tree.commit()
    assert.equal(f.mapTree!.shape, c < SMALL_COMMITS - 1 ? WIDE : NARROW, `after small commit ${c}`)
  }
  return { f, pages }
}

/** Opens the root of f's block map and returns its body, any version. */
function anyRoot (f: FileNode, sealed: Uint8Array): { v: number, h: number, l?: number, f?: number, c: Array<[number, CID]> } {
  return decodeAny(unpadFrame(open(f.key, blockMapPosition(f), sealed))!, 'root', [1, 2, 3]) as never
}

test('a map with many patched blocks is sealed narrow (2 blocks per leaf, 16 children, its shape in a version 3 root) and reads back after a reopen; wide again once the patches are gone', async () => {
  const { tree, store, sink } = memoryTree()
  const { f, pages } = await narrowFile(tree, '/db')
  assert.equal(f.mapTree!.shape, NARROW)
  assert.equal(f.mapTree!.patched, 64)
  const root = anyRoot(f, await store.get(f.blockMap!))
  assert.deepEqual([root.v, root.l, root.f, root.h], [3, 2, 16, heightFor(1024, NARROW)])
  assert.equal(heightFor(1024, NARROW), 3, '512 leaves, 32 and 2 inner nodes, the root')
  assert.equal(f.mapTree!.nodes.size, 512 + 32 + 2)
  assert.deepEqual(Buffer.from(nodeBody(root.c, root.h, NARROW)), Buffer.from(encode({ v: 3, h: root.h, l: 2, f: 16, c: root.c })), 'the root is canonical dag-cbor')
  // A commit after 4 random 4 KiB writes now seals 4 small leaves and the nodes above them.
  const objects = store.size
  const bytes = store.bytes
  for (const idx of [3, 300, 600, 1000]) {
    const p = randomBytes(PAGE)
    await tree.write(f, p, idx * B)
    pages.set(idx * B, p)
  }
  await tree.commit()
  // 4 patches, 4 leaves, 4 + 2 inner nodes (levels 1 and 2; 600 and 1000 share the second), the map's root, the root directory.
  assert.equal(store.size - objects, 4 + 4 + 4 + 2 + 1 + 1)
  const mapBytes = store.bytes - bytes - 4 * (PAGE + 29)
  assert.ok(mapBytes < 8 * 1024, `map and directory: ${mapBytes} bytes appended (inner nodes of 16 children: ~0.75 KiB each)`)
  const one = sink.reopen(store)
  const g = await one.lookup('/db') as FileNode
  for (const [pos, p] of pages) assert.ok((await readAt(one, g, pos, PAGE)).equals(p), `narrow map: page at ${pos}`)
  assert.equal(g.mapTree!.shape, NARROW)
  assert.equal(g.mapTree!.patched, 64 + 4)
  // Whole blocks over every patched one: no patch left, the next seal is wide again.
  for (const i of [...g.blocks!.keys()]) if (g.blocks!.get(i) != null && (g.blocks!.get(i) as { patches?: unknown }).patches != null) await one.write(g, randomBytes(B), i * B)
  await one.commit()
  assert.equal(g.mapTree!.shape, WIDE)
  assert.equal(anyRoot(g, await store.get(g.blockMap!)).v, 2)
  const two = sink.reopen(store)
  const h = await two.lookup('/db') as FileNode
  assert.equal((await two.blocksOf(h)).size, 1024)
  assert.equal(h.mapTree!.shape, WIDE)
})

test('the shape switches with a margin: narrow from 1 patched block in 16 after small commits, wide again below 1 in 64 or at a commit that reseals most leaves', () => {
  assert.equal(shapeFor(2048, 127, WIDE), WIDE)
  assert.equal(shapeFor(2048, 128, WIDE), NARROW)
  assert.equal(shapeFor(2048, 128, WIDE, 4, 128, SMALL_COMMITS - 1), WIDE, 'not before SMALL_COMMITS small commits')
  assert.equal(shapeFor(2048, 32, NARROW), NARROW)
  assert.equal(shapeFor(2048, 31, NARROW), WIDE)
  assert.equal(shapeFor(2048, 1000, NARROW, 256, 1024), NARROW)
  assert.equal(shapeFor(2048, 1000, NARROW, 257, 1024), WIDE, 'a commit resealing more than 1 narrow leaf in 4')
  assert.equal(shapeFor(40, 5, WIDE), WIDE, 'a few patched blocks in a small file keep it wide')
  assert.equal(heightFor(2 ** 36, NARROW), 9, 'the largest file, narrow')
})

test('random 4 KiB writes committed once a second (most leaves each time) keep a map wide, and turn a narrow one wide', async () => {
  const { tree } = memoryTree()
  const { f } = await narrowFile(tree, '/rw')
  assert.equal(f.mapTree!.shape, NARROW)
  let seed = 3
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return (seed >>> 8) % n }
  for (let k = 0; k < 600; k++) await tree.write(f, randomBytes(PAGE), rnd(1024 * 32) * PAGE)
  await tree.commit()
  assert.equal(f.mapTree!.shape, WIDE, '600 writes over 512 narrow leaves: wide')
  for (let r = 0; r < 3; r++) {
    for (let k = 0; k < 600; k++) await tree.write(f, randomBytes(PAGE), rnd(1024 * 32) * PAGE)
    await tree.commit()
    assert.equal(f.mapTree!.shape, WIDE, `big commit ${r}: stays wide however many blocks are patched (${f.mapTree!.patched})`)
  }
})

test('a narrow root naming another shape is refused by its reader', async () => {
  const { tree, store, sink } = memoryTree()
  const { f } = await narrowFile(tree, '/n')
  assert.equal(f.mapTree!.shape, NARROW)
  const root = anyRoot(f, await store.get(f.blockMap!))
  f.blockMap = store.put(seal(f.key, blockMapPosition(f), padFrame(encode({ ...root, l: 4 }))))
  f.mapTree = null
  await tree.chmod('/n', 0o600)
  await tree.commit()
  const one = sink.reopen(store)
  const g = await one.lookup('/n') as FileNode
  await assert.rejects(readAt(one, g, 0, PAGE), { code: 'ERR_FORMAT', message: /unknown shape/ })
})
