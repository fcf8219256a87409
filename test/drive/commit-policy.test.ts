// Quick commits (src/drive/commit-policy.ts): with a hub configured, a change is committed once
// changes pause for QUIET_MS, not only at the next interval; a steady stream of changes waits.
// Interval commits whose sealing takes long come less often (BUSY_SHARE), never more than
// MAX_STRETCH intervals apart; quick ones every interval.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { BUSY_SHARE, CommitPolicy, MAX_STRETCH, QUIET_MS } from '../../src/drive/commit-policy.js'

function target (): { dirty: boolean, commits: number, busyMs: number, commit: () => Promise<void> } {
  const t = { dirty: false, commits: 0, busyMs: 0, commit: async () => { t.commits++; t.dirty = false } }
  return t
}

/** Commits of a tree changed all the time over `ms`, each of whose sealing took `busyMs`. */
async function commitsOver (ms: number, intervalMs: number, busyMs: number): Promise<number> {
  const t = target()
  t.busyMs = busyMs
  const p = new CommitPolicy(t, () => {}, intervalMs)
  const dirtier = setInterval(() => { t.dirty = true }, 5)
  p.start()
  try {
    t.dirty = true
    await sleep(ms)
    return t.commits
  } finally { p.stop(); clearInterval(dirtier) }
}

describe('interval commits', () => {
  it('come every interval while their sealing is short', async () => {
    const n = await commitsOver(1000, 100, 100 * BUSY_SHARE / 2)
    assert.ok(n >= 6 && n <= 10, `${n} commits in 10 intervals`)
  })

  it('come less often while their sealing takes long, so that it stays a share of the time', async () => {
    const n = await commitsOver(1200, 100, 300 * BUSY_SHARE) // every 3 intervals
    assert.ok(n >= 2 && n <= 5, `${n} commits in 12 intervals`)
  })

  it('still come at least every MAX_STRETCH intervals however long the sealing', async () => {
    const n = await commitsOver(1200, 100, 100_000)
    assert.ok(n >= Math.floor(12 / MAX_STRETCH) && n <= Math.ceil(12 / MAX_STRETCH) + 1, `${n} commits in 12 intervals`)
  })
})

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
