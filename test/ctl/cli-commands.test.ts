// One list of CLI commands: src/cli/commands/index.ts. Help is generated from it, and
// docs/cli.md's "Commands" table names exactly its commands.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { commands, help } from '../../src/cli/commands/index.js'
import { space, ROOT } from '../helpers/mount.js'
import { join } from 'node:path'

/** First word of each row's first cell in the "## Commands" section of docs/cli.md. */
function documented (): string[] {
  const text = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8')
  const section = text.split(/^## /m).find(s => s.startsWith('Commands'))
  assert.ok(section !== undefined, 'docs/cli.md has a "## Commands" section')
  return [...new Set([...section.matchAll(/^\| `([a-z][a-z-]*)/gm)].map(m => m[1]))]
}

describe('the list of CLI commands', () => {
  it('docs/cli.md documents exactly the commands the CLI has', () => {
    assert.deepEqual(documented().sort(), commands.map(c => c.name).sort())
  })

  it('`space --help` lists every command of the list, in its order, and dispatches each', () => {
    const r = space(['--help'])
    assert.equal(r.status, 0)
    assert.equal(r.stdout, help())
    const listed = [...r.stdout.matchAll(/^ {2}([a-z][a-z-]*) /gm)].map(m => m[1])
    assert.deepEqual(listed, commands.map(c => c.name))
    for (const c of commands) assert.equal(space([c.name, '--help']).status, 0, c.name)
  })
})
