// Cold stat in a big folder (issue 11 point 4: `stat` of a name in the million-entry folder under
// 5 ms cold, the first one included). A generated store (test/tree/gen-bigdir.ts; 100,000 entries
// here, SPACE_TEST_BIGDIR_ENTRIES for more) is mounted fresh with the page cache dropped, and
// names are stat'ed through the mount as soon as it printed `mounted` (the mount is announced once
// its warm-up, src/fs/fuse/warm.ts, and the sealing thread's start-up are done). What is asserted
// is what holds on a shared CI machine: the daemon's CPU per stat (from /proc/PID/task/*/
// schedstat), its JS thread's for the first < 4 ms and the median < 3 ms (first 2.3-3.8, median
// 1.4-2.7 ms at load 4-15; without the warm-up the first took 4.9-5.8 ms), all its threads' for
// the first < 8 ms (3.1-4.1 ms; 8-22 ms while the sealing thread still started beside it), and
// wall times only loosely (first < 100 ms, median < 20 ms: at load 8-20 they move 3-10x with the
// load; the quiet figures are in docs/performance.md "Big folders").
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, sh, type Dirs } from '../helpers/mount.js'
import { genBigDir, bigName } from '../tree/gen-bigdir.js'
import { warmLookups, WARM_DIRS, WARM_TOP_ENTRIES } from '../../src/fs/fuse/warm.js'

const ENTRIES = Number(process.env.SPACE_TEST_BIGDIR_ENTRIES ?? 100_000)
const dirs: Dirs = tempDirs('space-bigstat-', '/var/tmp')
let m: Mount | null = null
after(async () => { await m?.cleanup(); removeDirs(dirs) })

/** CPU time (ms) the kernel accounted to the daemon's JS thread (the thread whose id is its pid). */
const jsCpuMs = (pid: number): number => threadCpuMs(pid, String(pid))
const threadCpuMs = (pid: number, tid: string): number => { try { return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6 } catch { return 0 } }
/** The same for all of its threads (a thread that ended meanwhile is left out of both sides). */
const allCpuMs = (pid: number): Map<string, number> => new Map(readdirSync(`/proc/${pid}/task`).map(t => [t, threadCpuMs(pid, t)]))
const cpuSince = (before: Map<string, number>, now: Map<string, number>): number => { let s = 0; for (const [t, c] of now) s += c - (before.get(t) ?? 0); return s }
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]

test(`stat of a name in a folder of ${ENTRIES.toLocaleString('en')} entries, cold, first one included: under 4 ms of the daemon's CPU`, { timeout: 900_000 }, async (t) => {
  const key = randomBytes(32)
  mkdirSync(dirs.config, { recursive: true, mode: 0o700 })
  writeFileSync(join(dirs.config, 'master.key'), key, { mode: 0o600 })
  await genBigDir({ dir: dirs.data, masterKey: key, entries: ENTRIES })
  sh('sync; echo 3 > /proc/sys/vm/drop_caches')
  m = await Mount.start(dirs) // SPACE_WARM=0: the same without the warm-up (fails)
  if (process.env.SPACE_WARM !== '0') assert.match(m.stderr, /warm: \d+ lookups/, 'the warm-up ended before the mount was announced')
  const names = Array.from({ length: 21 }, (_, i) => bigName(Math.floor((i + 0.5) * ENTRIES / 21)))
  const runs: Array<{ ms: number, cpuMs: number, allMs: number }> = []
  for (const n of names) {
    const c = jsCpuMs(m.pid)
    const all = allCpuMs(m.pid)
    const t0 = performance.now()
    const s = await stat(m.path('big', n)) // async: the daemon is this process's child
    runs.push({ ms: performance.now() - t0, cpuMs: jsCpuMs(m.pid) - c, allMs: cpuSince(all, allCpuMs(m.pid)) })
    assert.ok(s.isFile(), n)
  }
  await assert.rejects(stat(m.path('big', 'not-there')), { code: 'ENOENT' })
  const [first, ...more] = runs
  const med = { ms: median(more.map(r => r.ms)), cpuMs: median(more.map(r => r.cpuMs)) }
  t.diagnostic(`first ${first.ms.toFixed(2)} ms (JS thread ${first.cpuMs.toFixed(2)} ms CPU, all threads ${first.allMs.toFixed(2)}), median ${med.ms.toFixed(2)} ms (${med.cpuMs.toFixed(2)} ms CPU)`)
  assert.ok(first.cpuMs < 4, `first stat: ${first.cpuMs.toFixed(2)} ms of the JS thread's CPU`)
  assert.ok(first.allMs < 8, `first stat: ${first.allMs.toFixed(2)} ms of the daemon's CPU, all threads`)
  assert.ok(med.cpuMs < 3, `median stat: ${med.cpuMs.toFixed(2)} ms of the JS thread's CPU`)
  assert.ok(first.ms < 100, `first stat: ${first.ms.toFixed(1)} ms`)
  assert.ok(med.ms < 20, `median stat: ${med.ms.toFixed(1)} ms`)
  await m.stop()
  m = null
})

test('the warm-up looks up a miss in the root, then in each of its first folders the folder, a miss and a loaded name, and loads a big one\'s top shards; a failing tree only ends it', async () => {
  const seen: string[] = []
  const tops: string[] = []
  const dirs = Array.from({ length: 12 }, (_, i) => `d${i}`)
  const n = await warmLookups({
    rootDirs: async max => dirs.slice(0, max),
    loadedName: async p => p === '/d1' ? null : 'x',
    getattr: (p, cb) => { seen.push(p); setImmediate(() => cb(p.includes('.space-warm-') ? -2 : 0)) },
    loadTop: async (p, min) => { assert.equal(min, WARM_TOP_ENTRIES); tops.push(p); return 16 }
  })
  assert.deepEqual(tops, dirs.slice(0, WARM_DIRS).map(d => `/${d}`), 'each warmed folder, after its lookups')
  const miss = seen[0].slice(1)
  assert.match(miss, /^\.space-warm-/)
  assert.deepEqual(seen.slice(1, 7), ['/d0', `/d0/${miss}`, '/d0/x', '/d1', `/d1/${miss}`, '/d2'])
  assert.equal(seen.filter(p => p.split('/').length === 2 && p !== seen[0]).length, WARM_DIRS, 'at most WARM_DIRS folders')
  assert.equal(n, seen.length)
  assert.equal(await warmLookups({ rootDirs: async () => { throw new Error('closed') }, loadedName: async () => null, getattr: (_p, cb) => cb(0) }), 1)
})
