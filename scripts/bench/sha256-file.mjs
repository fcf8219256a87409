// The SHA-256 of a file, read in 1 MiB reads: how the replication bench checks what B holds
// against what A wrote, on our side (sync-space.mjs, through B's mount) and Syncthing's
// (syncthing-peer.mjs, in B's folder) alike.
import { closeSync, openSync, readSync } from 'node:fs'
import { createHash } from 'node:crypto'

export function sha256File (path) {
  const h = createHash('sha256')
  const fd = openSync(path, 'r')
  const buf = Buffer.allocUnsafe(1 << 20)
  try { for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n)) } finally { closeSync(fd) }
  return h.digest('hex')
}
