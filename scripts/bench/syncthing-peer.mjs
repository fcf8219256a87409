#!/usr/bin/env node
// The replication bench's peer (issue 9, point 7): two Syncthing instances (Debian's package) on
// loopback, each with its own home and folder, file watcher at its minimum delay (1 s), no
// discovery, relays or NAT traversal. Runs the replication workloads on them and prints one JSON
// object per workload on stdout:
//   bulk      BYTES of new data written into A's folder; seconds until B's folder gives back every
//             byte (in sync, then every file read from B's folder and its SHA-256 checked, as
//             sync-space.mjs does through B's mount: the same work on both sides)
//   latency   N small files, one after another: close() on A until B shows the file (median, ms)
//   fresh     N small files already on A; a fresh device B joins: seconds until B holds them all
// Usage: node scripts/bench/syncthing-peer.mjs WORKDIR [bulk|latency|fresh ...]
// Environment: SYNC_BULK_MB (1024), SYNC_LATENCY_N (20), SYNC_FRESH_FILES (10000).
// Every process it starts is stopped by PID on exit; WORKDIR is left for the caller to remove.
import { spawn, execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync, statSync, existsSync, openSync, writeSync, closeSync } from 'node:fs'
import { sha256File } from './sha256-file.mjs'
import { randomBytes, createHash } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const [work, ...wanted] = process.argv.slice(2)
if (work == null) { console.error('usage: syncthing-peer.mjs WORKDIR [bulk|latency|fresh ...]'); process.exit(2) }
const workloads = wanted.length > 0 ? wanted : ['bulk', 'latency', 'fresh']
const BULK_MB = Number(process.env.SYNC_BULK_MB ?? 1024)
const LATENCY_N = Number(process.env.SYNC_LATENCY_N ?? 20)
const FRESH_FILES = Number(process.env.SYNC_FRESH_FILES ?? 10000)
const children = new Set()
let nextPort = 22000 + Math.floor(Math.random() * 20000)

function stopAll () { for (const c of children) { try { c.kill('SIGTERM') } catch {} } }
process.on('exit', stopAll)
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { stopAll(); process.exit(130) })

/** One Syncthing instance: its home, folder, REST address and device id. */
async function instance (name) {
  const home = join(work, `st-${name}`)
  const folder = join(work, `folder-${name}`)
  mkdirSync(folder, { recursive: true })
  execFileSync('syncthing', ['generate', `--home=${home}`, '--no-default-folder'], { stdio: 'ignore' })
  const id = execFileSync('syncthing', ['serve', `--home=${home}`, '--device-id']).toString().trim()
  const gui = nextPort++
  const listen = nextPort++
  const key = randomBytes(16).toString('hex')
  const child = spawn('syncthing', ['serve', `--home=${home}`, '--no-browser', '--no-restart', '--no-upgrade',
    '--skip-port-probing', `--gui-address=http://127.0.0.1:${gui}`, `--gui-apikey=${key}`, `--logfile=${join(work, `st-${name}.log`)}`],
  { stdio: 'ignore', env: { ...process.env, STNODEFAULTFOLDER: '1', STNOUPGRADE: '1' } })
  children.add(child)
  child.on('exit', () => children.delete(child))
  const api = async (method, path, body) => {
    const r = await fetch(`http://127.0.0.1:${gui}${path}`, { method, headers: { 'X-API-Key': key, 'content-type': 'application/json' }, body: body == null ? undefined : JSON.stringify(body) })
    if (!r.ok) throw new Error(`syncthing ${name} ${method} ${path}: ${r.status} ${await r.text()}`)
    const t = await r.text()
    return t === '' ? null : JSON.parse(t)
  }
  for (let i = 0; ; i++) {
    try { await api('GET', '/rest/system/ping'); break } catch (err) { if (i > 300) throw err; await sleep(100) }
  }
  await api('PATCH', '/rest/config/options', {
    globalAnnounceEnabled: false, localAnnounceEnabled: false, relaysEnabled: false, natEnabled: false,
    listenAddresses: [`tcp://127.0.0.1:${listen}`], urAccepted: -1, crashReportingEnabled: false,
    autoUpgradeIntervalH: 0, startBrowser: false
  })
  return { name, home, folder, id, listen, api, child, pid: child.pid }
}

async function pair (a, b, opts = {}) {
  for (const [x, y] of [[a, b], [b, a]]) {
    await x.api('POST', '/rest/config/devices', { deviceID: y.id, name: y.name, addresses: [`tcp://127.0.0.1:${y.listen}`], autoAcceptFolders: false })
    await x.api('POST', '/rest/config/folders', {
      id: 'bench', label: 'bench', path: x.folder, type: 'sendreceive',
      devices: [{ deviceID: x.id }, { deviceID: y.id }],
      fsWatcherEnabled: true, fsWatcherDelayS: 1, rescanIntervalS: 3600, ...opts
    })
  }
  for (let i = 0; ; i++) {
    const c = await a.api('GET', '/rest/system/connections')
    if (c.connections[b.id]?.connected === true) return
    if (i > 600) throw new Error('syncthing instances did not connect within 60 s')
    await sleep(100)
  }
}

/** Waits until B's folder is idle and needs nothing, with at least `bytes` in the global state. */
async function waitSynced (b, bytes, files, timeoutMs = 30 * 60_000) {
  const t0 = Date.now()
  for (;;) {
    const s = await b.api('GET', '/rest/db/status?folder=bench')
    if (s.state === 'idle' && s.needFiles === 0 && s.needBytes === 0 && s.inSyncBytes >= bytes && s.inSyncFiles >= files) return
    if (Date.now() - t0 > timeoutMs) throw new Error(`not in sync after ${timeoutMs} ms: ${JSON.stringify(s)}`)
    await sleep(20)
  }
}

/** `pid` and its descendants (Syncthing runs its worker under a monitor process). */
function tree (pid) {
  const out = [pid]
  for (const p of out) {
    try {
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim()
        if (kids !== '') out.push(...kids.split(' ').map(Number))
      }
    } catch {}
  }
  return out
}
function cpuSeconds (pid) {
  let sum = 0
  for (const p of tree(pid)) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')
      sum += (Number(f[11]) + Number(f[12])) / 100 // utime + stime, clock ticks (USER_HZ = 100)
    } catch {}
  }
  return sum
}
function peakRssMiB (pid) {
  let peak = 0
  for (const p of tree(pid)) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))
      if (m != null) peak = Math.max(peak, Math.round(Number(m[1]) / 1024))
    } catch {}
  }
  return peak
}

/** Writes `bytes` random bytes to `path` in 8 MiB writes; its SHA-256. */
function writeRandomFile (path, bytes) {
  const h = createHash('sha256')
  const fd = openSync(path, 'w')
  const chunk = randomBytes(8 << 20)
  for (let done = 0; done < bytes;) { const n = Math.min(chunk.length, bytes - done); writeSync(fd, chunk, 0, n); h.update(chunk.subarray(0, n)); done += n; randomBytes(8 << 20).copy(chunk) }
  closeSync(fd)
  return h.digest('hex')
}

async function bulk () {
  const a = await instance('bulk-a'); const b = await instance('bulk-b')
  await pair(a, b)
  const bytes = BULK_MB * 1024 * 1024
  const files = Math.max(1, Math.round(BULK_MB / 128))
  const cpu0 = [cpuSeconds(a.pid), cpuSeconds(b.pid)]
  const t0 = performance.now()
  const sums = []
  for (let i = 0; i < files; i++) sums.push(writeRandomFile(join(a.folder, `bulk-${i}.bin`), Math.floor(bytes / files)))
  const written = (performance.now() - t0) / 1000
  await waitSynced(b, bytes, files)
  const synced = (performance.now() - t0) / 1000
  for (let i = 0; i < files; i++) {
    if (sha256File(join(b.folder, `bulk-${i}.bin`)) !== sums[i]) throw new Error(`bulk-${i}.bin differs in B's folder`)
  }
  const s = (performance.now() - t0) / 1000
  return { workload: 'bulk', bytes, seconds: s, mbPerSec: bytes / 1e6 / s, writtenSeconds: written, seenSeconds: synced, cpuSeconds: { a: cpuSeconds(a.pid) - cpu0[0], b: cpuSeconds(b.pid) - cpu0[1] }, peakRssMiB: { a: peakRssMiB(a.pid), b: peakRssMiB(b.pid) } }
}

async function latency () {
  const a = await instance('lat-a'); const b = await instance('lat-b')
  await pair(a, b)
  const times = []
  for (let i = 0; i < LATENCY_N; i++) {
    const body = `latency probe ${i} ${randomBytes(8).toString('hex')}\n`
    const t0 = performance.now()
    writeFileSync(join(a.folder, `probe-${i}.txt`), body)
    const there = join(b.folder, `probe-${i}.txt`)
    for (;;) {
      if (existsSync(there) && statSync(there).size === body.length && readFileSync(there, 'utf8') === body) break
      if (performance.now() - t0 > 60_000) throw new Error(`probe ${i} did not arrive within 60 s`)
      await sleep(5)
    }
    times.push(performance.now() - t0)
    await sleep(200)
  }
  const sorted = [...times].sort((x, y) => x - y)
  return { workload: 'latency', n: LATENCY_N, medianMs: sorted[Math.floor(sorted.length / 2)], minMs: sorted[0], maxMs: sorted.at(-1) }
}

async function fresh () {
  const a = await instance('fresh-a')
  let bytes = 0
  for (let i = 0; i < FRESH_FILES; i++) {
    const dir = join(a.folder, `d${Math.floor(i / 1000)}`)
    if (i % 1000 === 0) mkdirSync(dir, { recursive: true })
    const body = randomBytes(512 + (i % 8) * 512)
    writeFileSync(join(dir, `f${i}.bin`), body)
    bytes += body.length
  }
  const b = await instance('fresh-b')
  const t0 = performance.now()
  await pair(a, b, { fsWatcherDelayS: 1 })
  await waitSynced(b, bytes, FRESH_FILES)
  const s = (performance.now() - t0) / 1000
  return { workload: 'fresh', files: FRESH_FILES, bytes, seconds: s, filesPerSec: FRESH_FILES / s }
}

const run = { bulk, latency, fresh }
for (const w of workloads) {
  if (run[w] == null) { console.error(`unknown workload ${w}`); process.exit(2) }
  const r = await run[w]()
  console.log(JSON.stringify(r))
  stopAll()
  await sleep(500)
}
