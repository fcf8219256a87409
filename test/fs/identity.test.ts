// The drive and the identity: a drive made before `space init` (temporary key file) opens after
// it, and the same 24 words restored into an empty config open the same drive.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, readdirSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Mount, tempDirs, removeDirs, space, type Dirs } from '../helpers/mount.js'

const dirs: Dirs = tempDirs()
let m: Mount | null = null
after(async () => { await m?.cleanup(); removeDirs(dirs) })

test('init moves a temporary-key drive to the identity; restore on a fresh config opens it', async () => {
  m = await Mount.start(dirs)
  writeFileSync(m.path('before-init.txt'), 'written under the temporary key')
  assert.equal(await m.stop(), 0)
  assert.ok(readdirSync(dirs.config).includes('master.key'))

  const init = space(['init', '--keystore', 'file', '--insecure-no-passphrase', '--config-dir', dirs.config])
  assert.equal(init.status, 0, init.stderr)
  const words = [...init.stdout.matchAll(/\d+\.\s+([a-z]+)/g)].map(x => x[1])
  assert.equal(words.length, 24)
  assert.ok(!readdirSync(dirs.config).includes('master.key'), 'the temporary key is retired')

  m = await Mount.start(dirs)
  assert.match(m.stderr, /migrated the store/)
  assert.equal(readFileSync(m.path('before-init.txt'), 'utf8'), 'written under the temporary key')
  writeFileSync(m.path('after-init.txt'), 'written under the identity')
  assert.equal(await m.stop(), 0)
  const who = space(['whoami', '--config-dir', dirs.config]).stdout

  // A new machine: empty config, the same words, the same data.
  const fresh = join(dirs.base, 'config2')
  mkdirSync(fresh)
  const restore = space(['init', '--restore', '--keystore', 'file', '--insecure-no-passphrase', '--config-dir', fresh], { input: words.join(' ') + '\n' })
  assert.equal(restore.status, 0, restore.stderr)
  assert.equal(space(['whoami', '--config-dir', fresh]).stdout.split('\n')[0], who.split('\n')[0])
  m = await Mount.start({ ...dirs, config: fresh })
  assert.equal(readFileSync(m.path('before-init.txt'), 'utf8'), 'written under the temporary key')
  assert.equal(readFileSync(m.path('after-init.txt'), 'utf8'), 'written under the identity')
  assert.equal(await m.stop(), 0)
  m = null

  // The wrong words open nothing.
  const other = join(dirs.base, 'config3')
  mkdirSync(other)
  assert.equal(space(['init', '--keystore', 'file', '--insecure-no-passphrase', '--config-dir', other]).status, 0)
  const wrong = space(['mount', dirs.mnt, '--data-dir', dirs.data, '--config-dir', other])
  assert.equal(wrong.status, 15)
})
