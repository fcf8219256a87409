// `space recover-keys <username>`: on a fresh machine, fetches the vault by passphrase, opens it
// here, and installs the identity (same public key, same drive) with a new device key.
// A thin client of the keys.recover method (ctl/methods.ts).
import { resolve } from 'node:path'
import { PassThrough } from 'node:stream'
import { describeKeystore, readIdentityConfig, type KeystoreConfig } from '../../keys/account.js'
import { KeysError } from '../../keys/errors.js'
import { resolveConfigDir } from '../../keys/paths.js'
import { ExitCode } from '../exit-codes.js'
import { callWithProgress, clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, openSession } from '../session.js'
import { chooseKeystore, err, KEYSTORE_FLAGS, out, readPassphrase, stdinIsTerminal, UsageError } from './keys-common.js'
import { setupHub } from './sync.js'

export const command = clientCommand({
  name: 'recover-keys',
  summary: 'restore your identity from the hub vault (or a backup file) by passphrase',
  usage: `usage: space recover-keys <username> [--hub URL] [--insecure-http] [--passphrase-stdin] [--keystore KIND] [--config-dir DIR]
       space recover-keys --from FILE [--passphrase-stdin] [--keystore KIND] [--config-dir DIR]

Fetches the key backup of <username> from the hub, opens it with your passphrase on this
machine and installs the identity here. Refuses if this config dir already has an identity.
  --hub URL                 the hub (default SPACE_HUB_URL)
  --insecure-http           allow a plain http:// hub that is not on this machine
  --from FILE               use a local backup file made by "space backup-keys --to FILE"
  --passphrase-stdin        read the passphrase as one line from stdin
  --keystore, --insecure-no-passphrase   as for "space init"
  --sync-hub URL            then sync this drive through the hub at URL (as "space sync hub URL"
                            does; with --device-name NAME, --on-demand, --insecure-http)
Runs in the daemon when one serves the store, else in this process. Needs scope keys:admin.
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, hub: { type: 'string' }, from: { type: 'string' }, 'sync-hub': { type: 'string' }, 'device-name': { type: 'string' }, 'on-demand': { type: 'boolean' }, 'passphrase-stdin': { type: 'boolean' }, 'insecure-http': { type: 'boolean' }, ...KEYSTORE_FLAGS },
  positionals: true
}, async (ctx, values, positionals) => {
  const configDir = resolveConfigDir(values['config-dir'] as string | undefined)
  if (await readIdentityConfig(configDir) !== null) throw new KeysError('ERR_IDENTITY_EXISTS', `an identity already exists in ${configDir}`)
  const username = positionals[0]
  if (positionals.length > 1) throw new UsageError('expected one username')
  const fromStdin = values['passphrase-stdin'] === true

  const params: Record<string, unknown> = {}
  if (values.from !== undefined) {
    params.from = resolve(values.from as string)
  } else {
    if (username === undefined) throw new UsageError('expected <username> (or --from FILE)')
    const hub = (values.hub as string | undefined) ?? ctx.env.SPACE_HUB_URL
    if (hub === undefined || hub === '') throw new UsageError('no hub: pass --hub URL or set SPACE_HUB_URL')
    params.hub = hub
    params.username = username
    if (values['insecure-http'] === true) params.insecureHttp = true
  }
  params.passphrase = await readPassphrase(ctx, fromStdin, { confirm: false, what: 'Backup passphrase' })
  // The keystore is picked before the backup is opened (the method does both), but nothing is
  // written until it has opened. Off a terminal nothing can be prompted, so what the choice has to
  // say (warnings) is held back until the backup opened: a wrong passphrase prints one line.
  const held = new PassThrough()
  let said = ''
  held.on('data', d => { said += String(d) })
  const choice = await chooseKeystore(stdinIsTerminal(ctx) ? ctx : { ...ctx, stderr: held }, values)
  params.keystore = choice.backend
  if (choice.backend === 'file' && choice.passphrase !== null) params.keystorePassphrase = choice.passphrase
  const s = await openSession(values, { offline: true })
  let r: { publicKey: string, fingerprint: string, keystore: KeystoreConfig, retiredKeyFile: string | null }
  try {
    r = await callWithProgress(ctx, s, 'keys.recover', params) as typeof r
  } finally {
    s.close()
  }
  ctx.stderr.write(said)
  if (r.retiredKeyFile !== null) err(ctx, `note: the temporary drive key is no longer used; it was kept as ${r.retiredKeyFile}`)
  out(ctx, 'Recovered identity.')
  out(ctx, `  public key   ${r.publicKey}`)
  out(ctx, `  fingerprint  ${r.fingerprint}`)
  out(ctx, `  keystore     ${describeKeystore(configDir, r.keystore)}`)
  const syncHub = values['sync-hub'] as string | undefined
  if (syncHub !== undefined) {
    await setupHub(ctx, configDir, syncHub, {
      deviceName: values['device-name'] as string | undefined,
      username: username,
      insecureHttp: values['insecure-http'] === true,
      onDemand: values['on-demand'] === true,
      passphrase: choice.backend === 'file' ? choice.passphrase ?? undefined : undefined
    })
  }
  return ExitCode.OK
})
