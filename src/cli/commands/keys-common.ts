// Shared plumbing for the identity/vault commands: flag parsing with --help, reading secrets
// (hidden on a terminal, one line at a time from a pipe), keystore choice, error -> exit code.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { ReadStream } from 'node:tty'
import { KeysError, type KeysErrorCode } from '../../keys/errors.js'
import { KEYSTORE_PASSPHRASE_ENV, type KeystoreChoice } from '../../keys/account.js'
import { probeKeychain } from '../../keys/keystore.js'
import type { Command, CommandContext } from '../command.js'
import { ExitCode } from '../exit-codes.js'

const EXIT_FOR: Record<KeysErrorCode, number> = {
  ERR_NO_IDENTITY: ExitCode.NO_IDENTITY,
  ERR_IDENTITY_EXISTS: ExitCode.IDENTITY_EXISTS,
  ERR_BAD_MNEMONIC: ExitCode.BAD_MNEMONIC,
  ERR_WRONG_PASSPHRASE: ExitCode.WRONG_PASSPHRASE,
  ERR_KEYCHAIN_UNAVAILABLE: ExitCode.KEYCHAIN_UNAVAILABLE,
  ERR_KEYSTORE_LOCKED: ExitCode.KEYSTORE_LOCKED,
  ERR_KEYSTORE_CORRUPT: ExitCode.KEYSTORE_CORRUPT,
  ERR_BAD_FORMAT: ExitCode.BAD_FORMAT,
  ERR_VAULT_TAMPERED: ExitCode.VAULT_TAMPERED,
  ERR_NOT_FOUND: ExitCode.NOT_FOUND,
  ERR_HUB_UNAVAILABLE: ExitCode.UNAVAILABLE,
  ERR_HUB_REFUSED: ExitCode.REFUSED,
  ERR_RATE_LIMITED: ExitCode.RATE_LIMITED,
  ERR_USERNAME_TAKEN: ExitCode.USERNAME_TAKEN,
  ERR_BAD_USERNAME: ExitCode.USAGE,
  ERR_WEAK_KDF: ExitCode.WEAK_KDF,
  ERR_KDF_CHANGED: ExitCode.KDF_CHANGED,
  ERR_INSECURE_HUB: ExitCode.INSECURE_HUB,
  ERR_FILE_EXISTS: ExitCode.FILE_EXISTS
}

/** A user mistake on the command line; printed with the usage hint. */
export class UsageError extends Error {}

const say = (s: NodeJS.WritableStream, line: string): void => { s.write(line + '\n') }
export const out = (ctx: CommandContext, line = ''): void => say(ctx.stdout, line)
export const err = (ctx: CommandContext, line: string): void => say(ctx.stderr, line)

type Options = NonNullable<ParseArgsConfig['options']>

/**
 * Wraps a command body: parses flags (every command gets --help and --config-dir), prints
 * usage on --help, and turns thrown errors into one line on stderr plus a named exit code.
 */
export function defineCommand<O extends Options> (
  spec: { name: string, summary: string, usage: string, options: O, positionals?: boolean },
  body: (ctx: CommandContext, values: Record<string, string | boolean | undefined>, positionals: string[]) => Promise<number>
): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    usage: spec.usage,
    async run (ctx) {
      try {
        const { values, positionals } = parseArgs({
          args: ctx.argv,
          options: { help: { type: 'boolean', short: 'h' }, 'config-dir': { type: 'string' }, ...spec.options },
          allowPositionals: spec.positionals === true,
          strict: true
        })
        const flags = values as Record<string, string | boolean | undefined>
        if (flags.help === true) {
          out(ctx, spec.usage)
          return ExitCode.OK
        }
        return await body(ctx, flags, positionals)
      } catch (e) {
        return report(ctx, spec.name, e)
      }
    }
  }
}

export const exitCodeFor = (e: KeysError): number => EXIT_FOR[e.code] ?? ExitCode.FAILURE

function report (ctx: CommandContext, name: string, e: unknown): number {
  if (e instanceof KeysError) {
    err(ctx, `space ${name}: ${e.message}`)
    return exitCodeFor(e)
  }
  const code = (e as { code?: string }).code
  if (e instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
    err(ctx, `space ${name}: ${(e as Error).message} (see "space ${name} --help")`)
    return ExitCode.USAGE
  }
  if (e instanceof PromptAborted) {
    err(ctx, `space ${name}: aborted`)
    return ExitCode.FAILURE
  }
  err(ctx, `space ${name}: ${e instanceof Error ? e.message : String(e)}`)
  return ExitCode.FAILURE
}

export class PromptAborted extends Error {}

const isTTY = (s: NodeJS.ReadableStream): s is ReadStream => (s as ReadStream).isTTY === true

/** Reads stdin one line at a time without losing what follows; the stream stays usable. */
class LineReader {
  private buf = ''
  private ended = false
  constructor (private readonly stream: NodeJS.ReadableStream) {}

  private async more (): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        this.stream.off('data', onData)
        this.stream.off('end', onEnd)
        this.stream.pause()
        resolve()
      }
      const onData = (d: Buffer | string): void => { this.buf += d.toString(); done() }
      const onEnd = (): void => { this.ended = true; done() }
      this.stream.on('data', onData)
      this.stream.on('end', onEnd)
      this.stream.resume()
    })
  }

  async line (): Promise<string | null> {
    while (!this.buf.includes('\n') && !this.ended) await this.more()
    const i = this.buf.indexOf('\n')
    if (i < 0) {
      const rest = this.buf
      this.buf = ''
      return rest === '' ? null : rest
    }
    const l = this.buf.slice(0, i)
    this.buf = this.buf.slice(i + 1)
    return l.replace(/\r$/, '')
  }

  async rest (): Promise<string> {
    while (!this.ended) await this.more()
    const r = this.buf
    this.buf = ''
    return r
  }
}

const readers = new WeakMap<NodeJS.ReadableStream, LineReader>()
function reader (s: NodeJS.ReadableStream): LineReader {
  let r = readers.get(s)
  if (r === undefined) { r = new LineReader(s); readers.set(s, r) }
  return r
}

/** Reads a line from the terminal without echo. */
async function hiddenLine (ctx: CommandContext, prompt: string): Promise<string> {
  const tty = ctx.stdin as ReadStream
  ctx.stderr.write(prompt)
  tty.setRawMode(true)
  tty.resume()
  try {
    return await new Promise<string>((resolve, reject) => {
      let s = ''
      const onData = (d: Buffer): void => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') { tty.off('data', onData); resolve(s); return }
          if (ch === '\u0003' || ch === '\u0004') { tty.off('data', onData); reject(new PromptAborted()); return }
          if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1)
          else s += ch
        }
      }
      tty.on('data', onData)
    })
  } finally {
    tty.setRawMode(false)
    tty.pause()
    ctx.stderr.write('\n')
  }
}

/** One secret line: hidden prompt on a terminal, else the next line of stdin. */
export async function readSecretLine (ctx: CommandContext, prompt: string): Promise<string> {
  if (isTTY(ctx.stdin)) return await hiddenLine(ctx, prompt)
  const l = await reader(ctx.stdin).line()
  if (l === null) throw new UsageError('expected a line on stdin, got end of input')
  return l
}

/** All of stdin (for a mnemonic piped one word per line or all on one). */
export async function readAllStdin (ctx: CommandContext): Promise<string> {
  return await reader(ctx.stdin).rest()
}

export const stdinIsTerminal = (ctx: CommandContext): boolean => isTTY(ctx.stdin)

export const MIN_PASSPHRASE = 8

/**
 * A passphrase for backup: `--passphrase-stdin` reads one line; a terminal asks twice; anything
 * else is refused rather than hang on a pipe nobody writes to.
 */
export async function readPassphrase (ctx: CommandContext, fromStdin: boolean, opts: { confirm: boolean, what: string }): Promise<string> {
  let p: string
  if (fromStdin) {
    p = await readSecretLine(ctx, '')
  } else if (isTTY(ctx.stdin)) {
    p = await hiddenLine(ctx, `${opts.what}: `)
    if (opts.confirm) {
      const again = await hiddenLine(ctx, `Repeat ${opts.what.toLowerCase()}: `)
      if (again !== p) throw new UsageError('the two passphrases differ')
    }
  } else {
    throw new UsageError('stdin is not a terminal: pass --passphrase-stdin to read the passphrase from it')
  }
  if (opts.confirm && p.length < MIN_PASSPHRASE) throw new UsageError(`the passphrase must have at least ${MIN_PASSPHRASE} characters`)
  if (p === '') throw new UsageError('empty passphrase')
  return p
}

export const KEYSTORE_FLAGS = {
  keystore: { type: 'string' },
  'insecure-no-passphrase': { type: 'boolean' }
} as const

/**
 * Picks where a new identity's secret goes: the OS keychain when it answers (or when asked
 * for), else the encrypted file keystore with a passphrase from SPACE_KEYSTORE_PASSPHRASE or
 * the terminal, or none with --insecure-no-passphrase (said loudly).
 */
export async function chooseKeystore (ctx: CommandContext, values: Record<string, string | boolean | undefined>): Promise<KeystoreChoice> {
  const want = (values.keystore as string | undefined) ?? 'auto'
  if (!['auto', 'keychain', 'file'].includes(want)) throw new UsageError(`--keystore must be auto, keychain or file, not "${want}"`)
  const insecure = values['insecure-no-passphrase'] === true
  if (want !== 'file' && !insecure) {
    const probe = await probeKeychain()
    if (probe.ok) return { backend: 'keychain' }
    if (want === 'keychain') throw new KeysError('ERR_KEYCHAIN_UNAVAILABLE', probe.reason)
    err(ctx, `${probe.reason}; using the encrypted file keystore instead`)
  }
  if (insecure) {
    err(ctx, 'WARNING: --insecure-no-passphrase: the keystore file is sealed WITHOUT a passphrase. Anyone who can read')
    err(ctx, 'WARNING: your config directory can take your identity and open your drive. Use only on a locked-down headless machine.')
    return { backend: 'file', passphrase: null }
  }
  const fromEnv = ctx.env[KEYSTORE_PASSPHRASE_ENV]
  if (fromEnv !== undefined && fromEnv !== '') return { backend: 'file', passphrase: fromEnv }
  if (!isTTY(ctx.stdin)) {
    throw new KeysError('ERR_KEYSTORE_LOCKED', `the file keystore needs a passphrase: run in a terminal, set ${KEYSTORE_PASSPHRASE_ENV}, or pass --insecure-no-passphrase`)
  }
  return { backend: 'file', passphrase: await readPassphrase(ctx, false, { confirm: true, what: 'Keystore passphrase' }) }
}

/** The passphrase that unlocks an existing file keystore, if one may be needed. */
export async function keystorePassphrase (ctx: CommandContext, protection: 'passphrase' | 'none' | undefined): Promise<string | undefined> {
  if (protection !== 'passphrase') return undefined
  const fromEnv = ctx.env[KEYSTORE_PASSPHRASE_ENV]
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  if (isTTY(ctx.stdin)) return await hiddenLine(ctx, 'Keystore passphrase: ')
  return undefined // openAccount then says precisely that the keystore is locked
}
