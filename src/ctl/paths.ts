// Where the control socket lives, and making its directory safe to use.
//   --socket / SPACE_SOCKET, else <runtime>/space/ctl.sock for the default data dir and
//   <runtime>/space/ctl-<12 hex of SHA-256(data dir)>.sock for any other (one daemon per store,
//   so parallel drives never collide). <runtime> is $XDG_RUNTIME_DIR, else /tmp/space-<uid>.
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { CtlError } from './errors.js'

/** sun_path is 108 bytes on Linux, terminator included. */
const MAX_SOCKET_PATH = 107

export function runtimeDir (env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR
  if (xdg !== undefined && xdg !== '') return join(resolve(xdg), 'space')
  return join(tmpdir(), `space-${process.getuid?.() ?? 'user'}`)
}

export function socketPath (opts: { flag?: string, dataDir: string, defaultDataDir: string, env?: NodeJS.ProcessEnv }): string {
  const env = opts.env ?? process.env
  if (opts.flag !== undefined && opts.flag !== '') return resolve(opts.flag)
  if (env.SPACE_SOCKET !== undefined && env.SPACE_SOCKET !== '') return resolve(env.SPACE_SOCKET)
  const dir = runtimeDir(env)
  if (resolve(opts.dataDir) === resolve(opts.defaultDataDir)) return join(dir, 'ctl.sock')
  return join(dir, `ctl-${createHash('sha256').update(resolve(opts.dataDir)).digest('hex').slice(0, 12)}.sock`)
}

/**
 * Creates the socket's directory 0700, or checks an existing one: a real directory (not a
 * link), ours, and closed to others. In a shared /tmp anyone could have made it first.
 * `ownDir`: the default runtime dir, which we may chmod back to 0700.
 */
export async function prepareSocketDir (path: string, opts: { ownDir: boolean }): Promise<void> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw new CtlError('ERR_SOCKET_UNSAFE', `socket path too long for a Unix socket (${Buffer.byteLength(path)} > ${MAX_SOCKET_PATH} bytes): ${path}`)
  const dir = dirname(path)
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
  const st = await fsp.lstat(dir)
  const uid = process.getuid?.()
  if (!st.isDirectory()) throw new CtlError('ERR_SOCKET_UNSAFE', `${dir} is not a directory`)
  if (uid !== undefined && st.uid !== uid) throw new CtlError('ERR_SOCKET_UNSAFE', `${dir} belongs to uid ${st.uid}, not to us (${uid}); refusing to put the control socket there`)
  if ((st.mode & 0o077) === 0) return
  // Our own runtime dir is fixed; a directory the user named (--socket) is theirs to decide.
  if (!opts.ownDir) throw new CtlError('ERR_SOCKET_UNSAFE', `${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}); the control socket needs a 0700 directory`)
  await fsp.chmod(dir, 0o700)
}
