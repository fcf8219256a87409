// space events: streams file changes (created, updated, removed, renamed) from the daemon until
// Ctrl-C, --count events, or the daemon goes away. Method events.subscribe, scope events:read.
import type { ChangeEvent } from '../../ctl/protocol.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { out, UsageError } from './keys-common.js'
import { clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, connect } from '../session.js'

export const command = clientCommand({
  name: 'events',
  summary: 'stream file changes in the drive as they happen',
  usage: `usage: space events [--json] [--count N] [--data-dir DIR] [--config-dir DIR] [--socket PATH] [--token TOKEN]

Prints one line per change: time, kind (created, updated, removed, renamed; "overflow" when
the daemon had to drop events, so rescan), path, and for renames the new path. Writes to one
file are coalesced (at most one "updated" per file per 200 ms window).
  --json     one JSON object per line: {"kind","path","to"?,"time"}
  --count N  exit 0 after N events
Exit 0 on Ctrl-C, after --count events, or when the daemon stops; 56 if the daemon dropped us.
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, json: { type: 'boolean' }, count: { type: 'string' } }
}, async (ctx, values) => {
  const count = values.count === undefined ? Infinity : Number(values.count)
  if (count !== Infinity && (!Number.isInteger(count) || count < 1)) throw new UsageError('--count must be a positive integer')
  const c = await connect(values)
  let seen = 0
  let dropped: string | null = null
  return await new Promise<number>((resolve, reject) => {
    const finish = (code: number): void => { process.off('SIGINT', onInt); process.off('SIGTERM', onInt); c.close(); resolve(code) }
    const onInt = (): void => finish(EXIT.OK)
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onInt)
    c.on('event', p => {
      const e = p as ChangeEvent
      out(ctx, values.json === true ? JSON.stringify(e) : `${new Date(e.time).toISOString()}  ${e.kind.padEnd(8)}  ${e.path}${e.to !== undefined ? ` -> ${e.to}` : ''}`)
      if (++seen >= count) finish(EXIT.OK)
    })
    c.on('dropped', p => { dropped = (p as { reason?: string }).reason ?? 'dropped' })
    c.call('events.subscribe').then(() => {
      // Listeners (tests, scripts) know from this line on stderr that nothing will be missed.
      ctx.stderr.write('subscribed\n')
      void c.closed().then(() => {
        if (dropped !== null) { ctx.stderr.write(`space events: the daemon dropped the subscription: ${dropped}\n`); finish(EXIT.DROPPED) } else finish(EXIT.OK)
      })
    }, err => { process.off('SIGINT', onInt); process.off('SIGTERM', onInt); c.close(); reject(err) })
  })
})
