// The pack record format (src/store/record.ts) against docs/format.md's byte tables.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cidOf } from '../../src/store/cid.js'
import { encodePackHeader, checkPackHeader, encodeRecordHeader, parseRecordHeader, PACK_HEADER_LENGTH } from '../../src/store/record.js'

test('a record header is version 1, the CID length and bytes, and the block length big-endian, and parses back', () => {
  const cid = cidOf(Buffer.from('block'))
  const h = encodeRecordHeader(cid, 131102)
  assert.equal(h.length, 2 + 36 + 4)
  assert.equal(h[0], 1)
  assert.equal(h[1], 36)
  assert.ok(h.subarray(2, 38).equals(cid.bytes))
  assert.equal(h.readUInt32BE(38), 131102)
  const back = parseRecordHeader(Buffer.concat([h, Buffer.alloc(100)]), 1, 9)
  assert.equal(back.cid.toString(), cid.toString())
  assert.equal(back.headerLength, 42)
  assert.equal(back.length, 131102)
})

test('a record header of another version, cut short, or naming no CID is a corrupt store', () => {
  const h = encodeRecordHeader(cidOf(Buffer.from('x')), 5)
  const other = Buffer.from(h)
  other[0] = 2
  assert.throws(() => parseRecordHeader(other, 3, 100), { code: 'ERR_STORE_CORRUPT', message: 'pack 3: bad record at offset 100' })
  assert.throws(() => parseRecordHeader(h.subarray(0, 20), 3, 100), { code: 'ERR_STORE_CORRUPT' })
  const garbled = Buffer.from(h)
  garbled[2] = 0xff
  assert.throws(() => parseRecordHeader(garbled, 3, 100), { code: 'ERR_STORE_CORRUPT', message: /names no valid CID/ })
})

test('the pack header is "SPACEPK1" and version 1; another magic is corrupt, another version unknown', () => {
  const p = encodePackHeader()
  assert.equal(p.length, PACK_HEADER_LENGTH)
  assert.equal(p.toString('latin1', 0, 8), 'SPACEPK1')
  assert.equal(p[8], 1)
  checkPackHeader(p, 1)
  assert.throws(() => checkPackHeader(Buffer.from('SPACEPK2\x01'), 1), { code: 'ERR_STORE_CORRUPT' })
  assert.throws(() => checkPackHeader(Buffer.from('SPACEPK1\x02'), 1), { code: 'ERR_FORMAT' })
})
