#!/usr/bin/env node
// The replication bench on our side (issue 9, point 7): a real `space hub` and two daemons of one
// identity on 127.0.0.1, each with its own config, data dir and mount, set up with the CLI as a
// user would (init, init --restore, sync hub URL, mount). Runs the same workloads as
// syncthing-peer.mjs and prints one JSON object per workload on stdout:
//   bulk      BYTES of new data written into A's mount; seconds until B's mount gives back every
//             byte (sizes seen, then every file read through B's mount and its SHA-256 checked);
//             with the hub's CPU seconds and peak RSS, and the daemons' CPU seconds
//   latency   N small files, one after another: close() on A until B's mount shows the file with
//             its content (median, ms)
//   fresh     N small files already on A and pushed; a fresh device B joins (init --restore, sync
//             hub, mount): seconds until B's mount lists them all and every one reads back right
// Usage: node scripts/bench/sync-space.mjs WORKDIR [bulk|latency|fresh ...]  (after a build)
// Environment: SYNC_BULK_MB (1024), SYNC_LATENCY_N (20), SYNC_FRESH_FILES (10000),
// SPACE_SYNC_TRACE=1 (stage lines in the daemons' logs); diagnosis of bulk, printed on stderr
// after the timed part: SYNC_BULK_THREADS=1 (each process's CPU by thread, and its /proc io
// counters), SYNC_BULK_REREAD=1 (B's and A's mounts read back again, warm and cold),
// SYNC_BULK_READ_TIMES=1 (when each file's timed read-back from B's mount began, and how long it took).
// The hub's and daemons' stderr go to WORKDIR/NAME.log.
// Every process it starts is stopped by PID on exit; WORKDIR is left for the caller to remove.
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { appendFileSync, closeSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { sha256File } from './sha256-file.mjs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'

const [work, ...wanted] = process.argv.slice(2)
if (work == null) { console.error('usage: sync-space.mjs WORKDIR [bulk|latency|fresh ...]'); process.exit(2) }
const workloads = wanted.length > 0 ? wanted : ['bulk', 'latency', 'fresh']
const BULK_MB = Number(process.env.SYNC_BULK_MB ?? 1024)
const LATENCY_N = Number(process.env.SYNC_LATENCY_N ?? 20)
const FRESH_FILES = Number(process.env.SYNC_FRESH_FILES ?? 10000)
const MAIN = resolve(import.meta.dirname, '../../dist/src/cli/main.js')
const INSECURE = ['--keystore', 'file', '--insecure-no-passphrase']
const children = new Map() // pid -> { child, mnt? }

// The CLI's environment: no stray SPACE_* settings; the cheap KDF only affects init/restore.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SPACE_') && !k.startsWith('DBUS_')))
env.SPACE_TEST_CHEAP_KDF = '1'
if (process.env.SPACE_SYNC_TRACE === '1') env.SPACE_SYNC_TRACE = '1' // stage timestamps in the daemons' logs

function stopAll () {
  for (const { child } of children.values()) { try { child.kill('SIGTERM') } catch {} }
}
process.on('exit', () => {
  for (const { child, mnt } of children.values()) {
    try { child.kill('SIGKILL') } catch {}
    if (mnt != null) spawnSync('fusermount', ['-uz', mnt])
  }
})
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { stopAll(); process.exit(130) })

function track (child, mnt) {
  children.set(child.pid, { child, mnt })
  const exited = new Promise(resolve => child.once('exit', (code, signal) => { children.delete(child.pid); resolve(code ?? signal) }))
  return exited
}

async function stop (proc) {
  if (proc.child.exitCode == null && proc.child.signalCode == null) proc.child.kill('SIGTERM')
  const t = setTimeout(() => proc.child.kill('SIGKILL'), 60_000)
  const code = await proc.exited
  clearTimeout(t)
  if (proc.mnt != null && readFileSync('/proc/mounts', 'utf8').split('\n').some(l => l.split(' ')[1] === proc.mnt)) spawnSync('fusermount', ['-uz', proc.mnt])
  return code
}

function cli (args, input = '') {
  const r = spawnSync(process.execPath, [MAIN, ...args], { input, encoding: 'utf8', env, timeout: 300_000 })
  if (r.status !== 0) throw new Error(`space ${args.join(' ')}: exit ${r.status}: ${r.stderr}`)
  return r.stdout
}

/** A process that prints a readiness line on stdout; stderr goes to WORKDIR/NAME.log. */
async function startProcess (name, args, ready, mnt) {
  const log = createWriteStream(join(work, `${name}.log`), { flags: 'a' })
  const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stderr.pipe(log)
  const exited = track(child, mnt)
  const m = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready after 60 s (see ${name}.log)`)), 60_000)
    createInterface({ input: child.stdout }).on('line', line => {
      const m = ready.exec(line)
      if (m != null) { clearTimeout(timer); resolve(m) }
    })
    exited.then(code => { clearTimeout(timer); reject(new Error(`${name} exited with ${code} (see ${name}.log)`)) })
  })
  child.stdout.resume()
  return { name, child, pid: child.pid, exited, mnt, match: m }
}

async function hub (name) {
  const h = await startProcess(name, ['hub', '--host', '127.0.0.1', '--port', '0', '--data-dir', join(work, name)], /listening on (http:\/\/127\.0\.0\.1:\d+)/)
  return { ...h, url: h.match[1] }
}

/** A device's dirs: config and data under WORKDIR, its mountpoint. */
function dirs (name) {
  const d = { config: join(work, `${name}.config`), data: join(work, `${name}.data`), mnt: join(work, `${name}.mnt`) }
  for (const p of Object.values(d)) mkdirSync(p, { recursive: true })
  return d
}

/** init (first device; returns its 24 words) or init --restore from `words`, then sync hub URL. */
function join2hub (d, name, url, words) {
  let out = ''
  if (words == null) out = cli(['init', '--config-dir', d.config, ...INSECURE])
  else cli(['init', '--restore', '--config-dir', d.config, ...INSECURE], words.split(' ').join('\n') + '\n')
  cli(['sync', 'hub', url, '--device-name', name, '--config-dir', d.config])
  if (words != null) return words
  const w = [...out.matchAll(/\b(\d{1,2})\. ([a-z]+)/g)].map(m => m[2])
  if (w.length !== 24) throw new Error(`expected 24 words from init, got ${w.length}`)
  return w.join(' ')
}

async function mount (name, d) {
  const p = await startProcess(name, ['mount', d.mnt, '--data-dir', d.data, '--config-dir', d.config, '--foreground'], /^mounted /, d.mnt)
  return { ...p, dirs: d, path: (...x) => join(d.mnt, ...x) }
}

/** A hub and two mounted devices of one identity. */
async function pairUp (tag) {
  const h = await hub(`${tag}-hub`)
  const da = dirs(`${tag}-a`); const db = dirs(`${tag}-b`)
  const words = join2hub(da, 'alpha', h.url)
  join2hub(db, 'beta', h.url, words)
  const a = await mount(`${tag}-a`, da)
  const b = await mount(`${tag}-b`, db)
  return { h, a, b, words }
}

function procStats (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpu = (Number(f[11]) + Number(f[12])) / 100 // utime + stime in USER_HZ ticks
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024
  return { cpu, peakRssMiB: Math.round(hwm) }
}

/** CPU seconds (user / system) of each of `pid`'s threads, keyed by name:tid (USER_HZ taken as 100, as procStats does). */
function threadCpu (pid) {
  const out = {}
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8')
      const name = `${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}:${t === String(pid) ? 'main' : t}`
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const o = out[name] ??= { user: 0, sys: 0 }
      o.user += Number(f[11]) / 100; o.sys += Number(f[12]) / 100
    } catch {}
  }
  return out
}

/** Polls `ok` every `ms` until true; throws after `timeoutMs`. */
async function until (what, ok, timeoutMs, ms = 5) {
  const t0 = performance.now()
  for (;;) {
    try { if (ok()) return } catch {}
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(ms)
  }
}

/** Whether the device pushed every entry it has published (its queue's state file). */
function pushedAll (d) {
  const s = JSON.parse(readFileSync(join(d.data, 'sync', 'out', 'state.json'), 'utf8'))
  return s.seq > 0 && s.pushed === s.seq
}

/**
 * Writes `bytes` random bytes to `path` in 8 MiB writes (as syncthing-peer.mjs does); its SHA-256.
 * Each step goes to WORKDIR/bulk-progress.log before it is made: a run that hangs shows whether
 * it waits in a write, a close or for the other device.
 */
function writeRandomFile (path, bytes) {
  const note = what => appendFileSync(join(work, 'bulk-progress.log'), `${new Date().toISOString()} ${path} ${what}\n`)
  const h = createHash('sha256')
  note('open')
  const fd = openSync(path, 'w')
  for (let done = 0; done < bytes;) {
    const chunk = randomBytes(Math.min(8 << 20, bytes - done))
    note(`write at ${done}`)
    writeSync(fd, chunk); h.update(chunk); done += chunk.length
  }
  note('close')
  closeSync(fd)
  note('closed')
  return h.digest('hex')
}

async function bulk () {
  const { h, a, b } = await pairUp('bulk')
  try {
    const bytes = BULK_MB * 1024 * 1024
    const files = Math.max(1, Math.round(BULK_MB / 128))
    const per = Math.floor(bytes / files)
    const before = { h: procStats(h.pid), a: procStats(a.pid), b: procStats(b.pid) }
    const t0 = performance.now()
    const sums = []
    for (let i = 0; i < files; i++) sums.push(writeRandomFile(a.path(`bulk-${i}.bin`), per))
    const written = (performance.now() - t0) / 1000
    await until('every bulk file at full size in B\'s mount', () => sums.every((_, i) => statSync(b.path(`bulk-${i}.bin`)).size === per), 30 * 60_000, 20)
    const seen = (performance.now() - t0) / 1000
    for (let i = 0; i < files; i++) {
      const r0 = performance.now()
      if (sha256File(b.path(`bulk-${i}.bin`)) !== sums[i]) throw new Error(`bulk-${i}.bin differs in B's mount`)
      if (process.env.SYNC_BULK_READ_TIMES === '1') console.error(`read-back bulk-${i}.bin ${((r0 - t0) / 1000).toFixed(2)} +${((performance.now() - r0) / 1000).toFixed(2)} s`)
    }
    const s = (performance.now() - t0) / 1000
    const after = { h: procStats(h.pid), a: procStats(a.pid), b: procStats(b.pid) }
    const gib = files * per / 2 ** 30
    if (process.env.SYNC_BULK_THREADS === '1') { // diagnosis: where each process's CPU went, by thread (from its start)
      for (const [name, d] of [['hub', h], ['A', a], ['B', b]]) {
        const t = threadCpu(d.pid)
        console.error(`io ${name}: ${readFileSync(`/proc/${d.pid}/io`, 'utf8').split('\n').slice(0, 2).join(' ')}`)
        console.error(`threads ${name}: ${Object.entries(t).filter(([, v]) => v.user + v.sys >= 0.05).sort((x, y) => (y[1].user + y[1].sys) - (x[1].user + x[1].sys)).map(([k, v]) => `${k} ${v.user.toFixed(2)}u/${v.sys.toFixed(2)}s`).join(', ')}`)
      }
    }
    if (process.env.SYNC_BULK_REREAD === '1') { // diagnosis, outside the row: B's and A's read-back again, warm and cold
      for (const [name, d] of [['B', b], ['A', a]]) {
        for (const cold of [false, true]) {
          if (cold && spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']).status !== 0) console.error('reread: could not drop the caches (not root?): the cold pass is warm')
          const r0 = performance.now(); const c0 = procStats(d.pid).cpu
          for (let i = 0; i < files; i++) sha256File(d.path(`bulk-${i}.bin`))
          console.error(`reread ${name} ${cold ? 'cold' : 'warm'}: ${((performance.now() - r0) / 1000).toFixed(2)} s, daemon CPU ${(procStats(d.pid).cpu - c0).toFixed(2)} s; ${readFileSync(`/proc/${d.pid}/io`, 'utf8').split('\n').slice(0, 2).join(' ')}`)
        }
      }
    }
    return {
      workload: 'bulk', bytes: files * per, seconds: s, mbPerSec: files * per / 1e6 / s, writtenSeconds: written, seenSeconds: seen,
      cpuSeconds: { hub: after.h.cpu - before.h.cpu, a: after.a.cpu - before.a.cpu, b: after.b.cpu - before.b.cpu },
      peakRssMiB: { hub: after.h.peakRssMiB, a: after.a.peakRssMiB, b: after.b.peakRssMiB },
      hubCpuSecondsPerGiB: (after.h.cpu - before.h.cpu) / gib, hubPeakRssMiB: after.h.peakRssMiB
    }
  } finally {
    for (const p of [a, b, h]) await stop(p)
  }
}

async function latency () {
  const { h, a, b } = await pairUp('lat')
  try {
    // One change first, so both devices have published and merged once before timing.
    writeFileSync(a.path('warm.txt'), 'warm\n')
    await until('warm-up file in B\'s mount', () => readFileSync(b.path('warm.txt'), 'utf8') === 'warm\n', 60_000)
    const times = []
    for (let i = 0; i < LATENCY_N; i++) {
      const body = `latency probe ${i} ${randomBytes(8).toString('hex')}\n`
      const there = b.path(`probe-${i}.txt`)
      const t0 = performance.now()
      writeFileSync(a.path(`probe-${i}.txt`), body)
      await until(`probe ${i} in B's mount`, () => existsSync(there) && readFileSync(there, 'utf8') === body, 60_000)
      times.push(performance.now() - t0)
      await sleep(200)
    }
    const sorted = [...times].sort((x, y) => x - y)
    return { workload: 'latency', n: LATENCY_N, medianMs: sorted[Math.floor(sorted.length / 2)], minMs: sorted[0], maxMs: sorted.at(-1), times: times.map(Math.round) }
  } finally {
    for (const p of [a, b, h]) await stop(p)
  }
}

async function fresh () {
  const h = await hub('fresh-hub')
  const da = dirs('fresh-a')
  const words = join2hub(da, 'alpha', h.url)
  const a = await mount('fresh-a', da)
  let b = null
  try {
    // The same files as syncthing-peer.mjs: d<k>/f<i>.bin, 512..4096 random bytes.
    const sums = new Map()
    let bytes = 0
    for (let i = 0; i < FRESH_FILES; i++) {
      const dir = `d${Math.floor(i / 1000)}`
      if (i % 1000 === 0) mkdirSync(a.path(dir), { recursive: true })
      const body = randomBytes(512 + (i % 8) * 512)
      writeFileSync(a.path(dir, `f${i}.bin`), body)
      sums.set(`${dir}/f${i}.bin`, createHash('sha256').update(body).digest('hex'))
      bytes += body.length
    }
    await until('A pushed every file', () => pushedAll(da), 10 * 60_000, 100)
    await sleep(1500) // one more commit interval: nothing of A's is still on its way
    await until('A pushed every file', () => pushedAll(da), 10 * 60_000, 100)
    const hubBefore = procStats(h.pid)
    const t0 = performance.now()
    const db = dirs('fresh-b')
    join2hub(db, 'beta', h.url, words)
    const tMount = performance.now()
    b = await mount('fresh-b', db)
    const mounted = (performance.now() - tMount) / 1000
    const count = () => { let n = 0; for (const d of readdirSync(db.mnt)) if (d.startsWith('d')) n += readdirSync(join(db.mnt, d)).length; return n }
    await until('every file listed in B\'s mount', () => count() === FRESH_FILES, 30 * 60_000, 50)
    const listed = (performance.now() - t0) / 1000
    for (const [p, sum] of sums) {
      if (createHash('sha256').update(readFileSync(join(db.mnt, p))).digest('hex') !== sum) throw new Error(`${p} differs in B's mount`)
    }
    const s = (performance.now() - t0) / 1000
    const hubAfter = procStats(h.pid)
    return {
      workload: 'fresh', files: FRESH_FILES, bytes, seconds: s, filesPerSec: FRESH_FILES / s,
      setupSeconds: (tMount - t0) / 1000, mountSeconds: mounted, listedSeconds: listed,
      hubCpuSeconds: hubAfter.cpu - hubBefore.cpu, hubPeakRssMiB: hubAfter.peakRssMiB
    }
  } finally {
    for (const p of [b, a, h]) if (p != null) await stop(p)
  }
}

const run = { bulk, latency, fresh }
mkdirSync(work, { recursive: true })
for (const w of workloads) if (run[w] == null) { console.error(`unknown workload ${w}`); process.exit(2) }
for (const w of workloads) {
  const r = await run[w]()
  console.log(JSON.stringify(r))
}
