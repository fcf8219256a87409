// A folder of N entries in the real format, and what it costs (docs/performance.md "Scale", big folders).
//   node scripts/gen-bigdir.mjs gen DIR --entries N
//     DIR/data: a store whose /big holds N empty files (test/tree/gen-bigdir.ts); DIR/master.key.
//   node scripts/gen-bigdir.mjs measure DIR [--drop-caches] [--lookups 20]
//     In a fresh process: Drive.open, then the first lookup + stat of a name in /big (cold), the
//     median of --lookups more (other names, each a shard path not read yet), a miss; then the
//     bytes appended to the packs by one commit of each single-entry change (create, chmod,
//     rename, unlink) and the shards that commit sealed. With --creates K, then K creates of new
//     names in /big, a commit every 1,000: create and commit CPU per file (this process's, all
//     threads), objects and bytes appended to the packs per file (the curve's point at N).
//   node scripts/gen-bigdir.mjs mount DIR [--drop-caches] [--space BIN] [--lookups 20] [--settle-ms 0] [--threads]
//     `space mount` of DIR/data: the first stat(2) of a name in /big through the mount (cold),
//     --settle-ms after it answered, and the median of more, with the daemon's CPU per stat (all
//     threads, and its JS thread), its threads' run-queue wait, its read syscalls and the bytes
//     they fetched from the disk (/proc/PID/io); --threads: the first stat's
//     CPU per thread name; then SIGTERM.
//   node scripts/gen-bigdir.mjs list DIR [--drop-caches] [--space BIN] [--cmd 'ls -f']
//     `space mount` of DIR/data, then CMD run on DIR's folder (`ls -f big`, `ls -l big`, `find
//     big`; in the mount): the time to its first line of output and to its end, the lines, and
//     the daemon's VmRSS before, at its peak while CMD runs (sampled every 50 ms) and after.
//   node scripts/gen-bigdir.mjs create DIR [--files 10000] [--drop-caches] [--space BIN] [--in-place] [--threads]
//     `space mount` of a copy of DIR (DIR itself with --in-place), then --files creates of new
//     names in /big through the mount (open O_CREAT|O_EXCL + close, as the bench's bigdir row):
//     per range (the first 1,000, the rest) the wall time, the daemon's CPU (all threads) and this
//     process's CPU per file (--threads: the daemon's per thread kind), and the bytes the commits
//     appended to the packs per file; then one
//     change at a time (create, chmod, rename, unlink), each followed by the daemon's next commit
//     (the journal grows): the bytes it appended to the packs, the change's cost through FUSE.
// Needs a build (npm run build) of this tree. Prints one JSON line.
import { mkdirSync, writeFileSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const [mode, dirArg, ...rest] = process.argv.slice(2)
const opt = (name, dflt) => { const i = rest.indexOf(`--${name}`); return i < 0 ? dflt : (rest[i + 1] ?? true) }
const flag = name => rest.includes(`--${name}`)
if (dirArg == null || !['gen', 'measure', 'child', 'mount', 'list', 'create'].includes(mode)) {
  console.error('usage: gen-bigdir.mjs gen|measure|mount|list|create DIR [options] (see the header of this file)')
  process.exit(2)
}
const dir = resolve(dirArg)
const dropCaches = () => { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3\n') }
const packBytes = () => readdirSync(join(dir, 'data', 'packs')).filter(n => n.endsWith('.pack')).reduce((s, n) => s + statSync(join(dir, 'data', 'packs', n)).size, 0)
const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? null : s[Math.floor(s.length / 2)] }
const ms = t => +(performance.now() - t).toFixed(3)
const { bigName } = await import(join(ROOT, 'dist/test/tree/gen-bigdir.js'))

if (mode === 'gen') {
  const { genBigDir } = await import(join(ROOT, 'dist/test/tree/gen-bigdir.js'))
  mkdirSync(dir, { recursive: true })
  const key = randomBytes(32)
  writeFileSync(join(dir, 'master.key'), key, { mode: 0o600 })
  const entries = Number(opt('entries', 1000000))
  writeFileSync(join(dir, 'entries'), String(entries))
  const r = await genBigDir({ dir: join(dir, 'data'), masterKey: key, entries, progress: n => process.stderr.write(`\r${n} entries`) })
  process.stderr.write('\n')
  console.log(JSON.stringify({ ...r, packBytes: packBytes() }))
} else if (mode === 'measure') {
  if (flag('drop-caches')) dropCaches()
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), 'child', dir, ...rest], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  process.stdout.write(out)
} else if (mode === 'child') {
  const { Drive } = await import(join(ROOT, 'dist/src/drive/drive.js'))
  const entries = Number(readFileSync(join(dir, 'entries'), 'utf8'))
  const key = readFileSync(join(dir, 'master.key'))
  let t = performance.now()
  const drive = await Drive.open(join(dir, 'data'), key, { create: false })
  const openMs = ms(t)
  const tree = drive.tree
  const pick = () => bigName(Math.floor(Math.random() * entries))
  t = performance.now()
  tree.stat(await tree.lookup(`/big/${pick()}`))
  const firstMs = ms(t)
  const more = []
  for (let i = 0; i < Number(opt('lookups', 20)); i++) { t = performance.now(); tree.stat(await tree.lookup(`/big/${pick()}`)); more.push(ms(t)) }
  t = performance.now()
  await tree.lookup('/big/not-there').catch(() => {})
  const missMs = ms(t)
  const changes = {}
  const one = async (label, fn) => {
    const before = packBytes()
    await fn()
    await tree.commit()
    changes[label] = packBytes() - before
  }
  const stamp = Date.now().toString(36) // new names per run: a run changes the store
  const a = pick()
  await one('create', async () => { await tree.create(`/big/new-${stamp}`, 0o644) })
  await one('chmod', async () => { await tree.chmod(`/big/${a}`, 0o600) })
  await one('rename', async () => { await tree.rename(`/big/new-${stamp}`, `/big/renamed-${stamp}`) })
  await one('unlink', async () => { await tree.unlink(`/big/renamed-${stamp}`) })
  let creates = null
  const k = Number(opt('creates', 0))
  if (k > 0) {
    const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
    let createMs = 0
    let commitMs = 0
    const b0 = packBytes()
    for (let i = 0; i < k; i++) {
      let c = cpu()
      await tree.create(`/big/more-${stamp}-${i}`, 0o644)
      createMs += cpu() - c
      if ((i + 1) % 1000 === 0 || i + 1 === k) { c = cpu(); await tree.commit(); commitMs += cpu() - c }
    }
    creates = { files: k, createCpuUs: +(createMs * 1000 / k).toFixed(1), commitCpuUs: +(commitMs * 1000 / k).toFixed(1), bytesPerFile: Math.round((packBytes() - b0) / k) }
  }
  const big = await tree.lookup('/big')
  const depth = s => Math.max(s.depth, ...[...(s.kids?.values() ?? [])].map(depth))
  const rss = Math.round(process.memoryUsage.rss() / 1048576)
  await drive.close()
  console.log(JSON.stringify({ entries, openMs, statColdFirstMs: firstMs, statColdMedianMs: median(more), missMs, bytesPerChange: changes, loadedDepth: depth(big.shards.root), rssMiB: rss, creates }))
} else {
  const { spawn } = await import('node:child_process')
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { cpSync } = await import('node:fs')
  const entries = Number(readFileSync(join(dir, 'entries'), 'utf8'))
  // create changes the store: a copy of it, unless --in-place (removed at the end).
  const copy = mode === 'create' && !flag('in-place') ? mkdtempSync('/var/tmp/space-bigdir-copy-') : null
  if (copy != null) cpSync(dir, copy, { recursive: true })
  const storeDir = copy ?? dir
  if (flag('drop-caches')) dropCaches()
  const base = mkdtempSync('/tmp/space-bigdir-') // 0700: the control socket's directory
  const mnt = join(base, 'mnt')
  mkdirSync(mnt)
  const bin = resolve(opt('space', join(ROOT, 'bin/space')))
  const t0 = performance.now()
  const child = spawn(bin, ['mount', mnt, '--data-dir', join(storeDir, 'data'), '--config-dir', storeDir, '--socket', join(base, 'sock')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise(res => child.on('exit', code => res(code)))
  let out = ''
  try {
    await new Promise((res, rej) => {
      child.stdout.on('data', d => { out += d; if (out.includes('mounted')) res() })
      child.on('exit', code => rej(new Error(`space mount exited ${code}: ${out}`)))
    })
    const mountS = (performance.now() - t0) / 1000
    const rssMiB = () => { try { return Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024) } catch { return null } }
    if (mode === 'mount') {
      const { stat } = await import('node:fs/promises')
      const pick = () => bigName(Math.floor(Math.random() * entries))
      // The daemon's CPU and run-queue wait per stat (ns from /proc/PID/task/TID/schedstat, all threads):
      // steady under load, where the wall time is mostly waiting for a CPU.
      const sched = () => { let cpu = 0, wait = 0, js = 0; for (const t of readdirSync(`/proc/${child.pid}/task`)) { try { const [c, w] = readFileSync(`/proc/${child.pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number); cpu += c; wait += w; if (Number(t) === child.pid) js = c } catch {} } return { cpu, wait, js } }
      // Per thread name (--threads): which of the daemon's threads ran during the first stat.
      const byThread = () => { const m = new Map(); for (const t of readdirSync(`/proc/${child.pid}/task`)) { try { const c = Number(readFileSync(`/proc/${child.pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); const n = Number(t) === child.pid ? "js" : `${readFileSync(`/proc/${child.pid}/task/${t}/comm`, "utf8").trim()}${process.env.BIGDIR_TIDS === "1" ? "+" + (Number(t) - child.pid) : ""}`; m.set(t, { n, c }) } catch {} } return m }
      const threadDelta = (a, b) => { const out = {}; for (const [t, { n, c }] of b) { const d = (c - (a.get(t)?.c ?? 0)) / 1e6; if (d > 0.01) out[n] = +((out[n] ?? 0) + d).toFixed(3) } return out }
      // The daemon's read syscalls and the bytes they fetched from the disk (/proc/PID/io): store reads per stat, and how many missed the page cache.
      const io = () => { const m = {}; for (const l of readFileSync(`/proc/${child.pid}/io`, 'utf8').split('\n')) { const [k, v] = l.split(': '); if (k) m[k] = Number(v) } return m }
      const timed = async () => { const th0 = byThread(); const s0 = sched(); const io0 = io(); const t = performance.now(); await stat(join(mnt, 'big', pick())); const s1 = sched(); const io1 = io(); return { ms: ms(t), cpuMs: (s1.cpu - s0.cpu) / 1e6, jsCpuMs: (s1.js - s0.js) / 1e6, waitMs: (s1.wait - s0.wait) / 1e6, threads: threadDelta(th0, byThread()), reads: io1.syscr - io0.syscr, diskKiB: (io1.read_bytes - io0.read_bytes) / 1024 } }
      await new Promise(res => setTimeout(res, Number(opt('settle-ms', 0)))) // after the mount's own start-up work (--settle-ms)
      const first = await timed() // async: the daemon's FUSE thread is this process's child, never block on it
      const more = []
      for (let i = 0; i < Number(opt('lookups', 20)); i++) more.push(await timed())
      const med = k => +median(more.map(x => x[k])).toFixed(3)
      console.log(JSON.stringify({ entries, mountS: +mountS.toFixed(3), statColdFirstMs: first.ms, statColdMedianMs: med('ms'), daemonCpuMs: { first: +first.cpuMs.toFixed(3), median: med('cpuMs') }, jsThreadCpuMs: { first: +first.jsCpuMs.toFixed(3), median: med('jsCpuMs') }, daemonWaitMs: { first: +first.waitMs.toFixed(3), median: med('waitMs') }, readSyscalls: { first: first.reads, median: med('reads') }, diskReadKiB: { first: first.diskKiB, median: med('diskKiB') }, ...(flag('threads') ? { firstThreadsCpuMs: first.threads } : {}) }))
    } else if (mode === 'create') {
      const { openSync, closeSync, chmodSync, renameSync, unlinkSync } = await import('node:fs')
      const packs = join(storeDir, 'data', 'packs')
      const bytesOf = () => readdirSync(packs).filter(n => n.endsWith('.pack')).reduce((s, n) => s + statSync(join(packs, n)).size, 0)
      const journalBytes = () => statSync(join(storeDir, 'data', 'journal')).size
      const tick = 100 // USER_HZ
      const daemonCpuMs = () => { const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 1000 / tick }
      // Per thread kind (--threads): the JS thread, libuv's pool, the rest (FUSE workers, V8's threads, the sealing worker).
      const threadsMs = () => { const o = { js: 0, libuv: 0, other: 0 }; for (const t of readdirSync(`/proc/${child.pid}/task`)) { try { const c = Number(readFileSync(`/proc/${child.pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]) / 1e6; const n = readFileSync(`/proc/${child.pid}/task/${t}/comm`, 'utf8').trim(); const k = Number(t) === child.pid ? 'js' : n === 'libuv-worker' ? 'libuv' : process.env.BIGDIR_TIDS === '1' ? `${n}+${Number(t) - child.pid}` : 'other'; o[k] = (o[k] ?? 0) + c } catch {} } return o }
      const snap = () => { const u = process.cpuUsage(); return { t: performance.now(), d: daemonCpuMs(), user: u.user / 1000, system: u.system / 1000, packs: bytesOf(), th: flag('threads') ? threadsMs() : null } }
      /** Resolves once the daemon committed (its journal grew past `from`), or after 15 s. */
      const committed = async (from) => { const end = Date.now() + 15000; while (journalBytes() <= from && Date.now() < end) await new Promise(res => setTimeout(res, 5)); return journalBytes() > from }
      const k = Number(opt('files', 10000))
      const stamp = Date.now().toString(36)
      const ends = [Math.min(1000, k), k].filter((x, i, a) => a.indexOf(x) === i)
      const ranges = []
      let r0 = snap()
      let from = 0
      for (let i = 0; i < k; i++) {
        closeSync(openSync(join(mnt, 'big', `new-${stamp}-${i}`), 'wx', 0o644))
        if (i + 1 === ends[ranges.length]) {
          // The range's bytes include the commit of its last creates: wait for it.
          const j = journalBytes()
          await committed(j)
          const r1 = snap()
          const n = i + 1 - from
          const us = x => +(x * 1000 / n).toFixed(1)
          ranges.push({ files: `${from + 1}-${i + 1}`, wallUs: us(r1.t - r0.t), daemonCpuUs: us(r1.d - r0.d), callerUserUs: us(r1.user - r0.user), callerSystemUs: us(r1.system - r0.system), packBytesPerFile: Math.round((r1.packs - r0.packs) / n), ...(r1.th != null ? { threadCpuUs: Object.fromEntries(Object.keys(r1.th).map(k => [k, us(r1.th[k] - (r0.th[k] ?? 0))]).filter(([, v]) => v > 1)) } : {}) })
          r0 = snap()
          from = i + 1
        }
      }
      // One change, then the daemon's next commit: the bytes it appended.
      const changes = {}
      const one = async (label, fn) => {
        await new Promise(res => setTimeout(res, 1500)) // after the last commit's spacing
        const j = journalBytes()
        const b = bytesOf()
        const t = performance.now()
        fn()
        const opMs = ms(t)
        const ok = await committed(j)
        changes[label] = ok ? { packBytes: bytesOf() - b, opMs } : null
      }
      const a = bigName(Math.floor(Math.random() * entries))
      await one('create', () => closeSync(openSync(join(mnt, 'big', `one-${stamp}`), 'wx', 0o644)))
      await one('chmod', () => chmodSync(join(mnt, 'big', a), 0o600))
      await one('rename', () => renameSync(join(mnt, 'big', `one-${stamp}`), join(mnt, 'big', `two-${stamp}`)))
      await one('unlink', () => unlinkSync(join(mnt, 'big', `two-${stamp}`)))
      console.log(JSON.stringify({ entries, mountS: +mountS.toFixed(3), files: k, ranges, changes }))
    } else {
      const cmd = opt('cmd', 'ls -f big')
      const cpuS = () => { const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100 }
      const cpu0 = cpuS()
      const before = rssMiB()
      let peak = before
      const sampler = setInterval(() => { const r = rssMiB(); if (r != null && r > peak) peak = r }, 50)
      const t = performance.now()
      let first = null
      let lines = 0
      const run = spawn('sh', ['-c', cmd], { cwd: mnt, stdio: ['ignore', 'pipe', 'inherit'] })
      run.stdout.on('data', d => { if (first == null) first = ms(t); for (const c of d) if (c === 10) lines++ })
      const code = await new Promise(res => run.on('exit', res))
      const totalMs = ms(t)
      clearInterval(sampler)
      await new Promise(res => setTimeout(res, 200))
      console.log(JSON.stringify({ entries, cmd, exit: code, mountS: +mountS.toFixed(3), firstLineMs: first, totalMs, lines, daemonCpuS: +(cpuS() - cpu0).toFixed(2), rssMiB: { before, peak, after: rssMiB() } }))
    }
  } finally {
    child.kill('SIGTERM')
    await exited
    rmSync(base, { recursive: true, force: true })
    if (copy != null) rmSync(copy, { recursive: true, force: true })
  }
}
