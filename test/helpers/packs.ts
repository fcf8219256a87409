// Test helper: edits a pack store's files on disk the way a bad disk or a hostile copy would.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Replaces, in the one pack of the store at `dir` holding `what`, those bytes by `by` (same length). */
export function replaceInPacks (dir: string, what: Buffer, by: Buffer): void {
  const packs = join(dir, 'packs')
  let found = 0
  for (const name of readdirSync(packs)) {
    const bytes = readFileSync(join(packs, name))
    const at = bytes.indexOf(what)
    if (at < 0) continue
    by.copy(bytes, at)
    writeFileSync(join(packs, name), bytes)
    found++
  }
  assert.equal(found, 1, 'the sealed bytes were found in one pack')
}
