// Generates a large store in the real format, and measures opening it (docs/performance.md "Scale").
//   node scripts/gen-store.mjs gen DIR --blocks N [--per-file 1000] [--max-plain 1024] [--pack-limit-mib 512]
//     DIR/data: the store (test/store/gen-store.ts says what is in it); DIR/master.key: its key.
//   node scripts/gen-store.mjs open DIR [--drop-caches] [--code DIST] [--lookups 20000]
//     In a fresh process: Drive.open (what a mount does before FUSE starts), its wall time, RSS
//     before and after, then the cost of CID lookups (known CIDs, then absent ones) and one file
//     read through the tree. --code runs another build's dist/ (e.g. main's, for "before").
//     --drop-caches: sync; echo 3 > /proc/sys/vm/drop_caches first (root).
//   node scripts/gen-store.mjs mount DIR [--drop-caches] [--space BIN] [--idle-s 0]
//     `space mount` (BIN: default this tree's bin/space) of DIR/data with DIR as config dir (its
//     master.key): seconds until it prints "mounted", the daemon's VmRSS then and 5 s later
//     (idle), one `ls` of /gen through the mount; with --idle-s S, then S seconds idle: the
//     daemon's CPU over them (all threads, % of one core) and its VmRSS at their end (issue 11
//     point 2: under 0.5% and 128 MiB whatever the store size); then SIGTERM and the daemon's exit.
// Needs a build (npm run build) of this tree.
import { mkdirSync, writeFileSync, readFileSync, readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const [mode, dirArg, ...rest] = process.argv.slice(2)
const opt = (name, dflt) => { const i = rest.indexOf(`--${name}`); return i < 0 ? dflt : (rest[i + 1] ?? true) }
const flag = name => rest.includes(`--${name}`)
if (dirArg == null || !['gen', 'open', 'child', 'mount'].includes(mode)) {
  console.error('usage: gen-store.mjs gen|open DIR [options] (see the header of this file)')
  process.exit(2)
}
const dir = resolve(dirArg)

if (mode === 'gen') {
  const { genStore } = await import(join(ROOT, 'dist/test/store/gen-store.js'))
  mkdirSync(dir, { recursive: true })
  const key = randomBytes(32)
  writeFileSync(join(dir, 'master.key'), key, { mode: 0o600 })
  const blocks = Number(opt('blocks', 200000))
  const r = await genStore({
    dir: join(dir, 'data'), masterKey: key, blocks,
    perFile: Number(opt('per-file', 1000)), maxPlain: Number(opt('max-plain', 1024)),
    packLimit: Number(opt('pack-limit-mib', 512)) * 1024 * 1024,
    progress: n => process.stderr.write(`\r${n} blocks`)
  })
  process.stderr.write('\n')
  console.log(JSON.stringify(r))
} else if (mode === 'mount') {
  const { spawn } = await import('node:child_process')
  const { mkdtempSync, readdirSync: ls, rmSync } = await import('node:fs')
  if (flag('drop-caches')) { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3\n') }
  const base = mkdtempSync('/tmp/space-scale-') // 0700: the control socket's directory
  const mnt = join(base, 'mnt')
  mkdirSync(mnt)
  const bin = resolve(opt('space', join(ROOT, 'bin/space')))
  const t0 = performance.now()
  const child = spawn(bin, ['mount', mnt, '--data-dir', join(dir, 'data'), '--config-dir', dir, '--socket', join(base, 'sock')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const vmRss = () => { try { return Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024) } catch { return null } }
  let out = ''
  await new Promise((res, rej) => {
    child.stdout.on('data', d => { out += d; if (out.includes('mounted')) res() })
    child.on('exit', code => rej(new Error(`space mount exited ${code}: ${out}`)))
  })
  const mountS = (performance.now() - t0) / 1000
  const rssMounted = vmRss()
  await new Promise(res => setTimeout(res, 5000))
  const rssIdle = vmRss()
  const t1 = performance.now()
  const names = ls(join(mnt, 'gen')).length
  const lsMs = Math.round(performance.now() - t1)
  let idle = null
  const idleS = Number(opt('idle-s', 0))
  if (idleS > 0) {
    const cpuS = () => { const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100 }
    const c0 = cpuS()
    const i0 = performance.now()
    await new Promise(res => setTimeout(res, idleS * 1000))
    const wall = (performance.now() - i0) / 1000
    idle = { seconds: +wall.toFixed(1), cpuS: +(cpuS() - c0).toFixed(2), cpuPct: +((cpuS() - c0) * 100 / wall).toFixed(2), rssMiB: vmRss() }
  }
  const exited = new Promise(res => child.on('exit', code => res(code)))
  child.kill('SIGTERM')
  const code = await exited
  rmSync(base, { recursive: true, force: true })
  console.log(JSON.stringify({ bin, mountS: +mountS.toFixed(3), rssMountedMiB: rssMounted, rssIdle5sMiB: rssIdle, lsGenMs: lsMs, files: names, idle, exit: code }))
} else if (mode === 'open') {
  if (flag('drop-caches')) { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3\n') }
  // A fresh process, so that RSS and caches are those of a daemon starting.
  const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), 'child', dir, ...rest], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  process.stdout.write(out)
} else {
  const code = resolve(opt('code', join(ROOT, 'dist')))
  // Memory still held (garbage collected first), not garbage the collector has not reached yet.
  const rss = () => { globalThis.gc?.(); return Math.round(process.memoryUsage.rss() / 1048576) }
  const { Drive } = await import(join(code, 'src/drive/drive.js'))
  const { CID } = await import(join(ROOT, 'node_modules/multiformats/dist/src/cid.js'))
  const { create } = await import(join(ROOT, 'node_modules/multiformats/dist/src/hashes/digest.js'))
  const key = readFileSync(join(dir, 'master.key'))
  const rssBefore = rss()
  const lines = []
  const t0 = performance.now()
  const drive = await Drive.open(join(dir, 'data'), key, { create: false, log: l => lines.push(l) })
  const openMs = performance.now() - t0
  const rssOpen = rss()
  const result = { code, openMs: Math.round(openMs), rssBeforeMiB: rssBefore, rssAfterOpenMiB: rssOpen, log: lines, stats: drive.store.indexStats ?? null }
  // Known CIDs, from the index files' entries (this tree's format), looked up through the store.
  let t
  const n = Number(opt('lookups', 20000))
  const packsDir = join(dir, 'data', 'packs')
  const idxNames = readdirSync(packsDir).filter(f => f.endsWith('.idx'))
  if (idxNames.length > 0) {
    const cids = []
    for (const name of idxNames) {
      const b = readFileSync(join(packsDir, name))
      const count = b.readUInt32BE(32)
      const start = 64 + 8 * (1 << b[9])
      for (let k = 0; k < Math.ceil(n / idxNames.length) && count > 0; k++) {
        const i = Math.floor(Math.random() * count)
        const at = start + i * 48
        cids.push(CID.createV1(0x55, create(b[at + 32], b.subarray(at, at + 32))))
      }
    }
    cids.sort(() => Math.random() - 0.5)
    result.rssWithCidsMiB = rss()
    if (flag('drop-caches')) { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3\n') }
    t = performance.now()
    for (const c of cids) if (!drive.store.has(c)) throw new Error(`lookup missed ${c}`)
    result.lookupUsFirst = +((performance.now() - t) * 1000 / cids.length).toFixed(2)
    t = performance.now()
    for (const c of cids) drive.store.has(c)
    result.lookupUsAgain = +((performance.now() - t) * 1000 / cids.length).toFixed(2)
    const absent = Array.from({ length: 2000 }, () => CID.createV1(0x55, create(0x1e, randomBytes(32))))
    t = performance.now()
    for (const c of absent) if (drive.store.has(c)) throw new Error('absent CID found')
    result.missUs = +((performance.now() - t) * 1000 / absent.length).toFixed(2)
    result.lookups = cids.length
    result.rssAfterLookupsMiB = rss()
  }
  // One file through the tree: its block map, then every block checked and opened.
  t = performance.now()
  const names = (await drive.tree.readdir('/gen')).map(([name]) => name)
  const f = await drive.tree.lookup(`/gen/${names[Math.floor(names.length / 2)]}`)
  const buf = Buffer.alloc(f.size)
  await drive.tree.read(f, buf, f.size, 0)
  result.readFileMs = Math.round(performance.now() - t)
  result.files = names.length
  result.rssEndMiB = rss()
  await drive.close()
  console.log(JSON.stringify(result))
}
