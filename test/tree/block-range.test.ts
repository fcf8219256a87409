// The block arithmetic of file content against a naive walk, at every offset of the first three
// blocks and one past (as gocryptfs checks its offset arithmetic for every value).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BLOCK_SIZE } from '../../src/fs/tree/format.js'
import {
  blockOf, offsetInBlock, roomInBlock, blockStart, blockEnd, blockCount, lastBlock, blockSpan, bytesInBlock,
  bytesOfBlocks, sectorsOf, sectorsOfBlocks, bufferSizeFor, paddedLength
} from '../../src/fs/tree/block-range.js'

const B = BLOCK_SIZE
const N = 3 * B + 1

// The naive reference: walk the bytes one by one, counting blocks and positions inside them.
const naiveIdx = new Int32Array(N + 1)
const naiveInner = new Int32Array(N + 1)
const naiveStart: number[] = []
for (let off = 0, idx = 0, inner = 0; off <= N; off++) {
  if (inner === 0) naiveStart[idx] = off
  naiveIdx[off] = idx
  naiveInner[off] = inner
  if (++inner === B) { inner = 0; idx++ }
}
const naiveCount = (size: number): number => size === 0 ? 0 : naiveIdx[size - 1] + 1

test('every offset up to three blocks and one byte falls in the block and at the place a byte walk finds', () => {
  for (let off = 0; off <= N; off++) {
    if (blockOf(off) !== naiveIdx[off]) assert.fail(`blockOf(${off}) = ${blockOf(off)}, walk says ${naiveIdx[off]}`)
    if (offsetInBlock(off) !== naiveInner[off]) assert.fail(`offsetInBlock(${off}) = ${offsetInBlock(off)}, walk says ${naiveInner[off]}`)
    if (blockStart(blockOf(off)) + offsetInBlock(off) !== off) assert.fail(`block start plus inner offset of ${off}`)
    if (roomInBlock(off) !== B - naiveInner[off]) assert.fail(`roomInBlock(${off}) = ${roomInBlock(off)}`)
  }
})

test('each block starts and ends where the byte walk starts it and the next one', () => {
  for (let idx = 0; idx + 1 < naiveStart.length; idx++) {
    assert.equal(blockStart(idx), naiveStart[idx])
    assert.equal(blockEnd(idx), naiveStart[idx + 1])
  }
})

test('a file of every size up to three blocks and one byte spans the blocks the walk counts, holding the bytes it counts in each', () => {
  const inBlock = [0, 0, 0, 0, 0]
  for (let size = 0; size <= N; size++) {
    if (size > 0) inBlock[naiveIdx[size - 1]]++
    if (blockCount(size) !== naiveCount(size)) assert.fail(`blockCount(${size}) = ${blockCount(size)}`)
    if (lastBlock(size) !== naiveCount(size) - 1) assert.fail(`lastBlock(${size}) = ${lastBlock(size)}`)
    for (let idx = 0; idx < inBlock.length; idx++) {
      if (bytesInBlock(size, idx) !== inBlock[idx]) assert.fail(`bytesInBlock(${size}, ${idx}) = ${bytesInBlock(size, idx)}, walk says ${inBlock[idx]}`)
    }
    if (sectorsOf(size) !== Math.ceil(size / 512)) assert.fail(`sectorsOf(${size})`)
  }
})

test('a range from every offset spans the blocks of its first and last byte, and its pieces add up to its length', () => {
  const lengths = [1, 2, 511, B - 1, B, B + 1, 2 * B]
  for (let pos = 0; pos < N; pos++) {
    for (const len of lengths) {
      const end = Math.min(N, pos + len)
      const { first, last } = blockSpan(pos, end)
      if (first !== naiveIdx[pos] || last !== naiveIdx[end - 1]) assert.fail(`blockSpan(${pos}, ${end}) = ${first}..${last}, walk says ${naiveIdx[pos]}..${naiveIdx[end - 1]}`)
      let sum = 0
      for (let i = first; i <= last; i++) sum += Math.min(end, blockEnd(i)) - Math.max(pos, blockStart(i))
      if (sum !== end - pos) assert.fail(`pieces of [${pos}, ${end}) add up to ${sum}`)
    }
  }
})

test('whole blocks count their bytes and their 512-byte sectors', () => {
  for (let n = 0; n <= 40; n++) {
    assert.equal(bytesOfBlocks(n), naiveStart[1] * n)
    assert.equal(sectorsOfBlocks(n), sectorsOf(bytesOfBlocks(n)))
  }
})

test('a dirty block buffer is the smallest power of two from 4 KiB that holds what it needs, a whole block past half of one', () => {
  for (let need = 1; need <= B; need++) {
    let naive = 4096
    while (naive < need) naive *= 2
    if (need > B / 2) naive = B
    if (bufferSizeFor(need) !== naive) assert.fail(`bufferSizeFor(${need}) = ${bufferSizeFor(need)}, want ${naive}`)
  }
})

test('a block is sealed at a padded length that holds its bytes, grows with them and never passes a block', () => {
  let prev = 0
  for (let len = 1; len <= B; len++) {
    const p = paddedLength(len)
    if (p < len || p > B || p < prev) assert.fail(`paddedLength(${len}) = ${p} after ${prev}`)
    prev = p
  }
  assert.equal(paddedLength(B), B)
  assert.ok(paddedLength(B - 1) <= B)
})
