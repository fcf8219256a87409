// Files that grow on one device over many commits while the other device merges each commit as
// it arrives (the replication bench's bulk workload, smaller): the writer's drive never gets
// conflict copies of its own files back, and both mounts end with exactly the files written.
// Real processes on 127.0.0.1: a hub and two daemons of one identity, each with its own mount.
// Found here: a file made by open(O_CREAT) was registered as not open for writing, so merges
// were swapped in under its writer, and the writer's later writes went to a node the new tree
// did not hold: the writer's own drive kept the file at the size of the commit the merge came
// after (8 of 16 MiB), and so did every other device.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { closeSync, openSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster } from './helpers-devices.js'

const FILES = 6
const MIB_PER_FILE = 16

describe('files growing on one device while the other merges', { timeout: 300_000 }, () => {
  let c: Cluster

  before(async () => { c = await Cluster.start('space-grow', ['alpha', 'beta']) })
  after(async () => { await c?.stop() })

  it('come out whole on both devices, with no conflict copies', async () => {
    const [A, B] = c.devs.map(d => d.mount)
    const sums: string[] = []
    const names = Array.from({ length: FILES }, (_, i) => `grow-${i}.bin`)
    for (const name of names) {
      // 1 MiB writes with pauses: each file spans several of A's commits, each merged by B.
      const h = createHash('sha256')
      const fd = openSync(A.path(name), 'w')
      for (let k = 0; k < MIB_PER_FILE; k++) {
        const chunk = randomBytes(1 << 20)
        writeSync(fd, chunk); h.update(chunk)
        if (k % 4 === 3) await sleep(150)
      }
      closeSync(fd)
      sums.push(h.digest('hex'))
    }
    const size = MIB_PER_FILE << 20
    const deadline = Date.now() + 60_000
    while (!names.every(n => { try { return statSync(B.path(n)).size === size } catch { return false } })) {
      assert.ok(Date.now() < deadline, `B's mount: ${readdirSync(B.mnt).map(n => `${n} ${statSync(B.path(n)).size}`).join(', ')}\nA: ${A.stderr.slice(-3000)}\nB: ${B.stderr.slice(-3000)}`)
      await sleep(100)
    }
    await sleep(3000) // B's entries for the last merges reach A and are merged there
    for (const m of [A, B]) {
      assert.deepEqual(readdirSync(m.mnt).sort(), names, `${m === A ? 'A' : 'B'}'s mount holds exactly the files written`)
      for (const [i, n] of names.entries()) {
        assert.equal(createHash('sha256').update(readFileSync(m.path(n))).digest('hex'), sums[i], `${n} in ${m === A ? 'A' : 'B'}'s mount`)
      }
    }
    assert.doesNotMatch(A.stderr + B.stderr, /bug:|error: sealing|commit failed/)
  })
})
