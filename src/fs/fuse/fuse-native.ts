// FuseBinding over @cocalc/fuse-native (libfuse 2, multithreaded loop). The package has no
// option for big_writes or max_write, so the option string it builds is extended here.
import { createRequire } from 'node:module'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { FuseBinding, FuseMount, FuseOps, MountOptions } from './binding.js'

const require = createRequire(import.meta.url)
const run = promisify(execFile)

interface NativeFuse {
  mount: (cb: (err: Error | null) => void) => void
  unmount: (cb: (err: Error | null) => void) => void
  _fuseOptions: () => string
}
type NativeFuseClass = new (mnt: string, ops: FuseOps, opts: Record<string, unknown>) => NativeFuse

let cls: NativeFuseClass | null = null
function nativeClass (): NativeFuseClass {
  cls ??= require('@cocalc/fuse-native') as NativeFuseClass
  return cls
}

export class FuseNativeBinding implements FuseBinding {
  async mount (mountpoint: string, ops: FuseOps, opts: MountOptions): Promise<FuseMount> {
    const Fuse = nativeClass()
    const fuse = new Fuse(mountpoint, ops, {
      fsname: opts.fsname,
      subtype: 'space',
      allowOther: opts.allowOther,
      defaultPermissions: opts.defaultPermissions,
      attrTimeout: opts.attrTimeout,
      entryTimeout: opts.entryTimeout,
      // A slow op answers EIO after 10 minutes instead of the package's 15 s (an fsync of GiBs).
      timeout: 600_000
    })
    const base = fuse._fuseOptions.bind(fuse)
    // libfuse 2's request buffer holds at most 128 KiB of data.
    const extra = ['big_writes', `max_write=${Math.min(opts.maxWrite, 128 * 1024)}`, 'use_ino']
    fuse._fuseOptions = () => {
      const o = base()
      return o === '' ? '-o' + extra.join(',') : o + ',' + extra.join(',')
    }
    await new Promise<void>((resolve, reject) => fuse.mount(err => err != null ? reject(err) : resolve()))
    let closed = false
    return {
      mountpoint,
      // libfuse 2 through this package has no invalidation: names show changes made behind the
      // kernel's back (another name of a hard link) when their attribute timeout ends.
      kernel: null,
      unmount: async () => {
        if (closed) return
        closed = true
        await new Promise<void>((resolve, reject) => fuse.unmount(err => err != null ? reject(err) : resolve()))
      }
    }
  }

  async clearStale (mountpoint: string): Promise<void> {
    await run('fusermount', ['-uz', mountpoint]).catch(() => {})
  }
}
