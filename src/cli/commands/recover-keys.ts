// `space recover-keys <username>`: on a fresh machine, fetches the vault by passphrase, opens it
// here, and installs the identity (same public key, same drive) with a new device key.
import { resolve } from 'node:path'
import { createAccount, describeKeystore, readIdentityConfig, writeIdentityConfig } from '../../keys/account.js'
import { fetchFromHub, readBackupFile } from '../../keys/backup.js'
import { retireTemporaryKey } from '../../keys/drive-key.js'
import { KeysError } from '../../keys/errors.js'
import { resolveConfigDir } from '../../keys/paths.js'
import { ExitCode } from '../exit-codes.js'
import { chooseKeystore, defineCommand, err, KEYSTORE_FLAGS, out, readPassphrase, UsageError } from './keys-common.js'

export const command = defineCommand({
  name: 'recover-keys',
  summary: 'restore your identity from the hub vault (or a backup file) by passphrase',
  usage: `usage: space recover-keys <username> [--hub URL] [--passphrase-stdin] [--keystore KIND] [--config-dir DIR]
       space recover-keys --from FILE [--passphrase-stdin] [--keystore KIND] [--config-dir DIR]

Fetches the key backup of <username> from the hub, opens it with your passphrase on this
machine and installs the identity here. Refuses if this config dir already has an identity.
  --hub URL                 the hub (default SPACE_HUB_URL)
  --from FILE               use a local backup file made by "space backup-keys --to FILE"
  --passphrase-stdin        read the passphrase as one line from stdin
  --keystore, --insecure-no-passphrase   as for "space init"`,
  options: { hub: { type: 'string' }, from: { type: 'string' }, 'passphrase-stdin': { type: 'boolean' }, ...KEYSTORE_FLAGS },
  positionals: true
}, async (ctx, values, positionals) => {
  const configDir = resolveConfigDir(values['config-dir'] as string | undefined)
  if (await readIdentityConfig(configDir) !== null) throw new KeysError('ERR_IDENTITY_EXISTS', `an identity already exists in ${configDir}`)
  const username = positionals[0]
  if (positionals.length > 1) throw new UsageError('expected one username')
  const fromStdin = values['passphrase-stdin'] === true

  let entropy: Buffer
  let vault
  if (values.from !== undefined) {
    entropy = await readBackupFile(resolve(values.from as string), await readPassphrase(ctx, fromStdin, { confirm: false, what: 'Backup passphrase' }))
  } else {
    if (username === undefined) throw new UsageError('expected <username> (or --from FILE)')
    const hub = (values.hub as string | undefined) ?? ctx.env.SPACE_HUB_URL
    if (hub === undefined || hub === '') throw new UsageError('no hub: pass --hub URL or set SPACE_HUB_URL')
    const r = await fetchFromHub(hub, username, await readPassphrase(ctx, fromStdin, { confirm: false, what: 'Backup passphrase' }))
    entropy = r.entropy
    vault = r.vault
  }
  // Only now, with the identity in hand, pick a keystore: a wrong passphrase changes nothing.
  const account = await createAccount(configDir, entropy, await chooseKeystore(ctx, values))
  if (vault !== undefined) await writeIdentityConfig(configDir, { ...account.config, vault })
  const retired = await retireTemporaryKey(configDir)
  if (retired !== null) err(ctx, `note: the temporary drive key is no longer used; it was kept as ${retired}`)
  out(ctx, 'Recovered identity.')
  out(ctx, `  public key   ${account.config.identity.publicKey}`)
  out(ctx, `  fingerprint  ${account.config.identity.fingerprint}`)
  out(ctx, `  keystore     ${describeKeystore(configDir, account.config.keystore)}`)
  return ExitCode.OK
})
