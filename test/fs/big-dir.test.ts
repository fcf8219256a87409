// A folder of 20,000 files through a real mount (sharded: src/fs/tree/dir-shards.ts): ls lists
// every name (also read lazily while names change: each one there throughout exactly once), stat and reads find them, renames and removals stick across a remount, fsck finds
// the store intact, and one more file in the folder appends a few KiB, not the folder.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs'
import { opendir } from 'node:fs/promises'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, space, type Dirs } from '../helpers/mount.js'

const N = 20_000
const dirs: Dirs[] = []
let mount: Mount | null = null
after(async () => {
  if (mount != null) await mount.stop().catch(() => {})
  for (const d of dirs) removeDirs(d)
})

const name = (i: number): string => `f${String(i).padStart(5, '0')}.txt`
const packBytes = (d: Dirs): number => readdirSync(join(d.data, 'packs')).filter(n => n.endsWith('.pack')).reduce((s, n) => s + statSync(join(d.data, 'packs', n)).size, 0)

test('a folder of 20,000 files: ls, stat, rename and rm through the mount, a remount and fsck see the same, and one more file costs a few KiB', { timeout: 600_000 }, async (t) => {
  const d = tempDirs('space-bigdir-')
  dirs.push(d)
  mount = await Mount.start(d)
  mkdirSync(mount.path('big'))
  mkdirSync(mount.path('big', 'sub'))
  for (let i = 0; i < N; i++) writeFileSync(mount.path('big', name(i)), `${i}\n`)
  const listed = readdirSync(mount.path('big'))
  assert.equal(listed.length, N + 1)
  assert.equal(new Set(listed).size, N + 1, 'no name listed twice')
  assert.equal(statSync(mount.path('big')).nlink, 3, 'nlink counts the one subdirectory')

  // A listing read lazily (pages of the sharded folder fetched as the reader gets to them) while
  // names are added, removed and renamed: each name there throughout comes exactly once.
  const stayed = new Set(listed)
  const seen = new Map<string, number>()
  const lazy = await opendir(mount.path('big'), { bufferSize: 32 })
  for await (const e of lazy) {
    seen.set(e.name, (seen.get(e.name) ?? 0) + 1)
    if (seen.size === 3000) {
      for (let i = 0; i < 300; i++) writeFileSync(mount.path('big', `during-${i}`), 'd')
      for (let i = 0; i < N; i += 67) { unlinkSync(mount.path('big', name(i))); stayed.delete(name(i)) }
      for (let i = 1; i < N; i += 101) if (i % 67 !== 0) { renameSync(mount.path('big', name(i)), mount.path('big', `moved-${i}`)); stayed.delete(name(i)) }
    }
  }
  assert.deepEqual([...seen].filter(([, c]) => c > 1), [], 'no name listed twice')
  assert.deepEqual([...stayed].filter(n => !seen.has(n)), [], 'every name there throughout is listed')
  for (let i = 0; i < N; i += 67) writeFileSync(mount.path('big', name(i)), `${i}\n`)
  for (let i = 1; i < N; i += 101) if (i % 67 !== 0) renameSync(mount.path('big', `moved-${i}`), mount.path('big', name(i)))
  for (let i = 0; i < 300; i++) unlinkSync(mount.path('big', `during-${i}`))
  assert.equal(readdirSync(mount.path('big')).length, N + 1)
  for (let i = 0; i < N; i += 997) assert.equal(readFileSync(mount.path('big', name(i)), 'utf8'), `${i}\n`)
  for (let i = 0; i < 100; i++) renameSync(mount.path('big', name(i)), mount.path('big', `renamed-${i}`))
  for (let i = 100; i < 200; i++) unlinkSync(mount.path('big', name(i)))
  renameSync(mount.path('big', name(200)), mount.path('big', 'sub', 'moved-in'))
  assert.equal(await mount.stop(), 0)
  mount = null
  const fsck = space(['fsck', '--data-dir', d.data, '--config-dir', d.config])
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr)

  // One more file in the folder, committed at unmount: a leaf and the nodes above it.
  const before = packBytes(d)
  mount = await Mount.start(d)
  writeFileSync(mount.path('big', 'one-more'), 'x')
  assert.equal(await mount.stop(), 0)
  mount = null
  const appended = packBytes(d) - before
  t.diagnostic(`one more file: ${appended} bytes appended`)
  assert.ok(appended < 64 * 1024, `${appended} bytes appended for one new file in a folder of ${N}`)

  mount = await Mount.start(d)
  const again = new Set(readdirSync(mount.path('big')))
  assert.equal(again.size, N - 100 - 1 + 1 + 1, 'renamed kept, removed gone, one moved out, one added')
  for (let i = 0; i < 100; i++) assert.ok(again.has(`renamed-${i}`) && !again.has(name(i)))
  for (let i = 100; i < 201; i++) assert.ok(!again.has(name(i)))
  assert.equal(readFileSync(mount.path('big', 'sub', 'moved-in'), 'utf8'), '200\n')
  assert.equal(readFileSync(mount.path('big', 'renamed-7'), 'utf8'), '7\n')
  assert.equal(readFileSync(mount.path('big', name(N - 1)), 'utf8'), `${N - 1}\n`)
  assert.throws(() => statSync(mount!.path('big', name(150))), { code: 'ENOENT' })
  assert.equal(await mount.stop(), 0)
  mount = null
  assert.equal(space(['fsck', '--data-dir', d.data, '--config-dir', d.config]).status, 0)
})
