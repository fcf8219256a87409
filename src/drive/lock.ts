// The store lock: `<data>/lock` names the process serving the store (pid, mountpoint). Taken
// with O_EXCL; a lock left by a process that died is taken over. It is rewritten only by
// rename of a complete temp file, so a reader never sees it half written, and a lock whose
// content cannot be read is treated as held unless it is older than a minute.
import { promises as fsp, constants as FS, readFileSync } from 'node:fs'
import { DriveError } from './errors.js'

export interface LockInfo { pid: number, mountpoint: string | null, started: string }

export async function takeLock (lockPath: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fsp.open(lockPath, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o600)
      const info: LockInfo = { pid: process.pid, mountpoint: null, started: new Date().toISOString() }
      await fh.writeFile(JSON.stringify(info) + '\n')
      await fh.close()
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = readLock(lockPath)
      if (holder != null && holder.pid !== process.pid && pidAlive(holder.pid)) {
        throw new DriveError('ERR_STORE_IN_USE', `the store is in use by process ${holder.pid}${holder.mountpoint != null ? ` (mounted at ${holder.mountpoint})` : ''}`)
      }
      if (holder == null) {
        // Being created by another process this instant (O_EXCL, then the write), or garbage.
        const age = await fsp.stat(lockPath).then(st => Date.now() - st.mtimeMs, () => Infinity)
        if (age < 60_000) throw new DriveError('ERR_STORE_IN_USE', `the store lock ${lockPath} is being taken by another process (or is unreadable and less than a minute old)`)
      }
      await fsp.rm(lockPath, { force: true }) // left by a process that died
    }
  }
  throw new DriveError('ERR_STORE_IN_USE', `cannot take the store lock ${lockPath}`)
}

/** Removes the lock if it is ours (a lock taken over by another process is left alone). */
export async function releaseLock (lockPath: string): Promise<void> {
  const holder = readLock(lockPath)
  if (holder != null && holder.pid !== process.pid) return
  await fsp.rm(lockPath, { force: true })
}

/** Records where the store is mounted (status and unmount read it). */
export async function writeLock (lockPath: string, mountpoint: string | null): Promise<void> {
  const info: LockInfo = { pid: process.pid, mountpoint, started: new Date().toISOString() }
  const tmp = `${lockPath}.${process.pid}.tmp`
  await fsp.writeFile(tmp, JSON.stringify(info) + '\n', { mode: 0o600 })
  await fsp.rename(tmp, lockPath)
}

export function readLock (lockPath: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(lockPath, 'utf8')) as LockInfo
  } catch {
    return null
  }
}

export function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
