// Picks the FUSE binding: SPACE_FUSE=fuse2 forces @cocalc/fuse-native (libfuse 2), SPACE_FUSE=fuse3
// forces our libfuse 3 addon (failing if it does not load); otherwise DEFAULT below, falling back
// to libfuse 2 when the addon is not built or libfuse3 is missing.
import type { FuseBinding } from './binding.js'
import { FuseNativeBinding } from './fuse-native.js'
import { Fuse3Binding, fuse3Available, loadAddon } from './fuse3-native.js'

export type BindingName = 'fuse2' | 'fuse3'
const DEFAULT: BindingName = 'fuse3'

export function bindingName (env: NodeJS.ProcessEnv = process.env): BindingName {
  const want = env.SPACE_FUSE
  if (want === 'fuse2' || want === 'fuse3') return want
  if (DEFAULT === 'fuse3' && fuse3Available()) return 'fuse3'
  return 'fuse2'
}

export function defaultBinding (env: NodeJS.ProcessEnv = process.env): FuseBinding {
  if (bindingName(env) === 'fuse3') {
    loadAddon() // SPACE_FUSE=fuse3 without a working addon is an error, not a silent fallback
    return new Fuse3Binding()
  }
  return new FuseNativeBinding()
}
