// Where a daemon's resident memory is, by kind of mapping (issue 11 point 2: what the peak is
// made of): samples /proc/PID/status VmRSS every --every ms and, at each new peak (by >= 2 MiB),
// sums /proc/PID/smaps Rss by kind: the binary and libraries (file-backed), glibc's main heap
// ([heap]), glibc arenas (anonymous, 64 MiB-aligned: a thread's malloc heap), thread stacks,
// anonymous mappings of 256 KiB (V8 heap pages), large anonymous mappings (mmapped buffers,
// SharedArrayBuffers) and other anonymous memory. Runs until PID exits or SIGINT/SIGTERM, then
// prints the breakdown at the peak (and writes it as JSON with --json).
//   node scripts/bench/memory-smaps.mjs PID [--every 200] [--json OUT]
import { readFileSync, writeFileSync } from 'node:fs'

const [pidArg, ...rest] = process.argv.slice(2)
const opt = (name, dflt) => { const i = rest.indexOf(`--${name}`); return i < 0 ? dflt : (rest[i + 1] ?? dflt) }
if (pidArg == null) { console.error('usage: memory-smaps.mjs PID [--every MS] [--json OUT]'); process.exit(2) }
const pid = Number(pidArg)
const every = Number(opt('every', 200))
const jsonOut = opt('json', null)
const ARENA_ALIGN = 64n * 1024n * 1024n

function rssKiB () {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)
  return m == null ? 0 : Number(m[1])
}

/** Rss (KiB) of each kind of mapping, from /proc/PID/smaps. */
export function byKind (p = pid) {
  const kinds = {}
  const add = (k, kib) => { kinds[k] = (kinds[k] ?? 0) + kib }
  let kind = null
  for (const line of readFileSync(`/proc/${p}/smaps`, 'utf8').split('\n')) {
    const head = line.match(/^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/)
    if (head != null) {
      const start = BigInt('0x' + head[1])
      const size = BigInt('0x' + head[2]) - start
      const name = head[3]
      if (name.startsWith('/')) kind = name.includes('/node') && !name.endsWith('.node') ? 'node binary' : name.endsWith('.node') ? 'addons' : 'libraries'
      else if (name === '[heap]') kind = 'malloc main heap'
      else if (name.startsWith('[stack')) kind = 'stacks'
      else if (name !== '') kind = name
      else if (start % ARENA_ALIGN === 0n && size <= ARENA_ALIGN) kind = 'malloc arenas'
      else if (size === 256n * 1024n) kind = 'anon 256 KiB (V8 pages)'
      else if (size >= 8n * 1024n * 1024n) kind = 'anon >= 8 MiB'
      else if (size > 256n * 1024n) kind = 'anon 256 KiB-8 MiB'
      else kind = 'anon < 256 KiB'
      continue
    }
    const rss = line.match(/^Rss:\s+(\d+) kB/)
    if (rss != null && kind != null) add(kind, Number(rss[1]))
  }
  return kinds
}

let peak = 0
let atPeak = null
let last = 0
const sample = () => {
  let rss
  try { rss = rssKiB() } catch { finish(); return }
  if (rss > peak) {
    peak = rss
    if (rss >= last + 2048) { try { atPeak = byKind(); last = rss } catch {} }
  }
}
const timer = setInterval(sample, every)
function finish () {
  clearInterval(timer)
  const out = { peakMiB: Math.round(peak / 1024), atPeakMiB: Object.fromEntries(Object.entries(atPeak ?? {}).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round(v / 102.4) / 10])) }
  console.log(JSON.stringify(out, null, 1))
  if (jsonOut != null) writeFileSync(jsonOut, JSON.stringify(out) + '\n')
  process.exit(0)
}
process.on('SIGINT', finish)
process.on('SIGTERM', finish)
