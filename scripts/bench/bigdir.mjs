// Big folders through a mount (issue 11 points 3-4; `BENCH_ONLY=bigdir npm run bench`).
//   node scripts/bench/bigdir.mjs create MNT --files N --json OUT
//     Creates N empty files in MNT/bigdir (open O_CREAT + close), timing each batch of 1,000:
//     the cost per file of the batch ending at 1k, 2k, 5k, 10k, 20k, 50k, 100k, 1M (those <= N) and the last.
//   node scripts/bench/bigdir.mjs stat MNT --files N --json OUT [--lookups 20]
//     After a remount (cold): the first stat(2) of a name in MNT/bigdir, and the median of more.
//   node scripts/bench/bigdir.mjs list MNT --files N --json OUT
//     After another remount (cold): a listing of MNT/bigdir (fs.opendir): the time to its first
//     name and to its end, and that it named every file once.
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
const result = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {}

if (mode === 'create') {
  mkdirSync(dir, { recursive: true })
  const perFileUs = {}
  const marks = new Set([1000, 2000, 5000, 10000, 20000, 50000, 100000, 1000000, n])
  const t0 = performance.now()
  let t = t0
  for (let i = 0; i < n; i++) {
    closeSync(openSync(join(dir, name(i)), 'wx', 0o644))
    if ((i + 1) % 1000 === 0 || i + 1 === n) {
      const now = performance.now()
      if (marks.has(i + 1)) perFileUs[i + 1] = +((now - t) * 1000 / (((i + 1) % 1000) || 1000)).toFixed(1)
      t = now
    }
  }
  result.create = { files: n, seconds: +((performance.now() - t0) / 1000).toFixed(2), perFileUs }
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
} else {
  console.error('usage: bigdir.mjs create|stat|list MNT --files N --json OUT')
  process.exit(2)
}
writeFileSync(out, JSON.stringify(result))
console.log(JSON.stringify(result))
