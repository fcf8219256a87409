// Scale (issue 11 point 4; `BENCH_ONLY=scale npm run bench`, not in the default set): cold mounts
// of generated stores of growing size (an empty one, 20k, 200k, 2M blocks of files of 1,000
// blocks: scripts/gen-store.mjs), each with the page cache dropped first: seconds until `space
// mount` prints "mounted", the daemon's RSS then and 5 s later, one `ls` of /gen; then `cat` of
// --read-files files (1,000 blocks each) with RSS sampled every 200 ms (its peak), and RSS once
// quiet after (the daemon gives back what it loaded: src/memory.ts).
//   node scripts/bench/scale.mjs [--sizes 0,20000,200000,2000000] [--read-files 250]
//     [--cache /var/tmp] [--space BIN] [--json OUT]
// Prints a markdown table (targets: cold mount < 1 s, RSS < 128 MiB); progress on stderr.
// Generated stores are kept under CACHE/space-scale-KEY-BLOCKS, KEY the last commit that changed
// the code that writes them (store, tree format, crypto, the generator): 2M blocks take ~2-8 min
// to make, so only the first run pays. Stores of another KEY are removed (1.3 GB for 2M).
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const args = process.argv.slice(2)
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i < 0 ? dflt : (args[i + 1] ?? dflt) }
const sizes = String(opt('sizes', '0,20000,200000,2000000')).split(',').map(Number)
const readFiles = Number(opt('read-files', 250))
const cache = resolve(opt('cache', '/var/tmp'))
const bin = resolve(opt('space', join(ROOT, 'bin/space')))
const jsonOut = opt('json', null)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const log = line => process.stderr.write(`scale: ${line}\n`)

const FORMAT_PATHS = ['src/store', 'src/crypto', 'src/fs/tree/format.ts', 'src/fs/tree/codec.ts', 'src/fs/tree/block-map.ts', 'src/drive/store-meta.ts', 'test/store/gen-store.ts', 'scripts/gen-store.mjs']
function formatKey () {
  try {
    return execFileSync('git', ['-C', ROOT, 'log', '-1', '--format=%h', '--', ...FORMAT_PATHS], { encoding: 'utf8' }).trim() || 'nogit'
  } catch { return 'nogit' }
}

/** A generated store of `blocks` blocks (made once per format key), as gen-store.mjs leaves it: DIR/data, DIR/master.key. */
function storeOf (blocks, key) {
  const dir = join(cache, `space-scale-${key}-${blocks}`)
  if (existsSync(join(dir, 'done'))) return { dir, genS: null }
  for (const name of readdirSync(cache)) {
    if (name.startsWith('space-scale-') && !name.startsWith(`space-scale-${key}-`)) rmSync(join(cache, name), { recursive: true, force: true })
  }
  const tmp = `${dir}.tmp`
  rmSync(tmp, { recursive: true, force: true })
  rmSync(dir, { recursive: true, force: true })
  log(`generating ${blocks} blocks under ${dir}`)
  const t0 = performance.now()
  execFileSync(process.execPath, [join(ROOT, 'scripts/gen-store.mjs'), 'gen', tmp, '--blocks', String(blocks)], { stdio: ['ignore', 'ignore', 'ignore'] })
  const genS = (performance.now() - t0) / 1000
  renameSync(tmp, dir)
  writeFileSync(join(dir, 'done'), `${genS}\n`)
  return { dir, genS }
}

const mounted = mnt => readFileSync('/proc/mounts', 'utf8').split('\n').some(l => l.split(' ')[1] === mnt)
const dropCaches = () => { try { execFileSync('bash', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']) } catch {} }

async function measure (blocks, key) {
  const { dir, genS } = storeOf(blocks, key)
  dropCaches()
  // 0700: the control socket's directory. Not /tmp/space-*: other sessions' cleanups unmount those (seen 4 times here).
  const base = mkdtempSync('/tmp/scale-mnt-')
  const mnt = join(base, 'mnt')
  mkdirSync(mnt)
  const t0 = performance.now()
  const child = spawn(bin, ['mount', mnt, '--data-dir', join(dir, 'data'), '--config-dir', dir, '--socket', join(base, 'sock')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const rss = () => { try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024 } catch { return NaN } }
  const exited = new Promise(resolve => child.on('exit', code => resolve(code)))
  try {
    let out = ''
    await new Promise((resolve, reject) => {
      child.stdout.on('data', d => { out += d; if (out.includes('mounted')) resolve() })
      exited.then(code => reject(new Error(`space mount exited ${code}: ${out}`)))
    })
    const r = { blocks, genS, mountS: (performance.now() - t0) / 1000, rssMountedMiB: rss() }
    await sleep(5000)
    r.rssIdleMiB = rss()
    const t1 = performance.now()
    if (!mounted(mnt)) throw new Error(`${mnt} is not mounted any more (daemon ${child.exitCode == null ? 'running' : 'exited'})`)
    const names = readdirSync(join(mnt, 'gen'))
    r.lsMs = performance.now() - t1
    r.files = names.length
    const n = Math.min(readFiles, names.length)
    if (n > 0) {
      let peak = rss()
      const timer = setInterval(() => { peak = Math.max(peak, rss()) }, 200)
      const t2 = performance.now()
      for (const name of names.slice(0, n)) {
        await new Promise((resolve, reject) => {
          const c = spawn('cat', [join(mnt, 'gen', name)], { stdio: ['ignore', 'ignore', 'inherit'] })
          c.on('exit', code => code === 0 ? resolve() : reject(new Error(`cat ${name} exited ${code}; ${mounted(mnt) ? 'still mounted' : 'the mount is gone'} (daemon ${child.exitCode == null ? 'running' : 'exited'})`)))
        })
      }
      clearInterval(timer)
      r.readFiles = n
      r.readS = (performance.now() - t2) / 1000
      r.readPeakMiB = Math.max(peak, rss())
      r.readEndMiB = rss()
      await sleep(12000) // the release after work: 2 s checks, then 3 s to settle (memory.ts)
      r.readIdleMiB = rss()
    }
    return r
  } finally {
    child.kill('SIGTERM')
    await exited
    rmSync(base, { recursive: true, force: true })
  }
}

const key = formatKey()
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const results = { key, loadStart: load(), rows: [] }
for (const blocks of sizes) {
  const r = await measure(blocks, key)
  const f = x => x == null || Number.isNaN(x) ? '-' : Math.round(x)
  log(`${blocks} blocks: mount ${r.mountS.toFixed(2)} s, RSS ${f(r.rssMountedMiB)} MiB mounted, ${f(r.rssIdleMiB)} idle; ls /gen ${f(r.lsMs)} ms (${r.files} files)` +
    (r.readFiles != null ? `; cat of ${r.readFiles} files ${r.readS.toFixed(1)} s, peak RSS ${f(r.readPeakMiB)}, ${f(r.readIdleMiB)} once quiet` : '') +
    (r.genS != null ? `; generated in ${r.genS.toFixed(0)} s` : ''))
  results.rows.push(r)
}
results.loadEnd = load()
if (jsonOut != null) writeFileSync(jsonOut, JSON.stringify(results) + '\n')
// A markdown table on stdout (bench.sh appends it to the latest results); targets from issue 11.
const cell = (x, digits = 0) => x == null || Number.isNaN(x) ? '-' : x.toFixed(digits)
// The cold start of node itself (its binary read from disk) is in every row: the empty store's
// row says how much, and a row misses when it is over 1 s and over the empty store's.
const empty = results.rows.find(r => r.blocks === 0)
console.log(`| store (blocks) | cold mount (s, target < 1) | minus the empty store's (s) | RSS mounted / 5 s idle (MiB, target < 128) | ls /gen (ms) | cat of N files: s, peak RSS, RSS once quiet (MiB) |`)
console.log('|---:|---:|---:|---:|---:|---|')
for (const r of results.rows) {
  const slow = r.mountS >= 1 && (empty == null || r.mountS >= empty.mountS + 1)
  const ok = !slow && r.rssIdleMiB < 128 ? '' : ' MISS'
  console.log(`| ${r.blocks.toLocaleString('en')} | ${cell(r.mountS, 2)}${ok} | ${empty != null ? cell(r.mountS - empty.mountS, 2) : '-'} | ${cell(r.rssMountedMiB)} / ${cell(r.rssIdleMiB)} | ${cell(r.lsMs)} | ${r.readFiles != null ? `${r.readFiles}: ${cell(r.readS, 1)} s, ${cell(r.readPeakMiB)}, ${cell(r.readIdleMiB)}` : '-'} |`)
}
console.log(`\nLoad ${results.loadStart} -> ${results.loadEnd}; stores cached under ${cache} (key ${key}).`)
