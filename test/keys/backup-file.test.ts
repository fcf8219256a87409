// keys.backup with `to` never overwrites: an existing file, or a link to one, is refused by the
// method itself (the daemon runs it too) and by the CLI before it asks for a passphrase.
import assert from 'node:assert/strict'
import { readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { buildHandlers } from '../../src/ctl/methods.js'
import { isCtlError } from '../../src/ctl/errors.js'
import { offlineApi } from '../../src/service.js'
import { cli, tempDir } from './helpers.js'
import { backupToFile, readBackupFile } from '../../src/keys/backup.js'
import { openAccount } from '../../src/keys/account.js'

const root = tempDir('space-backupfile-')
after(() => rmSync(root, { recursive: true, force: true }))
const INSECURE = ['--keystore', 'file', '--insecure-no-passphrase']
const call = { id: 1, grant: { id: 'local', name: 'local', allow: ['*'], master: true }, progress: () => {} }

describe('a key backup to a file', () => {
  const config = join(root, 'config')
  const victim = join(root, 'important.txt')

  it('keys.backup refuses an existing path or a link, and leaves it as it was', async () => {
    assert.equal((await cli(['init', '--config-dir', config, ...INSECURE])).code, 0)
    writeFileSync(victim, 'precious\n')
    symlinkSync(victim, join(root, 'link'))
    symlinkSync(join(root, 'nowhere'), join(root, 'dangling'))
    const handlers = buildHandlers(offlineApi(config, join(root, 'data')))
    for (const to of [victim, join(root, 'link'), join(root, 'dangling')]) {
      await assert.rejects(handlers['keys.backup']({ passphrase: 'a long backup passphrase', to }, call),
        (e: unknown) => isCtlError(e, 'ERR_KEYS') && e.data.cause === 'ERR_FILE_EXISTS' && /exists; not overwriting it/.test(e.message), to)
    }
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n')
    assert.ok(!existsSync(join(root, 'nowhere')), 'a dangling link is not followed either')
    const fresh = join(root, 'new.space-keys')
    assert.deepEqual(await handlers['keys.backup']({ passphrase: 'a long backup passphrase', to: fresh }, call), { file: fresh })
    assert.ok(readFileSync(fresh).length > 0)
  })

  it('the CLI refuses an existing file with exit 37 before asking for the passphrase', async () => {
    const r = await cli(['backup-keys', '--config-dir', config, '--to', victim, '--passphrase-stdin', '--socket', join(root, 'none.sock')], { input: '' })
    assert.equal(r.code, 37, r.stderr)
    assert.match(r.stderr, /important\.txt exists; not overwriting it/)
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n')
  })

  it('on a file system without hard links (link() is EPERM) it writes the file exclusively, and still never overwrites', async () => {
    const account = await openAccount(config, {})
    const noLinks = { link: async () => { throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' }) } }
    const file = join(root, 'on-vfat.space-keys')
    await backupToFile(account, file, 'a long backup passphrase', noLinks)
    assert.ok((await readBackupFile(file, 'a long backup passphrase')).length > 0, 'the backup opens')
    await assert.rejects(backupToFile(account, victim, 'a long backup passphrase', noLinks), { code: 'ERR_FILE_EXISTS' })
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n')
  })
})
