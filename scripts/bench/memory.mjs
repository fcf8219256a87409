// Memory and idle CPU of a mounted file system's daemon (issue 11 point 2; `npm run bench` row
// "memory", docs/performance.md "Scale"): samples /proc/PID/status VmRSS every 200 ms while a
// workload runs, and the process's utime+stime (/proc/PID/stat) over an idle stretch.
//   node scripts/bench/memory.mjs PID MOUNTDIR [--size-mib 4096] [--files 0] [--idle-s 30]
//     [--cpu-s 60] [--work DIR] [--label NAME] [--json OUT]
// Steps, each timed and sampled: cp of a SIZE-MiB file (DIR/memory-src-SIZE.bin, made once from
// a keystream if missing; DIR defaults to /var/tmp) into MOUNTDIR, cat of it back to /dev/null (page cache dropped first, as root),
// rm of it, then --idle-s seconds idle (RSS at the end), then --files small files (a tar of a
// tree made by mktree.mjs: skipped at 0), idle again, then --cpu-s seconds of idle CPU.
// Prints one line per step (peak RSS during it, RSS at its end) and a JSON summary.
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

const [pidArg, mnt, ...rest] = process.argv.slice(2)
const opt = (name, dflt) => { const i = rest.indexOf(`--${name}`); return i < 0 ? dflt : (rest[i + 1] ?? dflt) }
if (pidArg == null || mnt == null) {
  console.error('usage: memory.mjs PID MOUNTDIR [--size-mib N] [--files N] [--idle-s S] [--cpu-s S] [--work DIR] [--label NAME] [--json OUT]')
  process.exit(2)
}
const pid = Number(pidArg)
const sizeMiB = Number(opt('size-mib', 4096))
const files = Number(opt('files', 0))
const idleS = Number(opt('idle-s', 30))
const cpuS = Number(opt('cpu-s', 60))
const label = opt('label', 'fs')
const work = opt('work', '/var/tmp')
const src = join(work, `memory-src-${sizeMiB}.bin`)
const jsonOut = opt('json', null)
const HZ = 100 // USER_HZ on Linux

function statusKiB (field) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find(l => l.startsWith(field + ':'))
  return Number(line.split(/\s+/)[1])
}
/** utime + stime of the process (all threads), in seconds. */
export function cpuSeconds (p = pid) {
  const s = readFileSync(`/proc/${p}/stat`, 'utf8')
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / HZ
}
const sh = (cmd) => execFileSync('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] })
const mib = kib => Math.round(kib / 1024)
const dropCaches = () => { try { sh('sync; echo 3 > /proc/sys/vm/drop_caches') } catch {} }
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Runs `cmd` in a shell while sampling RSS; resolves to { s, peakMiB, endMiB }. */
async function step (name, cmd) {
  let peak = statusKiB('VmRSS')
  const t0 = process.hrtime.bigint()
  const timer = setInterval(() => { peak = Math.max(peak, statusKiB('VmRSS')) }, 200)
  const { spawn } = await import('node:child_process')
  await new Promise((resolve, reject) => {
    const c = spawn('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] })
    c.on('exit', code => code === 0 ? resolve() : reject(new Error(`${name}: ${cmd} exited with ${code}`)))
  })
  clearInterval(timer)
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  const end = statusKiB('VmRSS')
  peak = Math.max(peak, end)
  const r = { s: Math.round(s * 100) / 100, peakMiB: mib(peak), endMiB: mib(end) }
  console.log(`${label} ${name}: ${r.s} s, peak RSS ${r.peakMiB} MiB, at the end ${r.endMiB} MiB`)
  return r
}

async function idle (name, seconds) {
  let peak = statusKiB('VmRSS')
  for (let i = 0; i < seconds * 5; i++) { await sleep(200); peak = Math.max(peak, statusKiB('VmRSS')) }
  const r = { s: seconds, peakMiB: mib(peak), endMiB: mib(statusKiB('VmRSS')) }
  console.log(`${label} ${name}: idle ${seconds} s, RSS ${r.endMiB} MiB (peak ${r.peakMiB})`)
  return r
}

const out = { label, sizeMiB, files, startMiB: mib(statusKiB('VmRSS')), steps: {} }
if (sizeMiB > 0) {
  if (!existsSync(src) || statSync(src).size !== sizeMiB * 1024 * 1024) {
    sh(`{ openssl enc -aes-128-ctr -nosalt -pass pass:space-memory-bench < /dev/zero 2>/dev/null || true; } | head -c ${sizeMiB}M > ${src}`)
  }
  dropCaches()
  out.steps.cp = await step('cp', `cp ${src} ${join(mnt, 'memory-big.bin')} && sync -f ${join(mnt, 'memory-big.bin')}`)
  dropCaches()
  out.steps.cat = await step('cat', `cat ${join(mnt, 'memory-big.bin')} > /dev/null`)
  out.steps.rm = await step('rm', `rm ${join(mnt, 'memory-big.bin')}`)
  out.steps.idleAfterBig = await idle('idle after the big file', idleS)
}
if (files > 0) {
  const tree = join(work, `memory-tree-${files}`)
  if (!existsSync(tree)) sh(`node ${new URL('./mktree.mjs', import.meta.url).pathname} ${tree} ${files} > /dev/null`)
  dropCaches()
  out.steps.smallFiles = await step(`${files} small files`, `cp -r ${tree} ${join(mnt, 'memory-tree')} && sync -f ${join(mnt, 'memory-tree')}`)
  out.steps.idleAfterSmall = await idle('idle after the small files', idleS)
  out.steps.rmSmall = await step('rm small files', `rm -rf ${join(mnt, 'memory-tree')}`)
}
if (cpuS > 0) {
  await sleep(8000) // the last commit, and our daemon giving back memory after work (src/memory.ts)
  const c0 = cpuSeconds()
  const t0 = Date.now()
  await sleep(cpuS * 1000)
  const pct = (cpuSeconds() - c0) / ((Date.now() - t0) / 1000) * 100
  out.idleCpuPct = Math.round(pct * 100) / 100
  console.log(`${label} idle CPU over ${cpuS} s: ${out.idleCpuPct}% of a core`)
}
out.endMiB = mib(statusKiB('VmRSS'))
out.hwmMiB = mib(statusKiB('VmHWM'))
console.log(`${label} RSS now ${out.endMiB} MiB, VmHWM ${out.hwmMiB} MiB`)
if (jsonOut != null) writeFileSync(jsonOut, JSON.stringify(out) + '\n')
