// space token create|list|revoke: app tokens for other local programs, managed by the daemon
// (method tokens.*, scope tokens:admin). A new token's secret is printed once and never again.
import type { TokenInfo } from '../../ctl/protocol.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { out, UsageError } from './keys-common.js'
import { clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, connect } from '../session.js'

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }

/** "90s", "15m", "12h", "30d", "2w" -> seconds. */
export function parseDuration (s: string): number {
  const m = /^(\d{1,9})([smhdw])$/.exec(s.trim())
  if (m === null) throw new UsageError(`bad duration "${s}": use a number and s, m, h, d or w (e.g. 30d)`)
  const sec = Number(m[1]) * UNITS[m[2]]
  if (sec < 1) throw new UsageError('a duration must be at least 1s')
  return sec
}

function describe (t: TokenInfo): string {
  const state = t.revokedAt !== null ? `revoked ${t.revokedAt}` : t.expiresAt !== null && Date.parse(t.expiresAt) <= Date.now() ? `expired ${t.expiresAt}` : t.expiresAt !== null ? `expires ${t.expiresAt}` : 'no expiry'
  return `${t.id}  ${t.name.padEnd(16)}  ${t.allow.join(',').padEnd(28)}  ${state}`
}

export const command = clientCommand({
  name: 'token',
  summary: 'create, list and revoke app tokens for other programs',
  usage: `usage: space token create --name NAME --allow SCOPES|METHODS [--expires DURATION] [--json]
       space token list [--json]
       space token revoke ID|NAME
  (each also takes --socket PATH, --data-dir DIR, --config-dir DIR, --token TOKEN)

create prints the new token once (only its hash is kept); give it to the program, which
passes it in "hello" (docs/api.md). --allow is a comma-separated list of scopes
(status:read identity:read log:read events:read mount:write keys:admin tokens:admin) and/or
method names (e.g. status,events.subscribe). A token can grant only what it holds itself.
--expires takes 90s, 15m, 12h, 30d, 2w. Revoked tokens stay listed, so errors can name them.
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, name: { type: 'string' }, allow: { type: 'string' }, expires: { type: 'string' }, json: { type: 'boolean' } },
  positionals: true
}, async (ctx, values, positionals) => {
  const [sub, ...rest] = positionals
  if (sub === undefined || !['create', 'list', 'revoke'].includes(sub)) throw new UsageError('expected create, list or revoke')
  if (sub !== 'revoke' && rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`)
  if (sub === 'revoke' && rest.length !== 1) throw new UsageError('expected the ID or NAME of the token to revoke')
  let params: Record<string, unknown> = {}
  if (sub === 'create') {
    if (typeof values.name !== 'string') throw new UsageError('pass --name NAME')
    if (typeof values.allow !== 'string') throw new UsageError('pass --allow SCOPES|METHODS (comma-separated)')
    params = { name: values.name, allow: values.allow.split(',').map(s => s.trim()).filter(s => s !== '') }
    if (typeof values.expires === 'string') params.expiresIn = parseDuration(values.expires)
  }
  const c = await connect(values)
  try {
    if (sub === 'create') {
      const r = await c.call('tokens.create', params) as TokenInfo & { token: string }
      if (values.json === true) { out(ctx, JSON.stringify(r)); return EXIT.OK }
      out(ctx, r.token)
      ctx.stderr.write(`token "${r.name}" (${r.id}) allows ${r.allow.join(', ')}${r.expiresAt !== null ? `, expires ${r.expiresAt}` : ''}. It is shown this once.\n`)
      return EXIT.OK
    }
    if (sub === 'list') {
      const { tokens } = await c.call('tokens.list') as { tokens: TokenInfo[] }
      if (values.json === true) { out(ctx, JSON.stringify(tokens)); return EXIT.OK }
      for (const t of tokens) out(ctx, describe(t))
      return EXIT.OK
    }
    const r = await c.call('tokens.revoke', { token: rest[0] }) as TokenInfo
    if (values.json === true) out(ctx, JSON.stringify(r))
    else out(ctx, `revoked ${r.id} (${r.name})`)
    return EXIT.OK
  } finally {
    c.close()
  }
})
