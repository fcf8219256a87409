// Test harness: runs the real `space mount` in a child process on fresh temp directories, waits
// for its readiness line (no sleeps), and always unmounts and stops it, also when a test fails.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, readFileSync, readSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
export { bindingName } from '../../src/fs/fuse/select.js'
export const CLI = join(ROOT, 'dist/src/cli/main.js')

export interface Dirs { base: string, mnt: string, data: string, config: string }

export function tempDirs (prefix = 'space-test-', base?: string): Dirs {
  const b = mkdtempSync(join(base ?? process.env.SPACE_TEST_TMP ?? tmpdir(), prefix))
  const d = { base: b, mnt: join(b, 'mnt'), data: join(b, 'data'), config: join(b, 'config') }
  mkdirSync(d.mnt)
  return d
}

export interface RunResult { status: number | null, stdout: string, stderr: string }

/** Runs the `space` CLI to completion. */
export function space (args: string[], opts: { input?: string, env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { input: opts.input, encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: 300_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

export function isMounted (mnt: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some(l => l.split(' ')[1] === mnt)
}

export class Mount {
  readonly proc: ChildProcess
  stdout = ''
  stderr = ''
  private exited: Promise<number | null>

  private constructor (readonly dirs: Dirs, extra: string[]) {
    this.proc = spawn(process.execPath, [CLI, 'mount', dirs.mnt, '--data-dir', dirs.data, '--config-dir', dirs.config, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc.stdout!.setEncoding('utf8').on('data', (s: string) => { this.stdout += s })
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr += s })
    this.exited = new Promise(resolve => this.proc.once('exit', (code, signal) => {
      // A daemon killed by a signal (a crash in native code) prints nothing itself: say so.
      if (signal != null) this.stderr += `[test] daemon ${this.proc.pid} ended by ${signal}\n`
      resolve(code)
    }))
  }

  get mnt (): string { return this.dirs.mnt }
  get pid (): number { return this.proc.pid! }
  path (...p: string[]): string { return join(this.dirs.mnt, ...p) }

  /** Starts a mount and resolves once it printed its readiness line. */
  static async start (dirs: Dirs, extra: string[] = []): Promise<Mount> {
    const m = new Mount(dirs, extra)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mount did not come up: ${m.stderr}`)), 30_000)
      const check = (): void => {
        if (m.stdout.includes('mounted ')) { clearTimeout(timer); resolve() }
      }
      m.proc.stdout!.on('data', check)
      m.exited.then(code => { clearTimeout(timer); reject(new Error(`mount exited with ${code}: ${m.stderr}`)) }, reject)
    })
    return m
  }

  /** Waits (with a deadline) until the daemon's log matches `re`; resolves to the log. */
  async waitForLog (re: RegExp, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms
    while (!re.test(this.stderr)) {
      if (Date.now() > deadline) throw new Error(`log never matched ${re}:\n${this.stderr}`)
      await new Promise(resolve => {
        const t = setTimeout(resolve, Math.max(0, deadline - Date.now()))
        this.proc.stderr!.once('data', () => { clearTimeout(t); resolve(null) })
      })
    }
    return this.stderr
  }

  /** Clean stop: SIGTERM, which commits and unmounts; resolves to the exit code. */
  async stop (): Promise<number | null> {
    if (this.proc.exitCode == null && this.proc.signalCode == null) this.proc.kill('SIGTERM')
    const code = await this.exited
    if (isMounted(this.dirs.mnt)) spawnSync('fusermount', ['-uz', this.dirs.mnt])
    return code
  }

  /** Crash: SIGKILL, leaving a stale mount behind like a real crash does. */
  async kill (): Promise<void> {
    this.proc.kill('SIGKILL')
    await this.exited
  }

  /** Unconditional cleanup for `after`/finally: stops the process and detaches the mount. */
  async cleanup (): Promise<void> {
    if (this.proc.exitCode == null && this.proc.signalCode == null) {
      this.proc.kill('SIGTERM')
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 60_000)
      await this.exited
      clearTimeout(t)
    }
    if (isMounted(this.dirs.mnt)) spawnSync('fusermount', ['-uz', this.dirs.mnt])
  }
}

/** Removes a test's temp directory, detaching anything still mounted inside it. */
export function removeDirs (dirs: Dirs): void {
  if (isMounted(dirs.mnt)) spawnSync('fusermount', ['-uz', dirs.mnt])
  rmSync(dirs.base, { recursive: true, force: true })
}

/** Runs a shell command, failing the test with its output when it exits non-zero. */
export function sh (cmd: string, opts: { cwd?: string, env?: NodeJS.ProcessEnv, allowFail?: boolean } = {}): RunResult {
  const r = spawnSync('bash', ['-c', cmd], { cwd: opts.cwd, encoding: 'utf8', env: { ...process.env, ...opts.env }, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 })
  if (r.status !== 0 && opts.allowFail !== true) throw new Error(`command failed (${r.status}): ${cmd}\n${r.stdout}\n${r.stderr}`)
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Reads `len` bytes at `pos` from an open fd (pread until done or end of file); fewer at the end. */
export function readAt (fd: number, pos: number, len: number): Buffer {
  const buf = Buffer.alloc(len)
  let n = 0
  while (n < len) {
    const r = readSync(fd, buf, n, len - n, pos + n)
    if (r === 0) break
    n += r
  }
  return buf.subarray(0, n)
}
