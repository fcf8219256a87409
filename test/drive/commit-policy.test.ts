// Quick commits (src/drive/commit-policy.ts): with a hub configured, a change is committed once
// changes pause for QUIET_MS, not only at the next interval; a steady stream of changes waits.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { CommitPolicy, QUIET_MS } from '../../src/drive/commit-policy.js'

function target (): { dirty: boolean, commits: number, commit: () => Promise<void> } {
  const t = { dirty: false, commits: 0, commit: async () => { t.commits++; t.dirty = false } }
  return t
}

describe('quick commits', () => {
  it('commit a change soon after changes pause, long before the interval', async () => {
    const t = target()
    const p = new CommitPolicy(t, () => {}, 60_000)
    p.start()
    try {
      p.setQuick(true)
      t.dirty = true
      p.changed()
      await sleep(QUIET_MS * 4)
      assert.equal(t.commits, 1)
    } finally { p.stop() }
  })

  it('wait while changes keep coming, then commit once', async () => {
    const t = target()
    const p = new CommitPolicy(t, () => {}, 60_000)
    p.start()
    try {
      p.setQuick(true)
      for (let i = 0; i < 10; i++) { t.dirty = true; p.changed(); await sleep(QUIET_MS / 4) }
      assert.equal(t.commits, 0, 'no commit in the middle of a stream of changes')
      await sleep(QUIET_MS * 4)
      assert.equal(t.commits, 1)
    } finally { p.stop() }
  })

  it('are off by default: a change waits for the interval', async () => {
    const t = target()
    const p = new CommitPolicy(t, () => {}, 60_000)
    p.start()
    try {
      t.dirty = true
      p.changed()
      await sleep(QUIET_MS * 4)
      assert.equal(t.commits, 0)
    } finally { p.stop() }
  })
})
