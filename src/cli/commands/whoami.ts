// `space whoami`: this identity's public key and fingerprint (public facts only; no keychain).
// Asks the daemon when one runs; otherwise the same method reads identity.json here.
import { ExitCode } from '../exit-codes.js'
import { out } from './keys-common.js'
import { clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, openSession } from '../session.js'

interface Who { publicKey: string, fingerprint: string, sharePublicKey: string, devicePublicKey: string, username: string | null, hub: string | null }

export const command = clientCommand({
  name: 'whoami',
  summary: 'print your public key and fingerprint',
  usage: `usage: space whoami [--json] [--config-dir DIR] [--socket PATH] [--token TOKEN]

Prints the identity's Ed25519 public key (hex), its fingerprint, and this device's key.
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, json: { type: 'boolean' } }
}, async (ctx, values) => {
  const s = await openSession(values, { offline: true })
  let c: Who
  try {
    c = await s.call('whoami') as Who
  } finally {
    s.close()
  }
  if (values.json === true) {
    out(ctx, JSON.stringify({ publicKey: c.publicKey, fingerprint: c.fingerprint, sharePublicKey: c.sharePublicKey, devicePublicKey: c.devicePublicKey, username: c.username }))
    return ExitCode.OK
  }
  out(ctx, `public key   ${c.publicKey}`)
  out(ctx, `fingerprint  ${c.fingerprint}`)
  out(ctx, `share key    ${c.sharePublicKey} (X25519)`)
  out(ctx, `device key   ${c.devicePublicKey}`)
  if (c.username !== null) out(ctx, `username     ${c.username} on ${c.hub ?? ''}`)
  return ExitCode.OK
})
