// The memory table of `npm run bench` (BENCH_ONLY=memory): rows from the JSON of
// scripts/bench/memory.mjs for our daemon and gocryptfs, as "label|ours|gocryptfs|ratio|target"
// lines (issue 11 point 2's limits as targets; ratio ours/gocryptfs).
//   node scripts/bench/memory-report.mjs SPACE.json GOCRYPTFS.json
import { readFileSync, existsSync } from 'node:fs'

const [oursPath, theirsPath] = process.argv.slice(2)
const load = p => p != null && existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null
const ours = load(oursPath)
const theirs = load(theirsPath)
if (ours == null && theirs == null) { console.error('memory-report: no results'); process.exit(1) }
const any = ours ?? theirs
const size = `${any.sizeMiB >= 1024 ? `${any.sizeMiB / 1024} GiB` : `${any.sizeMiB} MiB`}`

const fmt = (v, unit) => v == null ? '-' : unit === '%' ? `${v.toFixed(2)}%` : unit === 's' ? `${v.toFixed(1)} s` : `${v} MiB`
const rows = []
function row (label, get, unit, cap) {
  const a = ours != null ? get(ours) : null
  const b = theirs != null ? get(theirs) : null
  const ratio = a != null && b != null && b > 0 ? (a / b).toFixed(2) : '-'
  const target = cap == null ? '-' : a == null ? '-' : `${a < cap ? 'ok' : 'MISS'} (< ${fmt(cap, unit)})`
  rows.push([label, fmt(a, unit), fmt(b, unit), ratio, target].join('|'))
}
row('RSS after mount, idle', r => r.startMiB, 'MiB', 128)
if (any.sizeMiB > 0) {
  row(`peak RSS: cp of ${size} in`, r => r.steps.cp?.peakMiB, 'MiB', 256)
  row(`peak RSS: cat of ${size} back, cold`, r => r.steps.cat?.peakMiB, 'MiB', 256)
  row("RSS idle after (file removed)", r => r.steps.idleAfterBig?.endMiB, 'MiB', 128)
  row(`cp of ${size} (time)`, r => r.steps.cp?.s, 's')
  row(`cat of ${size} (time)`, r => r.steps.cat?.s, 's')
}
if (any.files > 0) {
  row(`peak RSS: cp -r of ${any.files} small files`, r => r.steps.smallFiles?.peakMiB, 'MiB', 256)
  row(`RSS idle after ${any.files} small files (kept)`, r => r.steps.idleAfterSmall?.endMiB, 'MiB', 128)
  row(`cp -r of ${any.files} small files (time)`, r => r.steps.smallFiles?.s, 's')
}
row('idle CPU, % of a core', r => r.idleCpuPct, '%', 0.5)
row('VmHWM over the whole run', r => r.hwmMiB, 'MiB', 256)
console.log(rows.join('\n'))
