// How a CLI command reaches the daemon: which socket (--socket, SPACE_SOCKET, else derived from
// the data dir), which token (--token, SPACE_TOKEN, else the master token of the config dir),
// and what a control error means as an exit code. Commands that also work with no daemon
// (status, log, whoami, key backup) run the very same method handlers in-process instead.
import { stat } from 'node:fs/promises'
import type { ParseArgsConfig } from 'node:util'
import { CtlClient } from '../ctl/client.js'
import { CtlError } from '../ctl/errors.js'
import { socketPath } from '../ctl/paths.js'
import { buildHandlers } from '../ctl/methods.js'
import type { MethodName, ProgressParams } from '../ctl/protocol.js'
import { readMasterToken } from '../ctl/tokens.js'
import { offlineApi } from '../service.js'
import { KeysError, type KeysErrorCode } from '../keys/errors.js'
import { resolveConfigDir, resolveDataDir } from '../keys/paths.js'
import type { Command, CommandContext } from './command.js'
import { exitCodeOf } from './errors.js'
import { ExitCode } from './exit-codes.js'
import { defineCommand, exitCodeFor } from './commands/keys-common.js'
import { progressReporter } from './progress.js'

export const CLIENT_OPTIONS = {
  socket: { type: 'string' },
  'data-dir': { type: 'string' },
  token: { type: 'string' }
} as const satisfies NonNullable<ParseArgsConfig['options']>

export const CLIENT_USAGE = `  --socket PATH      the control socket (default: SPACE_SOCKET, else derived from the data dir)
  --data-dir DIR     the store whose daemon to reach (default $XDG_DATA_HOME/space)
  --token TOKEN      an app token (default: SPACE_TOKEN, else the master token of the config dir)`

type Values = Record<string, string | boolean | undefined>

export interface Target { socket: string, ownSocketDir: boolean, configDir: string, dataDir: string }

export function target (values: Values, env: NodeJS.ProcessEnv = process.env): Target {
  const dataDir = resolveDataDir(values['data-dir'] as string | undefined)
  const flag = values.socket as string | undefined
  const own = (flag === undefined || flag === '') && (env.SPACE_SOCKET === undefined || env.SPACE_SOCKET === '')
  return {
    socket: socketPath({ flag, dataDir, defaultDataDir: resolveDataDir(), env }),
    ownSocketDir: own,
    configDir: resolveConfigDir(values['config-dir'] as string | undefined),
    dataDir
  }
}

/** Connects and says hello. ERR_NO_DAEMON before any keychain access when no socket exists. */
export async function connect (values: Values, env: NodeJS.ProcessEnv = process.env): Promise<CtlClient> {
  const t = target(values, env)
  await stat(t.socket).catch(() => { throw new CtlError('ERR_NO_DAEMON', `no daemon is running (no socket ${t.socket})`, { socket: t.socket }) })
  let token = (values.token as string | undefined) ?? env.SPACE_TOKEN
  if (token === undefined || token === '') {
    token = await readMasterToken(t.configDir).catch(() => null) ?? undefined
    if (token === undefined) throw new CtlError('ERR_TOKEN_MISSING', `no app token: pass --token or SPACE_TOKEN, or run "space init" to create the master token in ${t.configDir}`)
  }
  return await CtlClient.connect(t.socket, token)
}

export interface Session {
  readonly remote: boolean
  call: (method: MethodName, params?: Record<string, unknown>, opts?: { onProgress?: (p: ProgressParams) => void }) => Promise<unknown>
  close: () => void
}

/** A daemon if one answers; else, with `offline`, the same handlers run here on the local store. */
export async function openSession (values: Values, opts: { offline: boolean }): Promise<Session> {
  try {
    const c = await connect(values)
    return { remote: true, call: async (m, p, o) => await c.call(m, p, o), close: () => c.close() }
  } catch (err) {
    if (!opts.offline || !(err instanceof CtlError) || err.code !== 'ERR_NO_DAEMON') throw err
  }
  const t = target(values)
  const handlers = buildHandlers(offlineApi(t.configDir, t.dataDir))
  const grant = { id: 'local', name: 'local', allow: ['*'], master: true }
  return {
    remote: false,
    call: async (m, p = {}, o = {}) => {
      if (m === 'hello' || m === 'events.subscribe' || m === 'events.unsubscribe') throw new CtlError('ERR_NO_DAEMON', `"${m}" needs the daemon`)
      return await handlers[m](p, { id: null, grant, progress: (stage, done, total) => o.onProgress?.({ id: null, stage, done, total }) })
    },
    close: () => {}
  }
}

/** Calls with a progress display on stderr (a bar on a terminal, lines elsewhere). */
export async function callWithProgress (ctx: CommandContext, s: Session, method: MethodName, params: Record<string, unknown> = {}): Promise<unknown> {
  const bar = progressReporter(ctx.stderr)
  try {
    return await s.call(method, params, { onProgress: p => bar.update(p) })
  } finally {
    bar.end()
  }
}

const BY_CTL: Partial<Record<string, number>> = {
  ERR_NO_DAEMON: ExitCode.NO_DAEMON,
  ERR_SOCKET_IN_USE: ExitCode.SOCKET_IN_USE,
  ERR_SOCKET_UNSAFE: ExitCode.SOCKET_UNSAFE,
  ERR_PROTOCOL_VERSION: ExitCode.PROTOCOL_MISMATCH,
  ERR_TOKEN_MISSING: ExitCode.TOKEN_MISSING,
  ERR_TOKEN_INVALID: ExitCode.TOKEN_INVALID,
  ERR_TOKEN_REVOKED: ExitCode.TOKEN_REVOKED,
  ERR_TOKEN_EXPIRED: ExitCode.TOKEN_EXPIRED,
  ERR_FORBIDDEN: ExitCode.FORBIDDEN,
  ERR_TOKEN_NOT_FOUND: ExitCode.TOKEN_NOT_FOUND,
  ERR_TOKEN_NAME_TAKEN: ExitCode.TOKEN_NAME_TAKEN,
  ERR_ALREADY_MOUNTED: ExitCode.ALREADY_MOUNTED,
  ERR_NOT_MOUNTED: ExitCode.NOT_MOUNTED,
  ERR_BUSY: ExitCode.DAEMON_BUSY,
  ERR_TIMEOUT: ExitCode.TIMEOUT,
  ERR_INVALID_PARAMS: ExitCode.USAGE
}

/** The exit code of any error a client command can meet. */
export function exitCodeOfAny (err: unknown): number {
  if (err instanceof KeysError) return exitCodeFor(err)
  if (!(err instanceof CtlError)) return exitCodeOf(err)
  const cause = typeof err.data.cause === 'string' ? err.data.cause : ''
  if (err.code === 'ERR_KEYS') return exitCodeFor(new KeysError(cause as KeysErrorCode, err.message))
  if (err.code === 'ERR_DRIVE') return exitCodeOf({ code: cause })
  return BY_CTL[err.code] ?? ExitCode.DAEMON_ERROR
}

/**
 * A command that talks to the daemon: keys-common's flag parsing and --help, plus control and
 * drive errors printed as one line and mapped to their exit codes.
 */
export function clientCommand (
  spec: Parameters<typeof defineCommand>[0],
  body: (ctx: CommandContext, values: Values, positionals: string[]) => Promise<number>
): Command {
  return defineCommand(spec, async (ctx, values, positionals) => {
    try {
      return await body(ctx, values, positionals)
    } catch (err) {
      if (err instanceof CtlError || (err as DriveErrorLike | null)?.name === 'DriveError') {
        ctx.stderr.write(`space ${spec.name}: ${(err as Error).message}\n`)
        return exitCodeOfAny(err)
      }
      throw err
    }
  })
}

interface DriveErrorLike { name?: string }
