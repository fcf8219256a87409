// Memory given back (issue 11 point 2): once a big copy in and out is over, the idle daemon's RSS
// falls (src/memory.ts releases caches, heap pages and glibc's free memory), and the idle daemon
// then uses under 0.5% of a core. The issue's limit is 128 MiB and `BENCH_ONLY=memory npm run
// bench` reports against it; measured here 117-125 MiB, too close to it for a test that must not
// flake, so this asserts 150 MiB: main before the release stayed at 172-185.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Mount, tempDirs, removeDirs, sh, type Dirs } from '../helpers/mount.js'

const dirs: Dirs = tempDirs('space-mem-idle-', '/var/tmp')
let m: Mount | null = null
after(async () => { await m?.cleanup(); removeDirs(dirs) })

const SIZE_MIB = Number(process.env.SPACE_TEST_IDLE_MIB ?? 1024)
const IDLE_CAP_MIB = 150
const PEAK_CAP_MIB = 256

function statusMiB (pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find(l => l.startsWith(field + ':'))!
  return Number(line.split(/\s+/)[1]) / 1024
}

/** utime + stime of the process, all threads, in seconds. */
function cpuSeconds (pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

process.env.SPACE_DEBUG_MEMORY = '1' // the daemon logs its release (src/memory.ts)

test(`after ${SIZE_MIB} MiB in and out, the idle daemon's RSS falls under ${IDLE_CAP_MIB} MiB and it uses under 0.5% of a core`, async (t) => {
  m = await Mount.start(dirs)
  const file = m.path('big.bin')
  const src = `{ openssl enc -aes-128-ctr -nosalt -pass pass:space-memory-idle < /dev/zero 2>/dev/null || true; } | head -c ${SIZE_MIB}M`
  const written = sh(`set -o pipefail; ${src} | tee ${file} | sha256sum`).stdout.split(' ')[0]
  sh(`sync -f ${file}; echo 3 > /proc/sys/vm/drop_caches`)
  assert.equal(sh(`sha256sum ${file}`).stdout.split(' ')[0], written)
  const peak = statusMiB(m.pid, 'VmHWM')
  const busy = statusMiB(m.pid, 'VmRSS')
  // Quiet from here: the daemon gives memory back a few seconds after the last commit, and says
  // so in its log with SPACE_DEBUG_MEMORY=1 (the release, then its follow-up); at most 30 s.
  const t0 = Date.now()
  const from = m.stderr.length
  while (!m.stderr.slice(from).includes('memory: settled') && Date.now() - t0 < 30_000) await sleep(200)
  const rss = statusMiB(m.pid, 'VmRSS')
  t.diagnostic(`RSS ${busy.toFixed(0)} MiB right after the copy, ${rss.toFixed(0)} MiB idle ${((Date.now() - t0) / 1000).toFixed(1)} s later; peak ${peak.toFixed(0)} MiB`)
  assert.ok(rss < IDLE_CAP_MIB, `idle RSS ${rss.toFixed(0)} MiB after the copy (cap ${IDLE_CAP_MIB})`)
  assert.ok(peak < PEAK_CAP_MIB, `peak RSS ${peak.toFixed(0)} MiB (cap ${PEAK_CAP_MIB})`)
  // V8's memory reducer runs one more collection ~8 s after a full one (~60 ms of CPU, measured):
  // part of the release, once per burst of work; the idle daemon is measured after it.
  await sleep(10_000)
  const c0 = cpuSeconds(m.pid)
  const t1 = Date.now()
  await sleep(10_000)
  const pct = (cpuSeconds(m.pid) - c0) / ((Date.now() - t1) / 1000) * 100
  t.diagnostic(`idle CPU ${pct.toFixed(2)}% of a core over 10 s; RSS then ${statusMiB(m.pid, 'VmRSS').toFixed(0)} MiB`)
  assert.ok(pct < 0.5, `idle CPU ${pct.toFixed(2)}% of a core`)
  assert.ok(statusMiB(m.pid, 'VmRSS') < IDLE_CAP_MIB, 'RSS stays under the cap while idle')
  assert.equal(await m.stop(), 0)
  m = null
})
