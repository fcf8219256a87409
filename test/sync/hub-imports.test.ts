// The hub cannot read [I14], and its imports show it: nothing under src/hub reaches, through
// runtime imports, the tree, the code that derives or holds drive keys, or the sealed roots' key.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { it } from 'node:test'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const FORBIDDEN = [/^src\/fs\//, /^src\/share\//, /^src\/drive\//, /^src\/sync\/entry-keys\.ts$/, /^src\/sync\/log-writer\.ts$/, /^src\/keys\/(drive-key|account|keystore|backup)\.ts$/]

function tsFiles (dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) tsFiles(p, out)
    else if (name.endsWith('.ts')) out.push(p)
  }
  return out
}

/** Relative modules a file loads at run time (`import type` and `export type` are erased). */
function runtimeImports (file: string): string[] {
  const src = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of src.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'/gms)) {
    if (m[2] !== undefined) continue
    out.push(resolve(dirname(file), m[3].replace(/\.js$/, '.ts')))
  }
  for (const m of src.matchAll(/^\s*import\s+'(\.[^']+)'/gm)) out.push(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')))
  return out
}

it('nothing under src/hub loads the tree, drive-key code or the sync key code', () => {
  const start = tsFiles(join(ROOT, 'src/hub'))
  assert.ok(start.some(f => f.endsWith('replication/entries.ts')))
  const seen = new Map<string, string>() // file -> who imported it
  const todo: Array<[string, string]> = start.map(f => [f, '(hub)'])
  const bad: string[] = []
  while (todo.length > 0) {
    const [file, from] = todo.pop()!
    if (seen.has(file)) continue
    seen.set(file, from)
    const rel = relative(ROOT, file)
    if (FORBIDDEN.some(r => r.test(rel))) bad.push(`${rel} (imported by ${relative(ROOT, from)})`)
    for (const dep of runtimeImports(file)) todo.push([dep, file])
  }
  assert.deepEqual(bad, [])
  assert.ok(seen.has(join(ROOT, 'src/sync/entry.ts')), 'the scan follows the hub into src/sync')
})
