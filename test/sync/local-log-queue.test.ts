// The push queue when publishing and pushing overlap, as they do in the engine (a local commit is
// published while the pusher acknowledges the entry before it): neither state change undoes the
// other, so an acknowledged entry is never sent again and its block list is not looked for.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { PackStore } from '../../src/store/pack-store.js'
import { LocalLog } from '../../src/sync/local-log.js'
import { deriveDriveId, deriveSyncKey } from '../../src/sync/entry-keys.js'
import { device, identity, payload } from './helpers.js'

test('a publish and a push acknowledged at the same time both stay in the queue state', async () => {
  const base = mkdtempSync(join(tmpdir(), 'space-locallog-'))
  try {
    const packs = join(base, 'packs')
    const store = await PackStore.open(packs, null)
    const dev = device('alpha', 7)
    const id = identity()
    const deps = { dir: join(base, 'out'), packsDir: packs, drive: deriveDriveId(id.driveMaster), syncKey: deriveSyncKey(id.driveMaster), device: { privateKey: dev.key.privateKey, record: dev.record } }
    const log = await LocalLog.open(deps)
    const commit = async (n: number): Promise<Parameters<LocalLog['publish']>[0]> => {
      store.put(randomBytes(2000))
      return { localSeq: n, time: 1_764_000_000_000 + n, payload: payload(n), watermark: await store.sync() }
    }
    await log.publish(await commit(1), [])
    const rounds = 40
    for (let n = 1; n <= rounds; n++) {
      const c = await commit(n + 1)
      const published = log.publish(c, [])
      await new Promise(resolve => setTimeout(resolve, n % 4)) // the acknowledgement lands at different points of the publish
      await Promise.all([published, log.pushed(n)])
    }
    assert.deepEqual({ seq: log.state.seq, pushed: log.state.pushed }, { seq: rounds + 1, pushed: rounds })
    const again = await LocalLog.open(deps)
    assert.deepEqual({ seq: again.state.seq, pushed: again.state.pushed }, { seq: rounds + 1, pushed: rounds })
    assert.deepEqual(again.pending(), [rounds + 1])
    assert.equal((await again.entry(rounds + 1)).list.length >= 1, true)
    await store.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
})
