// Mounts the FUSE binding in the test's own process over a few ops the test serves itself (the
// binding is what is tested, not the daemon): every op the test leaves out answers ENOSYS, except
// those whose absence the binding itself handles. Registers the mount's before/after hooks.
import { before, after } from 'node:test'
import { tempDirs, removeDirs, bindingName, type Dirs } from './mount.js'
import { defaultBinding } from '../../src/fs/fuse/select.js'
import type { FuseMount, FuseOps } from '../../src/fs/fuse/binding.js'

const ENOSYS = -38
/** Ops the binding looks at and does without when absent (it must not find an ENOSYS stub). */
const OPTIONAL = new Set<string | symbol>(['readdirPage', 'nativeReads', 'flush', 'fallocate'])

export const skipUnlessFuse3 = bindingName() !== 'fuse3' && 'needs the libfuse 3 binding (SPACE_FUSE=fuse3)'

/** The mount of `ops` under a fresh temp dir, made before the file's tests and taken down after them. */
export function mountOps (name: string, ops: Partial<FuseOps>, opts: { maxWrite: number }): { readonly dirs: Dirs } {
  const handler: ProxyHandler<Partial<FuseOps>> = {
    get: (t, k) => (t as Record<string | symbol, unknown>)[k] ?? (OPTIONAL.has(k)
      ? undefined
      : (...args: unknown[]) => { const cb = args[args.length - 1]; if (typeof cb === 'function') (cb as (e: number) => void)(ENOSYS) })
  }
  const state: { dirs: Dirs } = { dirs: undefined as unknown as Dirs }
  let mnt: FuseMount | undefined
  before(async () => {
    if (skipUnlessFuse3 !== false) return
    state.dirs = tempDirs(`space-${name}-`)
    mnt = await defaultBinding().mount(state.dirs.mnt, new Proxy(ops, handler) as FuseOps, {
      fsname: `space-${name}-test`, allowOther: false, defaultPermissions: false, maxWrite: opts.maxWrite, attrTimeout: 0, entryTimeout: 0
    })
  })
  after(async () => {
    await mnt?.unmount()
    if (state.dirs != null) removeDirs(state.dirs)
  })
  return state
}
