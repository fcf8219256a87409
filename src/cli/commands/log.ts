// space log: the committed versions of the tree, newest first, each with its root CID. Asks the
// daemon; with none running, the same method reads the store's journal directly.
import type { LogEntry } from '../../ctl/protocol.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { UsageError } from './keys-common.js'
import { clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, openSession } from '../session.js'

export const command = clientCommand({
  name: 'log',
  summary: 'list committed versions of the tree (root CIDs)',
  usage: `usage: space log [--limit N] [--json] [--data-dir DIR] [--config-dir DIR] [--socket PATH] [--token TOKEN]

Lists commits newest first: sequence number, time, root CID. Asks the daemon serving the
store; when none runs, reads the store directly (so it works while the drive is not mounted).
  --limit N          at most N commits (default 20)
  --json             one JSON object per line: {"seq","time","root"}
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, limit: { type: 'string' }, json: { type: 'boolean' } }
}, async (ctx, values) => {
  const limit = Number(values.limit ?? '20')
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new UsageError('--limit must be an integer from 1 to 100000')
  const s = await openSession(values, { offline: true })
  try {
    const { entries } = await s.call('log', { limit }) as { entries: LogEntry[] }
    for (const e of entries) {
      ctx.stdout.write(values.json === true ? JSON.stringify(e) + '\n' : `${String(e.seq).padStart(6)}  ${new Date(e.time).toISOString()}  ${e.root}\n`)
    }
    return EXIT.OK
  } finally {
    s.close()
  }
})
