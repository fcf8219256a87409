// The push queue (local-log.ts) under concurrency: the pusher acknowledges entry n while the
// engine publishes entry n+1, and neither state update may undo the other.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { LocalLog } from '../../src/sync/local-log.js'
import { ed25519FromSeed } from '../../src/keys/ed25519.js'
import { certifyDeviceRecord } from '../../src/keys/identity.js'
import { CID } from 'multiformats/cid'
import { create as digestOf } from 'multiformats/hashes/digest'
import { encodePackHeader, PACK_HEADER_LENGTH } from '../../src/store/record.js'

describe('the push queue', () => {
  it('an acknowledgement racing a publication keeps both: nothing pushed is sent again, nothing published is lost', async () => {
    const base = mkdtempSync(join(tmpdir(), 'space-queue-'))
    try {
      const packs = join(base, 'packs')
      mkdirSync(packs)
      writeFileSync(join(packs, '00000000.pack'), encodePackHeader())
      const identity = ed25519FromSeed(randomBytes(32))
      const device = ed25519FromSeed(randomBytes(32))
      const deps = {
        dir: join(base, 'out'), packsDir: packs, drive: randomBytes(16), syncKey: randomBytes(32),
        device: { privateKey: device.privateKey, record: certifyDeviceRecord(identity, device.publicKey, 'q') }
      }
      const log = await LocalLog.open(deps)
      const root = CID.createV1(0x55, digestOf(0x1e, randomBytes(32)))
      const commit = (n: number): Parameters<LocalLog['publish']>[0] => ({ localSeq: n, time: n, payload: { root } as never, watermark: { pack: 0, offset: PACK_HEADER_LENGTH } })
      await log.publish(commit(1), [])
      for (let n = 2; n <= 20; n++) {
        // publish(n) and pushed(n-1) at once, as the engine and the pusher do; the
        // acknowledgement lands at different points of the publication's writes.
        const late = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, n % 5)); await log.pushed(n - 1) }
        await Promise.all([log.publish(commit(n), []), late()])
        assert.deepEqual({ seq: log.state.seq, pushed: log.state.pushed }, { seq: n, pushed: n - 1 })
      }
      const reopened = await LocalLog.open(deps)
      assert.deepEqual({ seq: reopened.state.seq, pushed: reopened.state.pushed }, { seq: 20, pushed: 19 })
      assert.deepEqual(reopened.pending(), [20])
      // The newest pushed entry reads without its block list (gone once pushed): a restart needs it.
      await reopened.pushed(20)
      assert.equal((await reopened.entry(20)).list.length, 0)
    } finally {
      rmSync(base, { recursive: true, force: true })
    }
  })
})
