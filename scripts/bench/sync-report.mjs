#!/usr/bin/env node
// The replication rows of `npm run bench` (issue 9, point 7): reads the JSON lines that
// sync-space.mjs and syncthing-peer.mjs printed (one file per side, one line per workload and
// run) and prints "label|ours|syncthing|ratio|target" rows, medians over runs, then "- " notes.
// Usage: node scripts/bench/sync-report.mjs OURS.jsonl SYNCTHING.jsonl
import { existsSync, readFileSync } from 'node:fs'

const [oursFile, theirsFile] = process.argv.slice(2)
const load = f => existsSync(f)
  ? readFileSync(f, 'utf8').split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l))
  : []
const ours = load(oursFile)
const theirs = load(theirsFile)

function median (xs) {
  const v = xs.filter(x => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  return v.length % 2 === 1 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
}
const pick = (rows, wl, f) => median(rows.filter(r => r.workload === wl).map(f))
const fmt = (v, unit, digits = 0) => v == null ? 'FAIL' : `${v.toFixed(digits)} ${unit}`

const rows = []
const notes = []
// A workload neither side ran (BENCH_ONLY=sync_bulk) has no row; one side missing is a FAIL.
const ran = wl => ours.some(r => r.workload === wl) || theirs.some(r => r.workload === wl)

// 1. bulk: MB/s end to end; target >= Syncthing's and >= 100 MB/s.
if (ran('bulk')) {
  const o = pick(ours, 'bulk', r => r.mbPerSec)
  const t = pick(theirs, 'bulk', r => r.mbPerSec)
  const mb = pick(ours, 'bulk', r => r.bytes / 2 ** 20) ?? pick(theirs, 'bulk', r => r.bytes / 2 ** 20)
  const ratio = o != null && t != null ? o / t : null
  const ok = ratio != null && ratio >= 1 && o >= 100
  rows.push([`replicate ${mb ?? '?'} MiB A to B`, fmt(o, 'MB/s'), fmt(t, 'MB/s'), ratio?.toFixed(2) ?? '-', ratio == null ? '-' : `${ok ? 'ok' : 'MISS'} (>= 1.0, >= 100 MB/s)`])
  const hubCpu = pick(ours, 'bulk', r => r.hubCpuSecondsPerGiB)
  const hubRss = pick(ours, 'bulk', r => r.hubPeakRssMiB)
  rows.push(['hub CPU per GiB replicated', fmt(hubCpu, 's', 1), '- (no hub)', '-', '-'])
  rows.push(['hub peak RSS (bulk)', fmt(hubRss, 'MiB'), '- (no hub)', '-', '-'])
  const gib = b => b / 2 ** 30
  const oa = pick(ours, 'bulk', r => r.cpuSeconds.a / gib(r.bytes)); const ob = pick(ours, 'bulk', r => r.cpuSeconds.b / gib(r.bytes))
  const ta = pick(theirs, 'bulk', r => r.cpuSeconds.a / gib(r.bytes)); const tb = pick(theirs, 'bulk', r => r.cpuSeconds.b / gib(r.bytes))
  rows.push(['device CPU per GiB (A / B)', `${fmt(oa, 's', 1)} / ${fmt(ob, 's', 1)}`, `${fmt(ta, 's', 1)} / ${fmt(tb, 's', 1)}`, '-', '-'])
  const phases = (rs, there) => {
    const w = pick(rs, 'bulk', r => r.writtenSeconds); const seen = pick(rs, 'bulk', r => r.seenSeconds); const total = pick(rs, 'bulk', r => r.seconds)
    return seen == null ? null : `written on A after ${w?.toFixed(1) ?? '?'} s, ${there} after ${seen.toFixed(1)} s, every byte read back on B and checked after ${total.toFixed(1)} s`
  }
  const po = phases(ours, 'every file at full size in B\'s mount'); const pt = phases(theirs, 'B in sync')
  if (po != null) notes.push(`ours, bulk: ${po}`)
  if (pt != null) notes.push(`Syncthing, bulk: ${pt}`)
}
// 2. latency: close() on A until B shows it, median; target <= 1 s and <= Syncthing's.
if (ran('latency')) {
  const o = pick(ours, 'latency', r => r.medianMs)
  const t = pick(theirs, 'latency', r => r.medianMs)
  const n = pick(ours, 'latency', r => r.n) ?? pick(theirs, 'latency', r => r.n)
  const ratio = o != null && t != null ? o / t : null
  const ok = ratio != null && ratio <= 1 && o <= 1000
  rows.push([`close() on A until B shows it, median of ${n ?? '?'}`, fmt(o, 'ms'), fmt(t, 'ms'), ratio?.toFixed(2) ?? '-', ratio == null ? '-' : `${ok ? 'ok' : 'MISS'} (<= 1.0, <= 1 s)`])
  const range = rs => rs.length === 0 ? '-' : `${Math.round(Math.min(...rs.map(r => r.minMs)))}-${Math.round(Math.max(...rs.map(r => r.maxMs)))} ms`
  notes.push(`latency range: ours ${range(ours.filter(r => r.workload === 'latency'))}, Syncthing ${range(theirs.filter(r => r.workload === 'latency'))}`)
}
// 3. fresh: N small files to a new device; no target in the issue, the time ratio is shown.
if (ran('fresh')) {
  const o = pick(ours, 'fresh', r => r.seconds)
  const t = pick(theirs, 'fresh', r => r.seconds)
  const n = pick(ours, 'fresh', r => r.files) ?? pick(theirs, 'fresh', r => r.files)
  const ratio = o != null && t != null ? o / t : null
  rows.push([`${n ?? '?'} small files to a fresh device`, fmt(o, 's', 1), fmt(t, 's', 1), ratio?.toFixed(2) ?? '-', '- (none set)'])
  const listed = pick(ours, 'fresh', r => r.listedSeconds); const setup = pick(ours, 'fresh', r => r.setupSeconds)
  if (listed != null) notes.push(`ours, fresh: init --restore + sync hub ${setup.toFixed(1)} s, every file listed after ${listed.toFixed(1)} s, all read back and checked after ${o.toFixed(1)} s`)
}
for (const r of rows) console.log(r.join('|'))
for (const n of notes) console.log(`- ${n}`)
