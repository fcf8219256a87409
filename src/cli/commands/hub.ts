// `space hub`: runs the backup node's HTTP API in the foreground until SIGINT/SIGTERM.
import { join } from 'node:path'
import { resolveDataDir } from '../../keys/paths.js'
import { ExitCode } from '../exit-codes.js'
import { defineCommand, err, out, UsageError } from './keys-common.js'

export const command = defineCommand({
  name: 'hub',
  summary: 'run the backup node (vault and replication API) in the foreground',
  usage: `usage: space hub [--host ADDR] [--port N] [--data-dir DIR] [--trusted-proxy ADDR,...] [--max-connections N]

Serves the key-backup vault API and the replication API (blocks, IPFS Trustless Gateway;
docs/hub.md) over HTTP until interrupted.
  --host ADDR     bind address (default 127.0.0.1; put TLS in front for anything public)
  --port N        TCP port (default 7470; 0 picks a free one)
  --data-dir DIR  where the hub's databases and blocks live (default: <space data dir>/hub)
  --trusted-proxy ADDR,...  reverse proxies whose X-Forwarded-For names the client (default:
                  none; the socket's address is the client)
  --max-connections N  open connections at once (default 1024)
Prints "space hub listening on <url>" once it accepts connections.`,
  options: { host: { type: 'string' }, port: { type: 'string' }, 'data-dir': { type: 'string' }, 'trusted-proxy': { type: 'string', multiple: true }, 'max-connections': { type: 'string' } }
}, async (ctx, values) => {
  const port = Number(values.port ?? '7470')
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`bad --port ${String(values.port)}`)
  const maxConnections = values['max-connections'] === undefined ? undefined : Number(values['max-connections'])
  if (maxConnections !== undefined && (!Number.isInteger(maxConnections) || maxConnections < 1)) throw new UsageError(`bad --max-connections ${String(values['max-connections'])}`)
  const trusted = ((values['trusted-proxy'] ?? []) as unknown as string[]).flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
  const dataDir = values['data-dir'] !== undefined ? resolveDataDir(values['data-dir'] as string) : join(resolveDataDir(), 'hub')
  // Loaded here, not at the top: node:sqlite prints an experimental warning on import.
  const { startHub } = await import('../../hub/server.js')
  const hub = await startHub({ dataDir, host: (values.host as string | undefined) ?? '127.0.0.1', port, trustedProxies: trusted, ...(maxConnections !== undefined ? { maxConnections } : {}), log: line => err(ctx, line) })
  // Handlers before the line: a signal sent the moment it is read must close the hub, not kill it.
  let stopped!: () => void
  const signalled = new Promise<void>(resolve => { stopped = resolve })
  const stop = (): void => { process.off('SIGINT', stop); process.off('SIGTERM', stop); stopped() }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  out(ctx, `space hub listening on ${hub.url} (data: ${dataDir})`)
  await signalled
  await hub.close()
  err(ctx, 'space hub: stopped')
  return ExitCode.OK
})
