// Runs the whole test suite (compiled to dist/) with node's built-in runner. Mount tests share
// /dev/fuse and the two cores, so files run one at a time; the runner prints `# pass`/`# fail`.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
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
// The tests' temp dirs (test/helpers/mount.ts tempDirs) go under one directory of this run's
// own, so a FUSE mount a test left there (one whose setup failed half way, say) can be named and
// detached when the run ends, and nothing else: other runs and other programs on the machine keep
// their mounts.
const runDir = mkdtempSync(join(process.env.SPACE_TEST_TMP ?? tmpdir(), 'space-tests-'))
chmodSync(runDir, 0o1777) // as /tmp: tests run programs as other users under it
const ours = () => readFileSync('/proc/mounts', 'utf8').split('\n').map(l => l.split(' '))
  .filter(f => f.length > 2 && f[2].startsWith('fuse')).map(f => f[1].replace(/\\040/g, ' '))
  .filter(m => m.startsWith(runDir + '/'))
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=900000', ...files], { stdio: 'inherit', env: { ...process.env, SPACE_TEST_CHEAP_KDF: '1', SPACE_TEST_TMP: runDir } })
const left = ours()
for (const m of left) {
  console.error(`# a test left ${m} mounted: detaching it`)
  spawnSync('fusermount3', ['-uz', m], { stdio: 'inherit' })
}
if (ours().length === 0) rmSync(runDir, { recursive: true, force: true })
process.exit(r.status ?? 1)
