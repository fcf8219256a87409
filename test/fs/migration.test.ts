// Moving a drive from the temporary key file to the identity (`space init`, then a mount): the
// whole tree is re-sealed under fresh keys and the temporary key file is deleted, so a leaked
// temporary key plus an old copy of the store opens nothing written since (issue 8.5). Content,
// holes, modes, times, xattrs and symlinks survive the copy.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, readdirSync, mkdirSync, symlinkSync, readlinkSync, statSync, cpSync, openSync, readSync, closeSync, utimesSync, chmodSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Mount, tempDirs, removeDirs, space, sh, type Dirs } from '../helpers/mount.js'
import { Drive } from '../../src/drive/drive.js'
import { DirNode, FileNode, type Tree } from '../../src/fs/tree/tree.js'
import { open, SealType } from '../../src/crypto/index.js'
import { scanPacks } from '../../src/drive/pack-scan.js'
import { packName } from '../../src/drive/quarantine.js'

const dirs: Dirs = tempDirs('space-migration-')
let m: Mount | null = null
after(async () => { await m?.cleanup(); removeDirs(dirs) })

/** Every (id, key) of the tree's directories and files: what the old key leads an attacker to. */
async function keysOf (tree: Tree): Promise<Array<{ id: Buffer, key: Buffer }>> {
  const out = [{ id: tree.root.id, key: tree.root.key }]
  const walk = async (path: string): Promise<void> => {
    for (const [name, node] of await tree.readdir(path)) {
      const p = path === '/' ? `/${name}` : `${path}/${name}`
      if (node instanceof DirNode) { out.push({ id: node.id, key: node.key }); await walk(p) } else if (node instanceof FileNode) out.push({ id: node.id, key: node.key })
    }
  }
  await walk('/')
  return out
}

test('migration to the identity re-seals everything under fresh keys and deletes the temporary key', async () => {
  m = await Mount.start(dirs)
  const big = randomBytes(300 * 1024)
  mkdirSync(m.path('dir'))
  writeFileSync(m.path('dir', 'big.bin'), big)
  writeFileSync(m.path('a.txt'), 'written under the temporary key')
  writeFileSync(m.path('sparse'), '')
  truncateSync(m.path('sparse'), 1024 * 1024 * 1024) // 1 GiB of holes
  symlinkSync('dir/big.bin', m.path('link'))
  sh(`setfattr -n user.note -v kept ${m.path('a.txt')}`)
  chmodSync(m.path('a.txt'), 0o640)
  utimesSync(m.path('dir', 'big.bin'), 1_000_000, 1_000_000)
  assert.equal(await m.stop(), 0)

  const oldKey = readFileSync(join(dirs.config, 'master.key'))
  const oldData = join(dirs.base, 'data-before')
  cpSync(dirs.data, oldData, { recursive: true }) // what a thief copied before the migration

  const init = space(['init', '--keystore', 'file', '--insecure-no-passphrase', '--config-dir', dirs.config])
  assert.equal(init.status, 0, init.stderr)
  m = await Mount.start(dirs)
  assert.match(m.stderr, /re-sealed 3 files/)
  assert.ok(!readdirSync(dirs.config).some(n => n.startsWith('master.key')), `no temporary key file is left: ${readdirSync(dirs.config).join(' ')}`)
  assert.ok(readFileSync(m.path('dir', 'big.bin')).equals(big))
  assert.equal(readFileSync(m.path('a.txt'), 'utf8'), 'written under the temporary key')
  assert.equal(sh(`getfattr --only-values -n user.note ${m.path('a.txt')}`).stdout, 'kept')
  assert.equal(statSync(m.path('a.txt')).mode & 0o7777, 0o640)
  assert.equal(statSync(m.path('dir', 'big.bin')).mtimeMs, 1_000_000_000)
  assert.equal(statSync(m.path('sparse')).size, 1024 * 1024 * 1024)
  assert.equal(statSync(m.path('sparse')).blocks, 0, 'holes stay holes')
  assert.equal(readlinkSync(m.path('link')), 'dir/big.bin')
  writeFileSync(m.path('after.txt'), 'written under the identity')
  assert.equal(await m.stop(), 0)
  m = null

  // The attacker: the old key, the old copy, and today's store. Every key the old journal leads
  // to, tried on every object written since, at every position a small drive uses.
  const drive = await Drive.open(oldData, oldKey, { create: false })
  const keys = await keysOf(drive.tree)
  await drive.close()
  const before = await scanPacks(join(oldData, 'packs'))
  const now = await scanPacks(join(dirs.data, 'packs'))
  let tried = 0
  for (const [cid, loc] of now.index) {
    if (before.index.has(cid)) continue
    const fd = openSync(join(dirs.data, 'packs', packName(loc.pack)), 'r')
    const sealed = Buffer.alloc(loc.length)
    readSync(fd, sealed, 0, loc.length, loc.offset)
    closeSync(fd)
    for (const { id, key } of keys) {
      for (const type of [SealType.Block, SealType.Dir, SealType.BlockMap]) {
        for (let index = 0; index < 4; index++) {
          tried++
          assert.throws(() => open(key, { type, objectId: id, index }, sealed), `object ${cid} opens with an old key (type ${type}, index ${index})`)
        }
      }
    }
  }
  assert.ok(tried > 0, 'objects were written after the migration')
})
