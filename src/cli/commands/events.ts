// space events: streams file changes (created, updated, removed, renamed) from the daemon until
// Ctrl-C, --count events, or the daemon goes away. Method events.subscribe, scope events:read.
import type { ChangeEvent } from '../../ctl/protocol.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { out, UsageError } from './keys-common.js'
import { clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, connect } from '../session.js'

/** A sync event (docs/api.md, events.subscribe) as one line. */
function syncLine (s: Record<string, any>): string {
  switch (s.event) {
    case 'pushed': return `pushed ${s.entries} entries, ${s.blocks} blocks, ${s.bytes} bytes`
    case 'merged': return `merged entry ${s.seq} of ${s.device}: ${s.changes} changes, ${s.conflicts} conflicts${s.copies?.length > 0 ? ` (${s.copies.join(', ')})` : ''}`
    case 'refused': return `refused entry ${s.seq} of ${s.device}: ${s.code} ${s.message}`
    case 'upload': return `uploading entry ${s.seq}: ${s.blocks} of ${s.totalBlocks} blocks, ${s.bytes} bytes`
    case 'download': return `download: ${s.files} files, ${s.bytes} bytes to go (${s.done} of ${s.total})`
    default: return `${String(s.event)}${s.message != null ? `: ${s.message}` : ''}`
  }
}

export const command = clientCommand({
  name: 'events',
  summary: 'stream file changes in the drive as they happen',
  usage: `usage: space events [--json] [--count N] [--data-dir DIR] [--config-dir DIR] [--socket PATH] [--token TOKEN]

Prints one line per change: time, kind (created, updated, removed, renamed; "overflow" when
the daemon had to drop events, so rescan; "sync": what sync did: pushed, upload, merged,
refused, error, download), path, and for renames the new path. Writes to one
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
      const what = e.kind === 'sync' ? syncLine(e.sync ?? {}) : `${e.path}${e.to !== undefined ? ` -> ${e.to}` : ''}`
      out(ctx, values.json === true ? JSON.stringify(e) : `${new Date(e.time).toISOString()}  ${e.kind.padEnd(8)}  ${what}`)
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
