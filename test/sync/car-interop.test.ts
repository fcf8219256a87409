// Our streaming CAR reader and writer (src/sync/transport-car.ts) against the reference
// implementation, @ipld/car: each reads what the other writes, block for block, so any IPFS tool
// can read the hub's CAR batches and the hub reads theirs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CarReader, CarWriter } from '@ipld/car'
import { carHeader, readCar, sectionPrefix, type Block } from '../../src/sync/transport-car.js'
import { cidOf } from '../../src/store/cid.js'

const blocks: Block[] = [1, 100, 4096, 131_597, 0].map(n => { const bytes = randomBytes(n); return { cid: cidOf(bytes), bytes } })

test('@ipld/car reads the CAR our writer makes, every block in order', async () => {
  const ours = Buffer.concat([carHeader(), ...blocks.flatMap(b => [sectionPrefix(b.cid, b.bytes.length), Buffer.from(b.bytes)])])
  const reader = await CarReader.fromBytes(ours)
  const got = []
  for await (const b of reader.blocks()) got.push(b)
  assert.equal(got.length, blocks.length)
  got.forEach((b, i) => { assert.equal(b.cid.toString(), blocks[i].cid.toString()); assert.deepEqual(Buffer.from(b.bytes), Buffer.from(blocks[i].bytes)) })
})

test('our reader reads the CAR @ipld/car writes, checking every block against its CID', async () => {
  const { writer, out } = CarWriter.create([blocks[0].cid])
  const chunks: Uint8Array[] = []
  const collected = (async () => { for await (const c of out) chunks.push(c) })()
  for (const b of blocks) await writer.put({ cid: b.cid as never, bytes: b.bytes })
  await writer.close()
  await collected
  async function * source (): AsyncGenerator<Uint8Array> { for (const c of chunks) yield c }
  const got: Block[] = []
  for await (const b of readCar(source())) got.push(b)
  assert.deepEqual(got.map(b => b.cid.toString()), blocks.map(b => b.cid.toString()))
})
