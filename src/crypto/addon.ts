// The crypto layer's small addons in native/ (scripts/build-native.sh builds them).
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/** Export `name` of native/build/Release/<file>.node; null where that addon is not built. */
export function loadAddon<T> (file: string, name: string): T | null {
  try {
    const path = fileURLToPath(new URL(`../../../native/build/Release/${file}.node`, import.meta.url))
    return (createRequire(import.meta.url)(path) as Record<string, T>)[name] ?? null
  } catch {
    return null
  }
}
