// What Node has no API for, from native/src/space_sys.c: the uid at the other end of a Unix
// socket (SO_PEERCRED) and turning off core dumps. Chosen over matching /proc/net/unix inodes
// against /proc/*/fd: that needs every process's fd table to be readable (hidepid, containers
// and other users' processes hide it), races with the peer closing and reopening, and guesses
// from paths; SO_PEERCRED is the kernel's record of who called listen() on that very socket.
import type { Socket } from 'node:net'
import { loadAddon } from '../crypto/addon.js'

export interface PeerCred { pid: number, uid: number, gid: number }

const peerCredNative = loadAddon<(fd: number) => PeerCred>('space_sys', 'peerCred')
const disableCoreDumpsNative = loadAddon<() => boolean>('space_sys', 'disableCoreDumps')

/** The credentials of the peer of a connected Unix socket; null where the addon is not built. */
export function peerCred (sock: Socket): PeerCred | null {
  if (peerCredNative === null) return null
  // The file descriptor of a connected net.Socket lives on its libuv handle (Pipe#fd).
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) return null
  return peerCredNative(fd)
}

/**
 * RLIMIT_CORE 0 and PR_SET_DUMPABLE 0: a crash leaves no core file holding the keys, and no
 * same-uid process can ptrace the daemon or read its /proc/<pid>/mem. False where the addon is
 * not built (Node has neither setrlimit nor prctl).
 */
export function disableCoreDumps (): boolean {
  if (disableCoreDumpsNative === null) return false
  return disableCoreDumpsNative()
}
