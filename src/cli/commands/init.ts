// `space init`: a new identity from a fresh 24-word mnemonic, or `--restore` from one on stdin;
// also the master app token the CLI uses on the control socket.
import { join } from 'node:path'
import { createAccount, describeKeystore, readIdentityConfig } from '../../keys/account.js'
import { retireTemporaryKey } from '../../keys/drive-key.js'
import { KeysError } from '../../keys/errors.js'
import { entropyToWords, generateEntropy, parseMnemonic } from '../../keys/mnemonic.js'
import { resolveConfigDir } from '../../keys/paths.js'
import { ensureMasterToken, MASTER_TOKEN_FILE } from '../../ctl/tokens.js'
import { ExitCode } from '../exit-codes.js'
import { chooseKeystore, defineCommand, err, KEYSTORE_FLAGS, out, readAllStdin, readSecretLine, stdinIsTerminal } from './keys-common.js'
import { setupHub } from './sync.js'

export const command = defineCommand({
  name: 'init',
  summary: 'create an identity (new 24-word recovery phrase) or restore one',
  usage: `usage: space init [--restore] [--sync-hub URL] [--keystore auto|keychain|file] [--insecure-no-passphrase] [--config-dir DIR]

Creates your identity from a new BIP39 recovery phrase and shows the phrase once.
  --restore                 read an existing 24-word phrase from stdin (never from the command line)
  --keystore KIND           where the secret goes: auto (OS keychain if it answers, else file),
                            keychain, or file (encrypted with a passphrase from a terminal prompt
                            or SPACE_KEYSTORE_PASSPHRASE)
  --insecure-no-passphrase  file keystore without a passphrase, for headless machines (unsafe)
  --sync-hub URL            then sync this drive through the hub at URL (as "space sync hub URL"
                            does; with --device-name NAME, --on-demand, --insecure-http)
With --restore and --sync-hub, the next "space mount" shows the whole drive of your other devices.`,
  options: { restore: { type: 'boolean' }, 'sync-hub': { type: 'string' }, 'device-name': { type: 'string' }, 'on-demand': { type: 'boolean' }, 'insecure-http': { type: 'boolean' }, ...KEYSTORE_FLAGS }
}, async (ctx, values) => {
  const configDir = resolveConfigDir(values['config-dir'] as string | undefined)
  if (await readIdentityConfig(configDir) !== null) throw new KeysError('ERR_IDENTITY_EXISTS', `an identity already exists in ${configDir}`)

  let entropy: Buffer
  if (values.restore === true) {
    const text = stdinIsTerminal(ctx)
      ? await readSecretLine(ctx, 'Recovery phrase (24 words, hidden): ')
      : await readAllStdin(ctx)
    entropy = parseMnemonic(text)
  } else {
    entropy = generateEntropy()
  }
  const choice = await chooseKeystore(ctx, values)
  const account = await createAccount(configDir, entropy, choice)
  const retired = await retireTemporaryKey(configDir)
  // The CLI's key to the daemon's control socket (docs/api.md); kept if one exists already.
  const master = await ensureMasterToken(configDir)

  out(ctx, values.restore === true ? 'Restored identity.' : 'Created identity.')
  out(ctx, `  public key   ${account.config.identity.publicKey}`)
  out(ctx, `  fingerprint  ${account.config.identity.fingerprint}`)
  out(ctx, `  keystore     ${describeKeystore(configDir, account.config.keystore)}`)
  out(ctx, `  app token    master token ${master.created ? 'created' : 'kept'} in ${master.store === 'keychain' ? 'the OS keychain' : `${join(configDir, MASTER_TOKEN_FILE)} (0600)`}`)
  if (retired !== null) {
    err(ctx, `note: the temporary drive key is no longer used; it was kept as ${retired} for data written under it`)
  }
  if (values.restore !== true) {
    const words = entropyToWords(entropy).split(' ')
    out(ctx)
    out(ctx, 'YOUR RECOVERY PHRASE. It is shown this once. Write it on paper and keep it offline.')
    out(ctx, 'Anyone who has these words has your identity and your drive. If you lose them and this')
    out(ctx, 'machine (and have no key backup: space backup-keys), your files cannot be recovered.')
    out(ctx)
    for (let i = 0; i < words.length; i += 4) {
      out(ctx, '  ' + words.slice(i, i + 4).map((w, j) => `${String(i + j + 1).padStart(2)}. ${w.padEnd(10)}`).join(' ').trimEnd())
    }
    out(ctx)
  }
  const hub = values['sync-hub'] as string | undefined
  if (hub !== undefined) {
    await setupHub(ctx, configDir, hub, {
      deviceName: values['device-name'] as string | undefined,
      insecureHttp: values['insecure-http'] === true,
      onDemand: values['on-demand'] === true,
      passphrase: choice.backend === 'file' ? choice.passphrase ?? undefined : undefined
    })
  }
  return ExitCode.OK
})
