// Test fixtures for keys and hub: run the real CLI, start a real hub on 127.0.0.1, start a
// private D-Bus session with gnome-keyring, and scan directories for secret bytes.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'

export const MAIN = resolve('dist/src/cli/main.js')

export function tempDir (name = 'space-keys-'): string {
  return mkdtempSync(join(tmpdir(), name))
}

/** A clean environment: cheap KDF, no session bus unless given, no stray SPACE_* settings. */
export function baseEnv (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('SPACE_') || k.startsWith('DBUS_')) continue
    env[k] = v
  }
  env.SPACE_TEST_CHEAP_KDF = '1'
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

export interface RunResult { code: number, stdout: string, stderr: string }

export async function cli (args: string[], opts: { input?: string, env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: opts.env ?? baseEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += d })
  child.stderr.on('data', d => { stderr += d })
  child.stdin.end(opts.input ?? '')
  const code = await new Promise<number>(resolve => child.on('close', c => resolve(c ?? -1)))
  return { code, stdout, stderr }
}

/** The 24 words `space init` printed, in order. */
export function mnemonicFrom (stdout: string): string {
  const words = [...stdout.matchAll(/\b(\d{1,2})\. ([a-z]+)/g)].map(m => m[2])
  if (words.length !== 24) throw new Error(`expected 24 words in init output, got ${words.length}`)
  return words.join(' ')
}

export const publicKeyFrom = (stdout: string): string => /public key\s+([0-9a-f]{64})/.exec(stdout)?.[1] ?? ''

/** Waits for a line matching `re` on a child's stdout; fails if the child exits first. */
async function waitForLine (child: ChildProcess, re: RegExp, what: string): Promise<RegExpMatchArray> {
  let stderr = ''
  child.stderr?.on('data', d => { stderr += d })
  const rl = createInterface({ input: child.stdout! })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready after 20 s: ${stderr}`)), 20_000)
    rl.on('line', line => {
      const m = re.exec(line)
      if (m !== null) { clearTimeout(timer); resolve(m) }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`${what} exited with ${code}: ${stderr}`)) })
  })
}

export interface HubProcess { url: string, pid: number, dataDir: string, stop: () => Promise<void> }

/** `space hub` as a user runs it, on an ephemeral port of 127.0.0.1. */
export async function startHub (dataDir: string, env = baseEnv()): Promise<HubProcess> {
  const child = spawn(process.execPath, [MAIN, 'hub', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const m = await waitForLine(child, /listening on (http:\/\/127\.0\.0\.1:\d+)/, 'space hub')
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  return {
    url: m[1],
    pid: child.pid!,
    dataDir,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    }
  }
}

export interface SecretService { env: NodeJS.ProcessEnv, address: string, stop: () => Promise<void> }

/**
 * A private session bus with gnome-keyring's Secret Service, unlocked with an empty password
 * (the newline matters). The keyring files go to a temp HOME. Ends when we close its stdin.
 */
export async function startSecretService (): Promise<SecretService> {
  const home = tempDir('space-keyring-')
  const env = baseEnv({ HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_RUNTIME_DIR: home, XDG_CONFIG_HOME: join(home, 'config') })
  const script = 'printf "\\n" | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; echo "BUS $DBUS_SESSION_BUS_ADDRESS"; exec cat >/dev/null'
  const child = spawn('dbus-run-session', ['--', 'sh', '-c', script], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  const m = await waitForLine(child, /^BUS (.+)$/, 'dbus-run-session')
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  return {
    address: m[1],
    env: { ...env, DBUS_SESSION_BUS_ADDRESS: m[1] },
    stop: async () => {
      child.stdin!.end()
      await exited
      rmSync(home, { recursive: true, force: true })
    }
  }
}

/** Every encoding of `secret` we might plausibly find written somewhere. */
function encodings (secret: Buffer): Buffer[] {
  return [secret, Buffer.from(secret.toString('hex')), Buffer.from(secret.toString('hex').toUpperCase()),
    Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('base64url'))]
}

/** Names of the files under `dir` containing any encoding of any secret (label: file). */
export function scanForSecrets (dir: string, secrets: Record<string, Buffer>): string[] {
  const hits: string[] = []
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) { walk(p); continue }
      const data = readFileSync(p)
      for (const [label, secret] of Object.entries(secrets)) {
        if (encodings(secret).some(e => data.includes(e))) hits.push(`${label}: ${p}`)
      }
    }
  }
  walk(dir)
  return hits
}
