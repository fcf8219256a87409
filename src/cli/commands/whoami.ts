// `space whoami`: this identity's public key and fingerprint (public facts only; no keychain).
import { requireIdentityConfig } from '../../keys/account.js'
import { resolveConfigDir } from '../../keys/paths.js'
import { ExitCode } from '../exit-codes.js'
import { defineCommand, out } from './keys-common.js'

export const command = defineCommand({
  name: 'whoami',
  summary: 'print your public key and fingerprint',
  usage: `usage: space whoami [--json] [--config-dir DIR]

Prints the identity's Ed25519 public key (hex), its fingerprint, and this device's key.`,
  options: { json: { type: 'boolean' } }
}, async (ctx, values) => {
  const c = await requireIdentityConfig(resolveConfigDir(values['config-dir'] as string | undefined))
  if (values.json === true) {
    out(ctx, JSON.stringify({ publicKey: c.identity.publicKey, fingerprint: c.identity.fingerprint, sharePublicKey: c.identity.sharePublicKey, devicePublicKey: c.device.publicKey, username: c.vault?.username ?? null }))
    return ExitCode.OK
  }
  out(ctx, `public key   ${c.identity.publicKey}`)
  out(ctx, `fingerprint  ${c.identity.fingerprint}`)
  out(ctx, `share key    ${c.identity.sharePublicKey} (X25519)`)
  out(ctx, `device key   ${c.device.publicKey}`)
  if (c.vault !== undefined) out(ctx, `username     ${c.vault.username} on ${c.vault.hub}`)
  return ExitCode.OK
})
