// Runs the whole test suite (compiled to dist/) with node's built-in runner. Mount tests share
// /dev/fuse and the two cores, so files run one at a time; the runner prints `# pass`/`# fail`.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
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
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=900000', ...files], { stdio: 'inherit', env: { ...process.env, SPACE_TEST_CHEAP_KDF: '1' } })
process.exit(r.status ?? 1)
