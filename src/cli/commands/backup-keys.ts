// `space backup-keys`: seals the identity under a passphrase-derived key and uploads it to the
// hub's vault (after an Ed25519 challenge-response), or writes it to a local file with --to.
// A thin client of the keys.backup method (ctl/methods.ts).
import { lstat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { KeysError } from '../../keys/errors.js'
import { requireIdentityConfig } from '../../keys/account.js'
import { resolveConfigDir } from '../../keys/paths.js'
import type { CommandContext } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import { callWithProgress, clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, openSession } from '../session.js'
import { keystorePassphrase, out, readPassphrase, UsageError } from './keys-common.js'

export const command = clientCommand({
  name: 'backup-keys',
  summary: 'back up your identity to the hub vault (or a file) under a passphrase',
  usage: `usage: space backup-keys [--hub URL] [--username NAME] [--insecure-http] [--passphrase-stdin] [--config-dir DIR]
       space backup-keys --to FILE [--passphrase-stdin] [--config-dir DIR]

Seals your identity with a key derived from a passphrase on this machine (scrypt) and uploads
the sealed box to the hub; the hub never sees the passphrase or the key. The passphrase is asked
twice on the terminal, or read as one line from stdin with --passphrase-stdin.
  --hub URL        the hub (default: the one used before, or SPACE_HUB_URL)
  --username NAME  the name to recover with later (required the first time)
  --to FILE        write a local backup file instead (sealed by the passphrase, mode 0600);
                   FILE must not exist
  --insecure-http  allow a plain http:// hub that is not on this machine
Runs in the daemon when one serves the store (the passphrase travels over the 0600 control
socket, never argv), else in this process. Needs scope keys:admin.
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, hub: { type: 'string' }, username: { type: 'string' }, to: { type: 'string' }, 'passphrase-stdin': { type: 'boolean' }, 'insecure-http': { type: 'boolean' } }
}, async (ctx, values) => {
  const configDir = resolveConfigDir(values['config-dir'] as string | undefined)
  const config = await requireIdentityConfig(configDir)
  const keystorePass = await keystorePassphrase(ctx, config.keystore.backend === 'file' ? config.keystore.protection : undefined)
  const fromStdin = values['passphrase-stdin'] === true
  const common = keystorePass === undefined ? {} : { keystorePassphrase: keystorePass }

  if (values.to !== undefined) {
    const file = resolve(values.to as string)
    // Before the passphrase is asked: the daemon refuses an existing file too (keys.backup).
    if (await lstat(file).then(() => true, () => false)) throw new KeysError('ERR_FILE_EXISTS', `${file} exists; not overwriting it (choose a new file name)`)
    const passphrase = await readPassphrase(ctx, fromStdin, { confirm: true, what: 'Backup passphrase' })
    await run(ctx, values, { passphrase, to: file, ...common })
    out(ctx, `Key backup written to ${file} (sealed by your passphrase; keep it somewhere other than this machine).`)
    return ExitCode.OK
  }
  const hub = (values.hub as string | undefined) ?? config.vault?.hub ?? ctx.env.SPACE_HUB_URL
  const username = (values.username as string | undefined) ?? config.vault?.username
  if (hub === undefined || hub === '') throw new UsageError('no hub: pass --hub URL or set SPACE_HUB_URL')
  if (username === undefined) throw new UsageError('pass --username NAME: the name you will recover with')
  const passphrase = await readPassphrase(ctx, fromStdin, { confirm: true, what: 'Backup passphrase' })
  const insecure = values['insecure-http'] === true ? { insecureHttp: true } : {}
  const vault = await run(ctx, values, { passphrase, hub, username, ...insecure, ...common }) as { hub: string, username: string }
  out(ctx, `Key backup stored on ${vault.hub} for "${username}". Recover on a new machine with: space recover-keys ${username} --hub ${vault.hub}`)
  return ExitCode.OK
})

/** Through the daemon when one runs, else the same method here; progress on stderr. */
async function run (ctx: CommandContext, values: Record<string, string | boolean | undefined>, params: Record<string, unknown>): Promise<unknown> {
  const s = await openSession(values, { offline: true })
  try {
    return await callWithProgress(ctx, s, 'keys.backup', params)
  } finally {
    s.close()
  }
}
