// `space doctor`: which keystore backend is in use, whether it answers, where the drive key
// comes from. Exit 0 when the identity's secret could be read (or there is none yet to read).
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describeKeystore, openAccount, readIdentityConfig } from '../../keys/account.js'
import { TEMPORARY_KEY_FILE } from '../../keys/drive-key.js'
import { KeysError } from '../../keys/errors.js'
import { probeKeychain } from '../../keys/keystore.js'
import { resolveConfigDir } from '../../keys/paths.js'
import { ExitCode } from '../exit-codes.js'
import { defineCommand, exitCodeFor, keystorePassphrase, out } from './keys-common.js'

async function mode (path: string): Promise<string | null> {
  try {
    return ((await stat(path)).mode & 0o777).toString(8).padStart(4, '0')
  } catch {
    return null
  }
}

export const command = defineCommand({
  name: 'doctor',
  summary: 'check the keystore backend, identity and drive key',
  usage: `usage: space doctor [--config-dir DIR]

Reports the config dir, the keystore backend in use (OS keychain or encrypted file), whether
the OS keychain answers, whether the identity's secret opens, and where the drive key comes from.`,
  options: {}
}, async (ctx, values) => {
  const configDir = resolveConfigDir(values['config-dir'] as string | undefined)
  let code: number = ExitCode.OK
  out(ctx, `config dir   ${configDir} (${await mode(configDir) ?? 'missing'})`)
  const probe = await probeKeychain()
  out(ctx, `keychain     ${probe.ok ? 'OS keychain answers (Secret Service)' : `not available: ${probe.reason}`}`)
  const config = await readIdentityConfig(configDir)
  if (config === null) {
    out(ctx, 'identity     none (run "space init" or "space recover-keys")')
    out(ctx, `backend      ${probe.ok ? 'keychain (would be used by "space init")' : 'file (would be used by "space init")'}`)
    const temp = await mode(join(configDir, TEMPORARY_KEY_FILE))
    out(ctx, `drive key    ${temp === null ? 'none' : `TEMPORARY key file ${TEMPORARY_KEY_FILE} (${temp})`}`)
    return code
  }
  out(ctx, `identity     ${config.identity.fingerprint} (${config.identity.publicKey})`)
  out(ctx, `backend      ${config.keystore.backend}: ${describeKeystore(configDir, config.keystore)}`)
  if (config.keystore.backend === 'file') {
    const m = await mode(join(configDir, 'keystore.bin'))
    out(ctx, `keystore     ${m === null ? 'MISSING' : `mode ${m}${m === '0600' ? '' : ' (should be 0600)'}`}`)
  }
  try {
    await openAccount(configDir, { passphrase: await keystorePassphrase(ctx, config.keystore.backend === 'file' ? config.keystore.protection : undefined) })
    out(ctx, 'secret       opens and matches identity.json')
    out(ctx, 'drive key    derived from the identity')
  } catch (e) {
    if (!(e instanceof KeysError)) throw e
    out(ctx, `secret       ${e.message}`)
    code = exitCodeFor(e)
  }
  out(ctx, `key backup   ${config.vault === undefined ? 'none on a hub (space backup-keys)' : `hub ${config.vault.hub} as "${config.vault.username}"`}`)
  return code
})
