// Runs the whole test suite (compiled to dist/) with node's built-in runner. Mount tests share
// /dev/fuse and the two cores, so files run one at a time; the runner prints `# pass`/`# fail`.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

function find (dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) find(p, out)
    else if (name.endsWith('.test.js')) out.push(p)
  }
  return out
}

const filter = process.argv.slice(2)
let files = find('dist/test').sort()
if (filter.length > 0) files = files.filter(f => filter.some(x => f.includes(x)))
// With no file, `node --test` would run every .js/.mjs it finds, fixture generators included
// (which rewrite the frozen fixtures): refuse instead.
if (files.length === 0) {
  console.error(`no test file under dist/test matches ${filter.map(x => JSON.stringify(x)).join(' or ')} (build first: npm run build)`)
  process.exit(2)
}
// FUSE mounts present now: any other one left when the run ends was left by a test (one whose
// setup failed half way, say): it is named and detached, so the next run starts clean.
function fuseMounts () {
  return readFileSync('/proc/mounts', 'utf8').split('\n').map(l => l.split(' '))
    .filter(f => f.length > 2 && f[2].startsWith('fuse')).map(f => f[1].replace(/\\040/g, ' '))
}
const before = new Set(fuseMounts())
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=900000', ...files], { stdio: 'inherit', env: { ...process.env, SPACE_TEST_CHEAP_KDF: '1' } })
const left = fuseMounts().filter(m => !before.has(m))
for (const m of left) {
  console.error(`# a test left ${m} mounted: detaching it`)
  spawnSync('fusermount3', ['-uz', m], { stdio: 'inherit' })
}
process.exit(r.status ?? 1)
