// Where Space keeps its per-user configuration (identity, keystore) and data (hub database).
// Rule: explicit flag, else SPACE_* env, else the XDG variable, else the XDG default under HOME.
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

function pick (flag: string | undefined, envName: string, xdgName: string, fallback: string[]): string {
  const env = process.env
  if (flag !== undefined && flag !== '') return resolve(flag)
  const own = env[envName]
  if (own !== undefined && own !== '') return resolve(own)
  const xdg = env[xdgName]
  if (xdg !== undefined && xdg !== '') return join(resolve(xdg), 'space')
  return join(homedir(), ...fallback, 'space')
}

/** `--config-dir`, SPACE_CONFIG_DIR, `$XDG_CONFIG_HOME/space`, `~/.config/space`. */
export function resolveConfigDir (flag?: string): string {
  return pick(flag, 'SPACE_CONFIG_DIR', 'XDG_CONFIG_HOME', ['.config'])
}

/** `--data-dir`, SPACE_DATA_DIR, `$XDG_DATA_HOME/space`, `~/.local/share/space`. */
export function resolveDataDir (flag?: string): string {
  return pick(flag, 'SPACE_DATA_DIR', 'XDG_DATA_HOME', ['.local', 'share'])
}
