// Big folders through a mount (issue 11 points 3-4; `BENCH_ONLY=bigdir npm run bench`).
//   node scripts/bench/bigdir.mjs create MNT --files N --json OUT
//     Creates N empty files in MNT/bigdir (open O_CREAT + close), timing each batch of 1,000:
//     the cost per file of the batch ending at 1k, 2k, 5k, 10k, 20k, 50k, 100k, 1M (those <= N) and the last.
//     With --pid PID (the daemon), per range of files (1-1k, 1k-10k, 10k-100k, 100k-1M) also the
//     wall time, the daemon's CPU (all threads, /proc/PID/stat) and this process's CPU (user and
//     system: the kernel's side of the syscalls), us per file: CPU is the figure a loaded machine keeps.
//   node scripts/bench/bigdir.mjs stat MNT --files N --json OUT [--lookups 20]
//     After a remount (cold): the first stat(2) of a name in MNT/bigdir, and the median of more.
//   node scripts/bench/bigdir.mjs list MNT --files N --json OUT
//     After another remount (cold): a listing of MNT/bigdir (fs.opendir): the time to its first
//     name and to its end, and that it named every file once.
//   node scripts/bench/bigdir.mjs tree - --files N [--every 1000] [--json OUT]
//     In-process (no mount, no disk): N creates in one folder of a tree on a store that counts
//     and forgets what it is given, a commit every --every creates. Per range of files (1-1k,
//     1k-10k, 10k-100k, 100k-300k, 300k-1M): create and commit us per file, objects and bytes
//     the commits stored per file.
// Merges what it measured into OUT (JSON, one object per file system label).
import { openSync, closeSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { stat, opendir } from 'node:fs/promises'
import { join } from 'node:path'

const [mode, mnt, ...rest] = process.argv.slice(2)
const opt = (name, dflt) => { const i = rest.indexOf(`--${name}`); return i < 0 ? dflt : (rest[i + 1] ?? true) }
const n = Number(opt('files', 100000))
const out = opt('json', null)
const name = i => `f${String(i).padStart(7, '0')}`
const dir = join(mnt, 'bigdir')
const result = out != null && existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {}

if (mode === 'create') {
  mkdirSync(dir, { recursive: true })
  const perFileUs = {}
  const marks = new Set([1000, 2000, 5000, 10000, 20000, 50000, 100000, 1000000, n])
  const pid = opt('pid', null)
  const tick = 100 // USER_HZ
  const daemonCpuMs = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 1000 / tick }
  const ownCpuMs = () => { const u = process.cpuUsage(); return { user: u.user / 1000, system: u.system / 1000 } }
  const snap = () => ({ t: performance.now(), d: pid != null ? daemonCpuMs() : null, own: ownCpuMs() })
  const ends = [1000, 10000, 100000, 1000000].filter(x => x < n).concat([n])
  const ranges = []
  let r0 = snap()
  let from = 0
  const t0 = performance.now()
  let t = t0
  for (let i = 0; i < n; i++) {
    closeSync(openSync(join(dir, name(i)), 'wx', 0o644))
    if ((i + 1) % 1000 === 0 || i + 1 === n) {
      const now = performance.now()
      if (marks.has(i + 1)) perFileUs[i + 1] = +((now - t) * 1000 / (((i + 1) % 1000) || 1000)).toFixed(1)
      t = now
    }
    if (i + 1 === ends[ranges.length]) {
      const r1 = snap()
      const k = i + 1 - from
      const us = ms => +(ms * 1000 / k).toFixed(1)
      ranges.push({ files: `${from + 1}-${i + 1}`, wallUs: us(r1.t - r0.t), daemonCpuUs: r1.d == null ? null : us(r1.d - r0.d), callerUserUs: us(r1.own.user - r0.own.user), callerSystemUs: us(r1.own.system - r0.own.system) })
      r0 = r1
      from = i + 1
    }
  }
  result.create = { files: n, seconds: +((performance.now() - t0) / 1000).toFixed(2), perFileUs, ranges }
} else if (mode === 'stat') {
  const pick = () => join(dir, name(Math.floor(Math.random() * n)))
  let t = performance.now()
  await stat(pick())
  const first = performance.now() - t
  const more = []
  for (let i = 0; i < Number(opt('lookups', 20)); i++) { t = performance.now(); await stat(pick()); more.push(performance.now() - t) }
  more.sort((a, b) => a - b)
  result.stat = { firstMs: +first.toFixed(3), medianMs: +more[Math.floor(more.length / 2)].toFixed(3) }
} else if (mode === 'list') {
  const t = performance.now()
  let firstMs = null
  const seen = new Set()
  for await (const e of await opendir(dir, { bufferSize: 128 })) {
    firstMs ??= performance.now() - t
    seen.add(e.name)
  }
  const totalMs = performance.now() - t
  if (seen.size !== n) throw new Error(`listed ${seen.size} names of ${n}`)
  result.list = { firstMs: +firstMs.toFixed(3), totalMs: +totalMs.toFixed(1) }
} else if (mode === 'tree') {
  const root = new URL('../..', import.meta.url).pathname
  const { Tree } = await import(root + 'dist/src/fs/tree/tree.js')
  const { BlockCache } = await import(root + 'dist/src/store/block-cache.js')
  const { cidOf } = await import(root + 'dist/src/store/cid.js')
  const { MemoryCommitSink } = await import(root + 'dist/test/helpers/memory-store.js')
  // Counts and forgets (every shard stays loaded while one process creates: nothing is read back).
  const store = {
    objects: 0,
    bytes: 0,
    backlog: 0,
    writeError: null,
    put (b) { this.objects++; this.bytes += b.length; return cidOf(b) },
    putWithCid (cid, b, release) { this.objects++; this.bytes += b.length; release?.(); return cid },
    async get () { throw new Error('not kept') },
    async sync () { return { pack: 0, offset: this.bytes } },
    async flush () {}
  }
  const tree = new Tree({ store, cache: new BlockCache(1 << 20), sink: new MemoryCommitSink(), head: null })
  const every = Number(opt('every', 1000))
  await tree.mkdir('/d', 0o755)
  await tree.commit()
  const ranges = [1000, 10000, 100000, 300000, 1000000, 3000000].filter(x => x < n).concat([n])
  const rows = []
  let from = 0
  let create = 0
  let commit = 0
  let createCpu = 0
  let commitCpu = 0
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
  let o0 = store.objects
  let b0 = store.bytes
  for (let i = 0; i < n; i++) {
    let t = performance.now()
    let c = cpu()
    await tree.create(`/d/${name(i)}`, 0o644)
    create += performance.now() - t
    createCpu += cpu() - c
    if ((i + 1) % every === 0 || i + 1 === n) {
      t = performance.now()
      c = cpu()
      await tree.commit()
      commit += performance.now() - t
      commitCpu += cpu() - c
    }
    if (i + 1 === ranges[rows.length]) {
      const k = i + 1 - from
      rows.push({ files: `${from + 1}-${i + 1}`, createUs: +(create * 1000 / k).toFixed(1), commitUs: +(commit * 1000 / k).toFixed(1), createCpuUs: +(createCpu * 1000 / k).toFixed(1), commitCpuUs: +(commitCpu * 1000 / k).toFixed(1), objectsPerFile: +((store.objects - o0) / k).toFixed(3), bytesPerFile: Math.round((store.bytes - b0) / k), heapMiB: process.memoryUsage().heapUsed >> 20 })
      console.error(JSON.stringify(rows.at(-1)))
      from = i + 1; create = commit = createCpu = commitCpu = 0; o0 = store.objects; b0 = store.bytes
    }
  }
  result.tree = { files: n, every, rows }
} else {
  console.error('usage: bigdir.mjs create|stat|list MNT --files N --json OUT')
  process.exit(2)
}
if (out != null) writeFileSync(out, JSON.stringify(result))
console.log(JSON.stringify(result))
