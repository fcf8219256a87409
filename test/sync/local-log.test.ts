// The persistent push queue (src/sync/local-log.ts) when the pusher acknowledges one entry while
// the next is being published: neither update may undo the other, in memory or on disk.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { PackStore } from '../../src/store/pack-store.js'
import { LocalLog, type LocalLogDeps } from '../../src/sync/local-log.js'
import { deriveDriveId, deriveSyncKey } from '../../src/sync/entry-keys.js'
import { device, identity, payload } from './helpers.js'

describe('the local log under a concurrent publish and push acknowledgement', () => {
  it('keeps every published entry and every acknowledgement, whatever finishes first', async () => {
    const base = mkdtempSync(join(tmpdir(), 'space-locallog-'))
    try {
      const packsDir = join(base, 'packs')
      const store = await PackStore.open(packsDir, null)
      const dev = device('alpha', 1)
      const deps: LocalLogDeps = {
        dir: join(base, 'out'), packsDir, drive: deriveDriveId(identity().driveMaster), syncKey: deriveSyncKey(identity().driveMaster),
        device: { privateKey: dev.key.privateKey, record: dev.record }
      }
      const log = await LocalLog.open(deps)
      const commit = async (n: number): Promise<Parameters<LocalLog['publish']>[0]> => {
        store.put(randomBytes(1000))
        return { localSeq: n, time: 1_764_000_000_000 + n, payload: payload(n), watermark: await store.sync() }
      }
      const t0 = process.hrtime.bigint()
      await log.publish(await commit(1), [])
      const took = Number(process.hrtime.bigint() - t0)
      const N = 60
      for (let n = 1; n < N; n++) {
        const next = await commit(n + 1)
        // The acknowledgement of entry n starts at a point spread over the time a publish takes,
        // so it meets the publish of entry n+1 at every stage of its writes.
        const delay = BigInt(Math.round(took * 1.5 * n / N))
        const start = process.hrtime.bigint()
        const ack = (async () => {
          while (process.hrtime.bigint() - start < delay) await new Promise(resolve => setImmediate(resolve))
          await log.pushed(n)
        })()
        await Promise.all([log.publish(next, []), ack])
        assert.equal(log.state.seq, n + 1, `after entry ${n + 1}: seq`)
        assert.equal(log.state.pushed, n, `after entry ${n + 1}: pushed`)
        assert.deepEqual(log.pending(), [n + 1])
        assert.ok(existsSync(join(deps.dir, `${String(n + 1).padStart(10, '0')}.list`)), 'the pending entry keeps its block list')
        const reopened = await LocalLog.open(deps)
        assert.deepEqual({ seq: reopened.state.seq, pushed: reopened.state.pushed }, { seq: n + 1, pushed: n }, `state.json after entry ${n + 1}`)
      }
      await store.close()
    } finally {
      rmSync(base, { recursive: true, force: true })
    }
  })
})
