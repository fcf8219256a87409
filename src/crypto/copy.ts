// memmove between Uint8Arrays, also where one of them is shared memory. V8 copies into and out of
// a SharedArrayBuffer with relaxed atomic word moves (TypedArray#set, and Buffer#copy, which uses
// it), at a fraction of memcpy's speed: 18% of the CPU of a 1 GiB write went there. The sealing
// slots are shared memory, so copies into and out of them use the small addon native/space_mem
// where it is built, and TypedArray#set where it is not.
import { loadAddon } from './addon.js'

type Copy = (target: Uint8Array, targetStart: number, source: Uint8Array, sourceStart: number, count: number) => number

const native = loadAddon<Copy>('space_mem', 'copy')

/** True when copies use the native memmove. */
export const nativeCopy = native != null

/** Copies source[sourceStart, sourceStart + count) into target at targetStart; returns count. */
export function copyBytes (target: Uint8Array, targetStart: number, source: Uint8Array, sourceStart = 0, count = source.length - sourceStart): number {
  if (native != null) return native(target, targetStart, source, sourceStart, count)
  if (targetStart < 0 || sourceStart < 0 || count < 0 || targetStart + count > target.length || sourceStart + count > source.length) throw new RangeError('copy out of bounds')
  target.set(source.subarray(sourceStart, sourceStart + count), targetStart)
  return count
}
