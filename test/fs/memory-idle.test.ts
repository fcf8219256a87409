// Memory given back (issue 11 point 2): once a big copy in and out is over, the idle daemon's RSS
// falls under 128 MiB (drive/memory.ts releases caches, heap pages and glibc's free memory), and
// the idle daemon then uses under 0.5% of a core.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Mount, tempDirs, removeDirs, sh, type Dirs } from '../helpers/mount.js'

const dirs: Dirs = tempDirs('space-mem-idle-', '/var/tmp')
let m: Mount | null = null
after(async () => { await m?.cleanup(); removeDirs(dirs) })

const SIZE_MIB = Number(process.env.SPACE_TEST_IDLE_MIB ?? 1024)
const IDLE_CAP_MIB = 128
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

test(`after ${SIZE_MIB} MiB in and out, the idle daemon's RSS falls under ${IDLE_CAP_MIB} MiB and it uses under 0.5% of a core`, async (t) => {
  m = await Mount.start(dirs)
  const file = m.path('big.bin')
  const src = `{ openssl enc -aes-128-ctr -nosalt -pass pass:space-memory-idle < /dev/zero 2>/dev/null || true; } | head -c ${SIZE_MIB}M`
  const written = sh(`set -o pipefail; ${src} | tee ${file} | sha256sum`).stdout.split(' ')[0]
  sh(`sync -f ${file}; echo 3 > /proc/sys/vm/drop_caches`)
  assert.equal(sh(`sha256sum ${file}`).stdout.split(' ')[0], written)
  const peak = statusMiB(m.pid, 'VmHWM')
  const busy = statusMiB(m.pid, 'VmRSS')
  // Quiet from here: the release comes a few seconds after the last commit.
  const deadline = Date.now() + 30_000
  let rss = busy
  while (Date.now() < deadline) {
    await sleep(500)
    rss = statusMiB(m.pid, 'VmRSS')
    if (rss < IDLE_CAP_MIB) break
  }
  t.diagnostic(`RSS ${busy.toFixed(0)} MiB right after the copy, ${rss.toFixed(0)} MiB idle; peak ${peak.toFixed(0)} MiB`)
  assert.ok(rss < IDLE_CAP_MIB, `idle RSS ${rss.toFixed(0)} MiB 30 s after the copy (cap ${IDLE_CAP_MIB})`)
  assert.ok(peak < PEAK_CAP_MIB, `peak RSS ${peak.toFixed(0)} MiB (cap ${PEAK_CAP_MIB})`)
  await sleep(4000) // the release's own follow-up (memory.ts SETTLE_MS)
  const c0 = cpuSeconds(m.pid)
  const t0 = Date.now()
  await sleep(10_000)
  const pct = (cpuSeconds(m.pid) - c0) / ((Date.now() - t0) / 1000) * 100
  t.diagnostic(`idle CPU ${pct.toFixed(2)}% of a core over 10 s; RSS then ${statusMiB(m.pid, 'VmRSS').toFixed(0)} MiB`)
  assert.ok(pct < 0.5, `idle CPU ${pct.toFixed(2)}% of a core`)
  assert.ok(statusMiB(m.pid, 'VmRSS') < IDLE_CAP_MIB, 'RSS stays under the cap while idle')
  assert.equal(await m.stop(), 0)
  m = null
})
