// Where the control socket lives, making its directory safe to use (daemon) and checking that a
// socket is safe to talk to (client: checkSocketPath before connecting, checkPeer after).
//   --socket / SPACE_SOCKET, else <runtime>/space/ctl.sock for the default data dir and
//   <runtime>/space/ctl-<12 hex of SHA-256(data dir)>.sock for any other (one daemon per store,
//   so parallel drives never collide). <runtime> is $XDG_RUNTIME_DIR, else /tmp/space-<uid>.
import { createHash } from 'node:crypto'
import { promises as fsp, type Stats } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { CtlError } from './errors.js'
import { peerCred } from './os.js'

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
  if (!st.isDirectory()) throw new CtlError('ERR_SOCKET_UNSAFE', `${dir} is not a directory (a link or a file); refusing to put the control socket there`)
  if (uid !== undefined && st.uid !== uid) throw new CtlError('ERR_SOCKET_UNSAFE', `${dir} belongs to uid ${st.uid}, not to us (${uid}); refusing to put the control socket there`)
  if ((st.mode & 0o077) === 0) return
  // A directory others could write to may already hold their socket or link: refuse it, ours
  // or not. Only our own runtime dir that is merely readable by others is closed back to 0700.
  if (!opts.ownDir || (st.mode & 0o022) !== 0) throw new CtlError('ERR_SOCKET_UNSAFE', `${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}); the control socket needs a 0700 directory`)
  await fsp.chmod(dir, 0o700)
}

const myUid = (): number | undefined => process.getuid?.()

function unsafe (path: string, why: string): CtlError {
  return new CtlError('ERR_SOCKET_UNSAFE', `refusing to talk to ${path}: ${why}; nothing was sent`, { socket: path })
}

function checkOwned (path: string, st: Stats, what: string): void {
  const uid = myUid()
  if (uid !== undefined && st.uid !== uid) throw unsafe(path, `the ${what} belongs to uid ${st.uid}, not to you (uid ${uid}): another user may be posing as the daemon`)
  if ((st.mode & 0o022) !== 0) throw unsafe(path, `the ${what} is writable by others (mode ${(st.mode & 0o777).toString(8)})`)
}

/**
 * Before a client sends anything (a token, a passphrase): the socket is a real socket (not a
 * link), and it and its directory are ours and not writable by anyone else. In a shared /tmp
 * another user could have created /tmp/space-<uid> first. ENOENT is ERR_NO_DAEMON.
 */
export async function checkSocketPath (path: string): Promise<void> {
  let st: Stats
  try {
    st = await fsp.lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CtlError('ERR_NO_DAEMON', `no daemon is running (no socket ${path})`, { socket: path })
    throw unsafe(path, (err as Error).message)
  }
  if (st.isSymbolicLink()) throw unsafe(path, 'it is a symbolic link')
  if (!st.isSocket()) throw unsafe(path, 'it is not a socket')
  checkOwned(path, st, 'socket')
  const dir = dirname(path)
  const dst = await fsp.lstat(dir)
  if (!dst.isDirectory()) throw unsafe(path, `its directory ${dir} is a symbolic link`)
  checkOwned(path, dst, `directory ${dir}`)
}

/** After connecting: the process that listens runs as this user (SO_PEERCRED). */
export function checkPeer (path: string, sock: Socket): void {
  const uid = myUid()
  if (uid === undefined) return
  const cred = peerCred(sock)
  if (cred === null) throw unsafe(path, 'cannot learn which user the daemon runs as (native/build/Release/space_sys.node is missing: run scripts/build-native.sh)')
  if (cred.uid !== uid) throw unsafe(path, `the process listening there (pid ${cred.pid}) runs as uid ${cred.uid}, not as you (uid ${uid})`)
}
