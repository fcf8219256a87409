// `space test-passphrase`: checks a backup passphrase against the hub vault (or a backup file)
// and changes nothing: no keystore, no config, no upload.
import { resolve } from 'node:path'
import { readIdentityConfig } from '../../keys/account.js'
import { fetchFromHub, readBackupFile } from '../../keys/backup.js'
import { deriveIdentity, fingerprint } from '../../keys/identity.js'
import { resolveConfigDir } from '../../keys/paths.js'
import { ExitCode } from '../exit-codes.js'
import { defineCommand, out, readPassphrase, UsageError } from './keys-common.js'

export const command = defineCommand({
  name: 'test-passphrase',
  summary: 'check a key-backup passphrase without changing anything',
  usage: `usage: space test-passphrase [<username>] [--hub URL] [--insecure-http] [--passphrase-stdin] [--config-dir DIR]
       space test-passphrase --from FILE [--passphrase-stdin]

Opens the key backup with the passphrase and reports whether it is right. Username and hub
default to those of the last "space backup-keys" in this config dir, and so do the key
derivation parameters: a hub that now serves other ones is refused.
  --insecure-http  allow a plain http:// hub that is not on this machine
Exit 0 when right, 23 ("wrong passphrase") when not.`,
  options: { hub: { type: 'string' }, from: { type: 'string' }, 'passphrase-stdin': { type: 'boolean' }, 'insecure-http': { type: 'boolean' } },
  positionals: true
}, async (ctx, values, positionals) => {
  const config = await readIdentityConfig(resolveConfigDir(values['config-dir'] as string | undefined))
  const fromStdin = values['passphrase-stdin'] === true
  let entropy: Buffer
  if (values.from !== undefined) {
    entropy = await readBackupFile(resolve(values.from as string), await readPassphrase(ctx, fromStdin, { confirm: false, what: 'Backup passphrase' }))
  } else {
    const username = positionals[0] ?? config?.vault?.username
    const hub = (values.hub as string | undefined) ?? config?.vault?.hub ?? ctx.env.SPACE_HUB_URL
    if (username === undefined) throw new UsageError('expected <username>')
    if (hub === undefined || hub === '') throw new UsageError('no hub: pass --hub URL or set SPACE_HUB_URL')
    const passphrase = await readPassphrase(ctx, fromStdin, { confirm: false, what: 'Backup passphrase' })
    // The backup made from here for this user fixed its parameters; a hub may not change them.
    const expectKdf = config?.vault?.username === username ? config.vault.kdf : undefined
    entropy = (await fetchFromHub(hub, username, passphrase, { insecureHttp: values['insecure-http'] === true, ...(expectKdf !== undefined ? { expectKdf } : {}) })).entropy
  }
  const publicKey = deriveIdentity(entropy).signing.publicKey
  out(ctx, `passphrase OK: the backup holds identity ${fingerprint(publicKey)}`)
  if (config !== null && config.identity.publicKey !== publicKey.toString('hex')) {
    out(ctx, `note: that is not this config dir's identity (${config.identity.fingerprint})`)
  }
  return ExitCode.OK
})
