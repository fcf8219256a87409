// Many small files do not make the daemon big (issue 11 point 2: under 256 MiB at any time, idle
// RSS < 128 MiB whatever the store holds): during `cp -r` of 20,000 small files the daemon's peak
// RSS stays under 256 MiB (one budget for the buffer pools, src/drive/memory-budget.ts, and V8's
// heap kept near what is live, src/memory.ts tuneHeap; main before: 35,000 files peaked at
// 272-324 MiB), and once quiet its RSS falls under 128 MiB (per-file state made small, and the tree unloaded when nothing is open:
// src/fs/tree/nodes.ts, store/cid.ts, Tree.releaseMemory), and every file then reads back the
// same through the tree loaded again. Before: ~5 KB per file stayed (35,000 files: 273-286 MiB
// idle; 20,000 files: 200 MiB).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, sh, ROOT, type Dirs } from '../helpers/mount.js'

const FILES = Number(process.env.SPACE_TEST_SMALL_FILES ?? 20_000)
const IDLE_CAP_MIB = 128
const PEAK_CAP_MIB = 256

const dirs: Dirs = tempDirs('space-mem-files-', '/var/tmp')
const src = join(dirs.base, 'src')
let m: Mount | null = null
after(async () => { await m?.cleanup(); removeDirs(dirs) })

const statusMiB = (pid: number, field: string): number => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+)`))![1]) / 1024
const rssMiB = (pid: number): number => statusMiB(pid, 'VmRSS')
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

process.env.SPACE_DEBUG_MEMORY = '1' // the daemon logs its release (src/memory.ts)

test(`cp -r of ${FILES} small files keeps the daemon under ${PEAK_CAP_MIB} MiB, after it the idle daemon's RSS falls under ${IDLE_CAP_MIB} MiB, and every file reads back`, async (t) => {
  sh(`node ${join(ROOT, 'scripts/bench/mktree.mjs')} ${src} ${FILES} > /dev/null`)
  const sums = sh(`cd ${src} && find . -type f | sort | xargs sha256sum`).stdout
  m = await Mount.start(dirs)
  const from = m.stderr.length
  sh(`cp -r ${src} ${m.path('tree')} && sync -f ${m.path('tree')}`)
  const busy = rssMiB(m.pid)
  const peak = statusMiB(m.pid, 'VmHWM')
  rmSync(src, { recursive: true }) // the source's page cache is not the daemon's, but keep the disk tidy
  const t0 = Date.now()
  while (!m.stderr.slice(from).includes('memory: settled') && Date.now() - t0 < 30_000) await sleep(200)
  const rss = rssMiB(m.pid)
  t.diagnostic(`peak RSS ${peak.toFixed(0)} MiB during the copy, ${busy.toFixed(0)} MiB right after it, ${rss.toFixed(0)} MiB once quiet (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
  assert.ok(peak < PEAK_CAP_MIB, `peak RSS ${peak.toFixed(0)} MiB during the copy of ${FILES} files (cap ${PEAK_CAP_MIB})`)
  assert.match(m.stderr.slice(from), /tree unloaded/, 'the release unloaded the tree')
  assert.ok(rss < IDLE_CAP_MIB, `idle RSS ${rss.toFixed(0)} MiB after ${FILES} files (cap ${IDLE_CAP_MIB})`)
  // Everything loads again from the committed tree, with the same bytes.
  assert.equal(sh(`cd ${m.path('tree')} && find . -type f | sort | xargs sha256sum`).stdout, sums)
  assert.equal(await m.stop(), 0)
  m = null
})
