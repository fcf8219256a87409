// Cold stat in a big folder (issue 11 point 4: `stat` of a name in the million-entry folder under
// 5 ms cold, the first one included). A generated store (test/tree/gen-bigdir.ts; 100,000 entries
// here, SPACE_TEST_BIGDIR_ENTRIES for more) is mounted fresh with the page cache dropped; once the
// mount's warm-up logged (src/fs/fuse/warm.ts), names are stat'ed through the mount. What is
// asserted is what holds on a shared CI machine: the daemon's JS-thread CPU per stat (from
// /proc/PID/task/PID/schedstat), first < 4 ms and median < 3 ms (warmed: first 2.4-2.9, median
// 1.2-1.5 ms at 100,000 entries, load 8; without the warm-up the first took 4.9-5.8 ms), and wall
// times only loosely (first < 100 ms, median < 20 ms: at load 8-20 they move 3-10x with the load;
// the quiet figures are in docs/performance.md "Big folders").
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, sh, type Dirs } from '../helpers/mount.js'
import { genBigDir, bigName } from '../tree/gen-bigdir.js'
import { warmLookups, WARM_DIRS } from '../../src/fs/fuse/warm.js'

const ENTRIES = Number(process.env.SPACE_TEST_BIGDIR_ENTRIES ?? 100_000)
const dirs: Dirs = tempDirs('space-bigstat-', '/var/tmp')
let m: Mount | null = null
after(async () => { await m?.cleanup(); removeDirs(dirs) })

/** CPU time (ms) the kernel accounted to the daemon's JS thread (the thread whose id is its pid). */
const jsCpuMs = (pid: number): number => Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]

test(`stat of a name in a folder of ${ENTRIES.toLocaleString('en')} entries, cold, first one included: under 4 ms of the daemon's CPU`, { timeout: 900_000 }, async (t) => {
  const key = randomBytes(32)
  mkdirSync(dirs.config, { recursive: true, mode: 0o700 })
  writeFileSync(join(dirs.config, 'master.key'), key, { mode: 0o600 })
  await genBigDir({ dir: dirs.data, masterKey: key, entries: ENTRIES })
  sh('sync; echo 3 > /proc/sys/vm/drop_caches')
  m = await Mount.start(dirs)
  if (process.env.SPACE_WARM !== '0') await m.waitForLog(/warm: \d+ lookups/, 30_000) // SPACE_WARM=0: the same without the warm-up (fails)
  const names = Array.from({ length: 21 }, (_, i) => bigName(Math.floor((i + 0.5) * ENTRIES / 21)))
  const runs: Array<{ ms: number, cpuMs: number }> = []
  for (const n of names) {
    const c = jsCpuMs(m.pid)
    const t0 = performance.now()
    const s = await stat(m.path('big', n)) // async: the daemon is this process's child
    runs.push({ ms: performance.now() - t0, cpuMs: jsCpuMs(m.pid) - c })
    assert.ok(s.isFile(), n)
  }
  await assert.rejects(stat(m.path('big', 'not-there')), { code: 'ENOENT' })
  const [first, ...more] = runs
  const med = { ms: median(more.map(r => r.ms)), cpuMs: median(more.map(r => r.cpuMs)) }
  t.diagnostic(`first ${first.ms.toFixed(2)} ms (JS thread ${first.cpuMs.toFixed(2)} ms CPU), median ${med.ms.toFixed(2)} ms (${med.cpuMs.toFixed(2)} ms CPU)`)
  assert.ok(first.cpuMs < 4, `first stat: ${first.cpuMs.toFixed(2)} ms of the JS thread's CPU`)
  assert.ok(med.cpuMs < 3, `median stat: ${med.cpuMs.toFixed(2)} ms of the JS thread's CPU`)
  assert.ok(first.ms < 100, `first stat: ${first.ms.toFixed(1)} ms`)
  assert.ok(med.ms < 20, `median stat: ${med.ms.toFixed(1)} ms`)
  await m.stop()
  m = null
})

test('the warm-up looks up a miss in the root, then in each of its first folders the folder, a miss and a loaded name; a failing tree only ends it', async () => {
  const seen: string[] = []
  const dirs = Array.from({ length: 12 }, (_, i) => `d${i}`)
  const n = await warmLookups({
    rootDirs: async max => dirs.slice(0, max),
    loadedName: async p => p === '/d1' ? null : 'x',
    getattr: (p, cb) => { seen.push(p); setImmediate(() => cb(p.includes('.space-warm-') ? -2 : 0)) }
  })
  const miss = seen[0].slice(1)
  assert.match(miss, /^\.space-warm-/)
  assert.deepEqual(seen.slice(1, 7), ['/d0', `/d0/${miss}`, '/d0/x', '/d1', `/d1/${miss}`, '/d2'])
  assert.equal(seen.filter(p => p.split('/').length === 2 && p !== seen[0]).length, WARM_DIRS, 'at most WARM_DIRS folders')
  assert.equal(n, seen.length)
  assert.equal(await warmLookups({ rootDirs: async () => { throw new Error('closed') }, loadedName: async () => null, getattr: (_p, cb) => cb(0) }), 1)
})
