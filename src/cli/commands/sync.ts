// `space sync hub URL`: keep this drive in step with the identity's other devices through a hub
// (registers the identity there if needed and writes <config dir>/sync.json; the next mount
// syncs). `space sync status`: what sync is doing, from the daemon. docs/sync.md.
import { ExitCode } from '../exit-codes.js'
import { out, err, UsageError } from './keys-common.js'
import { clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, openSession } from '../session.js'
import { resolveConfigDir } from '../../keys/paths.js'
import { openAccount, KEYSTORE_PASSPHRASE_ENV, requireIdentityConfig } from '../../keys/account.js'
import { VaultClient } from '../../keys/vault-client.js'
import { USERNAME_RE } from '../../keys/vault-protocol.js'
import { defaultDeviceName, readSyncConfig, writeSyncConfig } from '../../sync/device.js'
import type { FullSyncStatus as Status } from '../../sync/attach.js'
import type { CommandContext } from '../command.js'

const mb = (n: number): string => n < 1024 * 1024 ? `${Math.round(n / 1024)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`

export interface HubSetup { deviceName?: string, username?: string, insecureHttp?: boolean, onDemand?: boolean, passphrase?: string }

/**
 * Registers the identity on the hub at `url` (if it is not yet) and writes sync.json: the next
 * mount syncs. Shared by \`sync hub\` and the --sync-hub of \`init\` and \`recover-keys\`.
 */
export async function setupHub (ctx: CommandContext, configDir: string, url: string, o: HubSetup): Promise<void> {
  const config = await requireIdentityConfig(configDir)
  const account = await openAccount(configDir, { passphrase: o.passphrase ?? process.env[KEYSTORE_PASSPHRASE_ENV] })
  const fp = config.identity.fingerprint.replace(/-/g, '')
  const username = o.username ?? config.vault?.username ?? `space-${fp}`
  if (!USERNAME_RE.test(username)) throw new UsageError(`--username must match ${USERNAME_RE.source}`)
  const insecureHttp = o.insecureHttp === true
  const userId = await new VaultClient(url, { insecureHttp }).register(username, account.identity.signing)
  const known = await readSyncConfig(configDir)
  const deviceName = o.deviceName ?? known?.deviceName ?? defaultDeviceName()
  const download = o.onDemand === true ? 'on-demand' as const : undefined
  await writeSyncConfig(configDir, { hub: url, userId, deviceName, ...(insecureHttp ? { insecureHttp } : {}), ...(download != null ? { download } : {}) })
  out(ctx, `sync: ${url} as ${deviceName} (user ${username})${download != null ? ', files on demand' : ''}; takes effect at the next mount`)
}

const ago = (t: number | null): string => t == null ? 'never' : `${Math.max(0, Math.round((Date.now() - t) / 1000))} s ago`

export const command = clientCommand({
  name: 'sync',
  summary: 'sync this drive with your other devices through a hub: sync hub URL, sync status',
  usage: `usage: space sync hub URL [--device-name NAME] [--username NAME] [--on-demand] [--insecure-http]
       space sync status [--json] [--socket PATH] [--token TOKEN]

hub URL      Syncs this drive through the hub at URL from the next mount on: every commit is
             pushed (blocks first, then this device's signed log entry), and the other devices'
             entries are merged in as they arrive. Registers the identity on the hub when it is
             not yet (under --username, default the name of a key backup there, else one made
             from the identity's fingerprint). --device-name: how other devices name this one
             (default the hostname). --on-demand: files stay on the hub until read (default:
             the whole drive downloads in the background). Plain http:// only to loopback
             unless --insecure-http.
status       Per device: the newest entry seen (and revocations); pending up (entries, files,
             bytes not yet on the hub) and down (files and bytes of the drive not here yet,
             download progress); last contact with the hub; the last error. --json: one object.
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, json: { type: 'boolean' }, 'device-name': { type: 'string' }, username: { type: 'string' }, 'insecure-http': { type: 'boolean' }, 'on-demand': { type: 'boolean' } },
  positionals: true
}, async (ctx, values, positionals) => {
  const [sub, url] = positionals
  if (sub === 'hub') {
    if (url == null || positionals.length !== 2) throw new UsageError('usage: space sync hub URL')
    const configDir = resolveConfigDir(values['config-dir'] as string | undefined)
    await setupHub(ctx, configDir, url, {
      deviceName: values['device-name'] as string | undefined,
      username: values.username as string | undefined,
      insecureHttp: values['insecure-http'] === true,
      onDemand: values['on-demand'] === true
    })
    return ExitCode.OK
  }
  if (sub === 'status') {
    if (positionals.length !== 1) throw new UsageError('usage: space sync status')
    const s = await openSession(values, { offline: true })
    let r: { sync: Status | null }
    try {
      r = await s.call('sync.status') as { sync: Status | null }
    } finally {
      s.close()
    }
    if (values.json === true) { out(ctx, JSON.stringify(r.sync)); return ExitCode.OK }
    const st = r.sync
    if (st == null) { out(ctx, 'sync: not running (no hub configured: "space sync hub URL", or the drive is not mounted)'); return ExitCode.OK }
    out(ctx, `hub          ${st.hub}`)
    out(ctx, `this device  ${st.device}: entry ${st.lastEntry.seq}; pushed ${st.pushed.entries} entries, ${st.pushed.blocks} blocks, ${mb(st.pushed.bytes)} since start`)
    for (const l of st.logs) out(ctx, `device       ${l.name ?? l.device.slice(0, 16)} (${l.device.slice(0, 8)}): entry ${l.seq}${l.revokedAfter != null ? `, revoked after entry ${l.revokedAfter}` : ''}`)
    const u = st.uploading
    out(ctx, `up           ${st.up.entries} entries, ${st.up.files} files, ${mb(st.up.bytes)} not yet on the hub${u != null ? `; uploading entry ${u.seq}: ${u.blocks} of ${u.totalBlocks} blocks (${mb(u.bytes)})` : ''}`)
    const d = st.down
    const pct = d.progress.total > 0 ? ` (${Math.floor(100 * d.progress.done / d.progress.total)}% of ${mb(d.progress.total)})` : ''
    out(ctx, `down         ${d.pending.files} files, ${mb(d.pending.bytes)} not here yet; ${d.mode === 'on-demand' ? 'files on demand' : d.state}${d.state === 'downloading' ? pct : ''}`)
    out(ctx, `fetched      ${st.fetched.blocks} blocks, ${mb(st.fetched.bytes)} from the hub since start`)
    out(ctx, `last contact ${ago(st.lastContact)}`)
    if (st.lastError != null) err(ctx, `last error   ${st.lastError}`)
    if (d.lastError != null) err(ctx, `download     ${d.lastError}`)
    for (const r of st.refused ?? []) err(ctx, `refused      ${r.device} entry ${r.seq} (${r.code}): ${r.message}`)
    return ExitCode.OK
  }
  throw new UsageError('usage: space sync hub URL | space sync status')
})
