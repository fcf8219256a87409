// `space devices`: this identity's devices, as the hub lists them (name, key prefix, issued,
// revoked, newest entry). `space devices revoke NAME`: signs a revocation with the identity,
// posts it to the hub and records it on this device (ctl methods devices, devices.revoke).
import { ExitCode } from '../exit-codes.js'
import { out, UsageError } from './keys-common.js'
import { clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, openSession } from '../session.js'
import type { DeviceListing } from '../../sync/device-admin.js'

const day = (t: number): string => new Date(t).toISOString().slice(0, 16).replace('T', ' ')

export const command = clientCommand({
  name: 'devices',
  summary: 'list the devices of your identity; devices revoke NAME shuts one out',
  usage: `usage: space devices [--json] [--socket PATH] [--token TOKEN]
       space devices revoke NAME [--json]

(no argument)  Lists this identity's devices from the hub: name, the first 8 hex digits of its
               key, when it was set up, its newest log entry on the hub, and whether it is
               revoked. "*" marks this device. --json: {"devices":[...]}.
revoke NAME    Revokes the device NAME (or the one whose key starts with NAME, 8+ hex digits):
               signs a revocation with your identity that keeps its entries up to the newest the
               hub or this device has seen, and none after. The hub refuses its writes from then
               on and your devices ignore its later entries. This device cannot revoke itself.
Needs a hub (space sync hub URL). Runs in the daemon when one serves the store, else here.
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, json: { type: 'boolean' } },
  positionals: true
}, async (ctx, values, positionals) => {
  const [sub, name] = positionals
  if (sub === 'revoke') {
    if (name == null || positionals.length !== 2) throw new UsageError('usage: space devices revoke NAME')
    const s = await openSession(values, { offline: true })
    let r: DeviceListing & { after: number }
    try {
      r = await s.call('devices.revoke', { name }) as typeof r
    } finally {
      s.close()
    }
    if (values.json === true) out(ctx, JSON.stringify(r))
    else out(ctx, `revoked "${r.name}" (${r.key}): its entries up to ${r.after} stay, the hub refuses its writes and your devices ignore what it writes next`)
    return ExitCode.OK
  }
  if (sub != null) throw new UsageError('usage: space devices [--json] | space devices revoke NAME')
  const s = await openSession(values, { offline: true })
  let r: { devices: DeviceListing[] }
  try {
    r = await s.call('devices') as typeof r
  } finally {
    s.close()
  }
  if (values.json === true) { out(ctx, JSON.stringify(r)); return ExitCode.OK }
  const width = Math.max(4, ...r.devices.map(d => d.name.length))
  out(ctx, `  ${'NAME'.padEnd(width)}  KEY       ISSUED            ENTRY  STATE`)
  for (const d of r.devices) {
    const state = d.revoked == null ? 'active' : `revoked ${day(d.revoked.at)}, entries after ${d.revoked.after} refused`
    out(ctx, `${d.thisDevice ? '*' : ' '} ${d.name.padEnd(width)}  ${d.key}  ${day(d.issuedAt)}  ${String(d.seq).padStart(5)}  ${state}`)
  }
  return ExitCode.OK
})
