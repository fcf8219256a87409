// space status: what is mounted where, the store's size, the identity and the daemon serving it.
// Asks the daemon; with none running, the same method runs here on the store ("not mounted").
import type { StatusResult } from '../../ctl/protocol.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { callWithProgress, clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, openSession } from '../session.js'

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`

export const command = clientCommand({
  name: 'status',
  summary: 'show whether the drive is mounted, where, the store size and the daemon',
  usage: `usage: space status [--json] [--data-dir DIR] [--config-dir DIR] [--socket PATH] [--token TOKEN]

Asks the daemon serving the store; when none runs, reads the store directly and says
"not mounted". Exit 0 either way. Scanning a large store shows progress on stderr.
  --json             one JSON object (fields in docs/cli.md)
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, json: { type: 'boolean' } }
}, async (ctx, values) => {
  const s = await openSession(values, { offline: true })
  try {
    const r = await callWithProgress(ctx, s, 'status') as StatusResult
    // Offline, "pid" is ours, not a daemon's: report none.
    const status = { ...r, daemon: s.remote, pid: s.remote ? r.pid : null, socket: s.remote ? r.socket : null }
    if (values.json === true) {
      ctx.stdout.write(JSON.stringify(status) + '\n')
      return EXIT.OK
    }
    const lines = [
      status.mounted ? `mounted at ${status.mountpoint}${status.pid !== null ? ` (pid ${status.pid})` : ''}` : 'not mounted',
      `store ${status.dataDir}: ${mib(status.storeBytes)}`,
      `identity ${status.identity === null ? 'none (run "space init")' : status.identity.fingerprint}`,
      s.remote
        ? `daemon pid ${status.pid}, version ${status.version}, socket ${status.socket}, ${status.connections} connection(s), ${status.subscribers} subscriber(s)`
        : 'daemon not running'
    ]
    ctx.stdout.write(lines.join('\n') + '\n')
    return EXIT.OK
  } finally {
    s.close()
  }
})
